import Foundation
import Kafka

/// Reads a topic from the beginning with a consumer group of its own, for assertions on what was produced.
public final class TopicReader: Sendable {
    private let consumer: KafkaConsumer

    public init(topic: String) throws {
        var configuration = KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient("reader"), groupID: TestEnvironment.uniqueName("reader"))
        configuration.autoOffsetReset = "earliest"
        consumer = try KafkaConsumer(configuration: configuration, topics: [topic], logger: TestEnvironment.logger("reader"))
    }

    /// Collects messages until `count` have arrived or `timeout` passes; then keeps reading `settle` longer to
    /// catch extras (duplicates), and returns everything read.
    public func read(atLeast count: Int, timeout: Duration = .seconds(30), settle: Duration = .zero) async throws -> [KafkaConsumedMessage] {
        var all: [KafkaConsumedMessage] = []
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while all.count < count, clock.now < deadline {
            all += try await consumer.poll(maxMessages: 1_000, timeout: .milliseconds(200))
        }
        if settle > .zero {
            let settleEnd = clock.now + settle
            while clock.now < settleEnd {
                all += try await consumer.poll(maxMessages: 1_000, timeout: .milliseconds(100))
            }
        }
        return all
    }

    public func close() async {
        await consumer.close()
    }
}
