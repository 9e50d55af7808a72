import Foundation
import Postgres

/// Teams changed between reading and locking (an opportunity moved team meanwhile): the batch is retried.
struct TeamsChangedError: Error, CustomStringConvertible {
    var description: String { "an opportunity changed team while its teams were being locked; retrying" }
}

/// Loads the working set of a decision (locking it) and writes the unit's changes back.
///
/// Locking order, on every path (consumer, HTTP, scheduler): teams first (`FOR UPDATE`, sorted by id), then
/// opportunities (`FOR UPDATE`, sorted by id). A rep's counters change only under their team's lock, so two
/// replicas deciding for the same team serialise and caps hold; an opportunity row is held by one owner.
struct DispatchStore: Sendable {
    let schema: String

    static let opportunityColumns: StaticString = """
        id, customer_id, product_line, status, team_id, owner_id, previous_owner_id, cooldown_until, locked, open_orders, paid, priority,
        channel, region, phone_masked, phone_key, campaign_id, created_at, assigned_at, last_follow_up_at, follow_up_due, deal_due,
        follow_up_warned, deal_warned, merged_into, reinquiries
        """

    /// Locks `teamIDs` (sorted) and loads them with their reps into `unit`; teams already loaded are skipped.
    func lockTeams(_ teamIDs: Set<String>, into unit: inout DispatchUnit, in connection: PostgresConnection) throws {
        let wanted = teamIDs.subtracting(unit.teams.keys).sorted()
        guard !wanted.isEmpty else { return }
        let ids = PostgresArray(wanted.map { Optional($0) })
        let results = try connection.pipeline([
            "SELECT id, name, org_unit_id, sequence, virtual_time FROM \(identifier: schema).teams WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE",
            """
            SELECT employee_id, name, team_id, role, array_to_string(product_lines, chr(31)), weight, daily_new_cap, max_holding, paused, active,
                   holding, new_today, claims_today, counts_day, last_assigned_seq, pass
            FROM \(identifier: schema).reps WHERE team_id = ANY(\(ids))
            """,
        ])
        for row in results[0] {
            let (id, name, unitID, sequence, virtualTime) = try row.decode(String.self, String.self, String.self, Int64.self, Double.self)
            unit.teams[id] = TeamState(id: id, name: name, orgUnitID: unitID, sequence: sequence, virtualTime: virtualTime)
        }
        for row in results[1] {
            let rep = try Self.decodeRep(row)
            unit.reps[rep.id] = rep
        }
    }

    static func decodeRep(_ row: PostgresRow) throws -> RepState {
        let (id, name, team, role, lines, weight, dailyCap, maxHolding, paused, active) =
            try row.decode(String.self, String.self, String.self, String.self, String.self, Int.self, Int?.self, Int?.self, Bool.self, Bool.self)
        let (_, _, _, _, _, _, _, _, _, _, holding, newToday, claims, day, seq, pass) =
            try row.decode(String.self, String?.self, String?.self, String?.self, String?.self, Int?.self, Int?.self, Int?.self, Bool?.self, Bool?.self,
                           Int.self, Int.self, Int.self, String.self, Int64.self, Double.self)
        return RepState(id: id, name: name, teamID: team, role: .init(rawValue: role) ?? .rep,
                        productLines: lines.isEmpty ? [] : lines.split(separator: "\u{1F}").map(String.init), weight: weight,
                        dailyNewCap: dailyCap, maxHolding: maxHolding, paused: paused, active: active, holding: holding, newToday: newToday,
                        claimsToday: claims, countsDay: day, lastAssignedSeq: seq, pass: pass)
    }

    /// Which opportunities to load.
    enum Selection {
        case ids([UUID])
        /// Open ones of these customers.
        case openOf(customers: [UUID])
        /// All of these customers.
        case allOf(customers: [UUID])
    }

