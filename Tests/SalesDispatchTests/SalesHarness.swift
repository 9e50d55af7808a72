import Contracts
import FastText
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Kafka
import NIOCore
import Postgres
import Prometheus
@testable import SalesDispatch
import ServiceKit
import SwiftProtobuf
import TestSupport

/// sales-dispatch running in-process on the test stack (broker + PostgreSQL) with its own schema, topic prefix and
/// group — or sharing them with another replica.
final class SalesHarness: Sendable {
    let prefix: String
    let schema: String
    let group: String
    let port: Int
    let runtime: ServiceRuntime
    let verifier: EmployeeTokenVerifier
    let scheduler: DeadlineScheduler
    private let task: Task<Void, any Error>
    private let stopper: ServiceStopper

    static let jwtSecret = "test-jwt-secret-of-at-least-32-bytes!!"
    static let topicNames = ["identity.customers.v1", "hr.employees.v1", "callcenter.calls.v1", "sales.conversions.v1", "sales.opportunities.v1",
                             "dlq.sales-dispatch.v1"]

    static func start(sharing other: SalesHarness? = nil) async throws -> SalesHarness {
        let prefix = other?.prefix ?? TestEnvironment.uniqueName("sd") + "."
        if other == nil { for topic in topicNames { _ = try BrokerControl().send("create-topic \(prefix)\(topic) 4") } }
        let schema = other?.schema ?? TestEnvironment.uniqueName("sd")
        let group = other?.group ?? TestEnvironment.uniqueName("sd")
        let settings = try SalesDispatchService.settings(environment: [
            "FUNNEL_POSTGRES_URL": TestEnvironment.postgresURL,
            "FUNNEL_KAFKA_BOOTSTRAP": TestEnvironment.bootstrap,
            "FUNNEL_SCHEMA": schema,
            "FUNNEL_HTTP_PORT": "0",
            "FUNNEL_TOPIC_PREFIX": prefix,
            "FUNNEL_CONSUMER_GROUP": group,
            "FUNNEL_CONSUMER_MAX_RETRIES": "2",
            "FUNNEL_POSTGRES_POOL_SIZE": "4",
            "FUNNEL_JWT_SECRET": jwtSecret,
        ])
        let runtime = try await ServiceRuntime.prepare(settings: settings, migrations: SalesDispatchService.migrations,
                                                       registry: PrometheusCollectorRegistry(), logger: TestEnvironment.logger("sales"))
        var scheduler = DeadlineScheduler.Configuration()
        scheduler.tick = .milliseconds(100)
        let components = try await SalesDispatchService.Components(runtime: runtime, scheduler: scheduler)
        let verifier = components.verifier, dispatchScheduler = components.scheduler
        let portBox = LockedBox<Int?>(nil)
        let stopper = ServiceStopper()
        let task = Task { try await components.run(onServerRunning: { port in portBox.withLock { $0 = port } }, signals: false, stopper: stopper) }
        let deadline = ContinuousClock.now + .seconds(20)
        while portBox.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        guard let port = portBox.withLock({ $0 }) else { throw ChildProcessError(description: "sales-dispatch did not start listening") }
        return SalesHarness(prefix: prefix, schema: schema, group: group, port: port, runtime: runtime, verifier: verifier,
                            scheduler: dispatchScheduler, task: task, stopper: stopper)
    }

    private init(prefix: String, schema: String, group: String, port: Int, runtime: ServiceRuntime, verifier: EmployeeTokenVerifier,
                 scheduler: DeadlineScheduler, task: Task<Void, any Error>,
                 stopper: ServiceStopper) {
        self.prefix = prefix
        self.schema = schema
        self.group = group
        self.port = port
        self.runtime = runtime
        self.verifier = verifier
        self.scheduler = scheduler
        self.task = task
        self.stopper = stopper
    }

    var postgres: PostgresClient { runtime.postgres }

    func stop() async {
        await stopper.stop()
        _ = try? await task.value
    }

    func waitUntilReady(timeout: Duration = .seconds(40)) async throws {
        try await waitUntil(timeout: timeout, every: .milliseconds(200), "sales-dispatch did not become ready") {
            try await request(.get, "/health/ready", as: nil).0 == .ok
        }
    }

    /// A signed employee token (expired when `expires` is in the past).
    func token(_ employee: String, _ role: EmployeeRole, expires: Date = Date() + 3_600) async throws -> String {
        try await verifier.sign(EmployeeClaims(employeeID: employee, role: role, expires: expires))
    }

