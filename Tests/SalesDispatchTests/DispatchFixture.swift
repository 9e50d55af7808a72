import Contracts
import FastText
import Foundation
import Kafka
import Postgres
@testable import SalesDispatch
import ServiceKit
import SwiftProtobuf
import TestSupport

/// sales-dispatch's logic on a schema of its own in the real PostgreSQL, without the broker: records are handed
/// to the handler inside a transaction as the consume loop would, and time is a pinned clock.
final class DispatchFixture: Sendable {
    let schema: String
    let postgres: PostgresClient
    let clock: DispatchClock
    let handler: SalesInputHandler
    let runner: UnitRunner
    let scheduler: DeadlineScheduler
    let org: OrgStore
    let policies: PolicyStore
    static let topics = SalesTopics(customers: "c", employees: "e", calls: "k", conversions: "v")
    /// 2026-11-02 10:00 in Asia/Shanghai (a Monday).
    static let start = Date(timeIntervalSince1970: 1_793_584_800)

    init() async throws {
        schema = TestEnvironment.uniqueName("sd")
        postgres = TestEnvironment.postgres()
        try await PostgresMigrator(schema: schema, migrations: SalesMigrations.all).migrate(postgres, logger: TestEnvironment.logger())
        clock = DispatchClock(fixed: Self.start)
        policies = PolicyStore(schema: schema)
        org = OrgStore(schema: schema)
        let store = DispatchStore(schema: schema)
        let events = OpportunityEvents(service: "sales-dispatch", topic: "sales.opportunities.v1")
        let newID: @Sendable (Date) -> UUID = { UUIDv7.generate(at: $0) }
        handler = SalesInputHandler(topics: Self.topics, policies: policies, store: store, org: org, events: events, clock: clock, newID: newID)
        runner = UnitRunner(postgres: postgres, policies: policies, store: store, events: events, clock: clock, relay: nil, newID: newID)
        scheduler = DeadlineScheduler(configuration: .init(), runner: runner, handler: handler, logger: TestEnvironment.logger())
    }

    func close() async { await postgres.shutdown() }

    // MARK: org and policy

    func team(_ id: String, unit: String = "root", parent: String? = nil) async throws {
        let org = self.org
        try await postgres.withTransaction { connection in
            if try connection.query("SELECT 1 FROM \(identifier: org.schema).org_units WHERE id = \(unit)").isEmpty {
                try org.upsertUnit(id: unit, name: unit, parent: parent, in: connection)
            }
            try org.upsertTeam(id: id, name: id, orgUnit: unit, in: connection)
        }
    }

    func rep(_ id: String, team: String, role: EmployeeRole = .rep, lines: [String] = [], weight: Int = 1, dailyCap: Int? = nil, maxHolding: Int? = nil) async throws {
        let org = self.org, store = runner.store
        try await runner.run { unit, connection in
            try org.upsertRep(id: id, settings: RepSettings(name: id, teamID: team, role: role, productLines: lines, weight: weight,
                                                            dailyNewCap: dailyCap, maxHolding: maxHolding),
                              unit: &unit, store: store, in: connection)
        }
    }

    @discardableResult
    func publish(_ policy: DispatchPolicy) async throws -> Int {
        try await policies.publish(policy, by: "test", postgres: postgres).version
    }

    // MARK: records

    func process(_ records: [KafkaConsumedMessage]) async throws -> [HandlerOutcome] {
        let handler = self.handler
        return try await postgres.withTransaction { try handler.handle(records, in: $0) }
    }

    /// Events of processed outcomes, decoded.
    func events(_ outcomes: [HandlerOutcome]) throws -> [Funnel_Sales_V1_OpportunityEvent] {
        try outcomes.flatMap { outcome -> [Funnel_Sales_V1_OpportunityEvent] in
            guard case .processed(let events) = outcome else { return [] }
            return try events.map { try Funnel_Sales_V1_OpportunityEvent(serializedBytes: $0.payload) }
        }
    }

    static func record(_ topic: String, _ message: some SwiftProtobuf.Message, key: String = "k") -> KafkaConsumedMessage {
        KafkaConsumedMessage(topic: topic, partition: 0, offset: 0, key: Array(key.utf8), value: try! message.serializedBytes(),
                             headers: [KafkaHeader(key: "content-type", text: "application/protobuf")], timestampMilliseconds: nil)
    }

