import Contracts
import Foundation
import Kafka
import Logging
import Metrics
import Postgres
import ServiceLifecycle

/// The consume loop: batch → one transaction (idempotent-consumer ids + the handler's writes + outbox rows,
/// dead letters included) → commit → store offsets. Failing batches are retried with backoff and jitter; if a
/// batch still fails, its records are retried one by one and those that still fail go to `dlq.<service>.v1`
/// with the reason and their origin, so a partition never stalls and nothing is dropped.
public final class ConsumeLoop: Service, Sendable {
    public struct Configuration: Sendable {
        public var service: String
        public var schema: String
        public var topics: [String]
        public var consumer: KafkaConsumerConfiguration
        public var batchSize: Int = 1_000
        public var maxRetries: Int = 5
        public var backoffBase: Duration = .milliseconds(100)
        public var backoffCap: Duration = .seconds(5)
        /// Where dead letters go; `dlq.<service>.v1` by default.
        public var deadLetterTopic: String
        /// The readiness check's name (one per loop when a process runs several).
        public var healthCheck = "consumer"

        public init(service: String, schema: String, topics: [String], consumer: KafkaConsumerConfiguration) {
            self.service = service
            self.schema = schema
            self.topics = topics
            self.consumer = consumer
            self.deadLetterTopic = Topics.deadLetter(service: service)
        }
    }

    private let configuration: Configuration
    private let postgres: PostgresClient
    private let handler: any BatchHandler
    private let relay: OutboxRelay?
    private let health: HealthState?
    private let logger: Logger
    private let outbox: Outbox
    private let processedCounter: Counter
    private let duplicateCounter: Counter
    private let deadLetterCounter: Counter
    private let retryCounter: Counter
    private let batchTimer: Timer
    private let recordTimer: Timer
    private let lagGauge: Gauge

    public init(configuration: Configuration, postgres: PostgresClient, handler: any BatchHandler, relay: OutboxRelay?,
                health: HealthState?, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.handler = handler
        self.relay = relay
        self.health = health
        self.logger = logger
        self.outbox = Outbox(schema: configuration.schema)
        let dims = [("service", configuration.service)]
        processedCounter = Counter(label: "funnel_consumer_records_total", dimensions: dims + [("outcome", "processed")])
        duplicateCounter = Counter(label: "funnel_consumer_records_total", dimensions: dims + [("outcome", "duplicate")])
        deadLetterCounter = Counter(label: "funnel_consumer_records_total", dimensions: dims + [("outcome", "dead_lettered")])
        retryCounter = Counter(label: "funnel_consumer_retries_total", dimensions: dims)
        batchTimer = Timer(label: "funnel_consumer_batch_seconds", dimensions: dims)
        recordTimer = Timer(label: ServiceMetrics.recordLatency, dimensions: dims)
        lagGauge = Gauge(label: "funnel_consumer_lag", dimensions: dims)
        health?.register(configuration.healthCheck)
    }

    public func run() async throws {
        try await run(leavingWith: nil)
    }

