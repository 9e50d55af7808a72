import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Kafka
import Logging
import NIOCore
@testable import OnlineChat
import Prometheus
import ServiceKit
import TestSupport

/// One online-chat running in-process on the test stack, with its own schema and topic prefix. A second replica
/// on the same schema (`replicaOf:`) shares everything but the process state.
final class ChatHarness: Sendable {
    let prefix: String
    let schema: String
    let settings: ServiceSettings
    let runtime: ServiceRuntime
    let port: Int
    private let task: Task<Void, any Error>
    private let stopper: ServiceStopper

    static let adminToken = "test-admin-token-chat"
    static let pageOrigin = "https://www.example-school.cn"

    static var roomyConfiguration: ChatConfiguration {
        var configuration = ChatConfiguration()
        configuration.sessionRate = 10_000
        configuration.messageRate = 10_000
        configuration.ipMessageRate = 10_000
        configuration.longPollSeconds = 10
        return configuration
    }

    static func start(configuration: ChatConfiguration = roomyConfiguration, replicaOf other: ChatHarness? = nil) async throws -> ChatHarness {
        let prefix = other?.prefix ?? TestEnvironment.uniqueName("oc") + "."
        let schema = other?.schema ?? TestEnvironment.uniqueName("oc")
        if other == nil {
            for (topic, partitions) in [("leads.captured.v1", 4), ("dlq.online-chat.v1", 2), ("identity.customers.v1", 4), ("hr.employees.v1", 2)] {
                try BrokerControl().send("create-topic \(prefix)\(topic) \(partitions)")
            }
        }
        let settings = try ChatService.settings(environment: [
            "FUNNEL_POSTGRES_URL": TestEnvironment.postgresURL,
            "FUNNEL_KAFKA_BOOTSTRAP": TestEnvironment.bootstrap,
            "FUNNEL_SCHEMA": schema,
            "FUNNEL_HTTP_PORT": "0",
            "FUNNEL_TOPIC_PREFIX": prefix,
            "FUNNEL_CONSUMER_GROUP": schema,
            "FUNNEL_CONSUMER_MAX_RETRIES": "1",
            // One group member per process: a second one would make the devbroker rebalance (seconds) at start.
            "FUNNEL_CONSUMER_CONCURRENCY": "1",
            "FUNNEL_POSTGRES_POOL_SIZE": "4",
            "FUNNEL_ADMIN_TOKEN": adminToken,
            "FUNNEL_HTTP_MAX_BODY_BYTES": "8192",
        ])
        let runtime = try await ServiceRuntime.prepare(settings: settings, migrations: ChatService.migrations,
                                                       registry: PrometheusCollectorRegistry(), logger: TestEnvironment.logger("chat"))
        let components = try await ChatService.Components(runtime: runtime, configuration: configuration)
        let portBox = LockedBox<Int?>(nil)
        let stopper = ServiceStopper()
        let task = Task { try await components.run(onServerRunning: { port in portBox.withLock { $0 = port } }, signals: false, stopper: stopper) }
        let deadline = ContinuousClock.now + .seconds(20)
        while portBox.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        guard let port = portBox.withLock({ $0 }) else { throw ChildProcessError(description: "online-chat did not start listening") }
        return ChatHarness(prefix: prefix, schema: schema, settings: settings, runtime: runtime, port: port, task: task, stopper: stopper)
    }

    private init(prefix: String, schema: String, settings: ServiceSettings, runtime: ServiceRuntime, port: Int, task: Task<Void, any Error>, stopper: ServiceStopper) {
        self.prefix = prefix
        self.schema = schema
        self.settings = settings
        self.runtime = runtime
        self.port = port
        self.task = task
        self.stopper = stopper
    }

    func stop() async {
        await stopper.stop()
        _ = try? await task.value
    }

    var admin: HTTPFields { [.authorization: "Bearer \(Self.adminToken)"] }

    /// Sends a request; returns the status, the body as a JSON object (empty if none) and the headers.
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

