import Foundation

/// A lead already stored that a batch's decisions depend on: one with a phone of the batch inside the flood window,
/// or with a (source, platform lead id) of the batch.
struct StoredLead: Sendable, Equatable {
    let id: UUID
    let sourceID: UUID
    let platformLeadID: String?
    let phoneKey: String?
    let receivedMicros: Int64
}

/// What the flood and redelivery rules need of a lead being written.
struct PlannedLead: Sendable, Equatable {
    let sourceID: UUID
    let platformLeadID: String?
    /// Nil when the lead has no phone.
    let phoneKey: String?
    let receivedMicros: Int64
}

/// The decisions for a batch of leads, taken in order exactly as if each lead were written on its own after the
/// ones before it: a phone seen within the flood window (on a stored lead or an earlier lead of the batch, but
/// never the same source and platform lead id) makes the lead a counted flood duplicate of the earliest such
/// lead; else a known (source, platform lead id) makes it a counted redelivery; else it is inserted.
///
/// Counting in memory lets the whole batch be written with one insert and one update: the statement per lead it
/// replaces (flood check, insert or count, outbox) cost PostgreSQL an executor start per lead.
struct LeadBatchPlan: Sendable {
    /// A lead's identity at its platform: redeliveries repeat it.
    struct SourceLead: Hashable {
        let sourceID: UUID
        let platformLeadID: String
    }

    /// Whose counter a duplicate raises.
    enum Target: Sendable, Hashable {
        case stored(UUID)
        /// The lead at this index of the batch, inserted by it.
        case batch(Int)
    }

    enum Decision: Sendable, Equatable {
        case insert
        case flood(Target)
        case redelivery(Target)
    }

    /// One per lead, in the batch's order.
    let decisions: [Decision]
    /// Counts to add to stored leads: flood duplicates and redeliveries.
    let storedCounts: [UUID: (floods: Int, redeliveries: Int)]
    /// Counts the inserted leads start with (by batch index): later leads of the batch that repeat them.
    let batchCounts: [Int: (floods: Int, redeliveries: Int)]

    init(leads: [PlannedLead], stored: [StoredLead], floodWindowMicros: Int64) {
        struct Candidate {
            let target: Target
            let sourceID: UUID
            let platformLeadID: String?
            let receivedMicros: Int64
        }
        var byPhone: [String: [Candidate]] = [:]
        var bySourceLead: [SourceLead: Target] = [:]
        var seen = Set<UUID>()
        for lead in stored where seen.insert(lead.id).inserted {
            if let phone = lead.phoneKey {
                byPhone[phone, default: []].append(Candidate(target: .stored(lead.id), sourceID: lead.sourceID,
                                                             platformLeadID: lead.platformLeadID, receivedMicros: lead.receivedMicros))
            }
            if let platformLeadID = lead.platformLeadID {
                bySourceLead[SourceLead(sourceID: lead.sourceID, platformLeadID: platformLeadID)] = .stored(lead.id)
            }
        }
        var decisions: [Decision] = []
        decisions.reserveCapacity(leads.count)
        var storedCounts: [UUID: (floods: Int, redeliveries: Int)] = [:]
        var batchCounts: [Int: (floods: Int, redeliveries: Int)] = [:]
        func count(_ target: Target, flood: Bool) {
            switch target {
            case .stored(let id):
                storedCounts[id, default: (0, 0)].floods += flood ? 1 : 0
                storedCounts[id, default: (0, 0)].redeliveries += flood ? 0 : 1
            case .batch(let index):
                batchCounts[index, default: (0, 0)].floods += flood ? 1 : 0
                batchCounts[index, default: (0, 0)].redeliveries += flood ? 0 : 1
            }
        }
        for (index, lead) in leads.enumerated() {
            if floodWindowMicros > 0, let phone = lead.phoneKey, let candidates = byPhone[phone] {
                var earliest: Candidate?
                for candidate in candidates where candidate.receivedMicros > lead.receivedMicros - floodWindowMicros {
                    if let platformLeadID = lead.platformLeadID, candidate.sourceID == lead.sourceID, candidate.platformLeadID == platformLeadID { continue }
                    if earliest == nil || candidate.receivedMicros < earliest!.receivedMicros { earliest = candidate }
                }
                if let earliest {
                    decisions.append(.flood(earliest.target))
                    count(earliest.target, flood: true)
                    continue
                }
            }
            let sourceLead = lead.platformLeadID.map { SourceLead(sourceID: lead.sourceID, platformLeadID: $0) }
            if let sourceLead, let target = bySourceLead[sourceLead] {
                decisions.append(.redelivery(target))
                count(target, flood: false)
                continue
            }
            decisions.append(.insert)
            if let phone = lead.phoneKey {
                byPhone[phone, default: []].append(Candidate(target: .batch(index), sourceID: lead.sourceID,
                                                             platformLeadID: lead.platformLeadID, receivedMicros: lead.receivedMicros))
            }
            if let sourceLead { bySourceLead[sourceLead] = .batch(index) }
        }
        self.decisions = decisions
        self.storedCounts = storedCounts
        self.batchCounts = batchCounts
    }
}
