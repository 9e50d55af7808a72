import FastText
import Foundation
import Hummingbird
import Postgres
import ServiceKit

/// Reps' and managers' actions on opportunities: my list, the pool, claim, follow-up, release; assign, transfer,
/// lock/unlock and bulk reassign for managers (within their subtree); history and decisions.
struct OpportunityRoutes: Sendable {
    let access: Access
    let runner: UnitRunner
    let store: DispatchStore
    let maxBodyBytes: Int

    struct ActionBody: Decodable {
        let employeeID: String?
        let reason: String?
        enum CodingKeys: String, CodingKey { case reason, employeeID = "employee_id" }
    }

    struct FollowUpBody: Decodable {
        let note: String?
        let outcome: String
        let nextContactAt: Date?
        enum CodingKeys: String, CodingKey { case note, outcome, nextContactAt = "next_contact_at" }
    }

    struct BulkBody: Decodable {
        let fromEmployeeID: String
        let toEmployeeID: String?
        let opportunityIDs: [UUID]?
        let reason: String
        enum CodingKeys: String, CodingKey {
            case reason
            case fromEmployeeID = "from_employee_id"
            case toEmployeeID = "to_employee_id"
            case opportunityIDs = "opportunity_ids"
        }
    }

    func add(to router: Router<BasicRequestContext>) {
        router.get("/v1/opportunities/mine") { request, _ in
            let caller = try await access.caller(request)
            return jsonResponse(.ok, ListResponse(try await mine(caller, request)))
        }
        router.get("/v1/pool") { request, _ in
            _ = try await access.caller(request)
            return jsonResponse(.ok, ListResponse(try await pool(request)))
        }
        router.get("/v1/opportunities/:id") { request, context in
            let caller = try await access.caller(request)
            let opportunity = try await load(try uuidParameter(context))
            try await requireSees(caller, opportunity)
            return jsonResponse(.ok, OpportunityView(opportunity, showPhone: opportunity.status != .pool || caller.role != .rep))
        }
        router.get("/v1/opportunities/:id/history") { request, context in
            let caller = try await access.caller(request)
            let id = try uuidParameter(context)
            try await requireSees(caller, try await load(id))
            return try await history(id)
        }
        router.post("/v1/opportunities/:id/claim") { request, context in
            let caller = try await access.caller(request)
            let id = try uuidParameter(context)
            let view = try await act(id, extraTeamsOf: caller.employeeID) { unit, _ in
                try unit.claim(id, by: caller.employeeID)
                return OpportunityView(unit.opportunities[id]!)
            }
            return jsonResponse(.ok, view)
        }
        router.post("/v1/opportunities/:id/follow-ups") { request, context in
            let caller = try await access.caller(request)
            let id = try uuidParameter(context)
            let body = try await decodeBody(FollowUpBody.self, from: request, limit: maxBodyBytes,
                                            expected: "{\"outcome\": \"...\", \"note\": \"...\", \"next_contact_at\": \"ISO 8601\"}")
            guard !body.outcome.trimmingSpaces.isEmpty, body.outcome.count <= 64 else {
                throw Problem(.unprocessableContent, code: "invalid_outcome", detail: "outcome is 1 to 64 characters")
            }
            guard (body.note ?? "").count <= 4_000 else { throw Problem(.unprocessableContent, code: "note_too_long", detail: "note is at most 4000 characters") }
            let schema = store.schema, newID = runner.newID
            let view = try await act(id) { unit, connection in
                try unit.followUp(id, by: caller.employeeID, at: unit.now, source: "api", outcome: body.outcome)
                _ = try connection.query("""
                    INSERT INTO \(identifier: schema).follow_ups (id, opportunity_id, employee_id, at, source, outcome, note, next_contact_at)
                    VALUES (\(newID(unit.now)), \(id), \(caller.employeeID), \(unit.now), 'api', \(body.outcome), \(body.note), \(body.nextContactAt))
                    """)
                return OpportunityView(unit.opportunities[id]!)
            }
            return jsonResponse(.created, view)
        }
        router.post("/v1/opportunities/:id/release") { request, context in
            let caller = try await access.caller(request)
            let id = try uuidParameter(context)
            let body = try await optionalBody(request)
            let managed = try await access.managedTeams(caller)
            let store = self.store
            let view = try await act(id) { unit, connection in
                let o = unit.opportunities[id]!
                guard o.ownerID == caller.employeeID || Self.manages(managed, o.teamID) else { throw DispatchRefusal("not_yours", "you neither hold nor manage it") }
                try unit.release(id, actor: caller.employeeID, reason: body.reason ?? "released")
                if unit.policy.team(o.teamID).protection.recycleTo == .redistribute {
                    unit.dispatch(id, actor: caller.employeeID, excluding: [o.ownerID ?? ""], stayInPool: true)
                }
                // The holder has room again: their team's queue may move.
                try store.drainQueues(of: o.teamID, unit: &unit, in: connection)
                return OpportunityView(unit.opportunities[id]!)
            }
            return jsonResponse(.ok, view)
        }
        for action in ["assign", "transfer"] {
            router.post("/v1/opportunities/:id/\(action)") { request, context in
                let caller = try await access.requireManager(request)
                let id = try uuidParameter(context)
                let body = try await decodeBody(ActionBody.self, from: request, limit: maxBodyBytes, expected: "{\"employee_id\": \"...\", \"reason\": \"...\"}")
                guard let target = body.employeeID, !target.isEmpty else {
                    throw Problem(.unprocessableContent, code: "missing_employee_id", detail: "name the rep in employee_id")
                }
                if action == "transfer" && (body.reason ?? "").trimmingSpaces.isEmpty {
                    throw Problem(.unprocessableContent, code: "missing_reason", detail: "a transfer needs a reason")
                }
                let managed = try await access.managedTeams(caller)
                let store = self.store
                let view = try await act(id, extraTeamsOf: target) { unit, connection in
                    let o = unit.opportunities[id]!
                    guard Self.manages(managed, o.teamID), Self.manages(managed, unit.reps[target]?.teamID ?? "") else {
                        throw DispatchRefusal("outside_subtree", "the opportunity or the rep is outside your org subtree")
                    }
                    try unit.transfer(id, to: target, actor: caller.employeeID, reason: body.reason ?? action,
                                      how: o.status == .assigned ? "transferred" : "assigned")
                    if o.status == .assigned { try store.drainQueues(of: o.teamID, unit: &unit, in: connection) }
                    return OpportunityView(unit.opportunities[id]!)
                }
                return jsonResponse(.ok, view)
            }
        }
        for (action, locked) in [("lock", true), ("unlock", false)] {
            router.post("/v1/opportunities/:id/\(action)") { request, context in
                let caller = try await access.requireManager(request)
                let id = try uuidParameter(context)
                let body = try await optionalBody(request)
                let managed = try await access.managedTeams(caller)
                let view = try await act(id) { unit, _ in
                    guard Self.manages(managed, unit.opportunities[id]!.teamID) else { throw DispatchRefusal("outside_subtree", "outside your org subtree") }
                    try unit.setLocked(id, locked, actor: caller.employeeID, reason: body.reason ?? action)
                    return OpportunityView(unit.opportunities[id]!)
                }
                return jsonResponse(.ok, view)
            }
        }
        router.post("/v1/opportunities/bulk-reassign") { request, _ in
            let caller = try await access.requireManager(request)
            let body = try await decodeBody(BulkBody.self, from: request, limit: maxBodyBytes,
                                            expected: "{\"from_employee_id\": \"...\", \"to_employee_id\": \"... (optional: redistribute)\", \"reason\": \"...\"}")
            guard !body.reason.trimmingSpaces.isEmpty else {
                throw Problem(.unprocessableContent, code: "missing_reason", detail: "a bulk reassignment needs a reason")
            }
            let managed = try await access.managedTeams(caller)
            let schema = store.schema, store = self.store
            let moved = try await runner.run { unit, connection -> Int in
                var ids = try connection.query("""
                    SELECT id FROM \(identifier: schema).opportunities WHERE owner_id = \(body.fromEmployeeID) AND status = 'assigned' ORDER BY id
                    """).map { try $0.decode(UUID.self) }
                if let only = body.opportunityIDs { ids = ids.filter(Set(only).contains) }
                var extra: Set<String> = []
                for id in [body.fromEmployeeID] + (body.toEmployeeID.map { [$0] } ?? []) {
                    if let team = try connection.query("SELECT team_id FROM \(identifier: schema).reps WHERE employee_id = \(id)").first?.decode(String.self) {
                        extra.insert(team)
                    }
                }
                try store.lock(opportunities: ids, extraTeams: extra, into: &unit, in: connection)
                for team in extra where !Self.manages(managed, team) {
                    throw DispatchRefusal("outside_subtree", "team \(team) is outside your org subtree")
                }
                try unit.releaseAll(ids, how: "reassigned", actor: caller.employeeID, reason: body.reason, redistribute: true, to: body.toEmployeeID)
                for team in extra { try store.drainQueues(of: team, unit: &unit, in: connection) }
                return ids.count
            }
            return jsonResponse(.ok, ["moved": moved])
        }
        router.get("/v1/decisions/:id") { request, context in
            _ = try await access.requireManager(request)
            let id = try uuidParameter(context)
            guard let row = try await runner.postgres.query("""
                SELECT id, opportunity_id, kind, policy_version, actor, detail::text, created_at FROM \(identifier: store.schema).decisions WHERE id = \(id)
                """).first else { throw Problem(.notFound, code: "not_found", detail: "no such decision") }
            return rawJSON(try DecisionView(row).json)
        }
    }

