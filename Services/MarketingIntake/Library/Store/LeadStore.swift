import Contracts
import Foundation
import Postgres
import ServiceKit

/// How a lead written by ``LeadStore`` ended: its id (the stored lead's for a duplicate) and whether it was new.
struct LeadWriteResult: Sendable, Equatable {
    let leadID: UUID
    let inserted: Bool
}

/// Writes accepted leads and their `leads.captured.v1` events, a batch at a time: an exact redelivery (same source
/// and platform lead id) only counts a redelivery on the stored lead, and the same phone within the flood window
/// only counts a flood duplicate on the first lead; neither emits anything.
///
/// Two round trips: the batch's phones are locked (so concurrent writers of one number serialise) and the stored
/// leads its rules depend on are read; ``LeadBatchPlan`` decides every lead in order; then one statement inserts
/// the new leads with their outbox rows and one adds the counts to stored leads.
struct LeadStore: Sendable {
    let schema: String
    let service: String
    /// The output topic's full name (with the deployment's prefix).
    let outputTopic: String

    /// The same phone again within this window is one lead plus a counted duplicate (zero: no flood limit).
    var floodWindow: Duration = .seconds(60)

    var floodWindowMicros: Int64 {
        floodWindow.components.seconds * 1_000_000 + floodWindow.components.attoseconds / 1_000_000_000_000
    }

    /// Writes `leads` and returns how each ended, in order. `committing`: the writes travel with the transaction's
    /// COMMIT (one round trip fewer), so the transaction is over when this returns, unless nothing needed writing.
    /// `check` travels in the first round trip and must confirm the leads' source before anything is written.
    func write(_ leads: [ValidatedLead], committing: Bool = false, check: SourceCheck? = nil,
               in connection: PostgresConnection) throws -> [LeadWriteResult] {
        guard !leads.isEmpty else { return [] }
        let (plan, statements) = try prepare(leads, check: check, in: connection)
        let results = statements.isEmpty ? [] : committing ? try connection.pipelineAndCommit(statements) : try connection.pipeline(statements)
        let inserted = plan.decisions.contains(.insert) ? results.first : nil
        return try Self.results(of: leads, plan: plan, insertRows: inserted)
    }

    /// Writes `leads` with the transaction's COMMIT (one round trip fewer), for the consume loop, which needs no
    /// outcome. A lead whose platform lead id a concurrent writer stored since the plan read fails the COMMIT with a
    /// unique violation of `leads_source_platform_lead` (no ON CONFLICT, see ``LeadRows/insert(schema:topic:onConflict:)``);
    /// the loop runs the batch again at once and this time the plan counts it a redelivery.
    func writeWithCommit(_ leads: [ValidatedLead], in connection: PostgresConnection) throws {
        guard !leads.isEmpty else { return }
        for statement in try prepare(leads, onConflict: false, in: connection).statements { connection.sendWithCommit(statement) }
    }

    /// The batch's plan and the statements that carry it out.
    private func prepare(_ leads: [ValidatedLead], check: SourceCheck? = nil, onConflict: Bool = true,
                         in connection: PostgresConnection) throws -> (plan: LeadBatchPlan, statements: [PostgresQuery]) {
        let plan = try self.plan(leads, check: check, in: connection)
        return (plan, try statements(leads, plan: plan, onConflict: onConflict))
    }

    /// Locks the batch's phones and decides each lead against what is stored (after `check`, in the same round
    /// trip, has confirmed the leads' source).
    func plan(_ leads: [ValidatedLead], check: SourceCheck? = nil, in connection: PostgresConnection) throws -> LeadBatchPlan {
        let window = floodWindowMicros
        let planned = leads.map { lead in
            PlannedLead(sourceID: lead.source.id, platformLeadID: lead.platformLeadID,
                        phoneKey: lead.event.phoneKey.isEmpty ? nil : lead.event.phoneKey, receivedMicros: Self.micros(lead.event.receivedAt.date))
        }
        var statements: [PostgresQuery] = check?.queries ?? []
        if let locks = floodLocks(leads) { statements.append(locks) }
        statements.append(lookup(planned))
        let results = try connection.pipeline(statements)
        if let check { try check.confirm(Array(results.prefix(check.queries.count))) }
        let rows = results.last!
        let stored = try rows.map { row in
            let (id, source, platformLeadID, phoneKey, receivedAt) = try row.decode(UUID.self, UUID.self, String?.self, String?.self, Date.self)
            return StoredLead(id: id, sourceID: source, platformLeadID: platformLeadID, phoneKey: phoneKey, receivedMicros: Self.micros(receivedAt))
        }
        return LeadBatchPlan(leads: planned, stored: stored, floodWindowMicros: window)
    }

