import Contracts
import FastText
import Kafka
import Postgres
import ServiceKit

/// Consumes `marketing.campaign-leads.v1`: each record is decoded (protobuf or JSON), its source looked up by
/// name, validated, and either stored with its event or dead-lettered with the reason.
struct CampaignLeadHandler: BatchHandler {
    let validator: LeadValidator
    let store: LeadStore
    let schema: String

    func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome] {
        var decoded: [Result<Funnel_Marketing_V1_CampaignLead, EventDecodingError>] = []
        decoded.reserveCapacity(records.count)
        for record in records {
            do { decoded.append(.success(try EventDecoder.decode(Funnel_Marketing_V1_CampaignLead.self, from: record))) } catch let error as EventDecodingError {
                decoded.append(.failure(error))
            }
        }
        let names = Array(Set(decoded.compactMap { result -> String? in
            guard case .success(let lead) = result else { return nil }
            let name = lead.source.trimmingSpaces
            return name.isEmpty ? nil : name
        }))
        let sources = names.isEmpty ? [:] : try SourceStore.byName(names, schema: schema, in: connection)

        var outcomes: [HandlerOutcome?] = Array(repeating: nil, count: records.count)
        var valid: [ValidatedLead] = []
        for (index, result) in decoded.enumerated() {
            let lead: Funnel_Marketing_V1_CampaignLead
            switch result {
            case .failure(let error):
                outcomes[index] = .rejected(error)
                continue
            case .success(let value):
                lead = value
            }
            let name = lead.source.trimmingSpaces
            guard !name.isEmpty else {
                outcomes[index] = .rejected(code: "missing_source", reason: "source: the lead source's name is required on the topic")
                continue
            }
            guard let source = sources[name] else {
                outcomes[index] = .rejected(code: "unknown_source", reason: "source: no lead source is registered with this name")
                continue
            }
            guard !source.disabled else {
                outcomes[index] = .rejected(code: "source_disabled", reason: "source: this lead source is disabled")
                continue
            }
            switch validator.validate(lead, source: source, receivedVia: "topic") {
            case .failure(let rejection):
                outcomes[index] = .rejected(code: rejection.code, reason: rejection.reason)
            case .success(let lead):
                valid.append(lead)
                // The store queues the event with the lead; nothing more for the loop to write.
                outcomes[index] = .processed([])
            }
        }
        // The leads and their events are written with the batch's COMMIT; duplicates only count on stored leads.
        try store.writeWithCommit(valid, in: connection)
        return outcomes.map { $0! }
    }
}