    static func manages(_ managed: Set<String>?, _ team: String) -> Bool { managed == nil || managed!.contains(team) }

    func optionalBody(_ request: Request) async throws -> ActionBody {
        var request = request
        let body = try await request.collectBody(limit: maxBodyBytes)
        if body.readableBytes == 0 { return ActionBody(employeeID: nil, reason: nil) }
        do { return try JSONDecoder().decode(ActionBody.self, from: Data(buffer: body)) } catch {
            throw Problem(.badRequest, code: "malformed_body", detail: "expected {\"reason\": \"...\"} or no body")
        }
    }

    /// Runs an action on one opportunity in a transaction (locked with its team, plus `extraTeamsOf`'s team).
    func act<T: Sendable>(_ id: UUID, extraTeamsOf employee: String? = nil,
                          _ body: @escaping @Sendable (inout DispatchUnit, PostgresConnection) throws -> T) async throws -> T {
        let store = self.store
        do {
            return try await runner.run { unit, connection in
                var extra: Set<String> = []
                if let employee, let team = try connection.query("SELECT team_id FROM \(identifier: store.schema).reps WHERE employee_id = \(employee)").first?
                    .decode(String.self) { extra.insert(team) }
                try store.lock(opportunities: [id], extraTeams: extra, into: &unit, in: connection)
                guard unit.opportunities[id] != nil else { throw DispatchRefusal("not_found", "no such opportunity") }
                return try body(&unit, connection)
            }
        } catch let refusal as DispatchRefusal {
            throw refusal.problem
        }
    }

