import Contracts
import Kafka
import Postgres

/// What a handler decided for one record.
public enum HandlerOutcome: Sendable {
    /// Done; these events go to the outbox in the same transaction.
    case processed([CloudEvent])
    /// Bad input: it goes to `dlq.<service>.v1` with this code and reason, in the same transaction.
    case rejected(code: String, reason: String)

    /// A record whose payload could not be decoded: dead-lettered with the decoder's code and detail.
    public static func rejected(_ error: EventDecodingError) -> HandlerOutcome {
        .rejected(code: error.code.rawValue, reason: error.detail)
    }
}

/// A service's logic for one consumed topic. It runs inside the batch's transaction, on the connection's own
/// thread (synchronous code: pipeline its statements), after duplicates were filtered out.
public protocol BatchHandler: Sendable {
    /// Returns one outcome per record, in order. Throwing rolls the whole batch back for a retry; records that
    /// keep failing are retried alone and then dead-lettered. A unique violation (an insert without ON CONFLICT that
    /// met a concurrent writer's row) runs the batch again at once, in a new transaction.
    func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome]
}