    /// Loads the selected opportunities (`FOR UPDATE` when `lock`) into `unit`.
    @discardableResult
    func loadOpportunities(_ selection: Selection, lock: Bool, into unit: inout DispatchUnit, in connection: PostgresConnection) throws -> [UUID] {
        let query: PostgresQuery
        switch (selection, lock) {
        case (.ids(let ids), true):
            query = "SELECT \(sql: Self.opportunityColumns) FROM \(identifier: schema).opportunities WHERE id = ANY(\(PostgresArray(ids.map { Optional($0) }))) ORDER BY id FOR UPDATE"
        case (.ids(let ids), false):
            query = "SELECT \(sql: Self.opportunityColumns) FROM \(identifier: schema).opportunities WHERE id = ANY(\(PostgresArray(ids.map { Optional($0) })))"
        case (.openOf(let customers), let lock):
            let c = PostgresArray(customers.map { Optional($0) })
            query = lock
                ? "SELECT \(sql: Self.opportunityColumns) FROM \(identifier: schema).opportunities WHERE customer_id = ANY(\(c)) AND status IN ('queued', 'assigned', 'pool') ORDER BY id FOR UPDATE"
                : "SELECT \(sql: Self.opportunityColumns) FROM \(identifier: schema).opportunities WHERE customer_id = ANY(\(c)) AND status IN ('queued', 'assigned', 'pool')"
        case (.allOf(let customers), let lock):
            let c = PostgresArray(customers.map { Optional($0) })
            query = lock
                ? "SELECT \(sql: Self.opportunityColumns) FROM \(identifier: schema).opportunities WHERE customer_id = ANY(\(c)) ORDER BY id FOR UPDATE"
                : "SELECT \(sql: Self.opportunityColumns) FROM \(identifier: schema).opportunities WHERE customer_id = ANY(\(c))"
        }
        var ids: [UUID] = []
        for row in try connection.query(query) {
            let opportunity = try Self.decodeOpportunity(row)
            unit.opportunities[opportunity.id] = opportunity
            ids.append(opportunity.id)
        }
        return ids
    }

    /// Locks the opportunities `ids` and their teams in the standard order, retrying when one moved team.
    func lock(opportunities ids: [UUID], extraTeams: Set<String> = [], into unit: inout DispatchUnit, in connection: PostgresConnection) throws {
        let idArray = PostgresArray(ids.map { Optional($0) })
        let teamRows = try connection.query("SELECT DISTINCT team_id FROM \(identifier: schema).opportunities WHERE id = ANY(\(idArray))")
        var teams = extraTeams
        for row in teamRows { teams.insert(try row.decode(String.self)) }
        try lockTeams(teams, into: &unit, in: connection)
        try loadOpportunities(.ids(ids), lock: true, into: &unit, in: connection)
        for id in ids {
            if let opportunity = unit.opportunities[id], !teams.contains(opportunity.teamID), !opportunity.teamID.isEmpty { throw TeamsChangedError() }
        }
    }

    static func decodeOpportunity(_ row: PostgresRow) throws -> Opportunity {
        let (id, customer, line, status, team, owner, previous, cooldown, locked, orders, paid, priority) =
            try row.decode(UUID.self, UUID.self, String.self, String.self, String.self, String?.self, String?.self, Date?.self, Bool.self, Int.self,
                           Bool.self, Int.self)
        var o = Opportunity(id: id, customerID: customer, productLine: line, status: Opportunity.Status(rawValue: status) ?? .pool, teamID: team,
                            channel: try row.decode(column: "channel", as: String.self), region: try row.decode(column: "region", as: String.self),
                            createdAt: try row.decode(column: "created_at", as: Date.self))
        o.ownerID = owner
        o.previousOwnerID = previous
        o.cooldownUntil = cooldown
        o.locked = locked
        o.openOrders = orders
        o.paid = paid
        o.priority = priority
        o.phoneMasked = try row.decode(column: "phone_masked", as: String?.self)
        o.phoneKey = try row.decode(column: "phone_key", as: String?.self)
        o.campaignID = try row.decode(column: "campaign_id", as: String?.self)
        o.assignedAt = try row.decode(column: "assigned_at", as: Date?.self)
        o.lastFollowUpAt = try row.decode(column: "last_follow_up_at", as: Date?.self)
        o.followUpDue = try row.decode(column: "follow_up_due", as: Date?.self)
        o.dealDue = try row.decode(column: "deal_due", as: Date?.self)
        o.followUpWarned = try row.decode(column: "follow_up_warned", as: Bool.self)
        o.dealWarned = try row.decode(column: "deal_warned", as: Bool.self)
        o.mergedInto = try row.decode(column: "merged_into", as: UUID?.self)
        o.reinquiries = try row.decode(column: "reinquiries", as: Int.self)
        return o
    }

