import Contracts
import Foundation
import Kafka
import Postgres
import ServiceKit
import Testing
import TestSupport

/// A handler that stores each record's text and fails on demand: `poison` always, `flaky` on its first try.
struct RecordingHandler: BatchHandler {
    let schema: String
    let flakyAttempts = LockedBox(0)

    struct Failure: Error {}

    func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome] {
        var outcomes: [HandlerOutcome] = []
        for record in records {
            let text = String(decoding: record.value, as: UTF8.self)
            if text == "poison" { throw Failure() }
            if text == "flaky", flakyAttempts.withLock({ $0 += 1; return $0 }) == 1 { throw Failure() }
            if text == "invalid" {
                outcomes.append(.rejected(code: "invalid_thing", reason: "the thing is invalid"))
                continue
            }
            try connection.query("INSERT INTO \(identifier: schema).seen (value) VALUES (\(text))")
            outcomes.append(.processed([]))
        }
        return outcomes
    }
}

/// A schema with the runtime tables and the `seen` table the test handlers write to.
func migrateSeen(_ schema: String, _ postgres: PostgresClient, unique: Bool = false) async throws {
    try await PostgresMigrator(schema: schema, migrations: [
        RuntimeTables.migration,
        PostgresMigration(version: 2, name: "seen", sql: unique ? "CREATE TABLE seen (value text PRIMARY KEY);" : "CREATE TABLE seen (value text NOT NULL);"),
        RuntimeTables.consumedPositions(version: 3),
    ]).migrate(postgres, logger: TestEnvironment.logger())
}

/// Plain records (no key, no headers: no CloudEvents id), as marketing's JSON pushes arrive.
func sendPlain(_ values: [String], to topic: String) async throws {
    let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient()), logger: TestEnvironment.logger())
    for result in try await producer.sendBatch(values.map { KafkaOutgoingMessage(topic: topic, key: nil, value: Array($0.utf8), headers: []) }) {
        _ = try result.get()
    }
    await producer.shutdown()
}

@Suite("Consume loop")
struct ConsumeLoopTests {
    @Test func poisonIsDeadLetteredAfterRetriesAndThePartitionKeepsFlowing() async throws {
        let schema = TestEnvironment.uniqueName("loop")
        let input = try TestEnvironment.makeTopic("in", partitions: 1)
        let dlq = try TestEnvironment.makeTopic("dlq", partitions: 1)
        let postgres = TestEnvironment.postgres()
        try await migrateSeen(schema, postgres)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient()), logger: TestEnvironment.logger())
        let relay = OutboxRelay(connectionString: TestEnvironment.postgresURL, schema: schema, producer: producer, logger: TestEnvironment.logger())
        var configuration = ConsumeLoop.Configuration(service: "test", schema: schema, topics: [input],
                                                      consumer: KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient(), groupID: TestEnvironment.uniqueName("g")))
        configuration.maxRetries = 2
        configuration.backoffBase = .milliseconds(10)
        configuration.deadLetterTopic = dlq
        let loop = ConsumeLoop(configuration: configuration, postgres: postgres, handler: RecordingHandler(schema: schema), relay: relay, health: nil, logger: TestEnvironment.logger())
        let tasks = [Task { try await relay.run() }, Task { try await loop.run() }]

        let values = ["a", "poison", "b", "flaky", "invalid", "c"]
        _ = try await producer.sendBatch(values.enumerated().map { i, v in
            KafkaOutgoingMessage(topic: input, key: nil, value: Array(v.utf8), headers: [KafkaHeader(key: "ce_id", text: "id-\(i)")])
        })
        // A redelivery of an already processed record is skipped.
        _ = try await producer.send(KafkaOutgoingMessage(topic: input, key: nil, value: Array("a".utf8), headers: [KafkaHeader(key: "ce_id", text: "id-0")]))

        let reader = try TopicReader(topic: dlq)
        let dead = try await reader.read(atLeast: 2, settle: .seconds(1))
        await reader.close()
        let deadline = ContinuousClock.now + .seconds(20)
        var seen: [String] = []
        while seen.count < 4, ContinuousClock.now < deadline {
            seen = try await postgres.query("SELECT value FROM \(identifier: schema).seen").map { try $0.decode(String.self) }
            try await Task.sleep(for: .milliseconds(100))
        }
        for task in tasks { task.cancel() }
        for task in tasks { _ = try? await task.value }
        await producer.shutdown()
        await postgres.shutdown()

        #expect(seen.sorted() == ["a", "b", "c", "flaky"], "everything but the poison and the invalid record, each once")
        #expect(dead.count == 2)
        let byCode = Dictionary(uniqueKeysWithValues: dead.map { ($0.header("dlq_error_code") ?? "", $0) })
        #expect(String(decoding: byCode["processing_failed"]?.value ?? [], as: UTF8.self) == "poison")
        #expect(String(decoding: byCode["invalid_thing"]?.value ?? [], as: UTF8.self) == "invalid")
        #expect(byCode["processing_failed"]?.header("dlq_original_offset") == "1")
        #expect(byCode["processing_failed"]?.header("ce_id") == "id-1", "original headers are kept")
        #expect(byCode["invalid_thing"]?.header("dlq_error_reason") == "the thing is invalid")
    }
}