    /// Sends a request as `employee` (admin "root" by default; nil = no token); returns status, JSON body, headers.
    func request(_ method: HTTPRequest.Method, _ path: String, body: String? = nil, as employee: (String, EmployeeRole)? = ("root", .admin),
                 rawToken: String? = nil) async throws -> (HTTPResponse.Status, [String: Any], HTTPFields) {
        var token = rawToken
        if let employee, token == nil { token = try await self.token(employee.0, employee.1) }
        let bearer = token
        let response = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            var fields: HTTPFields = [:]
            if let bearer { fields[.authorization] = "Bearer \(bearer)" }
            if body != nil { fields[.contentType] = "application/json" }
            return try await client.execute(.init(path, method: method, headers: fields, body: body.map { ByteBuffer(string: $0) }))
        }
        let data = response.body.map { Data(buffer: $0) } ?? Data()
        let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return (response.status, json, response.headers)
    }

    /// PUTs an org (unit "hq", a team per entry) with reps, and a policy document; fails the test on any non-2xx.
    func setUp(teams: [String: [String]], policy: String) async throws {
        try requireOK(try await request(.put, "/v1/org-units/hq", body: #"{"name": "HQ"}"#))
        for (team, reps) in teams.sorted(by: { $0.key < $1.key }) {
            try requireOK(try await request(.put, "/v1/org-units/\(team)-unit", body: #"{"name": "\#(team)", "parent_id": "hq"}"#))
            try requireOK(try await request(.put, "/v1/teams/\(team)", body: #"{"name": "\#(team)", "org_unit_id": "\#(team)-unit"}"#))
            for rep in reps {
                let role = rep.hasPrefix("lead") ? "lead" : "rep"
                try requireOK(try await request(.put, "/v1/reps/\(rep)", body: #"{"team_id": "\#(team)", "name": "\#(rep)", "role": "\#(role)"}"#))
            }
        }
        try requireOK(try await request(.put, "/v1/policies", body: policy))
    }

    func push(_ topic: String, _ messages: [(key: String, message: any SwiftProtobuf.Message)]) async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("upstream")), logger: TestEnvironment.logger())
        let results = try await producer.sendBatch(try messages.map {
            KafkaOutgoingMessage(topic: prefix + topic, key: Array($0.key.utf8), value: try $0.message.serializedBytes(),
                                 headers: [KafkaHeader(key: "content-type", text: "application/protobuf")])
        })
        await producer.shutdown()
        for result in results { _ = try result.get() }
    }

    func pushLeads(_ customers: [UUID], line: String = "python") async throws {
        try await push("identity.customers.v1", customers.map { customer in
            var event = Funnel_Identity_V1_CustomerEvent()
            event.customerID = customer.lowercasedText
            var resolved = Funnel_Identity_V1_CustomerResolved()
            resolved.subjectKind = "lead"
            resolved.subjectID = UUID().lowercasedText
            resolved.courseInterest = line
            resolved.channel = "baidu"
            resolved.phoneMasked = "139****0001"
            resolved.phoneInfo.geo = "北京市"
            event.resolved = resolved
            return (customer.lowercasedText, event)
        })
    }

    func readOpportunityEvents(atLeast count: Int, settle: Duration = .milliseconds(500)) async throws -> [Funnel_Sales_V1_OpportunityEvent] {
        let reader = try TopicReader(topic: prefix + "sales.opportunities.v1")
        let messages = try await reader.read(atLeast: count, timeout: .seconds(40), settle: settle)
        await reader.close()
        return try messages.map { try Funnel_Sales_V1_OpportunityEvent(serializedBytes: $0.value) }
    }

    /// Polls `query` (a count) until it reaches `count`.
    func waitForCount(_ query: PostgresQuery, _ count: Int, timeout: Duration = .seconds(40)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await postgres.query(query).first!.decode(Int.self) >= count { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ChildProcessError(description: "timed out waiting for \(count) rows")
    }
}

/// Throws unless the answer is 2xx (naming the status and the problem).
func requireOK(_ answer: (HTTPResponse.Status, [String: Any], HTTPFields)) throws {
    guard (200..<300).contains(answer.0.code) else {
        throw ChildProcessError(description: "HTTP \(answer.0.code): \(answer.1)")
    }
}