    static func lead(customer: UUID, line: String = "python", channel: String = "baidu", geo: String = "北京市", test: Bool = false) -> KafkaConsumedMessage {
        var event = Funnel_Identity_V1_CustomerEvent()
        event.customerID = customer.lowercasedText
        var resolved = Funnel_Identity_V1_CustomerResolved()
        resolved.subjectKind = "lead"
        resolved.subjectID = UUID().lowercasedText
        resolved.courseInterest = line
        resolved.channel = channel
        resolved.phoneMasked = "138****8000"
        resolved.phoneKey = "key-\(customer.lowercasedText)"
        resolved.phoneInfo.geo = geo
        resolved.isTest = test
        event.resolved = resolved
        return record(topics.customers, event, key: event.customerID)
    }

    static func merged(survivor: UUID, absorbed: [UUID]) -> KafkaConsumedMessage {
        var event = Funnel_Identity_V1_CustomerEvent()
        event.customerID = survivor.lowercasedText
        var merged = Funnel_Identity_V1_CustomersMerged()
        merged.absorbedIds = absorbed.map(\.lowercasedText)
        merged.linkedBy = "phone"
        event.merged = merged
        return record(topics.customers, event)
    }

    static func erased(_ customer: UUID) -> KafkaConsumedMessage {
        var event = Funnel_Identity_V1_CustomerEvent()
        event.customerID = customer.lowercasedText
        event.erased = Funnel_Identity_V1_CustomerErased()
        return record(topics.customers, event)
    }

    static func left(_ employee: String) -> KafkaConsumedMessage {
        var event = Funnel_Hr_V1_EmployeeEvent()
        event.employeeID = employee
        event.left = Funnel_Hr_V1_EmployeeLeft()
        return record(topics.employees, event)
    }

    static func call(_ opportunity: UUID, by employee: String, at: Date, connected: Bool = true) -> KafkaConsumedMessage {
        var call = Funnel_Callcenter_V1_CallCompleted()
        call.callID = UUID().lowercasedText
        call.opportunityID = opportunity.lowercasedText
        call.employeeID = employee
        call.connected = connected
        call.outcome = connected ? "answered" : "no_answer"
        call.endedAt = Google_Protobuf_Timestamp(date: at)
        return record(topics.calls, call)
    }

    static func conversion(order: String, customer: UUID, line: String = "python", status: String = "paid", at: Date) -> KafkaConsumedMessage {
        var c = Funnel_Sales_V1_Conversion()
        c.orderID = order
        c.customerID = customer.lowercasedText
        c.productLine = line
        c.status = status
        c.amountCents = 199_900
        c.occurredAt = Google_Protobuf_Timestamp(date: at)
        return record(topics.conversions, c)
    }

    // MARK: reading state

    func opportunity(_ id: UUID) async throws -> Opportunity {
        let row = try await postgres.query("SELECT \(sql: DispatchStore.opportunityColumns) FROM \(identifier: schema).opportunities WHERE id = \(id)").first!
        return try DispatchStore.decodeOpportunity(row)
    }

    func opportunities(of customer: UUID) async throws -> [Opportunity] {
        try await postgres.query("SELECT \(sql: DispatchStore.opportunityColumns) FROM \(identifier: schema).opportunities WHERE customer_id = \(customer) ORDER BY created_at")
            .map(DispatchStore.decodeOpportunity)
    }

    func repState(_ id: String) async throws -> RepState {
        let row = try await postgres.query("""
            SELECT employee_id, name, team_id, role, array_to_string(product_lines, chr(31)), weight, daily_new_cap, max_holding, paused, active,
                   holding, new_today, claims_today, counts_day, last_assigned_seq, pass
            FROM \(identifier: schema).reps WHERE employee_id = \(id)
            """).first!
        return try DispatchStore.decodeRep(row)
    }

    func decisionDetail(_ id: String) async throws -> [String: Any] {
        let text = try await postgres.query("SELECT detail::text FROM \(identifier: schema).decisions WHERE id = \(UUID(uuidString: id)!)").first!.decode(String.self)
        return try JSONSerialization.jsonObject(with: Data(DecisionDetail.expanded(text).utf8)) as! [String: Any]
    }
}

extension DispatchPolicy {
    /// One team, everything routed to it.
    static func single(_ team: String, _ teamPolicy: TeamPolicy = TeamPolicy()) -> DispatchPolicy {
        DispatchPolicy(routing: [], fallbackTeam: team, teams: [team: teamPolicy])
    }
}
