import ArgumentParser
import Contracts
import Foundation
import Histogram
import Kafka
import Postgres
import ServiceKit
import SwiftProtobuf
import TestSupport
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// identity-merge (release build) on a graph already holding `--identifiers` identifiers (vacuumed and
/// analysed): first leads paced at `--rate` per second and the time from producing each to its `resolved`
/// event on `identity.customers.v1` (p50/p99/p99.9, after a warm-up); then the service restarted with more
/// consume loops, its group settled, a burst of `--leads` leads (a share of them for customers already known),
/// and the rate of `resolved` events, first to last.
struct IdentityBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "identity")

    @Option var identifiers = 1_000_000
    @Option var leads = 100_000
    @Option(help: "share of leads whose phone is already in the graph") var knownShare = 0.3
    @Option var rate = 1_000
    @Option var seconds = 30
    @Option(help: "paced seconds before the measured ones (group rebalances settle)") var warmup = 10
    @Option(help: "measured windows of --seconds each, back to back; the report gives each and their median") var latencyRounds = 3
    @Option(help: "partitions of the paced input and output topics. The mock broker finds a fetch offset by walking the partition's list of message sets from its head (rdkafka_mock.c: \"FIXME: Maintain an index\"), and a paced producer writes one set per record, so its fetch cost grows with the records per partition; Kafka indexes offsets") var partitions = 128
    @Option var port = 18_183
    @Option(help: "consume loops during the throughput burst") var concurrency = 2
    @Option(help: "consume loops during the paced latency run (1,000/s needs one)") var latencyConcurrency = 1
    @Option(help: "fetch.wait.max.ms of every consumer: the mock broker holds an empty fetch this long even when data arrives (Kafka answers at once)")
    var fetchWaitMS = 5
    @Option(help: "extra librdkafka properties for the service (key=value,...)") var serviceKafka = ""
    @Option(help: "fetch.wait.max.ms of the bench's own consumer of the output (the observer, not part of the hop)")
    var observerFetchWaitMS = 1

    static let pepper = "bench-identity-pepper-0123456789"
    static let key = [UInt8](repeating: 9, count: 32)

    func run() async throws {
        let service = try BenchService(service: "identity-merge", port: port, extra: [
            "FUNNEL_CONSUMER_CONCURRENCY": String(concurrency), "FUNNEL_PII_PEPPER": Self.pepper,
            "FUNNEL_PII_KEYS": "k1:" + Data(Self.key).base64EncodedString(), "FUNNEL_PII_ACTIVE_KEY": "k1",
            "FUNNEL_KAFKA_PROPERTIES": "fetch.wait.max.ms=\(fetchWaitMS)" + (serviceKafka.isEmpty ? "" : "," + serviceKafka),
        ], topics: [("leads.captured.v1", partitions), ("identity.registrations.v1", 8), ("identity.tags.v1", 2), ("identity.customers.v1", partitions),
                    ("dlq.identity-merge.v1", 2)])
        try service.runToCompletion(["migrate"])
        let schema = service.environment["FUNNEL_SCHEMA"]!
        let keyer = IdentityKeyer(pepper: Array(Self.pepper.utf8))
        let cipher = try PIICipher(keys: ["k1": Self.key], activeKeyID: "k1")
        let known = max(1, Int(Double(leads) * knownShare))
        let knownPhones = (0..<known).map { "+86137" + String(format: "%08d", $0) }
        let loadStart = ContinuousClock.now
        try await preload(schema: schema, knownPhones: knownPhones, keyer: keyer)
        print("graph loaded: \(identifiers) identifiers in \(format((ContinuousClock.now - loadStart).seconds)) s")

        // The upstream producer sends at once (linger 0): its batching delay is not identity-merge's latency.
        var producerConfiguration = KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("bench"))
        producerConfiguration.linger = .zero
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: TestEnvironment.logger())
        let input = service.prefix + "leads.captured.v1"
        var records: [KafkaOutgoingMessage] = []
        records.reserveCapacity(leads)
        for i in 0..<leads {
            let phone = i % 10 < Int(knownShare * 10) ? knownPhones[i % known] : "+86139" + String(format: "%08d", i)
            records.append(try Self.lead(id: "bench-\(i)", phone: phone, keyer: keyer, cipher: cipher, topic: input))
        }
        var consumerConfiguration = KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient("bench"), groupID: TestEnvironment.uniqueName("out"))
        consumerConfiguration.fetchWait = .milliseconds(observerFetchWaitMS)
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, topics: [service.prefix + "identity.customers.v1"], logger: TestEnvironment.logger())
        while !consumer.hasJoinedGroup { _ = try await consumer.poll(timeout: .milliseconds(100)) }
        let child = try service.start(extra: ["FUNNEL_CONSUMER_CONCURRENCY": String(latencyConcurrency)])
        try await service.waitReady(child)

        // 1. Latency on the loaded graph at a steady rate: each lead's produce time against its resolved event.
        let sent = LockedBox<[String: ContinuousClock.Instant]>([:])
        let skipped = rate * warmup
        let total = rate * (warmup + seconds * latencyRounds)
        let pacer = Task {
            let interval = Duration.seconds(1) / rate
            var next = ContinuousClock.now
            for i in 0..<total {
                let phone = i % 10 < 3 ? knownPhones[(i * 7) % known] : "+86136" + String(format: "%08d", i)
                let id = "paced-\(i)"
                let record = try Self.lead(id: id, phone: phone, keyer: keyer, cipher: cipher, topic: input)
                sent.withLock { $0[id] = .now }
                try producer.produce(record) { _ in }
                next += interval
                try await Task.sleep(until: next, clock: .continuous)
            }
        }
        var histograms = (0..<latencyRounds).map { _ in Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three) }
        var seen = 0
        var deadline = ContinuousClock.now + .seconds(warmup + seconds * latencyRounds + 60)
        while seen < total, ContinuousClock.now < deadline {
            for message in try await consumer.poll(maxMessages: 5_000, timeout: .milliseconds(20)) {
                guard let event = try? Funnel_Identity_V1_CustomerEvent(serializedBytes: message.value), case .resolved(let r)? = event.change,
                      r.subjectID.hasPrefix("paced-"), let at = sent.withLock({ $0[r.subjectID] }) else { continue }
                if let index = Int(r.subjectID.dropFirst(6)), index >= skipped {
                    _ = histograms[min(latencyRounds - 1, (index - skipped) / (rate * seconds))]
                        .record(UInt64(max(1, (ContinuousClock.now - at).seconds * 1_000_000)))
                }
                seen += 1
            }
        }
        try await pacer.value
        guard seen >= total else { throw ChildProcessError(description: "only \(seen) of \(total) paced leads were resolved") }

        // 2. Throughput: the service restarted with `--concurrency` loops, its group settled (the mock broker
        // holds each rebalance for seconds), then a burst of leads produced at once; resolved events counted from
        // the first to the last.
        child.signal(SIGTERM)
        _ = await child.wait(timeout: .seconds(30))
        let restarted = try service.start()
        try await service.waitReady(restarted)
        try await Task.sleep(for: .seconds(warmup))
        let burst = Task { for result in try await producer.sendBatch(records) { _ = try result.get() } }
        var resolved = 0
        var first: ContinuousClock.Instant?
        deadline = ContinuousClock.now + .seconds(600)
        while resolved < leads, ContinuousClock.now < deadline {
            let batch = try await consumer.poll(maxMessages: 5_000, timeout: .milliseconds(100))
            let ours = batch.filter { Self.isResolved($0, prefix: "bench-") }.count
            if ours > 0 && first == nil { first = .now }
            resolved += ours
        }
        let end = ContinuousClock.now
        try await burst.value
        await consumer.close()
        await producer.shutdown()
        restarted.signal(SIGTERM)
        _ = await restarted.wait(timeout: .seconds(30))
        guard resolved >= leads, let first else { throw ChildProcessError(description: "only \(resolved) of \(leads) leads were resolved") }
        let throughput = Double(leads) / (end - first).seconds
        let ms = { (h: Histogram<UInt64>, q: Double) in Double(h.valueAtPercentile(q)) / 1000 }
        let rounds = histograms.map { h in String(format: "p50 %.2f / p99 %.2f / p99.9 %.2f", ms(h, 50), ms(h, 99), ms(h, 99.9)) }
        let p99s = histograms.map { ms($0, 99) }.sorted()
        let p50s = histograms.map { ms($0, 50) }.sorted()
        report("identity-merge resolution latency at \(rate)/s, \(latencyRounds) windows of \(seconds) s after \(warmup) s warm-up (\(latencyConcurrency) consume loop(s), lead produced -> resolved event consumed; service fetch.wait.max.ms=\(fetchWaitMS), observer \(observerFetchWaitMS)): median p50 \(String(format: "%.2f", p50s[p50s.count / 2])) ms, median p99 \(String(format: "%.2f", p99s[p99s.count / 2])) ms; per window (ms): \(rounds.joined(separator: "; "))")
        report("identity-merge resolutions (a burst of \(leads) leads after it, \(Int(knownShare * 100))% known, graph of \(identifiers) identifiers, fsync on, \(concurrency) consume loops): sustained \(format(throughput)) resolutions/s")
    }

    static func isResolved(_ message: KafkaConsumedMessage, prefix: String) -> Bool {
        guard let event = try? Funnel_Identity_V1_CustomerEvent(serializedBytes: message.value), case .resolved(let r)? = event.change else { return false }
        return r.subjectID.hasPrefix(prefix)
    }

    static func lead(id: String, phone: String, keyer: IdentityKeyer, cipher: PIICipher, topic: String) throws -> KafkaOutgoingMessage {
        var lead = Funnel_Leads_V1_LeadCaptured()
        lead.leadID = id
        lead.phoneKey = keyer.key(kind: "phone", normalized: phone)
        lead.phone = try cipher.encrypt(phone, field: "phone")
        lead.phoneMasked = Masking.phone(phone)
        lead.attribution.channel = "feed"
        lead.attribution.campaignID = "spring"
        lead.courseInterest = "java"
        lead.occurredAt = Google_Protobuf_Timestamp(date: Date())
        return KafkaOutgoingMessage(topic: topic, key: Array(lead.phoneKey.utf8), value: try lead.serializedBytes(),
                                    headers: [KafkaHeader(key: "content-type", text: "application/protobuf")])
    }

    /// Fills the graph: customers with a phone and an email each (synthetic keys) up to `identifiers`, then the
    /// known phones with their real keys.
    func preload(schema: String, knownPhones: [String], keyer: IdentityKeyer) async throws {
        let postgres = PostgresClient(configuration: PostgresConfiguration(connectionString: TestEnvironment.postgresURL, maxConnections: 1),
                                      logger: TestEnvironment.logger())
        let synthetic = max(0, (identifiers - knownPhones.count) / 2)
        try await postgres.withConnection { connection in
            try connection.executeScript("""
                SET synchronous_commit = off;
                INSERT INTO "\(schema)".customers (id, status, first_seen_at, first_channel, phone_masked)
                SELECT md5('c' || i)::uuid, 'active', now() - interval '30 days', 'sem', '138****0000' FROM generate_series(1, \(synthetic)) i;
                INSERT INTO "\(schema)".identifiers (ident, kind, customer_id, mask, linked_at)
                SELECT 'phone:' || encode(sha256(('p' || i)::bytea), 'hex'), 'phone', md5('c' || i)::uuid, '138****0000', now() FROM generate_series(1, \(synthetic)) i
                UNION ALL
                SELECT 'email:' || encode(sha256(('e' || i)::bytea), 'hex'), 'email', md5('c' || i)::uuid, 'a***@example.com', now() FROM generate_series(1, \(synthetic)) i;
                """)
        }
        for chunk in stride(from: 0, to: knownPhones.count, by: 5_000) {
            let phones = Array(knownPhones[chunk..<min(chunk + 5_000, knownPhones.count)])
            let ids = phones.map { _ in Optional(UUIDv7.generate()) }
            let idents = phones.map { Optional("phone:" + keyer.key(kind: "phone", normalized: $0)) }
            _ = try await postgres.withTransaction { connection in
                _ = try connection.pipeline([
                    "INSERT INTO \(identifier: schema).customers (id, status, first_seen_at) SELECT i, 'active', now() FROM unnest(\(PostgresArray(ids))::uuid[]) i",
                    """
                    INSERT INTO \(identifier: schema).identifiers (ident, kind, customer_id, mask, linked_at)
                    SELECT x, 'phone', c, '137****0000', now() FROM unnest(\(PostgresArray(idents))::text[], \(PostgresArray(ids))::uuid[]) AS t(x, c)
                    """,
                ])
            }
        }
        // A graph "already loaded" has been vacuumed, analysed and checkpointed, as a running system's would be;
        // otherwise the first autovacuum and the checkpoints of the bulk load land inside the measurement.
        try await postgres.withConnection { connection in
            try connection.executeScript("VACUUM (ANALYZE) \"\(schema)\".customers")
            try connection.executeScript("VACUUM (ANALYZE) \"\(schema)\".identifiers")
            // The bulk load's WAL would otherwise force checkpoints (their writes and fsyncs) into the measurement.
            try connection.executeScript("CHECKPOINT")
        }
        await postgres.shutdown()
    }
}
