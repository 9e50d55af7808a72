import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import Kafka
import Testing
import TestSupport
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// A rolling deploy, shown on the real executable: SIGTERM mid-stream, a new process takes over, and it consumes
/// nothing the old one had already processed (the old one committed its offsets before leaving the group).
@Suite("marketing-intake graceful shutdown")
struct GracefulShutdownTests {
    @Test func sigtermMidStreamCommitsSoTheNextProcessReconsumesNothing() async throws {
        let count = 20_000
        let prefix = TestEnvironment.uniqueName("gs") + "."
        for (topic, partitions) in [("marketing.campaign-leads.v1", 8), ("leads.captured.v1", 8), ("dlq.marketing-intake.v1", 2)] {
            try BrokerControl().send("create-topic \(prefix)\(topic) \(partitions)")
        }
        let binary = TestEnvironment.binDirectory + "/marketing-intake"
        let environment = [
            "FUNNEL_POSTGRES_URL": TestEnvironment.postgresURL, "FUNNEL_KAFKA_BOOTSTRAP": TestEnvironment.bootstrap,
            "FUNNEL_SCHEMA": TestEnvironment.uniqueName("gs"), "FUNNEL_TOPIC_PREFIX": prefix, "FUNNEL_CONSUMER_GROUP": TestEnvironment.uniqueName("gs"),
            "FUNNEL_HTTP_PORT": "0", "FUNNEL_LOG_LEVEL": "info", "FUNNEL_CONSUMER_BATCH_SIZE": "200", "FUNNEL_CONSUMER_CONCURRENCY": "2",
        ]
        let sourceName = TestEnvironment.uniqueName("src")
        let create = try ChildProcess(executable: binary, arguments: ["sources", "create", "--name", sourceName, "--channel", "sem"], environment: environment)
        #expect(await create.wait() == 0, "sources create: \(create.output)")
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("marketing")), logger: TestEnvironment.logger())
        let leads = (0..<count).map { i in
            KafkaOutgoingMessage(
                topic: prefix + "marketing.campaign-leads.v1", key: Array("g-\(i)".utf8),
                value: Array(#"{"source": "\#(sourceName)", "phone": "+86 137\#(String(format: "%08d", i))", "platformLeadId": "g-\#(i)"}"#.utf8),
                headers: [KafkaHeader(key: "content-type", text: "application/json")]
            )
        }
        for result in try await producer.sendBatch(leads) { _ = try result.get() }
        await producer.shutdown()

        let reader = try TopicReader(topic: prefix + "leads.captured.v1")
        var platformIDs = Set<String>()
        let first = try ChildProcess(executable: binary, arguments: ["serve"], environment: environment)
        let deadline = ContinuousClock.now + .seconds(120)
        while platformIDs.count < count / 4, ContinuousClock.now < deadline {
            for message in try await reader.read(atLeast: 1, timeout: .milliseconds(200)) {
                platformIDs.insert(try Funnel_Leads_V1_LeadCaptured(serializedBytes: message.value).platformLeadID)
            }
        }
        let seen = platformIDs.count
        first.signal(SIGTERM)
        #expect(await first.wait(timeout: .seconds(30)) == 0, "graceful exit: \(first.output.suffix(2_000))")
        #expect(seen < count, "stopped mid-stream (after \(seen))")

        let second = try ChildProcess(executable: binary, arguments: ["serve"], environment: environment)
        defer { second.signal(SIGKILL) }
        var port: Int?
        while port == nil, ContinuousClock.now < deadline, second.status == nil {
            port = second.output.firstMatch(of: /listening on [0-9.]+:([0-9]+)/).flatMap { Int($0.1) }
            try await Task.sleep(for: .milliseconds(50))
        }
        let listening = try #require(port, "the second process did not start listening: \(second.output)")
        while platformIDs.count < count, ContinuousClock.now < deadline + .seconds(60) {
            for message in try await reader.read(atLeast: 1, timeout: .milliseconds(200)) {
                platformIDs.insert(try Funnel_Leads_V1_LeadCaptured(serializedBytes: message.value).platformLeadID)
            }
        }
        await reader.close()
        #expect(platformIDs.count == count, "every lead came out")
        let metrics = try await TestClient.withClient(host: "127.0.0.1", port: listening) { client in
            try await client.execute(.init("/metrics", method: .get, headers: [:], body: nil))
        }.body.map { String(buffer: $0) } ?? ""
        func records(_ outcome: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix("funnel_consumer_records_total") && $0.contains(#"outcome="\#(outcome)""#) }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        let processed = try #require(records("processed"), "\(metrics)")
        #expect(records("duplicate") == 0, "records the first process had processed came again after its graceful exit")
        #expect(processed >= 1 && processed <= Double(count - count / 4), "the second process took over the rest (\(processed))")
        second.signal(SIGTERM)
        #expect(await second.wait(timeout: .seconds(30)) == 0)
    }
}