    func load(_ id: UUID) async throws -> Opportunity {
        guard let row = try await runner.postgres.query("""
            SELECT \(sql: DispatchStore.opportunityColumns) FROM \(identifier: store.schema).opportunities WHERE id = \(id)
            """).first else { throw Problem(.notFound, code: "not_found", detail: "no such opportunity") }
        return try DispatchStore.decodeOpportunity(row)
    }

    /// A rep sees their own and the pool; a lead their subtree; an admin all.
    func requireSees(_ caller: Caller, _ o: Opportunity) async throws {
        if o.ownerID == caller.employeeID || o.status == .pool { return }
        guard Self.manages(try await access.managedTeams(caller), o.teamID), caller.role != .rep else {
            throw Problem(.forbidden, code: "not_yours", detail: "you neither hold nor manage this opportunity")
        }
    }

    func mine(_ caller: Caller, _ request: Request) async throws -> [OpportunityView] {
        let line = request.uri.queryParameters.get("product_line")
        let status = request.uri.queryParameters.get("status") ?? "assigned"
        guard ["assigned", "won"].contains(status) else {
            throw Problem(.badRequest, code: "invalid_status", detail: "status is assigned (default) or won")
        }
        let rows: PostgresRows
        if status == "assigned" {
            rows = try await runner.postgres.query("""
                SELECT \(sql: DispatchStore.opportunityColumns) FROM \(identifier: store.schema).opportunities
                WHERE owner_id = \(caller.employeeID) AND status = 'assigned' AND (\(line)::text IS NULL OR product_line = \(line))
                ORDER BY locked, least(follow_up_due, deal_due) NULLS LAST, id LIMIT 500
                """)
        } else {
            rows = try await runner.postgres.query("""
                SELECT \(sql: DispatchStore.opportunityColumns) FROM \(identifier: store.schema).opportunities o
                WHERE status = 'won' AND EXISTS (SELECT 1 FROM \(identifier: store.schema).conversions c
                    WHERE c.opportunity_id = o.id AND c.credited_to = \(caller.employeeID))
                  AND (\(line)::text IS NULL OR product_line = \(line))
                ORDER BY id LIMIT 500
                """)
        }
        return try rows.map { OpportunityView(try DispatchStore.decodeOpportunity($0)) }
    }