/// A handler whose first batch meets a row another connection committed after the handler read what is stored (a
/// plain INSERT's unique violation, at the COMMIT); later batches see that row and skip it. Records the size of every batch it is given.
struct RacingHandler: BatchHandler {
    let schema: String
    let calls = LockedBox<[Int]>([])

    func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome] {
        let first = calls.withLock { $0.append(records.count); return $0.count == 1 }
        let rows = try connection.query("SELECT value FROM \(identifier: schema).seen")
        let stored: Set<String> = Set(try rows.map { row -> String in try row.decode(String.self) })
        if first {
            // The concurrent writer: its own connection, committed before this transaction inserts the same key.
            let other = try PostgresConnection(connectionString: TestEnvironment.postgresURL, logger: TestEnvironment.logger())
            defer { other.close() }
            try other.query("INSERT INTO \(identifier: schema).seen (value) VALUES ('b')")
        }
        for text in records.map({ String(decoding: $0.value, as: UTF8.self) }) where !stored.contains(text) {
            connection.sendWithCommit("INSERT INTO \(identifier: schema).seen (value) VALUES (\(text))")
        }
        return records.map { _ in .processed([]) }
    }
}

extension ConsumeLoopTests {
    /// A unique violation from a handler's insert runs the whole batch again at once, not record by record through
    /// the retries (with no retries allowed, the batch would otherwise be split into single records).
    @Test func aHandlerMeetingAConcurrentWritersRowRunsTheBatchAgainAtOnce() async throws {
        let schema = TestEnvironment.uniqueName("race")
        let input = try TestEnvironment.makeTopic("race", partitions: 1)
        let postgres = TestEnvironment.postgres()
        try await migrateSeen(schema, postgres, unique: true)
        try await sendPlain(["a", "b", "c"], to: input)
        var configuration = ConsumeLoop.Configuration(service: "test", schema: schema, topics: [input],
                                                      consumer: KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient(), groupID: TestEnvironment.uniqueName("g")))
        configuration.maxRetries = 0
        configuration.deadLetterTopic = try TestEnvironment.makeTopic("race-dlq", partitions: 1)
        let handler = RacingHandler(schema: schema)
        let loop = ConsumeLoop(configuration: configuration, postgres: postgres, handler: handler, relay: nil, health: nil, logger: TestEnvironment.logger())
        let task = Task { try await loop.run() }
        var seen: [String] = []
        try await waitUntil(timeout: .seconds(30), "the batch was never processed") {
            seen = try await postgres.query("SELECT value FROM \(identifier: schema).seen ORDER BY value").map { try $0.decode(String.self) }
            return seen.count == 3
        }
        task.cancel()
        _ = try? await task.value
        let dead = try await postgres.query("SELECT count(*) FROM \(identifier: schema).outbox").first!.decode(Int.self)
        await postgres.shutdown()
        #expect(seen == ["a", "b", "c"])
        #expect(handler.calls.withLock { $0 } == [3, 3], "the batch again, whole")
        #expect(dead == 0, "nothing dead-lettered")
    }
}

@Suite("Outbox")
struct OutboxTests {
    /// A new schema with the runtime tables, a one-partition topic for the relay, and the client that migrated it.
    static func emptyOutbox(_ name: String) async throws -> (schema: String, topic: String, postgres: PostgresClient, outbox: Outbox) {
        let schema = TestEnvironment.uniqueName(name)
        let topic = try TestEnvironment.makeTopic("out", partitions: 1)
        let postgres = TestEnvironment.postgres()
        try await PostgresMigrator(schema: schema, migrations: [RuntimeTables.migration]).migrate(postgres, logger: TestEnvironment.logger())
        return (schema, topic, postgres, Outbox(schema: schema))
    }

