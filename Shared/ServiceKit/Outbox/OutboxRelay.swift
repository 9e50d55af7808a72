import Foundation
import Kafka
import Logging
import Metrics
import Postgres
import ServiceLifecycle
import ThreadExecutor

/// Publishes a schema's outbox with the idempotent producer and deletes rows on their delivery reports (the record
/// is in Kafka then; a delete writes far less than marking the row, which copied the whole row with its payload
/// into a new version and two index entries). The delete travels in the statement that fetches the next rows.
///
/// One replica relays at a time (a session advisory lock on the relay's own connection), so records leave in
/// outbox order and a key's events stay in order; the others stand by and take over when its connection ends.
/// Delivery is at least once: a crash between a delivery report and the mark re-sends those records with the
/// same `ce_id`, which consumers dedupe. After every `vacuumEvery` deleted rows it has the outbox vacuumed
/// (``OutboxVacuum``), so a queue that turns over its whole content every second does not grow until autovacuum.
public final class OutboxRelay: Service, Sendable {
    private let connectionString: String
    private let schema: String
    private let producer: KafkaProducer
    private let logger: Logger
    private let wake = WakeSignal()
    private let batchSize: Int
    /// How long message ids are kept in the idempotent-consumer table: the redelivery window we dedupe.
    private let dedupeRetention: Duration
    /// Delivered rows deleted between two vacuums of the outbox (``OutboxVacuum``); zero leaves it to autovacuum.
    private let vacuumEvery: Int
    private let published: Counter
    private let failures: Counter
    private let backlog: Gauge
    public let health: HealthState?

    public init(connectionString: String, schema: String, producer: KafkaProducer, logger: Logger, health: HealthState? = nil,
                batchSize: Int = 1_000, dedupeRetention: Duration = .seconds(7 * 86_400), vacuumEvery: Int = 10_000) {
        self.connectionString = connectionString
        self.schema = schema
        self.producer = producer
        self.logger = logger
        self.health = health
        self.batchSize = batchSize
        self.dedupeRetention = dedupeRetention
        self.vacuumEvery = vacuumEvery
        self.published = Counter(label: "funnel_outbox_published_total", dimensions: [("schema", schema)])
        self.failures = Counter(label: "funnel_outbox_delivery_failures_total", dimensions: [("schema", schema)])
        self.backlog = Gauge(label: "funnel_outbox_backlog", dimensions: [("schema", schema)])
    }

    /// Asks the relay to look at the outbox now (after a commit that wrote to it).
    public func signal() { wake.signal() }

    public func run() async throws {
        let thread = DedicatedThread(name: "outbox-relay-\(schema)")
        let session = RelaySession(connectionString: connectionString, schema: schema, logger: logger)
        let vacuum = vacuumEvery > 0 ? OutboxVacuum(connectionString: connectionString, schema: schema, logger: logger, every: vacuumEvery) : nil
        defer {
            thread.submit { session.close() }
            Task {
                await thread.shutdownGracefully()
                await vacuum?.shutdown()
            }
        }
        var lastHousekeeping = ContinuousClock.now - .seconds(3_600)
        // Delivered rows not yet deleted: they leave the outbox in the next fetch's statement, so a cycle costs one
        // round trip instead of two (a crash before that re-sends them, as a crash before any delete would).
        var delivered: [Int64] = []
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let housekeep = ContinuousClock.now - lastHousekeeping > .seconds(30)
                let (size, sent, dedupe) = (batchSize, delivered, dedupeRetention.milliseconds)
                // Leadership, housekeeping when due and the fetch share one hop to the relay's thread: at a few hundred
                // leads a second every cycle carries a handful of rows, and each hop costs a wake-up on either side.
                let cycle = try await thread.run { () throws -> RelaySession.Cycle in
                    guard try session.ensureLeader() else { return .standby }
                    let unsent = housekeep ? try session.housekeeping(dedupeRetentionMS: dedupe) : nil
                    return .fetched(try session.fetchUnsent(limit: size, afterDeleting: sent), unsent: unsent)
                }
                guard case .fetched(let rows, let unsent) = cycle else {
                    await wake.wait(timeout: .seconds(1))
                    continue
                }
                vacuum?.deleted(sent.count)
                if let unsent {
                    backlog.record(unsent)
                    lastHousekeeping = .now
                }
                delivered = []
                if rows.isEmpty {
                    backlog.record(0)
                    await wake.wait(timeout: .milliseconds(250))
                    continue
                }
                let results = try await producer.sendBatch(rows.map(\.message))
                var firstFailure: KafkaError?
                for (row, result) in zip(rows, results) {
                    switch result {
                    case .success: delivered.append(row.id)
                    case .failure(let error): if firstFailure == nil { firstFailure = error }
                    }
                }
                published.increment(by: delivered.count)
                if let firstFailure {
                    failures.increment(by: rows.count - delivered.count)
                    logger.error("outbox records not delivered; retrying", metadata: ["count": "\(rows.count - delivered.count)", "error": "\(firstFailure)"])
                    try? await Task.sleep(for: .milliseconds(500))
                } else if rows.count < size {
                    // The fetch drained the outbox: what was committed since has signalled, so wait for that (at once if
                    // it has) rather than spend a round trip on a fetch that finds nothing.
                    await wake.wait(timeout: .milliseconds(250))
                }
            } catch {
                logger.error("outbox relay error; retrying", metadata: ["error": "\(error)"])
                try await thread.run { session.reset() }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        if !delivered.isEmpty {
            let ids = delivered
            try? await thread.run { try session.markSent(ids) }
        }
        logger.info("outbox relay stopped", metadata: ["schema": "\(schema)"])
    }
}

