import Foundation
import Kafka
import Testing
import TestSupport

/// marketing-intake's real executable on the test stack, with its own schema, topic prefix and consumer group
/// (for what only a process shows: kill -9, SIGTERM, the metrics it bootstraps).
struct IntakeExecutable {
    let prefix: String
    let schema: String
    let environment: [String: String]
    let binary = TestEnvironment.binDirectory + "/marketing-intake"

    /// `extra` overrides the environment (the HTTP port is 0 and the log level info unless given).
    init(_ name: String, partitions: Int, extra: [String: String] = [:]) throws {
        prefix = TestEnvironment.uniqueName(name) + "."
        schema = TestEnvironment.uniqueName(name)
        for (topic, count) in [("marketing.campaign-leads.v1", partitions), ("leads.captured.v1", partitions), ("dlq.marketing-intake.v1", 1)] {
            try BrokerControl().send("create-topic \(prefix)\(topic) \(count)")
        }
        environment = [
            "FUNNEL_POSTGRES_URL": TestEnvironment.postgresURL, "FUNNEL_KAFKA_BOOTSTRAP": TestEnvironment.bootstrap,
            "FUNNEL_SCHEMA": schema, "FUNNEL_TOPIC_PREFIX": prefix, "FUNNEL_CONSUMER_GROUP": TestEnvironment.uniqueName(name),
            "FUNNEL_HTTP_PORT": "0", "FUNNEL_LOG_LEVEL": "info",
        ].merging(extra) { $1 }
    }

    /// Creates a lead source with the `sources create` subcommand; returns its API key.
    func createSource(named name: String) async throws -> String {
        let create = try ChildProcess(executable: binary, arguments: ["sources", "create", "--name", name, "--channel", "sem"], environment: environment)
        #expect(await create.wait() == 0, "sources create: \(create.output)")
        return try #require(create.output.firstMatch(of: /"api_key" : "([^"]+)"/)?.1).description
    }

    /// Puts one JSON lead per platform lead id on the input topic, keyed by it, with `headers` for lead `i`.
    func produce(_ count: Int, lead: (Int) -> (id: String, json: String), headers: (Int) -> [KafkaHeader] = { _ in [] }) async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("marketing")), logger: TestEnvironment.logger())
        let records = (0..<count).map { i in
            let (id, json) = lead(i)
            return KafkaOutgoingMessage(topic: prefix + "marketing.campaign-leads.v1", key: Array(id.utf8), value: Array(json.utf8),
                                        headers: [KafkaHeader(key: "content-type", text: "application/json")] + headers(i))
        }
        for result in try await producer.sendBatch(records) { _ = try result.get() }
        await producer.shutdown()
    }

    func serve() throws -> ChildProcess {
        try ChildProcess(executable: binary, arguments: ["serve"], environment: environment)
    }

    /// The port `child` listens on, from its log (info level), once it does.
    static func port(of child: ChildProcess, timeout: Duration = .seconds(60)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, child.status == nil {
            if let port = child.output.firstMatch(of: /listening on [0-9.]+:([0-9]+)/).flatMap({ Int($0.1) }) { return port }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ChildProcessError(description: "the service did not start listening: \(child.output.suffix(2_000))")
    }
}
