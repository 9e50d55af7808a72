import Kafka
import Postgres

/// The offsets a batch's records without a CloudEvents id cover in each of their partitions, and the statements that
/// move the schema's `consumed_positions` past them (``RuntimeTables/consumedPositions(version:)``) in the batch's
/// transaction.
struct PartitionSpan: Sendable {
    private(set) var topics: [String?] = []
    private(set) var partitions: [Int64?] = []
    /// The lowest offset of the batch in each partition.
    private(set) var firsts: [Int64?] = []
    /// The offset after the highest of the batch in each partition.
    private(set) var nexts: [Int64?] = []

    var isEmpty: Bool { topics.isEmpty }

    init(_ batch: [KafkaConsumedMessage]) {
        var bounds: [KafkaTopicPartition: (first: Int64, last: Int64)] = [:]
        for record in batch {
            let tp = record.topicPartition
            if let known = bounds[tp] {
                bounds[tp] = (min(known.first, record.offset), max(known.last, record.offset))
            } else {
                bounds[tp] = (record.offset, record.offset)
            }
        }
        // Sorted, so two transactions lock the same partitions' rows in the same order.
        for (tp, bound) in bounds.sorted(by: { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }) {
            topics.append(tp.topic)
            partitions.append(Int64(tp.partition))
            firsts.append(bound.first)
            nexts.append(bound.last + 1)
        }
    }

    /// The fast path: moves every partition from its first to its next offset, or fails with a unique violation of
    /// `consumed_positions_behind` when one was consumed past its first offset already.
    func advance(schema: String) -> PostgresQuery {
        """
        SELECT \(identifier: schema).advance_consumed_positions(\(PostgresArray(topics))::text[], (\(PostgresArray(partitions))::int8[])::int4[],
                                                                \(PostgresArray(firsts))::int8[], \(PostgresArray(nexts))::int8[])
        """
    }

    /// The careful path: each partition's position before this batch (a new partition's is its first offset), locked
    /// until the transaction ends, then moved past the batch (never back). ``positionsBefore(_:)`` reads the
    /// pipeline's results.
    func lockAndAdvance(schema: String) -> [PostgresQuery] {
        [
            """
            INSERT INTO \(identifier: schema).consumed_positions (topic, partition, next_offset)
            SELECT * FROM unnest(\(PostgresArray(topics))::text[], (\(PostgresArray(partitions))::int8[])::int4[], \(PostgresArray(firsts))::int8[])
            ON CONFLICT DO NOTHING
            """,
            """
            SELECT p.topic, p.partition, p.next_offset FROM \(identifier: schema).consumed_positions p
            JOIN unnest(\(PostgresArray(topics))::text[], (\(PostgresArray(partitions))::int8[])::int4[]) AS b(topic, partition)
              ON p.topic = b.topic AND p.partition = b.partition
            ORDER BY p.topic, p.partition
            FOR UPDATE OF p
            """,
            """
            UPDATE \(identifier: schema).consumed_positions p SET next_offset = greatest(p.next_offset, b.next_offset), updated_at = now()
            FROM unnest(\(PostgresArray(topics))::text[], (\(PostgresArray(partitions))::int8[])::int4[], \(PostgresArray(nexts))::int8[]) AS b(topic, partition, next_offset)
            WHERE p.topic = b.topic AND p.partition = b.partition
            """,
        ]
    }

    /// Each partition's next offset before this batch, from the results of ``lockAndAdvance(schema:)``'s statements.
    static func positionsBefore(_ results: [PostgresRows]) throws -> [KafkaTopicPartition: Int64] {
        var positions: [KafkaTopicPartition: Int64] = [:]
        for row in results[1] {
            let (topic, partition, next) = try row.decode(String.self, Int32.self, Int64.self)
            positions[KafkaTopicPartition(topic: topic, partition: partition)] = next
        }
        return positions
    }
}
