import Contracts
import FastText
import Foundation
import Kafka
import Postgres
import ServiceKit

/// The full (prefixed) names of the topics sales-dispatch reads.
struct SalesTopics: Sendable {
    let customers: String
    let employees: String
    let calls: String
    let conversions: String
}

/// Consumes `identity.customers.v1`, `hr.employees.v1`, `callcenter.calls.v1` and `sales.conversions.v1`.
///
/// Records are taken in order. Consecutive resolved leads share one working set (their teams locked once,
/// decided in memory, written back in a few statements); any other record closes the run and is applied on
/// its own, so a customer's resolved → merged → erased keep their order.
struct SalesInputHandler: BatchHandler {
    let topics: SalesTopics
    let policies: PolicyStore
    let store: DispatchStore
    let org: OrgStore
    let events: OpportunityEvents
    let clock: DispatchClock
    let newID: @Sendable (Date) -> UUID

    func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome] {
        let (policy, version) = try policies.current(in: connection)
        var outcomes: [HandlerOutcome?] = Array(repeating: nil, count: records.count)
        var run: [(index: Int, demand: Demand)] = []

        func flush() throws {
            guard !run.isEmpty else { return }
            let perRecord = try applyDemands(run.map(\.demand), policy: policy, version: version, in: connection)
            for (position, item) in run.enumerated() { outcomes[item.index] = .processed(try events.events(perRecord[position])) }
            run = []
        }

        for (index, record) in records.enumerated() {
            do {
                switch record.topic {
                case topics.customers:
                    let event = try EventDecoder.decode(Funnel_Identity_V1_CustomerEvent.self, from: record)
                    guard let customer = UUID(uuidString: event.customerID) else {
                        outcomes[index] = .rejected(code: "invalid_customer_id", reason: "customer_id is not a UUID")
                        continue
                    }
                    switch event.change {
                    case .resolved(let resolved):
                        guard resolved.subjectKind == "lead", !resolved.isTest else {
                            outcomes[index] = .processed([])  // registrations and test leads carry no product interest
                            continue
                        }
                        run.append((index, Demand(customerID: customer, productLine: Self.productLine(resolved.courseInterest),
                                                  channel: resolved.channel, region: resolved.phoneInfo.geo,
                                                  phoneMasked: resolved.phoneMasked.isEmpty ? nil : resolved.phoneMasked,
                                                  phoneKey: resolved.phoneKey.isEmpty ? nil : resolved.phoneKey,
                                                  campaignID: resolved.campaignID.isEmpty ? nil : resolved.campaignID,
                                                  subject: "lead:\(resolved.subjectID)")))
                    case .merged(let merged):
                        try flush()
                        let absorbed = merged.absorbedIds.compactMap(UUID.init(uuidString:))
                        outcomes[index] = .processed(try events.events(try applyMerge(survivor: customer, absorbed: absorbed, linkedBy: merged.linkedBy,
                                                                                       policy: policy, version: version, in: connection)))
                    case .erased(let erased):
                        try flush()
                        let ids = [customer] + erased.absorbedIds.compactMap(UUID.init(uuidString:))
                        outcomes[index] = .processed(try events.events(try applyErasure(customers: ids, policy: policy, version: version, in: connection)))
                    case .unmerged, .tagged, .none:
                        outcomes[index] = .processed([])
                    }
                case topics.employees:
                    try flush()
                    let event = try EventDecoder.decode(Funnel_Hr_V1_EmployeeEvent.self, from: record)
                    outcomes[index] = try applyEmployee(event, policy: policy, version: version, in: connection)
                case topics.calls:
                    try flush()
                    let call = try EventDecoder.decode(Funnel_Callcenter_V1_CallCompleted.self, from: record)
                    outcomes[index] = try applyCall(call, policy: policy, version: version, in: connection)
                case topics.conversions:
                    try flush()
                    let conversion = try EventDecoder.decode(Funnel_Sales_V1_Conversion.self, from: record)
                    outcomes[index] = try applyConversion(conversion, policy: policy, version: version, in: connection)
                default:
                    outcomes[index] = .rejected(code: "unknown_topic", reason: "sales-dispatch does not consume \(record.topic)")
                }
            } catch let error as EventDecodingError {
                outcomes[index] = .rejected(error)
            }
        }
        try flush()
        return outcomes.map { $0! }
    }

    /// The product line of a lead's course interest (`general` when the lead named none).
    static func productLine(_ courseInterest: String) -> String {
        let line = courseInterest.trimmingSpaces.lowercased()
        return line.isEmpty ? "general" : line
    }

    func unit(_ policy: DispatchPolicy, _ version: Int) -> DispatchUnit {
        DispatchUnit(policy: policy, policyVersion: version, now: clock.now(), newID: newID)
    }

    /// Creates or re-inquires opportunities for resolved leads; returns each demand's changes.
    func applyDemands(_ demands: [Demand], policy: DispatchPolicy, version: Int, in connection: PostgresConnection) throws -> [[OpportunityChange]] {
        var unit = unit(policy, version)
        let customers = Array(Set(demands.map(\.customerID)))
        var teams: Set<String> = []
        for demand in demands { teams.insert(policy.route(productLine: demand.productLine, channel: demand.channel, region: demand.region).team) }
        try store.lockForDemands(teams: teams, customers: customers, into: &unit, in: connection)
        var open: [String: UUID] = [:]
        for o in unit.opportunities.values { open["\(o.customerID.lowercasedText)|\(o.productLine)"] = o.id }
        var perDemand: [[OpportunityChange]] = []
        for demand in demands {
            let before = unit.events.count
            let key = "\(demand.customerID.lowercasedText)|\(demand.productLine)"
            if let existing = open[key] {
                unit.reinquire(existing, demand: demand)
            } else {
                open[key] = unit.create(demand)
            }
            perDemand.append(Array(unit.events[before...]))
        }
        _ = try connection.pipeline(store.save(unit))
        return perDemand
    }

    func applyMerge(survivor: UUID, absorbed: [UUID], linkedBy: String, policy: DispatchPolicy, version: Int,
                    in connection: PostgresConnection) throws -> [OpportunityChange] {
        var unit = unit(policy, version)
        var peek = unit
        let absorbedIDs = try store.loadOpportunities(.allOf(customers: absorbed), lock: false, into: &peek, in: connection)
        let survivorIDs = try store.loadOpportunities(.openOf(customers: [survivor]), lock: false, into: &peek, in: connection)
        try store.lock(opportunities: absorbedIDs + survivorIDs, into: &unit, in: connection)
        var survivorOpen: [String: UUID] = [:]
        for id in survivorIDs { if let o = unit.opportunities[id], o.status.isOpen { survivorOpen[o.productLine] = id } }
        unit.mergeCustomer(absorbedOpportunities: absorbedIDs, survivor: survivor, survivorOpen: survivorOpen,
                           decisionDetail: ["survivor": survivor.lowercasedText, "linked_by": linkedBy])
        var statements = store.save(unit)
        if !absorbed.isEmpty {
            statements.append("""
                INSERT INTO \(identifier: store.schema).customer_aliases (absorbed_id, survivor_id)
                SELECT a, \(survivor) FROM unnest(\(PostgresArray(absorbed.map { Optional($0) }))::uuid[]) a
                ON CONFLICT (absorbed_id) DO UPDATE SET survivor_id = EXCLUDED.survivor_id
                """)
            statements.append("""
                UPDATE \(identifier: store.schema).customer_aliases SET survivor_id = \(survivor)
                WHERE survivor_id = ANY(\(PostgresArray(absorbed.map { Optional($0) })))
                """)
        }
        _ = try connection.pipeline(statements)
        return unit.events
    }

    func applyErasure(customers: [UUID], policy: DispatchPolicy, version: Int, in connection: PostgresConnection) throws -> [OpportunityChange] {
        var unit = unit(policy, version)
        let aliases = try connection.query("""
            SELECT absorbed_id FROM \(identifier: store.schema).customer_aliases WHERE survivor_id = ANY(\(PostgresArray(customers.map { Optional($0) })))
            """).map { try $0.decode(UUID.self) }
        var peek = unit
        let ids = try store.loadOpportunities(.allOf(customers: customers + aliases), lock: false, into: &peek, in: connection)
        try store.lock(opportunities: ids, into: &unit, in: connection)
        for id in ids { unit.erase(id) }
        _ = try connection.pipeline(store.save(unit) + [
            "UPDATE \(identifier: store.schema).follow_ups SET note = NULL WHERE opportunity_id = ANY(\(PostgresArray(ids.map { Optional($0) })))",
        ])
        return unit.events
    }

    /// The customer id after merges.
    func survivor(of customer: UUID, in connection: PostgresConnection) throws -> UUID {
        try connection.query("SELECT survivor_id FROM \(identifier: store.schema).customer_aliases WHERE absorbed_id = \(customer)").first?
            .decode(UUID.self) ?? customer
    }
}
