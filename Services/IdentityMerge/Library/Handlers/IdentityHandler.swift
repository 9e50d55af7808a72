import Contracts
import Foundation
import Kafka
import Postgres
import ServiceKit
import SwiftProtobuf

/// Consumes `leads.captured.v1`, `identity.registrations.v1` and `identity.tags.v1`. A batch's leads and
/// registrations are resolved together: the graph they touch is loaded and locked once, resolved in memory in
/// record order, and written back with their decisions and events in the batch's transaction. Tags follow.
struct IdentityHandler: BatchHandler {
    let topics: IdentityTopics
    let builder: ObservationBuilder
    let rules: RulesStore
    let graphStore: GraphStore
    let tags: TagApplier
    let events: CustomerEvents

    func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome] {
        let compiled = try rules.current(in: connection)
        var outcomes: [HandlerOutcome?] = Array(repeating: nil, count: records.count)
        var observations: [(index: Int, observation: Observation, registration: RegistrationFacts?)] = []
        var tagRecords: [(index: Int, tag: Funnel_Identity_V1_CustomerTagged)] = []
        for (index, record) in records.enumerated() {
            do {
                switch record.topic {
                case topics.leads:
                    let lead = try EventDecoder.decode(Funnel_Leads_V1_LeadCaptured.self, from: record)
                    observations.append((index, try builder.observation(lead: lead, rules: compiled), nil))
                case topics.registrations:
                    let registration = try EventDecoder.decode(Funnel_Identity_V1_UserRegistered.self, from: record)
                    let (observation, facts) = try builder.observation(registration: registration, rules: compiled)
                    observations.append((index, observation, facts))
                case topics.tags:
                    tagRecords.append((index, try EventDecoder.decode(Funnel_Identity_V1_CustomerTagged.self, from: record)))
                default:
                    outcomes[index] = .rejected(code: "unknown_topic", reason: "identity-merge does not consume \(record.topic)")
                }
            } catch let error as EventDecodingError {
                outcomes[index] = .rejected(error)
            } catch let rejection as ObservationBuilder.Rejection {
                outcomes[index] = .rejected(code: rejection.code, reason: rejection.reason)
            }
        }

        if !observations.isEmpty {
            var graph = IdentityGraph()
            let idents = Array(Set(observations.flatMap { $0.observation.identifiers.map(\.ident) }))
            try graphStore.load(idents: idents, into: &graph, in: connection)
            var merges: [MergeDecision] = []
            var leads: [StoredLead] = []
            var decisions: [StoredDecision] = []
            var emitted: [(index: Int, events: [CloudEvent])] = []
            for (index, observation, registration) in observations {
                let resolution = graph.resolve(observation, rules: compiled.rules, newID: { UUIDv7.generate(at: Date()) })
                merges += resolution.merges
                var batchEvents: [CloudEvent] = []
                for merge in resolution.merges {
                    let decision = CustomerEvents.mergeDecision(merge, subject: observation, rulesVersion: compiled.version)
                    decisions.append(decision)
                    batchEvents.append(try events.merged(merge, decisionID: decision.id))
                }
                let decision = CustomerEvents.resolvedDecision(resolution, subject: observation, rulesVersion: compiled.version)
                decisions.append(decision)
                let node = graph.customers[resolution.customerID]!
                batchEvents.append(try events.resolved(resolution, observation: observation, registration: registration, customer: node,
                                                       decisionID: decision.id))
                if let lead = observation.lead {
                    leads.append(StoredLead(leadID: lead.leadID, customerID: resolution.customerID, channel: lead.channel,
                                            campaignID: lead.campaignID.isEmpty ? nil : lead.campaignID,
                                            courseInterest: lead.courseInterest.isEmpty ? nil : lead.courseInterest,
                                            occurredAt: observation.occurredAt, idents: observation.identifiers.map(\.ident)))
                }
                emitted.append((index, batchEvents))
            }
            _ = try connection.pipeline(graphStore.save(graph, merges: merges, leads: leads, decisions: decisions))
            for (index, batchEvents) in emitted { outcomes[index] = .processed(batchEvents) }
        }

        for (index, tag) in tagRecords {
            outcomes[index] = try tags.apply(tag, in: connection)
        }
        return outcomes.map { $0! }
    }
}

/// The full (prefixed) names of the topics identity-merge reads and writes.
struct IdentityTopics: Sendable {
    let leads: String
    let registrations: String
    let tags: String
    let customers: String
}
