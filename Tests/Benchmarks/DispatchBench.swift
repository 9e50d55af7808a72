import ArgumentParser
import Contracts
import FastText
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
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// sales-dispatch (release build) with `--teams` teams of `--reps-per-team` reps routed by region:
/// 1. resolved leads paced at `--rate`/s: decision latency (a record handed to the service → its assignment
///    committed, from the service's own histogram) and end to end (produced → `assigned` event consumed);
/// 2. restarted with `--concurrency` loops, a burst of `--leads` leads: assignments/s, first to last;
/// 3. `--deadlines` scheduled deadlines with `--due` of them falling due at the same instant: the time until the
///    last is fired (recycled and redistributed), and the plan of the scheduler's query.
struct DispatchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dispatch")

    @Option var leads = 100_000
    @Option var rate = 1_000
    @Option var seconds = 30
    @Option var warmup = 10
    @Option var teams = 4
    @Option var repsPerTeam = 25
    @Option var concurrency = 2
    @Option var deadlines = 1_000_000
    @Option var due = 10_000
    @Option(help: "partitions of the paced input and output topics. The mock broker finds a fetch offset by walking the partition's list of message sets from its head (rdkafka_mock.c: \"FIXME: Maintain an index\"), and a paced producer writes one set per record, so its fetch cost grows with the records per partition; Kafka indexes offsets") var partitions = 128
    @Option var port = 18_184
    @Option var fetchWaitMS = 5
    @Flag(help: "Run only the deadline phase (for profiling it).") var deadlinesOnly = false

    static let secret = "bench-dispatch-jwt-secret-0123456789abcdef"
    static let regions = ["北京市", "上海市", "广东省广州市", "浙江省杭州市"]

    func run() async throws {
        let service = try BenchService(service: "sales-dispatch", port: port, extra: [
            "FUNNEL_JWT_SECRET": Self.secret, "FUNNEL_DISPATCH_TICK_MS": "50", "FUNNEL_DISPATCH_DEADLINE_BATCH": "2500",
            "FUNNEL_KAFKA_PROPERTIES": "fetch.wait.max.ms=\(fetchWaitMS)",
        ], topics: [("identity.customers.v1", partitions), ("hr.employees.v1", 2), ("callcenter.calls.v1", 4), ("sales.conversions.v1", 4),
                    ("sales.opportunities.v1", partitions), ("dlq.sales-dispatch.v1", 2)])
        try service.runToCompletion(["migrate"])
        let schema = service.environment["FUNNEL_SCHEMA"]!
        // Earlier benchmarks' bulk loads leave WAL to checkpoint; flush it now rather than inside the measurement.
        let admin = PostgresClient(configuration: PostgresConfiguration(connectionString: TestEnvironment.postgresURL, maxConnections: 1),
                                   logger: TestEnvironment.logger())
        try await admin.withConnection { try $0.executeScript("CHECKPOINT") }
        await admin.shutdown()
        let child = try service.start(extra: ["FUNNEL_CONSUMER_CONCURRENCY": "1"])
        try await service.waitReady(child)
        let token = try await EmployeeTokenVerifier(secret: Array(Self.secret.utf8)).sign(EmployeeClaims(employeeID: "bench", role: .admin, expires: Date() + 7_200))
        try await setUpOrg(token: token)

        var producerConfiguration = KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("bench"))
        producerConfiguration.linger = .zero
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: TestEnvironment.logger())
        let input = service.prefix + "identity.customers.v1"
        var consumerConfiguration = KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient("bench"), groupID: TestEnvironment.uniqueName("out"))
        consumerConfiguration.fetchWait = .milliseconds(1)
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, topics: [service.prefix + "sales.opportunities.v1"], logger: TestEnvironment.logger())
        while !consumer.hasJoinedGroup { _ = try await consumer.poll(timeout: .milliseconds(100)) }

        var scheduler = child
        if !deadlinesOnly {
            // 1. Paced: the service's decision histogram over the measured window, and end to end.
            let sent = LockedBox<[String: ContinuousClock.Instant]>([:])
            let total = rate * (warmup + seconds)
            let metricsAtStart = LockedBox<ScrapedHistogram?>(nil)
            let pacer = Task {
                let interval = Duration.seconds(1) / rate
                var next = ContinuousClock.now
                for i in 0..<total {
                    if i == rate * warmup { metricsAtStart.withLock { $0 = nil }; let m = try await self.scrape(); metricsAtStart.withLock { $0 = m } }
                    let customer = UUIDv7.generate().lowercasedText
                    sent.withLock { $0[customer] = .now }
                    try producer.produce(try Self.lead(customer: customer, region: Self.regions[i % Self.regions.count], topic: input)) { _ in }
                    next += interval
                    try await Task.sleep(until: next, clock: .continuous)
                }
            }
            var endToEnd = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            var seen = 0
            var deadline = ContinuousClock.now + .seconds(warmup + seconds + 60)
            while seen < total, ContinuousClock.now < deadline {
                for message in try await consumer.poll(maxMessages: 5_000, timeout: .milliseconds(20)) {
                    guard let event = try? Funnel_Sales_V1_OpportunityEvent(serializedBytes: message.value), event.change == "assigned",
                          let at = sent.withLock({ $0[event.customerID] }) else { continue }
                    seen += 1
                    if seen > rate * warmup { _ = endToEnd.record(UInt64(max(1, (ContinuousClock.now - at).seconds * 1_000_000))) }
                }
            }
            try await pacer.value
            let metricsAtEnd = try await scrape()
            guard seen >= total, let startBuckets = metricsAtStart.withLock({ $0 }) else {
                throw ChildProcessError(description: "only \(seen) of \(total) paced leads were assigned")
            }
            let window = metricsAtEnd.since(startBuckets)
            let (p50, p99, p999) = (window.percentile(0.50), window.percentile(0.99), window.percentile(0.999))
            let ms = { (h: Histogram<UInt64>, q: Double) in Double(h.valueAtPercentile(q)) / 1000 }
            report("sales-dispatch decision latency at \(rate)/s over \(seconds) s after \(warmup) s warm-up (1 consume loop; record handed to the service -> assignment committed, from its funnel_consumer_record_seconds histogram, interpolated within buckets): p50 \(String(format: "%.2f", p50)) ms, p99 \(String(format: "%.2f", p99)) ms, p99.9 \(String(format: "%.2f", p999)) ms; end to end (produced -> assigned event consumed, service fetch.wait.max.ms=\(fetchWaitMS)): p50 \(String(format: "%.2f", ms(endToEnd, 50))) ms, p99 \(String(format: "%.2f", ms(endToEnd, 99))) ms")

            // 2. Burst throughput with more consume loops, after the group settles.
            child.signal(SIGTERM)
            _ = await child.wait(timeout: .seconds(30))
            let restarted = try service.start(extra: ["FUNNEL_CONSUMER_CONCURRENCY": String(concurrency)])
            scheduler = restarted
            try await service.waitReady(restarted)
            try await Task.sleep(for: .seconds(warmup))
            var records: [KafkaOutgoingMessage] = []
            records.reserveCapacity(leads)
            for i in 0..<leads { records.append(try Self.lead(customer: UUIDv7.generate().lowercasedText, region: Self.regions[i % Self.regions.count], topic: input)) }
            let burst = Task { for result in try await producer.sendBatch(records) { _ = try result.get() } }
            var assigned = 0
            var first: ContinuousClock.Instant?
            deadline = ContinuousClock.now + .seconds(600)
            while assigned < leads, ContinuousClock.now < deadline {
                let batch = try await consumer.poll(maxMessages: 5_000, timeout: .milliseconds(100))
                let ours = batch.filter { (try? Funnel_Sales_V1_OpportunityEvent(serializedBytes: $0.value))?.change == "assigned" }.count
                if ours > 0 && first == nil { first = .now }
                assigned += ours
            }
            let end = ContinuousClock.now
            try await burst.value
            await consumer.close()
            await producer.shutdown()
            guard assigned >= leads, let first else { throw ChildProcessError(description: "only \(assigned) of \(leads) leads were assigned") }
            let throughput = Double(leads) / (end - first).seconds
            report("sales-dispatch assignments (a burst of \(leads) leads, \(teams) teams x \(repsPerTeam) reps, round-robin, fsync on, \(concurrency) consume loops): sustained \(format(throughput)) assignments/s")
        } else {
            await consumer.close()
            await producer.shutdown()
        }

        // 3. Deadlines: a million scheduled, ten thousand due at one instant.
        let (firedIn, redistributedIn, plan) = try await deadlineRun(schema: schema)
        scheduler.signal(SIGTERM)
        _ = await scheduler.wait(timeout: .seconds(30))

        report("sales-dispatch deadlines: \(deadlines) scheduled, \(due) due at one instant, all fired (recycled, committed) \(String(format: "%.0f", firedIn * 1000)) ms after that instant, all redistributed to other reps \(String(format: "%.0f", redistributedIn * 1000)) ms after it; plan of the scheduler's query: \(plan)")
    }

    func setUpOrg(token: String) async throws {
        try await put("/v1/org-units/hq", #"{"name": "HQ"}"#, token)
        var routing: [String] = []
        var teamPolicies: [String] = []
        for t in 0..<teams {
            try await put("/v1/teams/t\(t)", #"{"name": "team \#(t)", "org_unit_id": "hq"}"#, token)
            for r in 0..<repsPerTeam { try await put("/v1/reps/t\(t)-r\(r)", #"{"team_id": "t\#(t)", "name": "rep \#(r)"}"#, token) }
            routing.append(#"{"regions": ["\#(Self.regions[t % Self.regions.count])"], "team": "t\#(t)"}"#)
            teamPolicies.append(#""t\#(t)": {"strategy": "round_robin", "daily_new_cap": 1000000, "max_holding": 1000000, "time_zone": "Asia/Shanghai", "protection": {"follow_up_days": 3, "deal_days": 30, "warning_days": 1, "exempt": ["locked", "open_order", "paid"], "recycle_to": "redistribute", "cooldown_days": 7, "credit_window_days": 0}, "claim": {"daily_claim_cap": 20, "holding_cap": 1000000}, "leaver": "pool"}"#)
        }
        try await put("/v1/policies", #"{"fallback_team": "t0", "routing": [\#(routing.joined(separator: ","))], "teams": {\#(teamPolicies.joined(separator: ","))}}"#, token)
    }

    func put(_ path: String, _ body: String, _ token: String) async throws {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = "PUT"
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let status = (response as? HTTPURLResponse)?.statusCode, (200..<300).contains(status) else {
            throw ChildProcessError(description: "PUT \(path): \(String(decoding: data, as: UTF8.self))")
        }
    }

    /// The service's count of fired deadlines (warnings and recycles), from its /metrics.
    func firedCount() async throws -> Double {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("funnel_dispatch_deadlines_fired_total") {
            return Double(line.split(separator: " ").last ?? "0") ?? 0
        }
        return 0
    }

    /// The record-latency histogram, summed over the loops.
    func scrape() async throws -> ScrapedHistogram {
        try await ScrapedHistogram.scrape(port: port, metric: ServiceMetrics.recordLatency)
    }

    /// Loads `deadlines` assigned opportunities with follow-up deadlines, `due` of them due at one instant two
    /// seconds ahead; returns the seconds from that instant until the last was fired, and the fire query's plan.
    func deadlineRun(schema: String) async throws -> (Double, Double, String) {
        let postgres = PostgresClient(configuration: PostgresConfiguration(connectionString: TestEnvironment.postgresURL, maxConnections: 1),
                                      logger: TestEnvironment.logger())
        defer { Task { await postgres.shutdown() } }
        let perRep = deadlines / (teams * repsPerTeam) + 1
        try await postgres.withConnection { connection in
            try connection.executeScript("""
                SET synchronous_commit = off;
                INSERT INTO "\(schema)".opportunities (id, customer_id, product_line, status, team_id, owner_id, channel, region, created_at,
                    assigned_at, follow_up_due, deal_due)
                SELECT md5('o' || i)::uuid, md5('c' || i)::uuid, 'python', 'assigned', 't' || (i % \(teams)), 't' || (i % \(teams)) || '-r' || (i / \(teams) % \(repsPerTeam)),
                       'feed', '', now() - interval '1 day', now() - interval '1 day', now() + interval '2 days' + (i % 86400) * interval '1 second', now() + interval '29 days'
                FROM generate_series(1, \(deadlines)) i;
                INSERT INTO "\(schema)".deadlines (opportunity_id, kind, due_at)
                SELECT id, 'follow_up', follow_up_due FROM "\(schema)".opportunities WHERE product_line = 'python' AND channel = 'feed';
                INSERT INTO "\(schema)".ownership (opportunity_id, employee_id, started_at, opened_how)
                SELECT id, owner_id, assigned_at, 'assigned' FROM "\(schema)".opportunities WHERE channel = 'feed';
                UPDATE "\(schema)".reps SET holding = holding + \(perRep);
                """)
            for table in ["opportunities", "deadlines", "ownership", "reps"] { try connection.executeScript("VACUUM (ANALYZE) \"\(schema)\".\(table)") }
            try connection.executeScript("CHECKPOINT")
        }
        let plan = try await postgres.withConnection { connection in
            try connection.query("""
                EXPLAIN SELECT opportunity_id, kind FROM \(identifier: schema).deadlines WHERE due_at <= now() ORDER BY due_at LIMIT 5000 FOR UPDATE SKIP LOCKED
                """).map { try $0.decode(String.self).trimmingCharacters(in: .whitespaces) }.joined(separator: " | ")
        }
        let instant = Date() + 2
        print("== deadlines fall due in 2 s")
        fflush(nil)
        _ = try await postgres.query("""
            UPDATE \(identifier: schema).deadlines SET due_at = \(instant) WHERE opportunity_id IN (
                SELECT id FROM \(identifier: schema).opportunities WHERE channel = 'feed' ORDER BY id LIMIT \(due))
            """)
        // Fired = counted by the service's funnel_dispatch_deadlines_fired_total, which it increments once the
        // firing transaction has committed. Watching the service's /metrics puts no load on the database being
        // measured (polling the deadlines table cost 2–100 ms a query: the index's first entries are the dead
        // rows of the deadlines just fired).
        let firedBefore = try await firedCount()
        let deadline = ContinuousClock.now + .seconds(60)
        var doneAt: Date?
        while ContinuousClock.now < deadline {
            if try await firedCount() - firedBefore >= Double(due) { doneAt = Date(); break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let fired = try await postgres.query("SELECT count(*) FROM \(identifier: schema).decisions WHERE kind = 'recycled'").first!.decode(Int.self)
        guard fired >= due, let doneAt else { throw ChildProcessError(description: "only \(fired) of \(due) deadlines fired") }
        // Redistributed: none of them is waiting in a queue any more (each went to another rep).
        var redistributedAt: Date?
        while ContinuousClock.now < deadline {
            let queued = try await postgres.query("SELECT EXISTS (SELECT 1 FROM \(identifier: schema).opportunities WHERE status = 'queued')").first!.decode(Bool.self)
            if !queued { redistributedAt = Date(); break }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard let redistributedAt else { throw ChildProcessError(description: "recycled opportunities were not redistributed") }
        return (doneAt.timeIntervalSince(instant), redistributedAt.timeIntervalSince(instant), plan)
    }

    static func lead(customer: String, region: String, topic: String) throws -> KafkaOutgoingMessage {
        var event = Funnel_Identity_V1_CustomerEvent()
        event.customerID = customer
        event.occurredAt = Google_Protobuf_Timestamp(date: Date())
        var resolved = Funnel_Identity_V1_CustomerResolved()
        resolved.subjectKind = "lead"
        resolved.subjectID = customer
        resolved.newCustomer = true
        resolved.courseInterest = "java"
        resolved.channel = "sem"
        resolved.phoneMasked = "138****0000"
        resolved.phoneKey = Hex.encode(Array(customer.utf8.prefix(16)))
        resolved.phoneInfo.geo = region
        event.resolved = resolved
        return KafkaOutgoingMessage(topic: topic, key: Array(customer.utf8), value: try event.serializedBytes(),
                                    headers: [KafkaHeader(key: "content-type", text: "application/protobuf")])
    }
}
