import ArgumentParser
import Foundation
import Kafka
import TestSupport
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// marketing-intake topic → topic: leads preloaded on the input topic, the service started, and the rate at
/// which validated leads appear on `leads.captured.v1` (PostgreSQL durable: fsync and synchronous commit on).
struct IntakePipelineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "intake-pipeline")

    @Option var leads = 100_000
    @Option var port = 18_181
    @Option var rounds = 3
    @Option(help: "FUNNEL_CONSUMER_CONCURRENCY of the service") var concurrency = 2

    func run() async throws {
        var sustained: [Double] = []
        var overall: [Double] = []
        for round in 1...rounds {
            let (s, o) = try await once()
            sustained.append(s)
            overall.append(o)
            print("round \(round): sustained \(format(s)) leads/s, including start-up and group join \(format(o)) leads/s")
        }
        let median = { (v: [Double]) in v.sorted()[v.count / 2] }
        report("intake topic->topic (\(leads) leads, fsync on, \(concurrency) consume loops, median of \(rounds)): sustained \(format(median(sustained))) leads/s (first to last output); \(format(median(overall))) leads/s including process start and group join")
    }

    func once() async throws -> (Double, Double) {
        // Info level: the service's partition assignments and revocations, to explain a round whose output stalled.
        let service = try BenchService(port: port, extra: ["FUNNEL_CONSUMER_CONCURRENCY": String(concurrency), "FUNNEL_LOG_LEVEL": "info"])
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

        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient("bench"), groupID: TestEnvironment.uniqueName("out")),
                                         topics: [service.prefix + "leads.captured.v1"], logger: TestEnvironment.logger())
        // Join the output group first, so the measurement is not its join.
        while !consumer.hasJoinedGroup { _ = try await consumer.poll(timeout: .milliseconds(100)) }
        let started = ContinuousClock.now
        let child = try service.start()
        var count = 0
        var first: ContinuousClock.Instant?
        // The longest wait between two outputs after the first, and how many had come out before it.
        var gap = (length: Duration.zero, after: 0, at: ContinuousClock.now)
        var last = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(600)
        while count < leads, ContinuousClock.now < deadline {
            let batch = try await consumer.poll(maxMessages: 5_000, timeout: .milliseconds(100))
            guard !batch.isEmpty else { continue }
            let now = ContinuousClock.now
            if first == nil { first = now } else if now - last > gap.length { gap = (now - last, count, last) }
            last = now
            count += batch.count
        }
        let end = ContinuousClock.now
        await consumer.close()
        child.signal(SIGTERM)
        _ = await child.wait(timeout: .seconds(30))
        guard count >= leads, let first else { throw ChildProcessError(description: "only \(count) of \(leads) leads came out") }
        print(String(format: "  first output %.2f s after start; longest gap between outputs %.2f s, %.2f s after the first output (%d leads out)",
                     (first - started).seconds, gap.length.seconds, (gap.at - first).seconds, gap.after))
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