    /// The stored leads the batch's rules look at: its phones within the flood window, and its platform lead ids.
    func lookup(_ leads: [PlannedLead]) -> PostgresQuery {
        let window = floodWindowMicros
        let phones = window > 0 ? Array(Set(leads.compactMap(\.phoneKey))) : []
        let cutoff = (leads.map(\.receivedMicros).min() ?? 0) - window
        var sources: [UUID?] = []
        var platformLeadIDs: [String?] = []
        for lead in leads {
            guard let platformLeadID = lead.platformLeadID else { continue }
            sources.append(lead.sourceID)
            platformLeadIDs.append(platformLeadID)
        }
        // Each key probes the index from a LATERAL subquery: as plain joins, a plan cached while the table was small
        // kept scanning it whole (2.5 ms per HTTP lead after 6,500 leads, growing).
        return """
            SELECT l.lead_id, l.source_id, l.platform_lead_id, l.phone_key, l.received_at
            FROM unnest(\(PostgresArray(phones.map { Optional($0) }))::text[]) AS k(phone_key)
            CROSS JOIN LATERAL (SELECT * FROM \(identifier: schema).leads l
                                WHERE l.phone_key = k.phone_key AND l.received_at > \(Date(timeIntervalSince1970: Double(cutoff - 1_000) / 1_000_000))
                                ORDER BY l.phone_key, l.received_at) l
            UNION
            SELECT l.lead_id, l.source_id, l.platform_lead_id, l.phone_key, l.received_at
            FROM unnest(\(PostgresArray(sources))::uuid[], \(PostgresArray(platformLeadIDs))::text[]) AS k(source_id, platform_lead_id)
            CROSS JOIN LATERAL (SELECT * FROM \(identifier: schema).leads l
                                WHERE l.source_id = k.source_id AND l.platform_lead_id = k.platform_lead_id AND l.platform_lead_id IS NOT NULL
                                ORDER BY l.source_id, l.platform_lead_id LIMIT 1) l
            """
    }

    /// The insert of the plan's new leads (with their counts from later leads of the batch, and their outbox rows)
    /// when there are any, then the update of stored leads' counts when there are any.
    func statements(_ leads: [ValidatedLead], plan: LeadBatchPlan, onConflict: Bool = true) throws -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        var rows = LeadRows()
        for (index, (lead, decision)) in zip(leads, plan.decisions).enumerated() where decision == .insert {
            let counts = plan.batchCounts[index] ?? (0, 0)
            try rows.append(lead, floods: counts.floods, redeliveries: counts.redeliveries, service: service)
        }
        if !rows.isEmpty { statements.append(rows.insert(schema: schema, topic: outputTopic, onConflict: onConflict)) }
        guard !plan.storedCounts.isEmpty else { return statements }
        // Sorted, so two batches counting on the same leads lock them in the same order.
        let counts = plan.storedCounts.sorted { $0.key.uuidString < $1.key.uuidString }
        statements.append("""
            UPDATE \(identifier: schema).leads AS l
            SET flood_duplicates = l.flood_duplicates + c.floods, redeliveries = l.redeliveries + c.redeliveries
            FROM unnest(\(PostgresArray(counts.map { Optional($0.key) }))::uuid[], \(PostgresArray(counts.map { Optional(Int64($0.value.floods)) }))::int8[],
                        \(PostgresArray(counts.map { Optional(Int64($0.value.redeliveries)) }))::int8[]) AS c(lead_id, floods, redeliveries)
            WHERE l.lead_id = c.lead_id
            """)
        return statements
    }

    /// Each lead's result from the plan and the insert's returned rows. A lead the plan inserted may have met a
    /// concurrent writer of the same platform lead id (the insert counted a redelivery on that lead instead).
    static func results(of leads: [ValidatedLead], plan: LeadBatchPlan, insertRows: PostgresRows?) throws -> [LeadWriteResult] {
        var inserted = Set<UUID>()
        var existing: [LeadBatchPlan.SourceLead: UUID] = [:]
        for row in insertRows.map(Array.init) ?? [] {
            let (id, source, platformLeadID, isNew) = try row.decode(UUID.self, UUID.self, String?.self, Bool.self)
            if isNew { inserted.insert(id) } else if let platformLeadID { existing[.init(sourceID: source, platformLeadID: platformLeadID)] = id }
        }
        func finalID(ofBatch index: Int) -> (UUID, Bool) {
            let lead = leads[index]
            let own = lead.leadID
            if inserted.contains(own) { return (own, true) }
            if let platformLeadID = lead.platformLeadID, let id = existing[.init(sourceID: lead.source.id, platformLeadID: platformLeadID)] { return (id, false) }
            return (own, false)
        }
        return plan.decisions.enumerated().map { index, decision in
            switch decision {
            case .insert:
                let (id, isNew) = finalID(ofBatch: index)
                return LeadWriteResult(leadID: id, inserted: isNew)
            case .flood(.stored(let id)), .redelivery(.stored(let id)):
                return LeadWriteResult(leadID: id, inserted: false)
            case .flood(.batch(let target)), .redelivery(.batch(let target)):
                return LeadWriteResult(leadID: finalID(ofBatch: target).0, inserted: false)
            }
        }
    }

    /// Takes the flood lock of each phone among `leads` (transaction-scoped advisory locks, in one sorted order so
    /// two batches never deadlock), so concurrent requests for one number serialise and only one becomes a lead.
    func floodLocks(_ leads: [ValidatedLead]) -> PostgresQuery? {
        guard floodWindow > .zero else { return nil }
        let keys = Set(leads.compactMap { lead -> Int64? in
            let key = lead.event.phoneKey
            guard key.utf8.count >= 16, let value = UInt64(key.prefix(16), radix: 16) else { return nil }
            return Int64(bitPattern: value)
        }).sorted()
        guard !keys.isEmpty else { return nil }
        return "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(\(PostgresArray(keys.map { Optional($0) }))::bigint[]) AS k"
    }

    /// A time as PostgreSQL stores it: whole microseconds.
    static func micros(_ date: Date) -> Int64 { date.postgresMicroseconds }
}
