import Contracts
import FastText
import Foundation
import Postgres
import ServiceKit

extension SalesInputHandler {
    /// HR's hired/changed/left: the org mirror follows, and a leaver's opportunities all leave them.
    func applyEmployee(_ event: Funnel_Hr_V1_EmployeeEvent, policy: DispatchPolicy, version: Int, in connection: PostgresConnection) throws -> HandlerOutcome {
        let id = event.employeeID.trimmingSpaces
        guard !id.isEmpty else { return .rejected(code: "missing_employee_id", reason: "employee_id is empty") }
        var unit = unit(policy, version)
        switch event.change {
        case .hired(let employee), .changed(let employee):
            guard let role = EmployeeRole(rawValue: employee.role.isEmpty ? "rep" : employee.role) else {
                return .rejected(code: "invalid_role", reason: "role must be rep, lead or admin")
            }
            let existing = try connection.query("SELECT weight FROM \(identifier: store.schema).reps WHERE employee_id = \(id)").first?.decode(Int.self)
            let settings = RepSettings(name: employee.name, teamID: employee.teamID, role: role, productLines: employee.productLines,
                                       weight: employee.weight > 0 ? Int(employee.weight) : (existing ?? 1),
                                       dailyNewCap: employee.dailyNewCap > 0 ? Int(employee.dailyNewCap) : nil,
                                       maxHolding: employee.maxHolding > 0 ? Int(employee.maxHolding) : nil)
            if let violation = settings.violations().first { return .rejected(code: violation.code, reason: "\(violation.field): \(violation.detail)") }
            do {
                try org.upsertRep(id: id, settings: settings, unit: &unit, store: store, in: connection)
            } catch let refusal as DispatchRefusal {
                return .rejected(code: refusal.code, reason: refusal.detail)
            }
            try drainQueues(of: settings.teamID, unit: &unit, in: connection)
        case .left(let left):
            guard let team = try connection.query("SELECT team_id FROM \(identifier: store.schema).reps WHERE employee_id = \(id)").first?.decode(String.self) else {
                return .processed([])  // never known here: nothing to release
            }
            let held = try connection.query("""
                SELECT id FROM \(identifier: store.schema).opportunities WHERE owner_id = \(id) AND status = 'assigned'
                """).map { try $0.decode(UUID.self) }
            try store.lock(opportunities: held, extraTeams: [team], into: &unit, in: connection)
            _ = try connection.query("UPDATE \(identifier: store.schema).reps SET active = false, paused = false, left_at = \(unit.now) WHERE employee_id = \(id)")
            unit.reps[id]?.active = false
            let reassign = policy.team(team).leaver == .reassign
            try unit.releaseAll(held, how: "left", actor: "hr", reason: left.reason.isEmpty ? "employee left" : left.reason, redistribute: reassign)
            if reassign { try drainQueues(of: team, unit: &unit, in: connection) }
        case .none:
            return .rejected(code: "missing_change", reason: "the event carries no hired, changed or left")
        }
        _ = try connection.pipeline(store.save(unit))
        return .processed(try events.events(unit.events))
    }

    func drainQueues(of team: String, unit: inout DispatchUnit, in connection: PostgresConnection, limit: Int = 500) throws {
        try store.drainQueues(of: team, unit: &unit, in: connection, limit: limit)
    }

