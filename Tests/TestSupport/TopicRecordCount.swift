import Kafka

extension KafkaConsumer {
    /// How many records `topic`'s partitions `0..<partitions` have received (offsets start at 0): the sum of their end
    /// offsets, one ListOffsets request, no fetching.
    public func recordCount(topic: String, partitions: Int) async throws -> Int {
        let all = (0..<Int32(partitions)).map { KafkaTopicPartition(topic: topic, partition: $0) }
        return Int(try await endOffsets(all).values.reduce(0, +))
    }
}