    func pool(_ request: Request) async throws -> [OpportunityView] {
        let line = request.uri.queryParameters.get("product_line")
        let limit = min(max(Int(request.uri.queryParameters.get("limit") ?? "") ?? 50, 1), 500)
        return try await runner.postgres.query("""
            SELECT \(sql: DispatchStore.opportunityColumns) FROM \(identifier: store.schema).opportunities
            WHERE status = 'pool' AND (\(line)::text IS NULL OR product_line = \(line))
            ORDER BY priority DESC, created_at LIMIT \(limit)
            """).map { OpportunityView(try DispatchStore.decodeOpportunity($0), showPhone: false) }
    }

    func history(_ id: UUID) async throws -> Response {
        let schema = store.schema, store = self.store
        let (ownership, decisions) = try await runner.postgres.withConnection { connection in
            let ownership = try store.history(of: id, in: connection)
            let decisions = try connection.query("""
                SELECT id, opportunity_id, kind, policy_version, actor, detail::text, created_at FROM \(identifier: schema).decisions
                WHERE opportunity_id = \(id) ORDER BY created_at, id
                """).map { try DecisionView($0).json }
            return (ownership, decisions)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let intervals = String(decoding: try encoder.encode(ownership), as: UTF8.self)
        return rawJSON("{\"decisions\":[\(decisions.joined(separator: ","))],\"ownership\":\(intervals)}")
    }
}

/// A stored decision; its detail is already JSON and is embedded as is.
struct DecisionView {
    let json: String
    init(_ row: PostgresRow) throws {
        let (id, opportunity, kind, version, actor, detail, at) = try row.decode(UUID.self, UUID?.self, String.self, Int.self, String.self, String.self, Date.self)
        func quote(_ s: String) -> String {
            String(decoding: (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
        json = "{\"id\":\(quote(id.lowercasedText)),\"opportunity_id\":\(opportunity.map { quote($0.lowercasedText) } ?? "null"),"
            + "\"kind\":\(quote(kind)),\"policy_version\":\(version),\"actor\":\(quote(actor)),"
            + "\"created_at\":\(quote(ISO8601DateFormatter().string(from: at))),\"detail\":\(DecisionDetail.expanded(detail))}"
    }
}

func rawJSON(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
}
