import ArgumentParser
import Contracts
import Foundation
import Kafka
import TestSupport
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// marketing-intake topic → topic: leads preloaded on the input topic, the service started, and the rate at
/// which validated leads appear on `leads.captured.v1` (PostgreSQL durable: fsync and synchronous commit on).
///
/// The finish line is the output topic's end offsets, asked of the broker every 10 ms (one ListOffsets request):
/// a reader consuming every record live cost about 7 µs of the 2 cores per lead (librdkafka's fetch plus copying each
/// record out) and the broker about 2 µs more serving it, taken from the service being measured; downstream
/// consumers run on their own machines. After the clock stops every output record is read and checked: one per
/// lead, none twice. `--compare` runs each round a second time with the live reader, for the difference.
struct IntakePipelineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "intake-pipeline")

    @Option var leads = 100_000
    @Option var port = 18_181
    /// Five: on this shared host one round can run at half the speed of the next (kcat too), and a round lasts 3-6 s.
    @Option var rounds = 5
    @Option(help: "FUNNEL_CONSUMER_CONCURRENCY of the service") var concurrency = 2
    @Option(help: "FUNNEL_OUTBOX_VACUUM_EVERY of the service (default: the service's)") var outboxVacuumEvery: Int?
    @Flag(help: "also run each round with a reader consuming the output live (the measurement before 12-04)") var compare = false

    static let outputPartitions = BenchService.intakeTopics.first { $0.0 == "leads.captured.v1" }!.1

    func run() async throws {
        var sustained: [Double] = []
        var overall: [Double] = []
        var live: [Double] = []
        for round in 1...rounds {
            let (s, o) = try await once(liveReader: false)
            sustained.append(s)
            overall.append(o)
            print("round \(round): sustained \(format(s)) leads/s, including start-up and group join \(format(o)) leads/s")
            if compare {
                let (l, _) = try await once(liveReader: true)
                live.append(l)
                print("round \(round), live reader: sustained \(format(l)) leads/s")
            }
        }
        let median = { (v: [Double]) in v.sorted()[v.count / 2] }
        let all = { (v: [Double]) in v.map(format).joined(separator: " / ") }
        report("intake topic->topic (\(leads) leads, fsync on, \(concurrency) consume loops, median of \(rounds)): sustained \(format(median(sustained))) leads/s (first to last output; rounds \(all(sustained))); \(format(median(overall))) leads/s including process start and group join")
        if compare {
            report("  the same, with a reader consuming the output live on the same 2 cores (interleaved rounds): sustained \(format(median(live))) leads/s (rounds \(all(live)))")
        }
    }

    func once(liveReader: Bool) async throws -> (Double, Double) {
        // Info level: the service's partition assignments and revocations, to explain a round whose output stalled.
        var environment = ["FUNNEL_CONSUMER_CONCURRENCY": String(concurrency), "FUNNEL_LOG_LEVEL": "info"]
        if let outboxVacuumEvery { environment["FUNNEL_OUTBOX_VACUUM_EVERY"] = String(outboxVacuumEvery) }
        let service = try BenchService(port: port, extra: environment)
        let source = TestEnvironment.uniqueName("src")
        _ = try service.createSource(name: source)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("bench")), logger: TestEnvironment.logger())
        let records = (0..<leads).map { i in
            KafkaOutgoingMessage(
                topic: service.prefix + "marketing.campaign-leads.v1", key: Array("p-\(i)".utf8),
                value: Array(#"{"source":"\#(source)","phone":"+86 139\#(String(format: "%08d", i))","name":"学员\#(i)","platformLeadId":"p-\#(i)","channel":"feed","campaignId":"c\#(i % 50)","utm":{"source":"toutiao","campaign":"spring"},"course_interest":"java"}"#.utf8),
                headers: [KafkaHeader(key: "content-type", text: "application/json")]
            )
        }
        for result in try await producer.sendBatch(records) { _ = try result.get() }
        await producer.shutdown()

        let output = service.prefix + "leads.captured.v1"
        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient("bench"), groupID: TestEnvironment.uniqueName("out")),
                                         topics: [output], logger: TestEnvironment.logger())
        // Join the output group first, so the measurement is not its join.
        while !consumer.hasJoinedGroup { _ = try await consumer.poll(timeout: .milliseconds(100)) }
        var seen = Set<String>()
        var read = 0
        func check(_ batch: [KafkaConsumedMessage]) {
            read += batch.count
            for record in batch { if let id = record.header(CloudEventHeader.id) { seen.insert(id) } }
        }
        if !liveReader { try await consumer.pause() }
        let started = ContinuousClock.now
        let child = try service.start()
        var count = 0
        var first: ContinuousClock.Instant?
        // The longest wait between two outputs after the first, and how many had come out before it.
        var gap = (length: Duration.zero, after: 0, at: ContinuousClock.now)
        var last = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(600)
        while count < leads, ContinuousClock.now < deadline {
            let out: Int
            if liveReader {
                let batch = try await consumer.poll(maxMessages: 5_000, timeout: .milliseconds(100))
                check(batch)
                out = count + batch.count
            } else {
                try await Task.sleep(for: .milliseconds(10))
                out = try await consumer.recordCount(topic: output, partitions: Self.outputPartitions)
            }
            guard out > count else { continue }
            let now = ContinuousClock.now
            if first == nil { first = now } else if now - last > gap.length { gap = (now - last, count, last) }
            last = now
            count = out
        }
        let end = ContinuousClock.now
        child.signal(SIGTERM)
        _ = await child.wait(timeout: .seconds(30))
        guard count >= leads, let first else { throw ChildProcessError(description: "only \(count) of \(leads) leads came out") }
        // The clock has stopped: every output record is read, each lead must be there exactly once.
        if !liveReader { try await consumer.resume() }
        let readDeadline = ContinuousClock.now + .seconds(120)
        while read < count, ContinuousClock.now < readDeadline { check(try await consumer.poll(maxMessages: 5_000, timeout: .milliseconds(200))) }
        await consumer.close()
        guard count == leads, read == leads, seen.count == leads else {
            throw ChildProcessError(description: "\(leads) leads in, \(count) records on the output topic, \(read) read, \(seen.count) distinct ce_id")
        }
        print(String(format: "  first output %.2f s after start; longest gap between outputs %.2f s, %.2f s after the first output (%d leads out); output checked: %d records, %d distinct",
                     (first - started).seconds, gap.length.seconds, (gap.at - first).seconds, gap.after, read, seen.count))
        // How the input's partitions were spread over the loops: a loop left without any halves the rate.
        let log = child.output.split(separator: "\n")
        let moves = log.filter { $0.contains("partitions assigned") || $0.contains("partitions revoked") }.map { line in
            "\(line.contains("assigned") ? "+" : "-")\(line.components(separatedBy: "campaign-leads.v1[").count - 1)"
        }
        print("  input partitions assigned (+) and revoked (-) per consumer, in order: \(moves.joined(separator: " "))")
        if gap.length > .seconds(1) {
            // A stall: what the service said about its group membership and errors (its log is otherwise not shown).
            let lines = log.filter { !$0.contains("info") || $0.contains("partitions") || $0.contains("consumer") }
            print("  service log around the stall (assignments, warnings, errors):\n" + lines.suffix(40).map { "    " + $0 }.joined(separator: "\n"))
        }
        return (Double(leads) / (end - first).seconds, Double(leads) / (end - started).seconds)
    }
}
