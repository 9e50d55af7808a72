import Foundation
import Hummingbird
import Postgres
import ServiceKit

/// Admin: org units, teams, reps and versioned policies. Managers: pause/resume and the team board.
struct OrgRoutes: Sendable {
    let access: Access
    let runner: UnitRunner
    let org: OrgStore
    let policies: PolicyStore
    let handler: SalesInputHandler
    let maxBodyBytes: Int

    struct UnitBody: Decodable {
        let name: String
        let parentID: String?
        enum CodingKeys: String, CodingKey { case name, parentID = "parent_id" }
    }

    struct TeamBody: Decodable {
        let name: String
        let orgUnitID: String
        enum CodingKeys: String, CodingKey { case name, orgUnitID = "org_unit_id" }
    }

    static func checkID(_ context: BasicRequestContext) throws -> String {
        guard let id = context.parameters.get("id"), id.range(of: "^[A-Za-z0-9._:-]{1,64}$", options: .regularExpression) != nil else {
            throw Problem(.badRequest, code: "invalid_id", detail: "ids are 1-64 letters, digits, '.', '_', ':' or '-'")
        }
        return id
    }

    func add(to router: Router<BasicRequestContext>) {
        let org = self.org
        router.put("/v1/org-units/:id") { request, context in
            _ = try await access.requireAdmin(request)
            let id = try Self.checkID(context)
            let body = try await decodeBody(UnitBody.self, from: request, limit: maxBodyBytes, expected: "{\"name\": \"...\", \"parent_id\": \"... or null\"}")
            try await refusing { try await runner.postgres.withTransaction { try org.upsertUnit(id: id, name: body.name, parent: body.parentID, in: $0) } }
            return jsonResponse(.ok, ["id": id, "name": body.name, "parent_id": body.parentID ?? ""])
        }
        router.put("/v1/teams/:id") { request, context in
            _ = try await access.requireAdmin(request)
            let id = try Self.checkID(context)
            let body = try await decodeBody(TeamBody.self, from: request, limit: maxBodyBytes, expected: "{\"name\": \"...\", \"org_unit_id\": \"...\"}")
            try await refusing { try await runner.postgres.withTransaction { try org.upsertTeam(id: id, name: body.name, orgUnit: body.orgUnitID, in: $0) } }
            return jsonResponse(.ok, ["id": id, "name": body.name, "org_unit_id": body.orgUnitID])
        }
        router.put("/v1/reps/:id") { request, context in
            _ = try await access.requireAdmin(request)
            let id = try Self.checkID(context)
            let settings = try await decodeBody(RepSettings.self, from: request, limit: maxBodyBytes,
                                                expected: "{\"team_id\": \"...\", \"name\": \"...\", \"role\": \"rep|lead|admin\", \"product_lines\": [], \"weight\": 1, \"daily_new_cap\": n, \"max_holding\": n}")
            let violations = settings.violations()
            guard violations.isEmpty else {
                throw Problem(.unprocessableContent, code: "invalid_rep", detail: "the rep's settings are not valid", errors: violations)
            }
            let store = runner.store, handler = self.handler
            try await refusing {
                try await runner.run { unit, connection in
                    try org.upsertRep(id: id, settings: settings, unit: &unit, store: store, in: connection)
                    try handler.drainQueues(of: settings.teamID, unit: &unit, in: connection)
                }
            }
            return jsonResponse(.ok, try await repViews(team: nil, id: id).first!)
        }
        router.get("/v1/reps") { request, _ in
            _ = try await access.requireManager(request)
            return jsonResponse(.ok, ListResponse(try await repViews(team: request.uri.queryParameters.get("team"), id: nil)))
        }
        for (action, paused) in [("pause", true), ("resume", false)] {
            router.post("/v1/reps/:id/\(action)") { request, context in
                let caller = try await access.caller(request)
                let id = try Self.checkID(context)
                guard let record = try await org.employee(id, postgres: runner.postgres) else { throw Problem(.notFound, code: "not_found", detail: "no rep \(id)") }
                if caller.employeeID != id {
                    guard caller.role != .rep else { throw Problem(.forbidden, code: "not_yours", detail: "a rep may pause or resume only themself") }
                    try await access.requireManages(caller, team: record.teamID)
                }
                let handler = self.handler
                try await refusing {
                    try await runner.run { unit, connection in
                        try runner.store.lockTeams([record.teamID], into: &unit, in: connection)
                        try unit.setPaused(id, paused)
                        if !paused { try handler.drainQueues(of: record.teamID, unit: &unit, in: connection) }
                    }
                }
                return jsonResponse(.ok, try await repViews(team: nil, id: id).first!)
            }
        }
        router.get("/v1/teams/:id/board") { request, context in
            let caller = try await access.requireManager(request)
            let team = try Self.checkID(context)
            try await access.requireManages(caller, team: team)
            return jsonResponse(.ok, try await board(team))
        }
        router.get("/v1/policies") { request, _ in
            _ = try await access.requireManager(request)
            var version: Int?
            if let text = request.uri.queryParameters.get("version") {
                guard let number = Int(text), number > 0 else { throw Problem(.badRequest, code: "invalid_version", detail: "version must be a positive integer") }
                version = number
            }
            guard let found = try await policies.version(version, postgres: runner.postgres) else {
                throw Problem(.notFound, code: "policy_not_found", detail: "no such policy version (none is published before the first PUT)")
            }
            return jsonResponse(.ok, found)
        }
        router.put("/v1/policies") { request, _ in
            let caller = try await access.requireAdmin(request)
            let policy = try await decodeBody(DispatchPolicy.self, from: request, limit: maxBodyBytes,
                                              expected: "{\"routing\": [...], \"fallback_team\": \"...\", \"teams\": {\"<team>\": {...}}} (see the README)")
            return jsonResponse(.created, try await policies.publish(policy, by: caller.employeeID, postgres: runner.postgres))
        }
    }

