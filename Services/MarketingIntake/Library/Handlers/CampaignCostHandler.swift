import Contracts
import Kafka
import Postgres
import ServiceKit

/// Consumes `marketing.campaign-costs.v1`: each record is decoded (protobuf or JSON) and validated; valid ones are
/// upserted in one statement, invalid ones dead-lettered with the reason.
struct CampaignCostHandler: BatchHandler {
    let validator: CostValidator
    let store: CostStore

    func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome] {
        var outcomes: [HandlerOutcome] = []
        var valid: [ValidCost] = []
        for record in records {
            do {
                switch validator.validate(try EventDecoder.decode(Funnel_Marketing_V1_CampaignCost.self, from: record)) {
                case .success(let cost):
                    valid.append(cost)
                    outcomes.append(.processed([]))
                case .failure(let rejection):
                    outcomes.append(.rejected(code: rejection.code, reason: rejection.reason))
                }
            } catch let error as EventDecodingError {
                outcomes.append(.rejected(code: error.code.rawValue, reason: error.detail))
            }
        }
        if !valid.isEmpty { try connection.query(store.upsert(valid)) }
        return outcomes
    }
}

/// Sends each record of a batch to the handler of its topic, keeping the batch's order of outcomes.
struct IntakeInputHandler: BatchHandler {
    let leadsTopic: String
    let leads: CampaignLeadHandler
    let costs: CampaignCostHandler

    func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome] {
        let leadIndexes = records.indices.filter { records[$0].topic == leadsTopic }
        if leadIndexes.count == records.count { return try leads.handle(records, in: connection) }
        let costIndexes = records.indices.filter { records[$0].topic != leadsTopic }
        var outcomes = [HandlerOutcome?](repeating: nil, count: records.count)
        if !leadIndexes.isEmpty {
            for (index, outcome) in zip(leadIndexes, try leads.handle(leadIndexes.map { records[$0] }, in: connection)) { outcomes[index] = outcome }
        }
        for (index, outcome) in zip(costIndexes, try costs.handle(costIndexes.map { records[$0] }, in: connection)) { outcomes[index] = outcome }
        return outcomes.map { $0! }
    }
}