    /// A GET whose body is text (the widget).
    func raw(_ path: String) async throws -> (status: HTTPResponse.Status, contentType: String?, body: String) {
        let response = try await TestClient.withClient(host: "127.0.0.1", port: port) { try await $0.execute(.init(path, method: .get)) }
        return (response.status, response.headers[.contentType], response.body.map { String(buffer: $0) } ?? "")
    }

    /// Creates a site (standard flow unless `flow` JSON is given) allowing `origins`.
    @discardableResult
    func createSite(id: String = TestEnvironment.uniqueName("site").replacingOccurrences(of: "_", with: "-"), origins: [String] = [pageOrigin],
                    flow: String? = nil, locale: String = "zh") async throws -> String {
        let originList = origins.map { "\"\($0)\"" }.joined(separator: ",")
        let flowPart = flow.map { #", "bot_flow": \#($0)"# } ?? ""
        let (status, json, _) = try await request(.post, "/v1/admin/sites",
                                                  body: #"{"id": "\#(id)", "name": "Demo school", "allowed_origins": [\#(originList)], "locale": "\#(locale)"\#(flowPart)}"#,
                                                  headers: admin)
        guard status == .created else { throw ChildProcessError(description: "could not create a site: \(status) \(json)") }
        return id
    }

    /// Starts a session as a page on `origin` would; returns the token and the whole answer.
    func startSession(site: String, token: String? = nil, origin: String? = pageOrigin,
                      extra: String = #", "page_url": "https://www.example-school.cn/ielts?utm_source=baidu", "utm": {"source": "baidu", "campaign": "spring-ielts"}"#)
        async throws -> (status: HTTPResponse.Status, token: String, json: [String: Any]) {
        var headers: HTTPFields = [:]
        if let origin { headers[.origin] = origin }
        let tokenPart = token.map { #", "token": "\#($0)""# } ?? ""
        let (status, json, _) = try await request(.post, "/v1/chat/sessions", body: #"{"site": "\#(site)"\#(tokenPart)\#(extra)}"#, headers: headers)
        return (status, json["token"] as? String ?? "", json)
    }

    /// Sends a visitor message over HTTP.
    func say(_ text: String, token: String, origin: String? = pageOrigin) async throws -> (HTTPResponse.Status, [String: Any]) {
        var headers: HTTPFields = [.authorization: "Bearer \(token)"]
        if let origin { headers[.origin] = origin }
        let body = String(decoding: try JSONSerialization.data(withJSONObject: ["text": text]), as: UTF8.self)
        let (status, json, _) = try await request(.post, "/v1/chat/messages", body: body, headers: headers)
        return (status, json)
    }

    func readLeads(atLeast count: Int, settle: Duration = .milliseconds(800)) async throws -> [Funnel_Leads_V1_LeadCaptured] {
        let reader = try TopicReader(topic: prefix + "leads.captured.v1")
        let messages = try await reader.read(atLeast: count, timeout: .seconds(30), settle: settle)
        await reader.close()
        return try messages.map { try Funnel_Leads_V1_LeadCaptured(serializedBytes: $0.value) }
    }

    /// Waits until `/health/ready` answers 200 (the erasure consumer joined its group).
    func waitReady() async throws {
        try await waitUntil(timeout: .seconds(60), "online-chat did not become ready") { try await request(.get, "/health/ready").0 == .ok }
    }

    /// Publishes raw records onto the service's `identity.customers.v1` (as identity-merge would), or `topic`.
    func publishCustomerEvents(_ payloads: [(key: String, value: [UInt8], contentType: String)], topic: String = "identity.customers.v1") async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("identity")), logger: TestEnvironment.logger())
        let results = try await producer.sendBatch(payloads.map {
            KafkaOutgoingMessage(topic: prefix + topic, key: Array($0.key.utf8), value: $0.value,
                                 headers: [KafkaHeader(key: "content-type", text: $0.contentType)])
        })
        await producer.shutdown()
        for result in results { _ = try result.get() }
    }

    /// Bodies of the messages in an update or session answer.
    static func bodies(_ json: [String: Any]) -> [String] {
        (json["messages"] as? [[String: Any]] ?? []).compactMap { $0["body"] as? String }
    }

    static func state(_ json: [String: Any]) -> [String: Any] { json["state"] as? [String: Any] ?? [:] }
}
