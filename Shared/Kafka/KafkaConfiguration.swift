/// Settings shared by producers and consumers. Any librdkafka property can be set through ``properties``
/// (so production can configure SASL/TLS, timeouts, compression); typed fields cover what we rely on.
public struct KafkaClientConfiguration: Sendable {
    /// `bootstrap.servers`, e.g. `127.0.0.1:9092`.
    public var bootstrapServers: String
    /// `client.id`, shown in broker logs.
    public var clientID: String
    /// Extra librdkafka properties; they win over the typed defaults.
    public var properties: [String: String]

    public init(bootstrapServers: String, clientID: String = "funnel", properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.properties = properties
    }

    /// Parses `key=value` pairs separated by commas or newlines (the `FUNNEL_KAFKA_PROPERTIES` format).
    public static func parseProperties(_ text: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for item in text.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let eq = trimmed.firstIndex(of: "="), eq != trimmed.startIndex else {
                throw KafkaError.configuration("expected key=value in Kafka properties, got an item without '='")
            }
            result[String(trimmed[..<eq])] = String(trimmed[trimmed.index(after: eq)...])
        }
        return result
    }
}

/// A producer's settings. Idempotent with `acks=all` by default.
public struct KafkaProducerConfiguration: Sendable {
    public var client: KafkaClientConfiguration
    /// `enable.idempotence`; on by default so retries never duplicate or reorder.
    public var idempotent: Bool = true
    /// `linger.ms`: how long to wait to fill a batch.
    public var linger: Duration = .milliseconds(5)
    /// `message.timeout.ms`: how long a record may wait for delivery before it fails.
    public var messageTimeout: Duration = .seconds(60)
    /// `queue.buffering.max.messages`: the local queue; a full queue is back-pressure.
    public var maxQueuedMessages: Int = 200_000

    public init(client: KafkaClientConfiguration) {
        self.client = client
    }

    var librdkafkaProperties: [String: String] {
        var p: [String: String] = [
            "bootstrap.servers": client.bootstrapServers,
            "client.id": client.clientID,
            "enable.idempotence": idempotent ? "true" : "false",
            "acks": "all",
            "linger.ms": String(linger.milliseconds),
            "message.timeout.ms": String(messageTimeout.milliseconds),
            "queue.buffering.max.messages": String(maxQueuedMessages),
        ]
        p.merge(client.properties) { _, new in new }
        return p
    }
}

/// A group consumer's settings: cooperative-sticky assignment, offsets stored only when the caller says so.
public struct KafkaConsumerConfiguration: Sendable {
    public var client: KafkaClientConfiguration
    /// `group.id`.
    public var groupID: String
    /// `auto.offset.reset` for a group without committed offsets: `earliest` (default) or `latest`.
    public var autoOffsetReset: String = "earliest"
    /// `session.timeout.ms`. Short by default: the dev broker waits this long on each rebalance.
    public var sessionTimeout: Duration = .seconds(6)
    /// `heartbeat.interval.ms`.
    public var heartbeatInterval: Duration = .milliseconds(500)
    /// `auto.commit.interval.ms`: stored offsets are committed in the background this often and on close.
    public var commitInterval: Duration = .seconds(1)
    /// `fetch.wait.max.ms`: the longest a fetch waits for data.
    public var fetchWait: Duration = .milliseconds(100)

    public init(client: KafkaClientConfiguration, groupID: String) {
        self.client = client
        self.groupID = groupID
    }

    var librdkafkaProperties: [String: String] {
        var p: [String: String] = [
            "bootstrap.servers": client.bootstrapServers,
            "client.id": client.clientID,
            "group.id": groupID,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": "true",
            "enable.auto.offset.store": "false",
            "auto.offset.reset": autoOffsetReset,
            "session.timeout.ms": String(sessionTimeout.milliseconds),
            "heartbeat.interval.ms": String(heartbeatInterval.milliseconds),
            "auto.commit.interval.ms": String(commitInterval.milliseconds),
            "fetch.wait.max.ms": String(fetchWait.milliseconds),
            "enable.partition.eof": "false",
        ]
        p.merge(client.properties) { _, new in new }
        return p
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}

import Foundation