    /// Runs until graceful shutdown or cancellation; then commits what it processed and, once every loop sharing
    /// `barrier` has committed too, leaves the group.
    func run(leavingWith barrier: LeaveBarrier?) async throws {
        let consumer = try KafkaConsumer(configuration: configuration.consumer, topics: configuration.topics, logger: logger)
        defer { health?.set(configuration.healthCheck, false) }
        var lastLagReport = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let batch: [KafkaConsumedMessage]
            do {
                batch = try await consumer.poll(maxMessages: configuration.batchSize, timeout: .milliseconds(200))
            } catch {
                logger.error("poll failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            health?.set(configuration.healthCheck, consumer.hasJoinedGroup)
            if ContinuousClock.now - lastLagReport > .seconds(5) {
                lagGauge.record(consumer.lag().values.reduce(0, +))
                lastLagReport = .now
            }
            if batch.isEmpty { continue }
            let started = ContinuousClock.now
            await processWithRetries(batch)
            // Each record's time from being handed to the service to its effects being committed.
            let committed = (ContinuousClock.now - started).nanoseconds
            for _ in batch { recordTimer.recordNanoseconds(committed) }
            do { try consumer.storeOffsets(for: batch) } catch {
                logger.warning("could not store offsets; the batch may be redelivered (and deduplicated)", metadata: ["error": "\(error)"])
            }
            batchTimer.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            relay?.signal()
        }
        // Commit while the group is stable: once a member leaves, the group rebalances and refuses commits, and
        // whoever gets these partitions next would consume what this loop had processed again (a graceful stop
        // mid-stream handed 2,000-3,600 such records to the next process; its idempotent-consumer table dropped them).
        do { try await consumer.commit() } catch {
            logger.warning("could not commit offsets before leaving the group; the next owner may consume them again (and deduplicate)",
                           metadata: ["error": "\(error)"])
        }
        await barrier?.arriveAndWait(timeout: .seconds(5))
        await consumer.close()
    }

    /// Processes a batch; never throws: whatever cannot be processed is dead-lettered.
    func processWithRetries(_ batch: [KafkaConsumedMessage]) async {
        for attempt in 0...configuration.maxRetries {
            do {
                try await process(batch)
                return
            } catch {
                retryCounter.increment()
                logger.warning("batch failed; retrying", metadata: ["attempt": "\(attempt + 1)", "records": "\(batch.count)", "error": "\(error)"])
                if attempt < configuration.maxRetries { await backoff(attempt) }
            }
        }
        // Isolate the poison: each record alone, with its own retries, then the DLQ.
        for record in batch {
            var lastError: (any Error)?
            for attempt in 0...configuration.maxRetries {
                do {
                    try await process([record])
                    lastError = nil
                    break
                } catch {
                    lastError = error
                    if attempt < configuration.maxRetries { await backoff(attempt) }
                }
            }
            if let lastError { await deadLetterUntilStored(record, code: "processing_failed", reason: "\(lastError)") }
        }
    }

    private func deadLetterUntilStored(_ record: KafkaConsumedMessage, code: String, reason: String) async {
        var attempt = 0
        while true {
            do {
                let insert = outbox.insert(deadLetter(record, code: code, reason: reason))
                let schema = configuration.schema
                let done: [PostgresQuery]
                if let id = Self.cloudEventID(record) {
                    done = ["INSERT INTO \(identifier: schema).processed_messages (message_id, topic) VALUES (\(id), \(record.topic)) ON CONFLICT DO NOTHING"]
                } else {
                    done = PartitionSpan([record]).lockAndAdvance(schema: schema)
                }
                let statements = done + [insert]
                try await postgres.withTransaction { tx in _ = try tx.pipeline(statements) }
                deadLetterCounter.increment()
                logger.error("record dead-lettered", metadata: ["topic": "\(record.topic)", "partition": "\(record.partition)", "offset": "\(record.offset)", "code": "\(code)"])
                return
            } catch {
                // The database itself is down: keep the record (never skip it) and wait.
                logger.error("cannot write dead letter; waiting for the database", metadata: ["error": "\(error)"])
                await backoff(min(attempt, 6))
                attempt += 1
            }
        }
    }

    /// One transaction for the batch. Fast path: the records' ids are inserted into the idempotent-consumer table
    /// in the same round trip as the handler's first statement (redeliveries are rare); if one was processed
    /// before, that insert's unique violation rolls the attempt back and the batch is run again on the careful
    /// path, which first learns which ids are new. Any other unique violation is a handler's insert that met a
    /// concurrent writer's row (handlers may insert without ON CONFLICT where that race is rare): the batch runs
    /// again at once too, in a new transaction that sees the other writer's row.
    private func process(_ batch: [KafkaConsumedMessage]) async throws {
        do {
            try await process(batch, assumeFresh: true)
        } catch let error as PostgresError where error.isUniqueViolation {
            if error.constraint != "processed_messages_pkey" && error.constraint != "consumed_positions_behind" {
                logger.info("batch met a concurrent writer's row; running it again", metadata: ["constraint": "\(error.constraint ?? "")", "records": "\(batch.count)"])
            }
            try await process(batch, assumeFresh: false)
        }
    }

    private func process(_ batch: [KafkaConsumedMessage], assumeFresh: Bool) async throws {
        let schema = configuration.schema
        let handler = self.handler
        let outbox = self.outbox
        let service = configuration.service
        let deadLetterTopic = configuration.deadLetterTopic
        let (processed, duplicates, rejected) = try await postgres.withTransaction { tx -> (Int, Int, Int) in
            // A record with a CloudEvents id is known as done by that id (which also catches a producer's redelivery
            // at a new offset); one without, by its partition's position. The position costs a function call per
            // batch (about 0.1 ms), so batches of CloudEvents alone, the services' own topics, skip it.
            let eventIDs = batch.map(Self.cloudEventID)
            let span = PartitionSpan(zip(batch, eventIDs).filter { $0.1 == nil }.map(\.0))
            var firstByID: [String: Int] = [:]
            var ids: [String] = []
            var topics: [String] = []
            for (index, record) in batch.enumerated() {
                guard let id = eventIDs[index] else { continue }
                if firstByID[id] == nil {
                    firstByID[id] = index
                    ids.append(id)
                    topics.append(record.topic)
                }
            }
            var fresh = Set(ids)
            var consumedBefore: [KafkaTopicPartition: Int64] = [:]
            if assumeFresh {
                if !span.isEmpty { tx.sendWithNext(span.advance(schema: schema)) }
                if !ids.isEmpty {
                    tx.sendWithNext("""
                        INSERT INTO \(identifier: schema).processed_messages (message_id, topic)
                        SELECT * FROM unnest(\(PostgresArray(ids))::text[], \(PostgresArray(topics))::text[])
                        """)
                }
            } else if !span.isEmpty {
                consumedBefore = try PartitionSpan.positionsBefore(tx.pipeline(span.lockAndAdvance(schema: schema)))
            }
            if !assumeFresh && !ids.isEmpty {
                let inserted = try tx.query("""
                    INSERT INTO \(identifier: schema).processed_messages (message_id, topic)
                    SELECT * FROM unnest(\(PostgresArray(ids))::text[], \(PostgresArray(topics))::text[])
                    ON CONFLICT DO NOTHING RETURNING message_id
                    """)
                fresh = Set(try inserted.map { try $0.decode(column: "message_id", as: String.self) })
            }
            let records = batch.enumerated().filter { index, record in
                guard let id = eventIDs[index] else { return record.offset >= consumedBefore[record.topicPartition] ?? .min }
                return fresh.contains(id) && firstByID[id] == index
            }.map(\.element)
            if records.isEmpty { return (0, batch.count, 0) }
            let outcomes = try handler.handle(records, in: tx)
            precondition(outcomes.count == records.count, "a handler must return one outcome per record")
            var queued: [OutboxRecord] = []
            var rejected = 0
            for (record, outcome) in zip(records, outcomes) {
                switch outcome {
                case .processed(let events):
                    queued += events.map(OutboxRecord.init)
                case .rejected(let code, let reason):
                    rejected += 1
                    queued.append(Self.deadLetterRecord(record, service: service, topic: deadLetterTopic, code: code, reason: reason))
                }
            }
            // The outbox rows travel with the COMMIT: one round trip fewer per batch.
            if !queued.isEmpty { tx.sendWithCommit(outbox.insert(queued)) }
            return (records.count - rejected, batch.count - records.count, rejected)
        }
        processedCounter.increment(by: processed)
        duplicateCounter.increment(by: duplicates)
        deadLetterCounter.increment(by: rejected)
    }

    private func deadLetter(_ record: KafkaConsumedMessage, code: String, reason: String) -> OutboxRecord {
        Self.deadLetterRecord(record, service: configuration.service, topic: configuration.deadLetterTopic, code: code, reason: reason)
    }

    /// The dead letter of `record`: its key, payload and headers, plus where it came from and why it failed.
    static func deadLetterRecord(_ record: KafkaConsumedMessage, service: String, topic: String, code: String, reason: String) -> OutboxRecord {
        var headers = record.headers.filter { !$0.key.hasPrefix("dlq_") }
        headers += [
            KafkaHeader(key: "dlq_service", text: service),
            KafkaHeader(key: "dlq_original_topic", text: record.topic),
            KafkaHeader(key: "dlq_original_partition", text: String(record.partition)),
            KafkaHeader(key: "dlq_original_offset", text: String(record.offset)),
            KafkaHeader(key: "dlq_error_code", text: code),
            KafkaHeader(key: "dlq_error_reason", text: String(reason.prefix(1_000))),
            KafkaHeader(key: "dlq_failed_at", text: RFC3339.format(Date())),
        ]
        return OutboxRecord(topic: topic, key: record.key, headers: headers, payload: record.value)
    }

    /// The record's dedupe key in `processed_messages`: its `ce_id`. Records without one (plain JSON pushes) are
    /// known as done by their partition's position alone.
    static func cloudEventID(_ record: KafkaConsumedMessage) -> String? {
        guard let id = record.header(CloudEventHeader.id), !id.isEmpty, id.utf8.count <= 200 else { return nil }
        return "ce:" + id
    }

    private func backoff(_ attempt: Int) async {
        let base = configuration.backoffBase.milliseconds << min(attempt, 16)
        let capped = min(base, configuration.backoffCap.milliseconds)
        let jittered = Double(capped) * Double.random(in: 0.5...1.0)
        try? await Task.sleep(for: .milliseconds(Int64(jittered)))
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
