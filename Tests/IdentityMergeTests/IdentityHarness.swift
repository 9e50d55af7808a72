import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import IdentityMerge
import Kafka
import NIOCore
import Postgres
import Prometheus
import ServiceKit
import TestSupport

/// identity-merge running in-process on the test stack (broker + PostgreSQL), with its own schema, topic prefix
/// and group, or sharing them with another replica.
final class IdentityHarness: Sendable {
    let prefix: String
    let schema: String
    let group: String
    let port: Int
    let records: RecordBuilder
    let runtime: ServiceRuntime
    private let task: Task<Void, any Error>
    private let stopper: ServiceStopper

    static let adminToken = "test-operator-token-123"
    static let topicNames = ["leads.captured.v1", "identity.registrations.v1", "identity.tags.v1", "identity.customers.v1", "dlq.identity-merge.v1"]

    static func createTopics(prefix: String) throws {
        for topic in topicNames { try BrokerControl().send("create-topic \(prefix)\(topic) 4") }
    }

    /// Starts a replica; pass `sharing` to join another replica's schema, topics and group.
    /// Pass `readingTopicsOf` to read another replica's topics from the start with a schema and group of its own.
    static func start(sharing other: IdentityHarness? = nil, readingTopicsOf source: IdentityHarness? = nil, concurrency: Int = 2) async throws -> IdentityHarness {
        let prefix = other?.prefix ?? source?.prefix ?? TestEnvironment.uniqueName("im") + "."
        if other == nil && source == nil { try createTopics(prefix: prefix) }
        let schema = other?.schema ?? TestEnvironment.uniqueName("im")
        let group = other?.group ?? TestEnvironment.uniqueName("im")
        let settings = try IdentityService.settings(environment: [
            "FUNNEL_POSTGRES_URL": TestEnvironment.postgresURL,
            "FUNNEL_KAFKA_BOOTSTRAP": TestEnvironment.bootstrap,
            "FUNNEL_SCHEMA": schema,
            "FUNNEL_HTTP_PORT": "0",
            "FUNNEL_TOPIC_PREFIX": prefix,
            "FUNNEL_CONSUMER_GROUP": group,
            "FUNNEL_CONSUMER_MAX_RETRIES": "2",
            "FUNNEL_CONSUMER_CONCURRENCY": String(concurrency),
            "FUNNEL_POSTGRES_POOL_SIZE": "4",
            "FUNNEL_ADMIN_TOKEN": adminToken,
            "FUNNEL_PII_PEPPER": RecordBuilder.pepper,
            "FUNNEL_PII_KEYS": "k1:" + Data(RecordBuilder.key).base64EncodedString(),
            "FUNNEL_PII_ACTIVE_KEY": "k1",
        ])
        let runtime = try await ServiceRuntime.prepare(settings: settings, migrations: IdentityService.migrations,
                                                       registry: PrometheusCollectorRegistry(), logger: TestEnvironment.logger("identity"))
        let components = try await IdentityService.Components(runtime: runtime)
        let portBox = LockedBox<Int?>(nil)
        let stopper = ServiceStopper()
        let task = Task { try await components.run(onServerRunning: { port in portBox.withLock { $0 = port } }, signals: false, stopper: stopper) }
        let deadline = ContinuousClock.now + .seconds(20)
        while portBox.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        guard let port = portBox.withLock({ $0 }) else { throw ChildProcessError(description: "identity-merge did not start listening") }
        let topics = IdentityTopics(leads: prefix + "leads.captured.v1", registrations: prefix + "identity.registrations.v1",
                                    tags: prefix + "identity.tags.v1", customers: prefix + "identity.customers.v1")
        let records = RecordBuilder(keyer: settings.makeKeyer(), cipher: try settings.makeCipher(), topics: topics)
        return IdentityHarness(prefix: prefix, schema: schema, group: group, port: port, records: records, runtime: runtime, task: task, stopper: stopper)
    }

    private init(prefix: String, schema: String, group: String, port: Int, records: RecordBuilder, runtime: ServiceRuntime,
                 task: Task<Void, any Error>, stopper: ServiceStopper) {
        self.runtime = runtime
        self.prefix = prefix
        self.schema = schema
        self.group = group
        self.port = port
        self.records = records
        self.task = task
        self.stopper = stopper
    }

    func stop() async {
        await stopper.stop()
        _ = try? await task.value
    }

    /// Waits until `/health/ready` says yes (PostgreSQL, migrations and every consumer assigned).
    func waitUntilReady(timeout: Duration = .seconds(40)) async throws {
        try await waitUntil(timeout: timeout, every: .milliseconds(200), "identity-merge did not become ready") {
            try await request(.get, "/health/ready", token: nil).0 == .ok
        }
    }

    /// Sends a request with the operator token; returns the status, the body as JSON and the headers.
    func request(_ method: HTTPRequest.Method, _ path: String, body: String? = nil, token: String? = adminToken) async throws -> (HTTPResponse.Status, [String: Any], HTTPFields) {
        let response = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            var fields: HTTPFields = [:]
            if let token { fields[.authorization] = "Bearer \(token)" }
            if body != nil { fields[.contentType] = "application/json" }
            return try await client.execute(.init(path, method: method, headers: fields, body: body.map { ByteBuffer(string: $0) }))
        }
        let data = response.body.map { Data(buffer: $0) } ?? Data()
        let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return (response.status, json, response.headers)
    }

    /// Produces the records (as built by ``records``) to their topics, keyed as they are.
    func push(_ messages: [KafkaConsumedMessage]) async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("upstream")), logger: TestEnvironment.logger())
        let results = try await producer.sendBatch(messages.map {
            KafkaOutgoingMessage(topic: $0.topic, key: ($0.key?.isEmpty ?? true) ? nil : $0.key, value: $0.value, headers: $0.headers)
        })
        await producer.shutdown()
        for result in results { _ = try result.get() }
    }

    /// The identifiers of every active customer, grouped (the clustering, independent of customer ids).
    func clustering() async throws -> Set<Set<String>> {
        try await GraphFixture.clustering(schema: schema, postgres: runtime.postgres)
    }

    func readCustomerEvents(atLeast count: Int, settle: Duration = .milliseconds(500)) async throws -> [Funnel_Identity_V1_CustomerEvent] {
        try await read(prefix + "identity.customers.v1", atLeast: count, settle: settle).map {
            try Funnel_Identity_V1_CustomerEvent(serializedBytes: $0.value)
        }
    }

    func read(_ topic: String, atLeast count: Int, settle: Duration = .milliseconds(500)) async throws -> [KafkaConsumedMessage] {
        let reader = try TopicReader(topic: topic)
        let messages = try await reader.read(atLeast: count, timeout: .seconds(40), settle: settle)
        await reader.close()
        return messages
    }
}