/// The relay's connection and leadership, used only on the relay's thread.
final class RelaySession: @unchecked Sendable {
    struct Row: Sendable {
        let id: Int64
        let message: KafkaOutgoingMessage
    }

    /// What one hop to the relay's thread found: another replica leads, or the rows fetched (and, when housekeeping
    /// ran, the unsent count it took).
    enum Cycle: Sendable {
        case standby
        case fetched([Row], unsent: Int?)
    }

    let connectionString: String
    let schema: String
    let logger: Logger
    private var connection: PostgresConnection?
    private var leader = false

    init(connectionString: String, schema: String, logger: Logger) {
        self.connectionString = connectionString
        self.schema = schema
        self.logger = logger
    }

    func ensureLeader() throws -> Bool {
        if connection?.isHealthy != true {
            connection = try PostgresConnection(connectionString: connectionString, logger: logger)
            // Marking rows sent need not wait for the WAL flush: a mark lost in a crash only republishes records
            // with the same ce_id, which consumers drop. The relay's cycle (and so publish latency) gets shorter.
            // The fetch wants the oldest unsent rows, which the partial index of unsent ids gives in order. Planned
            // from statistics taken while the outbox was small (a new schema, or between bursts), PostgreSQL
            // instead read every unsent row through a bitmap and sorted them, on each fetch: 10–13 ms per 1,000
            // rows with a backlog, a tenth of the machine at 14k leads/s. This connection only runs the relay's
            // statements, which all probe indexes by id or age, so it never plans bitmap or sequential scans.
            try connection!.executeScript("SET synchronous_commit = off; SET enable_bitmapscan = off; SET enable_seqscan = off")
            leader = false
        }
        if leader { return true }
        let lockKey = "funnel.outbox.\(schema)"
        leader = try connection!.query("SELECT pg_try_advisory_lock(hashtextextended(\(lockKey), 0))").first!.decode(Bool.self)
        if leader { logger.info("outbox relay is the leader", metadata: ["schema": "\(schema)"]) }
        return leader
    }

    /// The oldest unsent rows, after deleting the delivered rows `sent` (in the same statement: its SELECT sees the
    /// table as it was before the DELETE, hence the exclusion, a hashed lookup in the deleted ids).
    func fetchUnsent(limit: Int, afterDeleting sent: [Int64]) throws -> [Row] {
        // Binary results: the payloads arrive as bytes, not as hex text the server writes and we parse back.
        let rows = try connection!.queryBinary("""
            WITH sent AS (DELETE FROM \(identifier: schema).outbox WHERE id = ANY(\(PostgresArray(sent))) RETURNING id)
            SELECT id, topic, key, headers, payload FROM \(identifier: schema).outbox
            WHERE sent_at IS NULL AND id NOT IN (SELECT id FROM sent) ORDER BY id LIMIT \(limit)
            """)
        return try rows.map { row in
            let message = KafkaOutgoingMessage(topic: try row.text(at: 1), key: try row.bytes(at: 2), value: try row.bytes(at: 4) ?? [],
                                               headers: HeaderCodec.decode(try row.bytes(at: 3) ?? []))
            return Row(id: try row.int64(at: 0), message: message)
        }
    }

    /// The rows were delivered: they leave the outbox.
    func markSent(_ ids: [Int64]) throws {
        try connection!.query("DELETE FROM \(identifier: schema).outbox WHERE id = ANY(\(PostgresArray(ids)))")
    }

    /// Deletes old message ids and rows marked sent by earlier versions; returns the unsent count.
    func housekeeping(dedupeRetentionMS: Int64) throws -> Int {
        try connection!.query("DELETE FROM \(identifier: schema).outbox WHERE sent_at IS NOT NULL")
        try connection!.query("DELETE FROM \(identifier: schema).processed_messages WHERE processed_at < now() - make_interval(secs => \(Double(dedupeRetentionMS) / 1000))")
        return try connection!.query("SELECT count(*) FROM \(identifier: schema).outbox WHERE sent_at IS NULL").first!.decode(Int.self)
    }

    func reset() {
        connection?.close()
        connection = nil
        leader = false
    }

    func close() { reset() }
}
