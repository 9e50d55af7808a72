import Contracts
import FastText
import Foundation
import Postgres
import ServiceKit

/// What a simulation found, next to what really happened in the same range.
struct SimulationReport: Codable, Sendable {
    struct RepLine: Codable, Sendable {
        let employeeID: String
        let simulatedAssigned: Int
        let actualAssigned: Int
        let simulatedRecycledFrom: Int
        let difference: Int
        enum CodingKeys: String, CodingKey {
            case difference
            case employeeID = "employee_id"
            case simulatedAssigned = "simulated_assigned"
            case actualAssigned = "actual_assigned"
            case simulatedRecycledFrom = "simulated_recycled_from"
        }
    }
    let from: Date
    let to: Date
    let inputs: Int
    let reps: [RepLine]
    let simulatedPoolAtEnd: Int
    let simulatedQueuedAtEnd: Int
    let simulatedRecycles: Int
    let actualRecycles: Int
    let simulatedWarnings: Int
    let simulatedWon: Int
    let simulatedQueuedByTeam: [String: Int]
    let notes: [String]
    enum CodingKeys: String, CodingKey {
        case from, to, inputs, reps, notes
        case simulatedPoolAtEnd = "simulated_pool_at_end"
        case simulatedQueuedAtEnd = "simulated_queued_at_end"
        case simulatedRecycles = "simulated_recycles"
        case actualRecycles = "actual_recycles"
        case simulatedWarnings = "simulated_warnings"
        case simulatedWon = "simulated_won"
        case simulatedQueuedByTeam = "simulated_queued_by_team"
    }
}

/// Replays the stored inputs of a time range (new opportunities and re-inquiries, follow-ups, deals) against a
/// candidate policy, in memory, with the same engine and rules as production: routing, strategies, caps and
/// day roll-over, working hours, deadlines, warnings and recycling fire in virtual time. Nothing is written.
struct PolicySimulator: Sendable {
    let schema: String
    /// At most this many inputs per simulation (a larger range is refused with 422).
    let maxInputs = 200_000

