import Kafka
import Postgres

/// A ``BatchHandler`` for a consume loop subscribed to several topics: each record goes to the handler of its
/// topic (full names, with the deployment's prefix), and the outcomes come back in the batch's order. Records of
/// a topic without a handler are a programming error.
public struct TopicRouter: BatchHandler {
    private let routes: [(topic: String, handler: any BatchHandler)]

    public init(_ routes: [(topic: String, handler: any BatchHandler)]) {
        self.routes = routes
    }

    public func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome] {
        var outcomes = [HandlerOutcome?](repeating: nil, count: records.count)
        for (topic, handler) in routes {
            let indexes = records.indices.filter { records[$0].topic == topic }
            if indexes.isEmpty { continue }
            if indexes.count == records.count { return try handler.handle(records, in: connection) }
            for (index, outcome) in zip(indexes, try handler.handle(indexes.map { records[$0] }, in: connection)) { outcomes[index] = outcome }
        }
        return outcomes.map { $0 ?? .rejected(code: "unrouted_topic", reason: "no handler for this topic") }
    }
}