    /// The statements that write `unit` back (teams, reps, opportunities, deadlines, ownership, decisions, inputs).
    func save(_ unit: DispatchUnit) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        let teams = unit.changedTeams.sorted().compactMap { unit.teams[$0] }
        if !teams.isEmpty {
            statements.append("""
                UPDATE \(identifier: schema).teams t SET sequence = u.s, virtual_time = u.v, updated_at = now()
                FROM unnest(\(PostgresArray(teams.map { Optional($0.id) }))::text[], \(PostgresArray(teams.map { Optional($0.sequence) }))::bigint[],
                            \(PostgresArray(teams.map { Optional($0.virtualTime) }))::float8[]) AS u(id, s, v)
                WHERE t.id = u.id
                """)
        }
        let reps = unit.changedReps.sorted().compactMap { unit.reps[$0] }
        if !reps.isEmpty {
            statements.append("""
                UPDATE \(identifier: schema).reps r SET holding = u.h, new_today = u.n, claims_today = u.c, counts_day = u.d,
                    last_assigned_seq = u.s, pass = u.p, paused = u.paused, active = u.active, updated_at = now()
                FROM unnest(\(PostgresArray(reps.map { Optional($0.id) }))::text[], \(PostgresArray(reps.map { Optional(Int64($0.holding)) }))::int[],
                            \(PostgresArray(reps.map { Optional(Int64($0.newToday)) }))::int[], \(PostgresArray(reps.map { Optional(Int64($0.claimsToday)) }))::int[],
                            \(PostgresArray(reps.map { Optional($0.countsDay) }))::text[], \(PostgresArray(reps.map { Optional($0.lastAssignedSeq) }))::bigint[],
                            \(PostgresArray(reps.map { Optional($0.pass) }))::float8[], \(PostgresArray(reps.map { Optional($0.paused) }))::boolean[],
                            \(PostgresArray(reps.map { Optional($0.active) }))::boolean[]) AS u(id, h, n, c, d, s, p, paused, active)
                WHERE r.employee_id = u.id
                """)
        }
        let opportunities = unit.changedOpportunities.sorted().compactMap { unit.opportunities[$0] }
        if !opportunities.isEmpty {
            statements.append(upsert(opportunities))
        }
        let retimed = unit.retimed.sorted().compactMap { unit.opportunities[$0] }
        if !retimed.isEmpty {
            statements.append("DELETE FROM \(identifier: schema).deadlines WHERE opportunity_id = ANY(\(PostgresArray(retimed.map { Optional($0.id) })))")
            var rows: [(UUID, String, Date)] = []
            for opportunity in retimed {
                for deadline in opportunity.deadlines(unit.policy.team(opportunity.teamID)) { rows.append((opportunity.id, deadline.kind.rawValue, deadline.due)) }
            }
            if !rows.isEmpty {
                statements.append("""
                    INSERT INTO \(identifier: schema).deadlines (opportunity_id, kind, due_at)
                    SELECT * FROM unnest(\(PostgresArray(rows.map { Optional($0.0) }))::uuid[], \(PostgresArray(rows.map { Optional($0.1) }))::text[],
                                         \(PostgresArray(rows.map { Optional($0.2) }))::timestamptz[])
                    """)
            }
        }
        statements += ownershipStatements(unit.ownership)
        if !unit.decisions.isEmpty {
            let d = unit.decisions
            statements.append("""
                INSERT INTO \(identifier: schema).decisions (id, opportunity_id, kind, policy_version, actor, detail, created_at)
                SELECT * FROM unnest(\(PostgresArray(d.map { Optional($0.id) }))::uuid[], \(PostgresArray(d.map(\.opportunityID)))::uuid[],
                                     \(PostgresArray(d.map { Optional($0.kind) }))::text[], \(PostgresArray(d.map { Optional(Int64($0.policyVersion)) }))::int[],
                                     \(PostgresArray(d.map { Optional($0.actor) }))::text[], \(PostgresArray(d.map { Optional($0.detail) }))::jsonb[],
                                     \(PostgresArray(d.map { Optional($0.at) }))::timestamptz[])
                """)
        }
        if !unit.inputs.isEmpty {
            let i = unit.inputs
            statements.append("""
                INSERT INTO \(identifier: schema).dispatch_inputs (at, kind, opportunity_id, product_line, channel, region)
                SELECT * FROM unnest(\(PostgresArray(i.map { Optional($0.at) }))::timestamptz[], \(PostgresArray(i.map { Optional($0.kind) }))::text[],
                                     \(PostgresArray(i.map { Optional($0.opportunityID) }))::uuid[], \(PostgresArray(i.map { Optional($0.productLine) }))::text[],
                                     \(PostgresArray(i.map { Optional($0.channel) }))::text[], \(PostgresArray(i.map { Optional($0.region) }))::text[])
                """)
        }
        return statements
    }

    private func upsert(_ o: [Opportunity]) -> PostgresQuery {
        """
        INSERT INTO \(identifier: schema).opportunities (\(sql: Self.opportunityColumns))
        SELECT * FROM unnest(
            \(PostgresArray(o.map { Optional($0.id) }))::uuid[], \(PostgresArray(o.map { Optional($0.customerID) }))::uuid[],
            \(PostgresArray(o.map { Optional($0.productLine) }))::text[], \(PostgresArray(o.map { Optional($0.status.rawValue) }))::text[],
            \(PostgresArray(o.map { Optional($0.teamID) }))::text[], \(PostgresArray(o.map(\.ownerID)))::text[],
            \(PostgresArray(o.map(\.previousOwnerID)))::text[], \(PostgresArray(o.map(\.cooldownUntil)))::timestamptz[],
            \(PostgresArray(o.map { Optional($0.locked) }))::boolean[], \(PostgresArray(o.map { Optional(Int64($0.openOrders)) }))::int[],
            \(PostgresArray(o.map { Optional($0.paid) }))::boolean[], \(PostgresArray(o.map { Optional(Int64($0.priority)) }))::int[],
            \(PostgresArray(o.map { Optional($0.channel) }))::text[], \(PostgresArray(o.map { Optional($0.region) }))::text[],
            \(PostgresArray(o.map(\.phoneMasked)))::text[], \(PostgresArray(o.map(\.phoneKey)))::text[], \(PostgresArray(o.map(\.campaignID)))::text[],
            \(PostgresArray(o.map { Optional($0.createdAt) }))::timestamptz[], \(PostgresArray(o.map(\.assignedAt)))::timestamptz[],
            \(PostgresArray(o.map(\.lastFollowUpAt)))::timestamptz[], \(PostgresArray(o.map(\.followUpDue)))::timestamptz[],
            \(PostgresArray(o.map(\.dealDue)))::timestamptz[], \(PostgresArray(o.map { Optional($0.followUpWarned) }))::boolean[],
            \(PostgresArray(o.map { Optional($0.dealWarned) }))::boolean[], \(PostgresArray(o.map(\.mergedInto)))::uuid[],
            \(PostgresArray(o.map { Optional(Int64($0.reinquiries)) }))::int[])
        ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status, team_id = EXCLUDED.team_id,
            owner_id = EXCLUDED.owner_id, previous_owner_id = EXCLUDED.previous_owner_id, cooldown_until = EXCLUDED.cooldown_until,
            locked = EXCLUDED.locked, open_orders = EXCLUDED.open_orders, paid = EXCLUDED.paid, priority = EXCLUDED.priority,
            region = EXCLUDED.region, phone_masked = EXCLUDED.phone_masked, phone_key = EXCLUDED.phone_key, assigned_at = EXCLUDED.assigned_at,
            last_follow_up_at = EXCLUDED.last_follow_up_at, follow_up_due = EXCLUDED.follow_up_due, deal_due = EXCLUDED.deal_due,
            follow_up_warned = EXCLUDED.follow_up_warned, deal_warned = EXCLUDED.deal_warned, merged_into = EXCLUDED.merged_into,
            reinquiries = EXCLUDED.reinquiries, updated_at = now()
        """
    }

    /// Closes intervals that were open before this unit and inserts the ones it opened (closed already when the
    /// unit also closed them), so an opportunity never has two open intervals.
    private func ownershipStatements(_ changes: [OwnershipChange]) -> [PostgresQuery] {
        struct Row { var change: OwnershipChange; var endedAt: Date?; var closedHow: String?; var closedDecision: UUID? }
        var opened: [Row] = []
        var closes: [OwnershipChange] = []
        for change in changes {
            if change.opens {
                opened.append(Row(change: change))
            } else if let index = opened.lastIndex(where: { $0.change.opportunityID == change.opportunityID && $0.endedAt == nil }) {
                opened[index].endedAt = change.at
                opened[index].closedHow = change.how
                opened[index].closedDecision = change.decisionID
            } else {
                closes.append(change)
            }
        }
        var statements: [PostgresQuery] = []
        if !closes.isEmpty {
            statements.append("""
                UPDATE \(identifier: schema).ownership o SET ended_at = u.at, closed_how = u.how, closed_decision = u.decision
                FROM unnest(\(PostgresArray(closes.map { Optional($0.opportunityID) }))::uuid[], \(PostgresArray(closes.map { Optional($0.at) }))::timestamptz[],
                            \(PostgresArray(closes.map { Optional($0.how) }))::text[], \(PostgresArray(closes.map(\.decisionID)))::uuid[]) AS u(id, at, how, decision)
                WHERE o.opportunity_id = u.id AND o.ended_at IS NULL
                """)
        }
        if !opened.isEmpty {
            statements.append("""
                INSERT INTO \(identifier: schema).ownership (opportunity_id, employee_id, started_at, ended_at, opened_how, closed_how, opened_decision, closed_decision)
                SELECT * FROM unnest(\(PostgresArray(opened.map { Optional($0.change.opportunityID) }))::uuid[],
                                     \(PostgresArray(opened.map { Optional($0.change.employeeID) }))::text[],
                                     \(PostgresArray(opened.map { Optional($0.change.at) }))::timestamptz[], \(PostgresArray(opened.map(\.endedAt)))::timestamptz[],
                                     \(PostgresArray(opened.map { Optional($0.change.how) }))::text[], \(PostgresArray(opened.map(\.closedHow)))::text[],
                                     \(PostgresArray(opened.map(\.change.decisionID)))::uuid[], \(PostgresArray(opened.map(\.closedDecision)))::uuid[])
                """)
        }
        return statements
    }

    /// The ownership intervals of an opportunity, oldest first.
    func history(of id: UUID, in connection: PostgresConnection) throws -> [OwnershipInterval] {
        try connection.query("""
            SELECT employee_id, started_at, ended_at, opened_how, closed_how FROM \(identifier: schema).ownership
            WHERE opportunity_id = \(id) ORDER BY started_at, id
            """).map { row in
            let (employee, from, to, opened, closed) = try row.decode(String.self, Date.self, Date?.self, String.self, String?.self)
            return OwnershipInterval(employeeID: employee, from: from, to: to, openedHow: opened, closedHow: closed)
        }
    }

    /// Queued opportunities of `team`, highest priority then oldest first.
    func queued(team: String, limit: Int, in connection: PostgresConnection) throws -> [UUID] {
        try connection.query("""
            SELECT id FROM \(identifier: schema).opportunities WHERE team_id = \(team) AND status = 'queued'
            ORDER BY priority DESC, created_at LIMIT \(limit)
            """).map { try $0.decode(UUID.self) }
    }
}