    /// A connected call by the holder is a follow-up: the follow-up deadline moves back.
    func applyCall(_ call: Funnel_Callcenter_V1_CallCompleted, policy: DispatchPolicy, version: Int, in connection: PostgresConnection) throws -> HandlerOutcome {
        guard let id = UUID(uuidString: call.opportunityID) else {
            return .rejected(code: "invalid_opportunity_id", reason: "opportunity_id is not a UUID")
        }
        guard call.connected, !call.employeeID.isEmpty else { return .processed([]) }
        var unit = unit(policy, version)
        try store.lock(opportunities: [id], into: &unit, in: connection)
        guard unit.opportunities[id] != nil else { return .processed([]) }  // not ours (yet): nothing to push back
        let at = call.hasEndedAt ? call.endedAt.date : unit.now
        do {
            try unit.followUp(id, by: call.employeeID, at: at, source: "call", outcome: call.outcome.isEmpty ? "connected" : call.outcome)
        } catch is DispatchRefusal {
            return .processed([])  // a call by someone else does not protect the holder
        }
        _ = try connection.pipeline(store.save(unit) + [
            """
            INSERT INTO \(identifier: store.schema).follow_ups (id, opportunity_id, employee_id, at, source, outcome)
            VALUES (\(newID(at)), \(id), \(call.employeeID), \(at), 'call', \(call.outcome.isEmpty ? "connected" : call.outcome))
            """,
        ])
        return .processed(try events.events(unit.events))
    }

    /// Orders: an open one exempts the opportunity from recycling; a paid one wins it for the holder at
    /// payment time (or the previous holder within the credit window after a transfer).
    func applyConversion(_ conversion: Funnel_Sales_V1_Conversion, policy: DispatchPolicy, version: Int, in connection: PostgresConnection) throws -> HandlerOutcome {
        guard !conversion.orderID.isEmpty else { return .rejected(code: "missing_order_id", reason: "order_id is empty") }
        guard let rawCustomer = UUID(uuidString: conversion.customerID) else { return .rejected(code: "invalid_customer_id", reason: "customer_id is not a UUID") }
        guard ["opened", "paid", "cancelled", "refunded"].contains(conversion.status) else {
            return .rejected(code: "invalid_status", reason: "status must be opened, paid, cancelled or refunded")
        }
        let customer = try survivor(of: rawCustomer, in: connection)
        var unit = unit(policy, version)
        // Which opportunity: the one named, else the customer's open one for the product line, else their only open one.
        var target: UUID?
        if let named = UUID(uuidString: conversion.opportunityID) { target = named } else {
            var peek = unit
            let open = try store.loadOpportunities(.openOf(customers: [customer]), lock: false, into: &peek, in: connection)
            let line = conversion.productLine.isEmpty ? nil : SalesInputHandler.productLine(conversion.productLine)
            target = open.first { peek.opportunities[$0]?.productLine == line } ?? (open.count == 1 ? open[0] : nil)
        }
        let at = conversion.hasOccurredAt ? conversion.occurredAt.date : unit.now
        // The same order and status once only (redelivery from another producer id).
        let fresh = try connection.query("""
            INSERT INTO \(identifier: store.schema).conversions (order_id, opportunity_id, customer_id, status, amount_cents, occurred_at)
            VALUES (\(conversion.orderID + ":" + conversion.status), \(target), \(customer), \(conversion.status), \(conversion.amountCents), \(at))
            ON CONFLICT (order_id) DO NOTHING
            """).affectedRows == 1
        guard fresh, let target else { return .processed([]) }
        try store.lock(opportunities: [target], into: &unit, in: connection)
        guard unit.opportunities[target] != nil else { return .processed([]) }
        switch conversion.status {
        case "opened": unit.orderChanged(target, opened: true)
        case "cancelled": unit.orderChanged(target, opened: false)
        case "paid":
            if (unit.opportunities[target]?.openOrders ?? 0) > 0 { unit.orderChanged(target, opened: false) }
            unit.win(target, orderID: conversion.orderID, amountCents: conversion.amountCents, paidAt: at, history: try store.history(of: target, in: connection))
        default: break  // refunded: recorded; reopening a won opportunity is a manager's decision
        }
        var statements = store.save(unit)
        if let won = unit.events.first(where: { $0.change == "won" }) {
            statements.append("""
                UPDATE \(identifier: store.schema).conversions SET credited_to = \(won.creditedTo.isEmpty ? nil : won.creditedTo)
                WHERE order_id = \(conversion.orderID + ":" + conversion.status)
                """)
        }
        _ = try connection.pipeline(statements)
        return .processed(try events.events(unit.events))
    }
}
