import ArgumentParser
import Foundation
import Kafka
import TestSupport

/// Our Kafka client against kcat on the same devbroker, produce and consume, as ratios measured in one run.
struct KafkaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kafka")

    /// 400k × 300 B fills 32 partitions to 3.75 MB each, under the mock broker's ~5 MiB retention.
    @Option var messages = 400_000
    @Option var size = 300
    @Option var rounds = 5

    func run() async throws {
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: 65 + $0 % 26) }
        var ours: [(Double, Double)] = []
        var theirs: [(Double, Double)] = []
        var ratios: [(Double, Double)] = []
        for round in 1...rounds {
            let oursTopic = try TestEnvironment.makeTopic("bench_ours", partitions: 32)
            let kcatTopic = try TestEnvironment.makeTopic("bench_kcat", partitions: 32)
            // Who goes first alternates: the mock broker slows down as it fills, and the second producer of a
            // round would always pay for the first one's records.
            let produceOurs: Double, produceKcat: Double
            if round % 2 == 1 {
                produceOurs = try await produceWithOurs(topic: oursTopic, payload: payload)
                produceKcat = try produceWithKcat(topic: kcatTopic, payload: payload)
            } else {
                produceKcat = try produceWithKcat(topic: kcatTopic, payload: payload)
                produceOurs = try await produceWithOurs(topic: oursTopic, payload: payload)
            }
            let consumeOurs = try await consumeWithOurs(topic: kcatTopic)
            let consumeKcat = try consumeWithKcat(topic: oursTopic)
            ours.append((produceOurs, consumeOurs))
            theirs.append((produceKcat, consumeKcat))
            ratios.append((produceOurs / produceKcat, consumeOurs / consumeKcat))
            print("round \(round): produce ours \(format(produceOurs)) msg/s, kcat \(format(produceKcat)) msg/s (\(String(format: "%.2f", produceOurs / produceKcat))x); consume ours \(format(consumeOurs)) msg/s, kcat \(format(consumeKcat)) msg/s")
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let po = median(ours.map(\.0)), pk = median(theirs.map(\.0)), co = median(ours.map(\.1)), ck = median(theirs.map(\.1))
        let pr = ratios.map(\.0).sorted(), cr = ratios.map(\.1).sorted()
        report("kafka produce (\(messages) x \(size) B, \(rounds) rounds, order alternating): ours \(format(po)) msg/s, kcat \(format(pk)) msg/s (medians); per-round ratio median \(String(format: "%.2f", median(pr))), range \(String(format: "%.2f", pr.first!))-\(String(format: "%.2f", pr.last!))")
        report("kafka consume (\(messages) x \(size) B, \(rounds) rounds): ours \(format(co)) msg/s, kcat \(format(ck)) msg/s (medians); per-round ratio median \(String(format: "%.2f", median(cr))), range \(String(format: "%.2f", cr.first!))-\(String(format: "%.2f", cr.last!))")
    }

    func produceWithOurs(topic: String, payload: [UInt8]) async throws -> Double {
        var configuration = KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("bench"))
        configuration.maxQueuedMessages = 500_000
        let producer = try KafkaProducer(configuration: configuration, logger: TestEnvironment.logger())
        let batch = (0..<messages).map { i in KafkaOutgoingMessage(topic: topic, key: Array("k\(i % 1000)".utf8), value: payload) }
        // A service's producer is long-lived: connect and get the idempotent producer id first, as kcat's
        // start-up does before its first batch.
        let coldStart = ContinuousClock.now
        _ = try await producer.send(KafkaOutgoingMessage(topic: topic, key: Array("warm".utf8), value: payload))
        print("  our producer's first delivery (connect + producer id): \(String(format: "%.0f", (ContinuousClock.now - coldStart).seconds * 1000)) ms")
        let start = ContinuousClock.now
        let results = try await producer.sendBatch(batch)
        let elapsed = ContinuousClock.now - start
        await producer.shutdown()
        precondition(results.allSatisfy { (try? $0.get()) != nil }, "all delivered")
        return Double(messages) / elapsed.seconds
    }

    func produceWithKcat(topic: String, payload: [UInt8]) throws -> Double {
        let file = NSTemporaryDirectory() + "bench-\(UUID().uuidString).txt"
        // Keyed like ours (k0…k999): unkeyed records pile onto few partitions and overflow the mock's retention.
        var lines = Data()
        for i in 0..<messages { lines.append(Data("k\(i % 1000):".utf8) + Data(payload) + Data([10])) }
        try lines.write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let start = ContinuousClock.now
        let status = try runAndWait("/usr/bin/kcat", ["-P", "-b", TestEnvironment.bootstrap, "-t", topic, "-X", "enable.idempotence=true",
                                                      "-X", "linger.ms=5", "-X", "queue.buffering.max.messages=500000", "-K", ":", "-l", file])
        let elapsed = ContinuousClock.now - start
        precondition(status == 0, "kcat produce failed")
        return Double(messages) / elapsed.seconds
    }

    /// Measured from the first message to the last (group join excluded, as for kcat).
    func consumeWithOurs(topic: String) async throws -> Double {
        var configuration = KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient("bench"), groupID: TestEnvironment.uniqueName("bench"))
        // The same pre-fetch budget kcat has. kcat's simple consumer may queue queued.min.messages (100k) and
        // queued.max.messages.kbytes (64 MB) per partition; a group consumer's partitions share one queue, so the
        // limits count all of them, and librdkafka 2.0.2 stops fetching for 1 s whenever the queue reaches one
        // (librdkafka issues #2879 and #4275; `fetch.queue.backoff.ms` came later). Reading 1.4M records/s, the
        // queue ran dry within that second: one 0.9 s stall in about half the rounds.
        configuration.client.properties["queued.min.messages"] = "10000000"
        configuration.client.properties["queued.max.messages.kbytes"] = "1048576"
        let consumer = try KafkaConsumer(configuration: configuration, topics: [topic], logger: TestEnvironment.logger())
        var count = 0
        var first: ContinuousClock.Instant?
        let deadline = ContinuousClock.now + .seconds(120)
        while count < messages {
            guard ContinuousClock.now < deadline else { throw ChildProcessError(description: "only \(count) of \(messages) records arrived") }
            let batch = try await consumer.poll(maxMessages: 5_000, timeout: .milliseconds(100))
            if !batch.isEmpty && first == nil { first = .now }
            count += batch.count
        }
        let elapsed = ContinuousClock.now - first!
        await consumer.close()
        return Double(count - 1) / elapsed.seconds
    }

    /// kcat reads from the beginning and exits at the end; timed from its first output to its exit.
    func consumeWithKcat(topic: String) throws -> Double {
        let pipe = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
        process.arguments = ["-C", "-b", TestEnvironment.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o\n"]
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        var first: ContinuousClock.Instant?
        var lines = 0
        while true {
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { break }
            if first == nil { first = .now }
            lines += data.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
        }
        let elapsed = ContinuousClock.now - first!
        guard lines >= messages else { throw ChildProcessError(description: "kcat read \(lines) of \(messages)") }
        return Double(lines - 1) / elapsed.seconds
    }
}

/// Runs a program to completion (sleeping, not spinning, while it runs).
func runAndWait(_ executable: String, _ arguments: [String]) throws -> Int32 {
    let child = try ChildProcess(executable: executable, arguments: arguments)
    while child.status == nil { usleep(2_000) }
    return child.status!
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
