import ArgumentParser
import Foundation
import Kafka
import Postgres
import ServiceKit
import TestSupport

/// The outbox as a queue under a sustained load: transactions of 1,000 event-sized rows (a consume loop's batch)
/// written while the relay publishes and deletes them, the writer kept at most `--ahead` rows ahead of what is
/// published, as a service in its steady state is. Each round runs twice, interleaved: with the relay vacuuming the
/// outbox every `--vacuum-every` deleted rows, and with autovacuum only (`FUNNEL_OUTBOX_VACUUM_EVERY=0`).
///
/// The intake pipeline bench does not show this: its 100k leads go into a new schema whose outbox has not yet met
/// autovacuum, so both ways extend the file for every row.
struct OutboxChurnBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "outbox-churn")

    /// About half a minute of a busy service: past shared_buffers (256 MB) without the vacuum.
    @Option var rows = 600_000
    @Option var rounds = 3
    @Option(help: "rows per writing transaction") var batch = 1_000
    @Option(help: "rows the writer may be ahead of the relay") var ahead = 5_000
    @Option(help: "the relay's vacuumEvery in the vacuuming runs") var vacuumEvery = 10_000

    func run() async throws {
        var with: [(Double, Int)] = []
        var without: [(Double, Int)] = []
        for round in 1...rounds {
            with.append(try await once(vacuumEvery: vacuumEvery))
            without.append(try await once(vacuumEvery: 0))
            print("round \(round): \(format(with.last!.0)) rows/s vacuumed by the relay (outbox \(with.last!.1) kB), "
                + "\(format(without.last!.0)) rows/s autovacuum only (outbox \(without.last!.1) kB)")
        }
        func summary(_ runs: [(Double, Int)]) -> String {
            let rates = runs.map(\.0)
            return "\(format(rates.sorted()[rates.count / 2])) rows/s (rounds \(rates.map(format).joined(separator: " / "))), outbox \(runs.map { "\($0.1) kB" }.joined(separator: " / "))"
        }
        report("outbox churn (\(rows) rows of about 600 B in transactions of \(batch), writer at most \(ahead) rows ahead of the relay, fsync on, median of \(rounds)): "
            + "relay vacuums every \(vacuumEvery) rows \(summary(with)); autovacuum only \(summary(without))")
    }

    /// Rows per second from the first insert until the last row is published and deleted, and the outbox's size then.
    func once(vacuumEvery: Int) async throws -> (Double, Int) {
        let schema = TestEnvironment.uniqueName("bench_churn")
        let partitions = 4
        let topic = try TestEnvironment.makeTopic("churn", partitions: partitions)
        let postgres = TestEnvironment.postgres(maxConnections: 2)
        try await PostgresMigrator(schema: schema, migrations: [RuntimeTables.migration]).migrate(postgres, logger: TestEnvironment.logger())
        let logger = TestEnvironment.logger()
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("churn")), logger: logger)
        let relay = OutboxRelay(connectionString: TestEnvironment.postgresURL, schema: schema, producer: producer, logger: logger, vacuumEvery: vacuumEvery)
        let relaying = Task { try await relay.run() }
        let watcher = try KafkaConsumer(configuration: KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient("churn"), groupID: TestEnvironment.uniqueName("churn")),
                                        topics: [topic], logger: logger)
        func published() async throws -> Int { try await watcher.recordCount(topic: topic, partitions: partitions) }

        let outbox = Outbox(schema: schema)
        // An event's size: a lead's protobuf payload (about 410 B) and its CloudEvents headers.
        let headers = [KafkaHeader(key: "ce_specversion", text: "1.0"), KafkaHeader(key: "ce_type", text: "funnel.leads.v1.LeadCaptured"),
                       KafkaHeader(key: "ce_source", text: "marketing-intake"), KafkaHeader(key: "ce_time", text: "2026-12-04T17:00:00.000Z"),
                       KafkaHeader(key: "content-type", text: "application/protobuf")]
        let payload = [UInt8]((0..<410).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let started = ContinuousClock.now
        var written = 0
        while written < rows {
            while try await written - published() > ahead { try await Task.sleep(for: .milliseconds(2)) }
            let records = (written..<min(written + batch, rows)).map { i in
                OutboxRecord(topic: topic, key: Array("k\(i)".utf8), headers: headers + [KafkaHeader(key: "ce_id", text: "churn-\(i)")], payload: payload)
            }
            try await postgres.withTransaction { tx in _ = try tx.pipeline([outbox.insert(records)]) }
            relay.signal()
            written += records.count
        }
        let deadline = ContinuousClock.now + .seconds(300)
        var drained = false
        while !drained, ContinuousClock.now < deadline {
            if try await published() >= rows {
                drained = try await postgres.query("SELECT count(*) FROM \(identifier: schema).outbox").first!.decode(Int.self) == 0
            }
            if !drained { try await Task.sleep(for: .milliseconds(5)) }
        }
        let elapsed = ContinuousClock.now - started
        let size = try await postgres.query("SELECT (pg_total_relation_size(\(schema + ".outbox")::regclass) / 1024)::int").first!.decode(Int.self)
        relaying.cancel()
        _ = try? await relaying.value
        await watcher.close()
        await producer.shutdown()
        try await postgres.query("DROP SCHEMA \(identifier: schema) CASCADE")
        await postgres.shutdown()
        guard drained else { throw ChildProcessError(description: "the relay had not published and deleted \(rows) rows after 300 s") }
        return (Double(rows) / elapsed.seconds, size)
    }
}