    func simulate(policy: DispatchPolicy, from: Date, to: Date, in connection: PostgresConnection) throws -> SimulationReport {
        var unit = DispatchUnit(policy: policy, policyVersion: -1, now: from) { UUIDv7.generate(at: $0) }
        for row in try connection.query("SELECT id, name, org_unit_id FROM \(identifier: schema).teams") {
            let (id, name, orgUnit) = try row.decode(String.self, String.self, String.self)
            unit.teams[id] = TeamState(id: id, name: name, orgUnitID: orgUnit)
        }
        for row in try connection.query("""
            SELECT employee_id, name, team_id, role, array_to_string(product_lines, chr(31)), weight, daily_new_cap, max_holding, paused, active,
                   holding, new_today, claims_today, counts_day, last_assigned_seq, pass
            FROM \(identifier: schema).reps WHERE active
            """) {
            var rep = try DispatchStore.decodeRep(row)
            // Everyone starts the range level: empty-handed, unpaused, first in rotation.
            rep.holding = 0; rep.newToday = 0; rep.claimsToday = 0; rep.countsDay = ""; rep.lastAssignedSeq = 0; rep.pass = 0; rep.paused = false
            unit.setRep(rep)
        }
        // The range's inputs: new opportunities, re-inquiries, follow-ups and payments, in time order.
        let inputs = try connection.query("""
            SELECT at, kind, opportunity_id, product_line, channel, region FROM (
                SELECT created_at AS at, 'demand' AS kind, id AS opportunity_id, product_line, channel, region, 0 AS o
                FROM \(identifier: schema).opportunities
                WHERE id >= \(UUIDv7.lowest(at: from)) AND id < \(UUIDv7.lowest(at: to + 0.002)) AND created_at >= \(from) AND created_at < \(to)
                UNION ALL
                SELECT d.created_at, 'demand', d.opportunity_id, o.product_line, coalesce(d.detail ->> 'channel', o.channel), o.region, 1
                FROM \(identifier: schema).decisions d JOIN \(identifier: schema).opportunities o ON o.id = d.opportunity_id
                WHERE d.kind = 'reinquired' AND d.created_at >= \(from) AND d.created_at < \(to)
                UNION ALL
                SELECT f.at, 'follow_up', f.opportunity_id, '', '', '', 2 FROM \(identifier: schema).follow_ups f WHERE f.at >= \(from) AND f.at < \(to)
                UNION ALL
                SELECT c.occurred_at, 'deal', c.opportunity_id, '', '', '', 3 FROM \(identifier: schema).conversions c
                WHERE c.status = 'paid' AND c.opportunity_id IS NOT NULL AND c.occurred_at >= \(from) AND c.occurred_at < \(to)
            ) inputs ORDER BY at, o, opportunity_id LIMIT \(maxInputs + 1)
            """).map { row -> DispatchInput in
            let (at, kind, id, line, channel, region) = try row.decode(Date.self, String.self, UUID.self, String.self, String.self, String.self)
            return DispatchInput(kind: kind, opportunityID: id, productLine: line, channel: channel, region: region, at: at)
        }
        guard inputs.count <= maxInputs else { throw DispatchRefusal("range_too_large", "more than \(maxInputs) inputs in the range; narrow it") }

        var timers = DeadlineHeap()
        var warnings = 0
        func schedule(_ unit: inout DispatchUnit) {
            for id in unit.retimed {
                guard let o = unit.opportunities[id] else { continue }
                for d in o.deadlines(unit.policy.team(o.teamID)) { timers.push(d.due, id, d.kind) }
            }
            unit.retimed.removeAll()
        }
        func fire(until t: Date, _ unit: inout DispatchUnit) {
            while let next = timers.peek(), next.due <= t {
                timers.pop()
                guard let o = unit.opportunities[next.id], o.deadlines(unit.policy.team(o.teamID)).contains(where: { $0.kind == next.kind && $0.due == next.due })
                else { continue }  // superseded by a follow-up or a change
                unit.now = next.due
                switch next.kind {
                case .followUpWarning, .dealWarning:
                    unit.warn(next.id, deadline: next.kind)
                    warnings += 1
                case .followUp, .deal: unit.recycle(next.id, deadline: next.kind)
                }
                schedule(&unit)
            }
        }
        for input in inputs {
            fire(until: input.at, &unit)
            unit.now = input.at
            switch input.kind {
            case "demand":
                let demand = Demand(customerID: input.opportunityID, productLine: input.productLine, channel: input.channel, region: input.region,
                                    subject: "simulated")
                if let existing = unit.opportunities[input.opportunityID], existing.status.isOpen {
                    unit.reinquire(existing.id, demand: demand)
                } else if unit.opportunities[input.opportunityID] == nil {
                    _ = unit.create(demand, id: input.opportunityID)
                }
            case "follow_up":
                if let o = unit.opportunities[input.opportunityID], o.status == Opportunity.Status.assigned, let owner = o.ownerID {
                    try? unit.followUp(o.id, by: owner, at: input.at, source: "replay", outcome: "replayed")
                }
            case "deal":
                if let o = unit.opportunities[input.opportunityID], o.status.isOpen {
                    let history = o.ownerID.map { [OwnershipInterval(employeeID: $0, from: o.assignedAt ?? input.at, to: nil, openedHow: "assigned", closedHow: nil)] } ?? []
                    unit.win(o.id, orderID: "replay", amountCents: 0, paidAt: input.at, history: history)
                }
            default: break
            }
            schedule(&unit)
        }
        fire(until: to, &unit)

        var simulated: [String: Int] = [:], recycledFrom: [String: Int] = [:]
        var recycles = 0, won = 0
        for event in unit.events {
            switch event.change {
            case "assigned": simulated[event.opportunity.ownerID ?? "", default: 0] += 1
            case "recycled":
                recycles += 1
                recycledFrom[event.previousOwnerID ?? "", default: 0] += 1
            case "won": won += 1
            default: break
            }
        }
        var actual: [String: Int] = [:]
        for row in try connection.query("""
            SELECT employee_id, count(*) FROM \(identifier: schema).ownership
            WHERE started_at >= \(from) AND started_at < \(to) AND opened_how = 'assigned' GROUP BY employee_id
            """) {
            let (rep, n) = try row.decode(String.self, Int.self)
            actual[rep] = n
        }
        let actualRecycles = try connection.query("""
            SELECT count(*) FROM \(identifier: schema).decisions WHERE kind IN ('reinquired', 'recycled') AND kind = 'recycled'
              AND created_at >= \(from) AND created_at < \(to)
            """).first!.decode(Int.self)
        let everyone = Set(simulated.keys).union(actual.keys).union(unit.reps.keys).sorted()
        var lines: [SimulationReport.RepLine] = []
        for rep in everyone {
            let s = simulated[rep] ?? 0, a = actual[rep] ?? 0
            lines.append(SimulationReport.RepLine(employeeID: rep, simulatedAssigned: s, actualAssigned: a, simulatedRecycledFrom: recycledFrom[rep] ?? 0,
                                                  difference: s - a))
        }
        let pooled = unit.opportunities.values.filter { $0.status == .pool }.count
        let queued = unit.opportunities.values.filter { $0.status == .queued }.count
        var queuedByTeam: [String: Int] = [:]
        for o in unit.opportunities.values where o.status == .queued { queuedByTeam[o.teamID, default: 0] += 1 }
        return SimulationReport(
            from: from, to: to, inputs: inputs.count,
            reps: lines, simulatedPoolAtEnd: pooled, simulatedQueuedAtEnd: queued,
            simulatedRecycles: recycles, actualRecycles: actualRecycles, simulatedWarnings: warnings, simulatedWon: won,
            simulatedQueuedByTeam: queuedByTeam,
            notes: ["the org as it is now, every rep starting the range empty-handed",
                    "claims from the pool are people's choices and are not replayed; pooled opportunities stay in the pool",
                    "follow-ups are credited to whoever holds the opportunity in the simulation"]
        )
    }
}

/// A min-heap of deadlines by due time.
struct DeadlineHeap {
    struct Item { let due: Date; let id: UUID; let kind: DeadlineKind }
    private var items: [Item] = []

    func peek() -> Item? { items.first }

    mutating func push(_ due: Date, _ id: UUID, _ kind: DeadlineKind) {
        items.append(Item(due: due, id: id, kind: kind))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].due < items[parent].due else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && items[l].due < items[m].due { m = l }
            if r < items.count && items[r].due < items[m].due { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
    }
}
