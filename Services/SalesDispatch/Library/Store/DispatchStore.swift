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
            "SELECT id, name, org_unit_id FROM \(identifier: schema).teams WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE",
            """
            SELECT employee_id, name, team_id, role, array_to_string(product_lines, chr(31)), weight, daily_new_cap, max_holding, paused, active,
                   holding, new_today, claims_today, counts_day, last_assigned_seq, pass
            FROM \(identifier: schema).reps WHERE team_id = ANY(\(ids))
            """,
        ])
        for row in results[0] {
            let (id, name, unitID) = try row.decode(String.self, String.self, String.self)
            unit.teams[id] = TeamState(id: id, name: name, orgUnitID: unitID)
        }
        for row in results[1] {
            let rep = try Self.decodeRep(row)
            unit.setRep(rep)
        }
        Self.deriveRotation(of: wanted, in: &unit)
    }

    /// A team's rotation state is not stored: its sequence is the highest of its reps' last assignments, and its
    /// virtual time the highest stride pass any of its reps was picked at. The team row is only the lock.
    static func deriveRotation(of teams: [String], in unit: inout DispatchUnit) {
        for id in teams {
            guard var team = unit.teams[id] else { continue }
            for rep in unit.reps.values where rep.teamID == id {
                team.sequence = max(team.sequence, rep.lastAssignedSeq)
                if rep.lastAssignedSeq > 0 { team.virtualTime = max(team.virtualTime, rep.pass - 1 / Double(max(rep.weight, 1))) }
            }
            unit.teams[id] = team
        }
    }

    /// One round trip for a batch of new leads: locks the teams they route to (with their reps), then locks the
    /// customers' open opportunities. An open opportunity of another team (it moved since) has its team locked after.
    func lockForDemands(teams teamIDs: Set<String>, customers: [UUID], into unit: inout DispatchUnit, in connection: PostgresConnection) throws {
        let wanted = teamIDs.subtracting(unit.teams.keys).sorted()
        let ids = PostgresArray(wanted.map { Optional($0) })
        let c = PostgresArray(customers.map { Optional($0) })
        let results = try connection.pipeline([
            "SELECT id, name, org_unit_id FROM \(identifier: schema).teams WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE",
            """
            SELECT employee_id, name, team_id, role, array_to_string(product_lines, chr(31)), weight, daily_new_cap, max_holding, paused, active,
                   holding, new_today, claims_today, counts_day, last_assigned_seq, pass
            FROM \(identifier: schema).reps WHERE team_id = ANY(\(ids))
            """,
            """
            SELECT \(sql: Self.opportunityColumns) FROM \(identifier: schema).opportunities
            WHERE customer_id = ANY(\(c)) AND status IN ('queued', 'assigned', 'pool') ORDER BY id FOR UPDATE
            """,
        ])
        for row in results[0] {
            let (id, name, unitID) = try row.decode(String.self, String.self, String.self)
            unit.teams[id] = TeamState(id: id, name: name, orgUnitID: unitID)
        }
        for row in results[1] {
            let rep = try Self.decodeRep(row)
            unit.setRep(rep)
        }
        Self.deriveRotation(of: wanted, in: &unit)
        var others: Set<String> = []
        for row in results[2] {
            let opportunity = try Self.decodeOpportunity(row)
            unit.opportunities[opportunity.id] = opportunity
            if !teamIDs.contains(opportunity.teamID) && !opportunity.teamID.isEmpty { others.insert(opportunity.teamID) }
        }
        if !others.isEmpty { try lockTeams(others, into: &unit, in: connection) }
    }

    static func decodeRep(_ row: PostgresRow) throws -> RepState {
        let (id, name, team, role, lines, weight, dailyCap, maxHolding, paused, active) =
            try row.decode(String.self, String.self, String.self, String.self, String.self, Int.self, Int?.self, Int?.self, Bool.self, Bool.self)
        // The rest by position: a second tuple decode would decode the first ten columns again.
        let (holding, newToday, claims) = (try row.decode(Int.self, at: 10), try row.decode(Int.self, at: 11), try row.decode(Int.self, at: 12))
        let (day, seq, pass) = (try row.decode(String.self, at: 13), try row.decode(Int64.self, at: 14), try row.decode(Double.self, at: 15))
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
            // Open ones through opportunities_open, closed ones through opportunities_customer_closed.
            let c = PostgresArray(customers.map { Optional($0) })
            query = lock
                ? """
                  SELECT \(sql: Self.opportunityColumns) FROM \(identifier: schema).opportunities WHERE id IN (
                      SELECT id FROM \(identifier: schema).opportunities WHERE customer_id = ANY(\(c)) AND status IN ('queued', 'assigned', 'pool')
                      UNION ALL
                      SELECT id FROM \(identifier: schema).opportunities WHERE customer_id = ANY(\(c)) AND status NOT IN ('queued', 'assigned', 'pool'))
                  ORDER BY id FOR UPDATE
                  """
                : """
                  SELECT \(sql: Self.opportunityColumns) FROM \(identifier: schema).opportunities WHERE id IN (
                      SELECT id FROM \(identifier: schema).opportunities WHERE customer_id = ANY(\(c)) AND status IN ('queued', 'assigned', 'pool')
                      UNION ALL
                      SELECT id FROM \(identifier: schema).opportunities WHERE customer_id = ANY(\(c)) AND status NOT IN ('queued', 'assigned', 'pool'))
                  """
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

    /// Decodes a row of ``opportunityColumns``, by position.
    static func decodeOpportunity(_ row: PostgresRow) throws -> Opportunity {
        var o = Opportunity(id: try row.decode(UUID.self, at: 0), customerID: try row.decode(UUID.self, at: 1), productLine: try row.decode(String.self, at: 2),
                            status: Opportunity.Status(rawValue: try row.decode(String.self, at: 3)) ?? .pool, teamID: try row.decode(String.self, at: 4),
                            channel: try row.decode(String.self, at: 12), region: try row.decode(String.self, at: 13),
                            createdAt: try row.decode(Date.self, at: 17))
        o.ownerID = try row.decode(String?.self, at: 5)
        o.previousOwnerID = try row.decode(String?.self, at: 6)
        o.cooldownUntil = try row.decode(Date?.self, at: 7)
        o.locked = try row.decode(Bool.self, at: 8)
        o.openOrders = try row.decode(Int.self, at: 9)
        o.paid = try row.decode(Bool.self, at: 10)
        o.priority = try row.decode(Int.self, at: 11)
        o.phoneMasked = try row.decode(String?.self, at: 14)
        o.phoneKey = try row.decode(String?.self, at: 15)
        o.campaignID = try row.decode(String?.self, at: 16)
        o.assignedAt = try row.decode(Date?.self, at: 18)
        o.lastFollowUpAt = try row.decode(Date?.self, at: 19)
        o.followUpDue = try row.decode(Date?.self, at: 20)
        o.dealDue = try row.decode(Date?.self, at: 21)
        o.followUpWarned = try row.decode(Bool.self, at: 22)
        o.dealWarned = try row.decode(Bool.self, at: 23)
        o.mergedInto = try row.decode(UUID?.self, at: 24)
        o.reinquiries = try row.decode(Int.self, at: 25)
        return o
    }

    /// The statements that write `unit` back (teams, reps, opportunities, deadlines, ownership, decisions, inputs).
    func save(_ unit: DispatchUnit) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        let opportunities = unit.changedOpportunities.sorted().compactMap { unit.opportunities[$0] }
        let fresh = opportunities.filter { unit.inserted.contains($0.id) }
        let existing = opportunities.filter { !unit.inserted.contains($0.id) }
        if !fresh.isEmpty { statements.append(upsert(fresh)) }
        if !existing.isEmpty { statements.append(update(existing)) }
        let retimed = unit.retimed.sorted().compactMap { unit.opportunities[$0] }
        if !retimed.isEmpty {
            var next: [(UUID, String, Date)] = []
            var none: [UUID] = []
            for opportunity in retimed {
                if let deadline = opportunity.nextDeadline(unit.policy.team(opportunity.teamID)) {
                    next.append((opportunity.id, deadline.kind.rawValue, deadline.due))
                } else if !unit.untimed.contains(opportunity.id) {
                    none.append(opportunity.id)
                }
            }
            if !none.isEmpty {
                statements.append("DELETE FROM \(identifier: schema).deadlines WHERE opportunity_id = ANY(\(PostgresArray(none.map { Optional($0) })))")
            }
            if !next.isEmpty {
                statements.append("""
                    INSERT INTO \(identifier: schema).deadlines (opportunity_id, kind, due_at)
                    SELECT * FROM unnest(\(PostgresArray(next.map { Optional($0.0) }))::uuid[], \(PostgresArray(next.map { Optional($0.1) }))::text[],
                                         \(PostgresArray(next.map { Optional($0.2) }))::timestamptz[])
                    ON CONFLICT (opportunity_id) DO UPDATE SET kind = EXCLUDED.kind, due_at = EXCLUDED.due_at
                    """)
            }
        }
        statements += ownershipStatements(unit.ownership)
        if !unit.decisions.isEmpty {
            // The JSON details (a kilobyte each with their candidates) travel as one binary blob: a json[] literal
            // of thousands of them cost more to parse than to store.
            let d = unit.decisions
            let details = PostgresByteSlices(strings: d.map(\.detail))
            statements.append("""
                INSERT INTO \(identifier: schema).decisions (id, opportunity_id, kind, policy_version, actor, detail, created_at)
                SELECT i, o, k, v, a, convert_from(substring(\(details.blob)::bytea from doff::int for dlen::int), 'UTF8')::json, c
                FROM unnest(\(PostgresArray(d.map { Optional($0.id) }))::uuid[], \(PostgresArray(d.map(\.opportunityID)))::uuid[],
                            \(PostgresArray(d.map { Optional($0.kind) }))::text[], \(PostgresArray(d.map { Optional(Int64($0.policyVersion)) }))::int[],
                            \(PostgresArray(d.map { Optional($0.actor) }))::text[], \(details.offsets)::int8[], \(details.lengths)::int8[],
                            \(PostgresArray(d.map { Optional($0.at) }))::timestamptz[]) AS u(i, o, k, v, a, doff, dlen, c)
                """)
        }
        // Reps last: rotation and daily counts as decided under the team lock (absolute), holdings as deltas. Their
        // row locks are then held only from here to COMMIT, so two transactions freeing capacity of the same reps
        // (deadlines firing two at a time) no longer wait on each other for their whole length.
        let reps = unit.changedReps.sorted().compactMap { unit.reps[$0] }
        let deltaOnly = unit.holdingDelta.keys.filter { !unit.changedReps.contains($0) && unit.holdingDelta[$0] != 0 }.sorted()
        if !reps.isEmpty || !deltaOnly.isEmpty {
            let ids = reps.map(\.id) + deltaOnly
            func absolute<T: PostgresArrayElement>(_ value: (RepState) -> T) -> PostgresArray<T> {
                PostgresArray(reps.map { Optional(value($0)) } + deltaOnly.map { _ in nil })
            }
            statements.append("""
                UPDATE \(identifier: schema).reps r SET holding = greatest(0, r.holding + u.dh), new_today = coalesce(u.n, r.new_today),
                    claims_today = coalesce(u.c, r.claims_today), counts_day = coalesce(u.d, r.counts_day),
                    last_assigned_seq = coalesce(u.s, r.last_assigned_seq), pass = coalesce(u.p, r.pass), paused = coalesce(u.paused, r.paused),
                    active = coalesce(u.active, r.active), updated_at = now()
                FROM unnest(\(PostgresArray(ids.map { Optional($0) }))::text[], \(PostgresArray(ids.map { Optional(Int64(unit.holdingDelta[$0] ?? 0)) }))::int[],
                            \(absolute { Int64($0.newToday) })::int[], \(absolute { Int64($0.claimsToday) })::int[], \(absolute(\.countsDay))::text[],
                            \(absolute(\.lastAssignedSeq))::bigint[], \(absolute(\.pass))::float8[], \(absolute(\.paused))::boolean[],
                            \(absolute(\.active))::boolean[]) AS u(id, dh, n, c, d, s, p, paused, active)
                WHERE r.employee_id = u.id
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

    /// Updates opportunities that exist (a plain UPDATE: no speculative insertion into the unique indexes).
    private func update(_ o: [Opportunity]) -> PostgresQuery {
        """
        UPDATE \(identifier: schema).opportunities t SET customer_id = u.customer_id, status = u.status, team_id = u.team_id, owner_id = u.owner_id,
            previous_owner_id = u.previous_owner_id, cooldown_until = u.cooldown_until, locked = u.locked, open_orders = u.open_orders, paid = u.paid,
            priority = u.priority, region = u.region, phone_masked = u.phone_masked, phone_key = u.phone_key, assigned_at = u.assigned_at,
            last_follow_up_at = u.last_follow_up_at, follow_up_due = u.follow_up_due, deal_due = u.deal_due, follow_up_warned = u.follow_up_warned,
            deal_warned = u.deal_warned, merged_into = u.merged_into, reinquiries = u.reinquiries, updated_at = now()
        FROM unnest(
            \(PostgresArray(o.map { Optional($0.id) }))::uuid[], \(PostgresArray(o.map { Optional($0.customerID) }))::uuid[],
            \(PostgresArray(o.map { Optional($0.status.rawValue) }))::text[], \(PostgresArray(o.map { Optional($0.teamID) }))::text[],
            \(PostgresArray(o.map(\.ownerID)))::text[], \(PostgresArray(o.map(\.previousOwnerID)))::text[], \(PostgresArray(o.map(\.cooldownUntil)))::timestamptz[],
            \(PostgresArray(o.map { Optional($0.locked) }))::boolean[], \(PostgresArray(o.map { Optional(Int64($0.openOrders)) }))::int[],
            \(PostgresArray(o.map { Optional($0.paid) }))::boolean[], \(PostgresArray(o.map { Optional(Int64($0.priority)) }))::int[],
            \(PostgresArray(o.map { Optional($0.region) }))::text[], \(PostgresArray(o.map(\.phoneMasked)))::text[], \(PostgresArray(o.map(\.phoneKey)))::text[],
            \(PostgresArray(o.map(\.assignedAt)))::timestamptz[], \(PostgresArray(o.map(\.lastFollowUpAt)))::timestamptz[],
            \(PostgresArray(o.map(\.followUpDue)))::timestamptz[], \(PostgresArray(o.map(\.dealDue)))::timestamptz[],
            \(PostgresArray(o.map { Optional($0.followUpWarned) }))::boolean[], \(PostgresArray(o.map { Optional($0.dealWarned) }))::boolean[],
            \(PostgresArray(o.map(\.mergedInto)))::uuid[], \(PostgresArray(o.map { Optional(Int64($0.reinquiries)) }))::int[])
            AS u(id, customer_id, status, team_id, owner_id, previous_owner_id, cooldown_until, locked, open_orders, paid, priority, region,
                 phone_masked, phone_key, assigned_at, last_follow_up_at, follow_up_due, deal_due, follow_up_warned, deal_warned, merged_into, reinquiries)
        WHERE t.id = u.id
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
            WHERE opportunity_id = \(id) ORDER BY started_at, ended_at NULLS LAST
            """).map { row in
            let (employee, from, to, opened, closed) = try row.decode(String.self, Date.self, Date?.self, String.self, String?.self)
            return OwnershipInterval(employeeID: employee, from: from, to: to, openedHow: opened, closedHow: closed)
        }
    }

    /// Gives queued opportunities of `team` to reps that now have capacity (after a release, a resume, a hire, a
    /// recycle, a new day), highest priority then oldest first, until one cannot be placed.
    func drainQueues(of team: String, unit: inout DispatchUnit, in connection: PostgresConnection, limit: Int = 500) throws {
        let queued = try queued(team: team, limit: limit, in: connection)
        guard !queued.isEmpty else { return }
        try lock(opportunities: queued, extraTeams: [team], into: &unit, in: connection)
        unit.drainQueue(team: team, queued: queued)
    }

    /// Queued opportunities of `team`, highest priority then oldest first.
    func queued(team: String, limit: Int, in connection: PostgresConnection) throws -> [UUID] {
        try connection.query("""
            SELECT id FROM \(identifier: schema).opportunities WHERE team_id = \(team) AND status = 'queued'
            ORDER BY priority DESC, created_at LIMIT \(limit)
            """).map { try $0.decode(UUID.self) }
    }
}
