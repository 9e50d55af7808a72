import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Kafka
import Logging
@testable import MarketingIntake
import NIOCore
import Prometheus
import ServiceKit
import TestSupport

/// One marketing-intake running in-process on the test stack, with its own schema, topic prefix and group.
final class IntakeHarness: Sendable {
    let prefix: String
    let settings: ServiceSettings
    let runtime: ServiceRuntime
    /// The form route's remembered lead sources.
    let sources: SourceCache<[UInt8], LeadSource>
    /// The webhook route's remembered settings.
    let webhookSources: SourceCache<UUID, WebhookSettings>
    let port: Int
    private let task: Task<Void, any Error>
    private let stopper: ServiceStopper

    static let adminToken = "test-admin-token-123"

    /// Limits high enough for tests that post many leads from one address; rate-limit tests pass their own.
    static var roomyConfiguration: IntakeConfiguration {
        var configuration = IntakeConfiguration()
        configuration.ipRate = 10_000
        configuration.sourceRate = 10_000
        return configuration
    }

    static func start(maxRetries: Int = 1, configuration: IntakeConfiguration = roomyConfiguration) async throws -> IntakeHarness {
        let prefix = TestEnvironment.uniqueName("mi") + "."
        for (topic, partitions) in [("marketing.campaign-leads.v1", 4), ("marketing.campaign-costs.v1", 2), ("leads.captured.v1", 4), ("dlq.marketing-intake.v1", 2)] {
            try BrokerControl().send("create-topic \(prefix)\(topic) \(partitions)")
        }
        let settings = try IntakeService.settings(environment: [
            "FUNNEL_POSTGRES_URL": TestEnvironment.postgresURL,
            "FUNNEL_KAFKA_BOOTSTRAP": TestEnvironment.bootstrap,
            "FUNNEL_SCHEMA": TestEnvironment.uniqueName("mi"),
            "FUNNEL_HTTP_PORT": "0",
            "FUNNEL_TOPIC_PREFIX": prefix,
            "FUNNEL_CONSUMER_GROUP": TestEnvironment.uniqueName("mi"),
            "FUNNEL_CONSUMER_MAX_RETRIES": String(maxRetries),
            "FUNNEL_POSTGRES_POOL_SIZE": "4",
            "FUNNEL_ADMIN_TOKEN": adminToken,
            "FUNNEL_HTTP_MAX_BODY_BYTES": "4096",
        ])
        let runtime = try await ServiceRuntime.prepare(settings: settings, migrations: IntakeService.migrations,
                                                       registry: PrometheusCollectorRegistry(), logger: TestEnvironment.logger("intake"))
        let components = try IntakeService.Components(runtime: runtime, configuration: configuration)
        let (sources, webhookSources) = (components.sources, components.webhookSources)
        let portBox = LockedBox<Int?>(nil)
        let stopper = ServiceStopper()
        let task = Task { try await components.run(onServerRunning: { port in portBox.withLock { $0 = port } }, signals: false, stopper: stopper) }
        let deadline = ContinuousClock.now + .seconds(20)
        while portBox.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        guard let port = portBox.withLock({ $0 }) else { throw ChildProcessError(description: "intake did not start listening") }
        return IntakeHarness(prefix: prefix, settings: settings, runtime: runtime, sources: sources, webhookSources: webhookSources, port: port, task: task, stopper: stopper)
    }

    private init(prefix: String, settings: ServiceSettings, runtime: ServiceRuntime, sources: SourceCache<[UInt8], LeadSource>,
                 webhookSources: SourceCache<UUID, WebhookSettings>, port: Int,
                 task: Task<Void, any Error>, stopper: ServiceStopper) {
        self.stopper = stopper
        self.sources = sources
        self.webhookSources = webhookSources
        self.prefix = prefix
        self.settings = settings
        self.runtime = runtime
        self.port = port
        self.task = task
    }

    func stop() async {
        await stopper.stop()
        _ = try? await task.value
    }

    /// Sends a request; returns the status and the body parsed as a JSON object (empty if none).
    func request(_ method: HTTPRequest.Method, _ path: String, body: String? = nil, headers: HTTPFields = [:]) async throws -> (HTTPResponse.Status, [String: Any], HTTPFields) {
        let response = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            var fields = headers
            if body != nil && fields[.contentType] == nil { fields[.contentType] = "application/json" }
            return try await client.execute(.init(path, method: method, headers: fields, body: body.map { ByteBuffer(string: $0) }))
        }
        let data = response.body.map { Data(buffer: $0) } ?? Data()
        let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return (response.status, json, response.headers)
    }

    /// Creates a lead source through the admin API and returns its id and key.
    func createSource(channel: String = "sem") async throws -> (id: String, name: String, key: String) {
        let name = TestEnvironment.uniqueName("src")
        let (status, json, _) = try await request(.post, "/v1/admin/sources", body: #"{"name": "\#(name)", "default_channel": "\#(channel)"}"#,
                                                  headers: [.authorization: "Bearer \(Self.adminToken)"])
        guard status == .created, let key = json["api_key"] as? String, let source = json["source"] as? [String: Any], let id = source["id"] as? String else {
            throw ChildProcessError(description: "could not create a source: \(status) \(json)")
        }
        return (id, name, key)
    }

    /// Waits until `/health/ready` answers 200 (the consumers joined their group).
    func waitReady() async throws {
        try await waitUntil(timeout: .seconds(30), "intake did not become ready") { try await request(.get, "/health/ready").0 == .ok }
    }

    var admin: HTTPFields { [.authorization: "Bearer \(Self.adminToken)"] }

    func postLead(_ body: String, key: String) async throws -> (HTTPResponse.Status, [String: Any]) {
        let (status, json, _) = try await request(.post, "/v1/leads", body: body, headers: [.authorization: "Bearer \(key)"])
        return (status, json)
    }

    /// Produces raw records to the intake's input topic (or `topic`, a suite name).
    func pushToTopic(_ payloads: [(value: [UInt8], headers: [KafkaHeader])], topic: String = "marketing.campaign-leads.v1") async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("marketing")), logger: TestEnvironment.logger())
        let results = try await producer.sendBatch(payloads.enumerated().map { i, p in
            KafkaOutgoingMessage(topic: prefix + topic, key: Array("k\(i)".utf8), value: p.value, headers: p.headers)
        })
        await producer.shutdown()
        for result in results { _ = try result.get() }
    }

    func readOutput(atLeast count: Int, settle: Duration = .milliseconds(500)) async throws -> [Funnel_Leads_V1_LeadCaptured] {
        try await read(prefix + "leads.captured.v1", atLeast: count, settle: settle).map {
            try Funnel_Leads_V1_LeadCaptured(serializedBytes: $0.value)
        }
    }

    func read(_ topic: String, atLeast count: Int, settle: Duration = .milliseconds(500)) async throws -> [KafkaConsumedMessage] {
        let reader = try TopicReader(topic: topic)
        let messages = try await reader.read(atLeast: count, timeout: .seconds(40), settle: settle)
        await reader.close()
        return messages
    }

    func readDeadLetters(atLeast count: Int) async throws -> [KafkaConsumedMessage] {
        try await read(prefix + "dlq.marketing-intake.v1", atLeast: count)
    }
}