    @Test func headersSurviveTheByteaColumnExactly() {
        let headers = [KafkaHeader(key: "ce_id", text: "x"), KafkaHeader(key: "bin", value: [0, 255, 10]), KafkaHeader(key: "null", value: nil), KafkaHeader(key: "", value: [])]
        #expect(HeaderCodec.decode(HeaderCodec.encode(headers)) == headers)
        #expect(HeaderCodec.decode([0, 9, 1]) == [], "truncated input yields nothing, not a crash")
    }

    @Test func onlyOneRelayPublishesAtATime() async throws {
        let (schema, topic, postgres, outbox) = try await Self.emptyOutbox("relay")
        let count = 3_000
        try await postgres.withTransaction { tx in
            try tx.pipeline((0..<count).map { i in outbox.insert(OutboxRecord(topic: topic, key: Array("k".utf8), headers: [KafkaHeader(key: "ce_id", text: "e\(i)")], payload: Array("\(i)".utf8))) })
        }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient()), logger: TestEnvironment.logger())
        let relays = (0..<3).map { _ in OutboxRelay(connectionString: TestEnvironment.postgresURL, schema: schema, producer: producer, logger: TestEnvironment.logger(), batchSize: 100) }
        let tasks = relays.map { relay in Task { try await relay.run() } }
        let reader = try TopicReader(topic: topic)
        let got = try await reader.read(atLeast: count, settle: .seconds(1))
        await reader.close()
        for task in tasks { task.cancel() }
        for task in tasks { _ = try? await task.value }
        await producer.shutdown()
        #expect(got.map { String(decoding: $0.value, as: UTF8.self) } == (0..<count).map(String.init), "in outbox order, once each")
        let unsent = try await postgres.query("SELECT count(*) FROM \(identifier: schema).outbox WHERE sent_at IS NULL").first!.decode(Int.self)
        #expect(unsent == 0)
        await postgres.shutdown()
    }

    /// Waves of rows, each relayed, deleted and (as it passes `vacuumEvery` deleted rows) vacuumed before the next:
    /// later waves reuse the space, where without the vacuum each wave adds its own pages (autovacuum looks at a
    /// table at most once a minute).
    @Test func theRelayVacuumsTheOutboxSoItsSpaceIsReused() async throws {
        let (schema, topic, postgres, outbox) = try await Self.emptyOutbox("vacuum")
        let wave = 1_000, waves = 5
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient()), logger: TestEnvironment.logger())
        let relay = OutboxRelay(connectionString: TestEnvironment.postgresURL, schema: schema, producer: producer, logger: TestEnvironment.logger(),
                                batchSize: wave, vacuumEvery: wave)
        let task = Task { try await relay.run() }
        let reader = try TopicReader(topic: topic)
        let payload = [UInt8](repeating: 7, count: 400)
        var pages: [Int] = []
        var got = 0
        for n in 1...waves {
            try await postgres.withTransaction { tx in
                try tx.pipeline([outbox.insert((0..<wave).map { i in
                    OutboxRecord(topic: topic, key: nil, headers: [KafkaHeader(key: "ce_id", text: "w\(n)-\(i)")], payload: payload)
                })])
            }
            pages.append(try await postgres.query("SELECT (pg_relation_size(\(schema + ".outbox")::regclass) / 8192)::int").first!.decode(Int.self))
            got += try await reader.read(atLeast: wave, settle: .milliseconds(100)).count
            // The wave is published; its rows leave in the relay's next fetch, then the vacuum follows (or autovacuum,
            // which the relay's vacuum skips rather than wait for).
            let deadline = ContinuousClock.now + .seconds(60)
            var vacuumed = 0
            while ContinuousClock.now < deadline {
                vacuumed = try await postgres.query("""
                    SELECT (vacuum_count + autovacuum_count)::int FROM pg_stat_user_tables WHERE schemaname = \(schema) AND relname = 'outbox'
                    """).first!.decode(Int.self)
                if vacuumed >= n { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(vacuumed >= n, "wave \(n) vacuumed")
        }
        await reader.close()
        task.cancel()
        _ = try? await task.value
        await producer.shutdown()
        await postgres.shutdown()
        #expect(got == wave * waves)
        #expect(pages[0] >= 20, "one wave fills pages: \(pages)")
        // Alone, each wave reuses the space of the one before (pages stay at the first wave's count). The suite's other
        // tests share the database, and a transaction of theirs open across a vacuum keeps it from removing the rows
        // deleted since that transaction began; so only some reuse is required. Without the vacuum the fifth wave
        // needs five waves' pages.
        #expect(pages.last! <= pages[0] * (waves - 1), "later waves reuse delivered rows' space: \(pages)")
    }
}
