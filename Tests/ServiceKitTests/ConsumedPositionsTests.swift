import Foundation
import Kafka
import Postgres
import ServiceKit
import Testing
import TestSupport

/// Records without a CloudEvents id are known as done by their partition's position (`consumed_positions`).
@Suite("Consumed positions")
struct ConsumedPositionsTests {
    func loop(_ schema: String, topic: String, group: String, postgres: PostgresClient) throws -> ConsumeLoop {
        var configuration = ConsumeLoop.Configuration(service: "test", schema: schema, topics: [topic],
                                                      consumer: KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient(), groupID: group))
        configuration.deadLetterTopic = try TestEnvironment.makeTopic("pos-dlq", partitions: 1)
        return ConsumeLoop(configuration: configuration, postgres: postgres, handler: RecordingHandler(schema: schema), relay: nil, health: nil, logger: TestEnvironment.logger())
    }

    /// `consumed_positions` as `topic/partition@next_offset`, in order.
    static func positions(_ schema: String) -> PostgresQuery {
        "SELECT format('%s/%s@%s', topic, partition, next_offset) FROM \(identifier: schema).consumed_positions ORDER BY topic, partition"
    }

    /// A new group reads the whole partition again (as after a reset of the group's offsets, or a crash before the
    /// offsets were committed): what the schema consumed is skipped, the rest processed once.
    @Test func aGroupReReadingThePartitionProcessesOnlyWhatCameAfter() async throws {
        let schema = TestEnvironment.uniqueName("pos")
        let topic = try TestEnvironment.makeTopic("pos", partitions: 1)
        let postgres = TestEnvironment.postgres()
        try await migrateSeen(schema, postgres)
        let seenQuery: PostgresQuery = "SELECT value FROM \(identifier: schema).seen ORDER BY value"
        try await sendPlain(["a", "b", "c"], to: topic)
        let first = Task { try await loop(schema, topic: topic, group: TestEnvironment.uniqueName("g1"), postgres: postgres).run() }
        try await waitUntil(timeout: .seconds(30), "the first group never processed its records") {
            try await postgres.query(seenQuery).count == 3
        }
        first.cancel()
        _ = try? await first.value
        try await sendPlain(["d"], to: topic)
        let second = Task { try await loop(schema, topic: topic, group: TestEnvironment.uniqueName("g2"), postgres: postgres).run() }
        try await waitUntil(timeout: .seconds(30), "the second group never processed the new record") {
            let values = try await postgres.query(seenQuery).map { row -> String in try row.decode(String.self) }
            return values.contains("d")
        }
        second.cancel()
        _ = try? await second.value
        let seen = try await postgres.query(seenQuery).map { row -> String in try row.decode(String.self) }
        let position = try await postgres.query("SELECT topic, partition, next_offset FROM \(identifier: schema).consumed_positions")
            .map { try $0.decode(String.self, Int.self, Int64.self) }
        let ids = try await postgres.query("SELECT count(*) FROM \(identifier: schema).processed_messages").first!.decode(Int.self)
        await postgres.shutdown()
        #expect(seen == ["a", "b", "c", "d"], "each once")
        #expect(position.count == 1 && position.first?.0 == topic && position.first?.1 == 0 && position.first?.2 == 4)
        #expect(ids == 0, "records without a CloudEvents id leave no row per record")
    }

    /// Two transactions advancing the same partition from the same offset (two owners during a rebalance): the second
    /// waits for the first and, once it commits, fails as a duplicate; a batch that starts where the first ended passes.
    @Test func aConcurrentBatchOfTheSamePartitionFailsAsADuplicateOnceTheFirstCommits() async throws {
        let schema = TestEnvironment.uniqueName("posrace")
        let postgres = TestEnvironment.postgres()
        try await migrateSeen(schema, postgres)
        await postgres.shutdown()
        /// Partition t/0 from `first` to `next`, u/3 from `first` / 2 to `next` / 2.
        @Sendable func advance(_ first: Int64, _ next: Int64) -> PostgresQuery {
            "SELECT \(identifier: schema).advance_consumed_positions(ARRAY['t', 'u'], ARRAY[0, 3], ARRAY[\(first), \(first / 2)]::int8[], ARRAY[\(next), \(next / 2)]::int8[])"
        }
        let a = HeldConnection(), b = HeldConnection(), observer = HeldConnection()
        try await a.begin()
        try await a.run { _ = try $0.query(advance(0, 10)) }
        try await b.begin()
        let blocked = Task { try await b.run { _ = try $0.query(advance(0, 10)) } }
        try await a.waitUntilAnotherWaits()
        try await a.commit()
        let failure = await #expect(throws: PostgresError.self) { try await blocked.value }
        #expect(failure?.isUniqueViolation == true)
        #expect(failure?.constraint == "consumed_positions_behind")
        try await b.run { try $0.executeScript("ROLLBACK") }
        try await b.run { _ = try $0.query(advance(10, 12)) }
        let positions = try await observer.run { connection in try connection.query(Self.positions(schema)).map { try $0.decode(String.self) } }
        #expect(positions == ["t/0@12", "u/3@6"])
        for held in [b, observer] { await held.close() }
    }

    /// Coordinate ids recorded before the positions existed become the starting positions, and leave the table.
    @Test func coordinateIDsOfEarlierVersionsBecomeThePositions() async throws {
        let schema = TestEnvironment.uniqueName("posmig")
        let postgres = TestEnvironment.postgres()
        let v1 = [RuntimeTables.migration]
        try await PostgresMigrator(schema: schema, migrations: v1).migrate(postgres, logger: TestEnvironment.logger())
        try await postgres.query("""
            INSERT INTO \(identifier: schema).processed_messages (message_id, topic) VALUES
              ('at:p.campaign-leads.v1/0/7', 'p.campaign-leads.v1'), ('at:p.campaign-leads.v1/0/41', 'p.campaign-leads.v1'),
              ('at:p.campaign-leads.v1/2/3', 'p.campaign-leads.v1'), ('at:other/11/0', 'other'), ('ce:0193-x', 'p.campaign-leads.v1')
            """)
        try await migrateSeen(schema, postgres)
        let positions = try await postgres.query(Self.positions(schema)).map { try $0.decode(String.self) }
        let ids = try await postgres.query("SELECT message_id FROM \(identifier: schema).processed_messages").map { try $0.decode(String.self) }
        await postgres.shutdown()
        #expect(positions == ["other/11@1", "p.campaign-leads.v1/0@42", "p.campaign-leads.v1/2@4"])
        #expect(ids == ["ce:0193-x"])
    }
}
