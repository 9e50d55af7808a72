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
                outcomes.append(.rejected(error))
            }
        }
        if !valid.isEmpty { try connection.query(store.upsert(valid)) }
        return outcomes
    }
}