    func refusing<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let refusal as DispatchRefusal { throw refusal.problem }
    }

    struct RepView: Codable, Sendable {
        let employeeID: String
        let name: String
        let teamID: String
        let role: String
        let productLines: [String]
        let weight: Int
        let dailyNewCap: Int?
        let maxHolding: Int?
        let paused: Bool
        let active: Bool
        let holding: Int
        let newToday: Int
        let claimsToday: Int
        let countsDay: String
        enum CodingKeys: String, CodingKey {
            case name, role, weight, paused, active, holding
            case employeeID = "employee_id"
            case teamID = "team_id"
            case productLines = "product_lines"
            case dailyNewCap = "daily_new_cap"
            case maxHolding = "max_holding"
            case newToday = "new_today"
            case claimsToday = "claims_today"
            case countsDay = "counts_day"
        }
    }

    func repViews(team: String?, id: String?) async throws -> [RepView] {
        try await runner.postgres.query("""
            SELECT employee_id, name, team_id, role, array_to_string(product_lines, chr(31)), weight, daily_new_cap, max_holding, paused, active,
                   holding, new_today, claims_today, counts_day, last_assigned_seq, pass
            FROM \(identifier: org.schema).reps WHERE (\(team)::text IS NULL OR team_id = \(team)) AND (\(id)::text IS NULL OR employee_id = \(id))
            ORDER BY employee_id LIMIT 5000
            """).map { row in
            let r = try DispatchStore.decodeRep(row)
            return RepView(employeeID: r.id, name: r.name, teamID: r.teamID, role: r.role.rawValue, productLines: r.productLines, weight: r.weight,
                           dailyNewCap: r.dailyNewCap, maxHolding: r.maxHolding, paused: r.paused, active: r.active, holding: r.holding,
                           newToday: r.newToday, claimsToday: r.claimsToday, countsDay: r.countsDay)
        }
    }

    struct BoardRow: Codable, Sendable {
        let employeeID: String
        let held: Int
        let newToday: Int
        let dailyNewCap: Int
        let maxHolding: Int
        let overdue: Int
        let paused: Bool
        let active: Bool
        enum CodingKeys: String, CodingKey {
            case held, overdue, paused, active
            case employeeID = "employee_id"
            case newToday = "new_today"
            case dailyNewCap = "daily_new_cap"
            case maxHolding = "max_holding"
        }
    }

    struct Board: Codable, Sendable {
        let team: String
        let day: String
        let reps: [BoardRow]
        let queued: Int
    }

    func board(_ team: String) async throws -> Board {
        let schema = org.schema, policies = self.policies, clock = runner.clock
        return try await runner.postgres.withConnection { connection in
            let (policy, _) = try policies.current(in: connection)
            let teamPolicy = policy.team(team)
            let now = clock.now()
            let day = teamPolicy.day(of: now)
            let overdue = try connection.query("""
                SELECT owner_id, count(*) FROM \(identifier: schema).opportunities
                WHERE team_id = \(team) AND status = 'assigned' AND NOT locked AND least(follow_up_due, deal_due) < \(now) GROUP BY owner_id
                """)
            var overdueBy: [String: Int] = [:]
            for row in overdue { let (owner, n) = try row.decode(String.self, Int.self); overdueBy[owner] = n }
            let queued = try connection.query("SELECT count(*) FROM \(identifier: schema).opportunities WHERE team_id = \(team) AND status = 'queued'").first!.decode(Int.self)
            let reps = try connection.query("""
                SELECT employee_id, name, team_id, role, array_to_string(product_lines, chr(31)), weight, daily_new_cap, max_holding, paused, active,
                       holding, new_today, claims_today, counts_day, last_assigned_seq, pass
                FROM \(identifier: schema).reps WHERE team_id = \(team) ORDER BY employee_id
                """).map { row -> BoardRow in
                var r = try DispatchStore.decodeRep(row)
                r.roll(to: day)
                return BoardRow(employeeID: r.id, held: r.holding, newToday: r.newToday, dailyNewCap: r.dailyCap(teamPolicy),
                                maxHolding: r.holdingCap(teamPolicy), overdue: overdueBy[r.id] ?? 0, paused: r.paused, active: r.active)
            }
            return Board(team: team, day: day, reps: reps, queued: queued)
        }
    }
}
