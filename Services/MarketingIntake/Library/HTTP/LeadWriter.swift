import Contracts
import Foundation
import Kafka
import Postgres
import ServiceKit

/// How one lead of a request ended.
enum LeadOutcome: Sendable {
    case accepted(UUID)
    case duplicate(UUID)
    case rejected(LeadRejection)
}

/// Validates and writes the leads of one HTTP request (a form post or a webhook delivery) as the last step of its
/// transaction: ``LeadStore`` decides and writes them as a batch, with the COMMIT. Rejected leads of a multi-lead
/// delivery go to the dead-letter topic with their reason (queued with the COMMIT), so nothing a platform pushed is lost.
struct LeadWriter: Sendable {
    let validator: LeadValidator
    let store: LeadStore
    let schema: String
    let service: String
    let deadLetterTopic: String

    /// `check`, when given, must confirm `source` (in the first round trip) before anything is written.
    func write(_ leads: [Funnel_Marketing_V1_CampaignLead], source: LeadSource, via: String, deadLetterRejected: Bool,
               check: SourceCheck? = nil, in tx: PostgresConnection) throws -> [LeadOutcome] {
        var outcomes: [LeadOutcome?] = Array(repeating: nil, count: leads.count)
        var valid: [(Int, ValidatedLead)] = []
        var letters: [OutboxRecord] = []
        for (index, lead) in leads.enumerated() {
            switch validator.validate(lead, source: source, receivedVia: via) {
            case .failure(let rejection):
                outcomes[index] = .rejected(rejection)
                if deadLetterRejected { letters.append(try deadLetter(lead, source: source, via: via, rejection: rejection)) }
            case .success(let lead): valid.append((index, lead))
            }
        }
        // With no lead to write, the source is confirmed on its own, before any rejection is answered.
        if let check, valid.isEmpty { try check.run(in: tx) }
        if !letters.isEmpty { tx.sendWithCommit(Outbox(schema: schema).insert(letters)) }
        for (position, result) in try store.write(valid.map(\.1), committing: true, check: check, in: tx).enumerated() {
            outcomes[valid[position].0] = result.inserted ? .accepted(result.leadID) : .duplicate(result.leadID)
        }
        return outcomes.map { $0! }
    }

    /// A rejected lead as a dead letter: the lead as received (JSON mapping), the source, and the reason.
    func deadLetter(_ lead: Funnel_Marketing_V1_CampaignLead, source: LeadSource, via: String, rejection: LeadRejection) throws -> OutboxRecord {
        var lead = lead
        lead.source = source.name
        let payload: [UInt8] = Array(try lead.jsonUTF8Data())
        let headers = [
            KafkaHeader(key: "content-type", text: "application/json"),
            KafkaHeader(key: "dlq_service", text: service),
            KafkaHeader(key: "dlq_original_topic", text: "http:\(via)"),
            KafkaHeader(key: "dlq_error_code", text: rejection.code),
            KafkaHeader(key: "dlq_error_reason", text: String(rejection.reason.prefix(1_000))),
            KafkaHeader(key: "dlq_failed_at", text: RFC3339.format(Date())),
        ]
        return OutboxRecord(topic: deadLetterTopic, key: Array((lead.platformLeadID.isEmpty ? source.name : lead.platformLeadID).utf8),
                            headers: headers, payload: payload)
    }
}
