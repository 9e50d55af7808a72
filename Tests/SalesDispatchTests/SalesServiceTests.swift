import Contracts
import FastText
import Foundation
import HTTPTypes
import Postgres
@testable import SalesDispatch
import ServiceKit
import Testing
import TestSupport

/// sales-dispatch as a whole, through the dev broker and over HTTP with employee JWTs.
@Suite(.serialized) struct SalesServiceTests {
    static let policy = #"{"fallback_team": "north", "routing": [{"name": "java to south", "product_lines": ["java"], "team": "south"}], "teams": {"north": {"strategy": "round_robin", "daily_new_cap": 50, "max_holding": 3, "time_zone": "Asia/Shanghai", "protection": {"follow_up_days": 3, "deal_days": 30, "warning_days": 1, "exempt": ["locked", "open_order", "paid"], "recycle_to": "pool", "cooldown_days": 7, "credit_window_days": 0}, "claim": {"daily_claim_cap": 5, "holding_cap": 3}, "leaver": "pool"}}}"#

    @Test func leadsOnTheTopicAreAssignedAndRepsWorkThemOverHTTP() async throws {
        let s = try await SalesHarness.start()
        try await s.setUp(teams: ["north": ["lead-n", "a", "b"], "south": ["c"]], policy: Self.policy)
        try await s.waitUntilReady()
        let customers = (0..<7).map { _ in UUID() }
        try await s.pushLeads(Array(customers.prefix(6)))
        try await s.pushLeads([customers[6]], line: "java")
        let events = try await s.readOpportunityEvents(atLeast: 14)
        let assigned = events.filter { $0.change == "assigned" }
        // max_holding 3 for a and b; the lead is a rep of the team too (round-robin over lead-n, a, b)
        #expect(assigned.count == 7)
        #expect(assigned.first { $0.productLine == "java" }?.ownerID == "c")
        #expect(Set(assigned.filter { $0.teamID == "north" }.map(\.ownerID)) == ["lead-n", "a", "b"])
        #expect(assigned.allSatisfy { !$0.decisionID.isEmpty && $0.hasFollowUpDue })

        // A rep's list, sorted by the nearest deadline; another rep's opportunity is not theirs.
        let (status, mine, _) = try await s.request(.get, "/v1/opportunities/mine", as: ("a", .rep))
        #expect(status == .ok && (mine["count"] as? Int) == 2)
        let aHolds = (mine["items"] as! [[String: Any]]).map { $0["id"] as! String }
        let bHolds = assigned.filter { $0.ownerID == "b" }.map(\.opportunityID)
        #expect(try await s.request(.get, "/v1/opportunities/\(bHolds[0])", as: ("a", .rep)).0 == .forbidden)

        // Follow-up by the holder: 201; by someone else: 409.
        let followUp = #"{"outcome": "interested", "note": "call back Friday", "next_contact_at": "2026-11-27T02:00:00Z"}"#
        #expect(try await s.request(.post, "/v1/opportunities/\(aHolds[0])/follow-ups", body: followUp, as: ("a", .rep)).0 == .created)
        let (refused, problem, headers) = try await s.request(.post, "/v1/opportunities/\(bHolds[0])/follow-ups", body: followUp, as: ("a", .rep))
        #expect(refused == .conflict && problem["code"] as? String == "not_holder")
        #expect(headers[.contentType] == "application/problem+json")

        // a releases one into the public pool, which hides the phone until claimed; c (another team) claims it.
        #expect(try await s.request(.post, "/v1/opportunities/\(aHolds[1])/release", body: #"{"reason": "not my region"}"#, as: ("a", .rep)).0 == .ok)
        let (_, pool, _) = try await s.request(.get, "/v1/pool", as: ("c", .rep))
        let pooled = (pool["items"] as! [[String: Any]])
        #expect(pooled.count == 1 && (pooled[0]["phone_masked"] as? String) == "1*********1")
        let (claimed, claim, _) = try await s.request(.post, "/v1/opportunities/\(aHolds[1])/claim", as: ("c", .rep))
        #expect(claimed == .ok && claim["owner_id"] as? String == "c" && claim["phone_masked"] as? String == "139****0001")
        let (again, second, _) = try await s.request(.post, "/v1/opportunities/\(aHolds[1])/claim", as: ("b", .rep))
        #expect(again == .conflict && second["code"] as? String == "not_in_pool")

        // The lead's board and an explained decision.
        let (_, board, _) = try await s.request(.get, "/v1/teams/north/board", as: ("lead-n", .lead))
        #expect((board["reps"] as? [[String: Any]])?.count == 3)
        #expect(try await s.request(.get, "/v1/teams/south/board", as: ("lead-n", .lead)).0 == .forbidden)
        let (_, decision, _) = try await s.request(.get, "/v1/decisions/\(assigned[0].decisionID)", as: ("lead-n", .lead))
        #expect((decision["detail"] as? [String: Any])?["picked"] as? String == assigned[0].ownerID)
        #expect(try await s.request(.get, "/v1/opportunities/\(aHolds[1])/history", as: ("lead-n", .lead)).0 == .forbidden)  // now in south
        let (_, history, _) = try await s.request(.get, "/v1/opportunities/\(aHolds[1])/history")
        #expect((history["ownership"] as? [[String: Any]])?.map { $0["employee_id"] as? String } == ["a", "c"])
        await s.stop()
    }

    @Test func tokensAreCheckedAndALeaversTokenIsRefusedAtOnce() async throws {
        let s = try await SalesHarness.start()
        try await s.setUp(teams: ["north": ["lead-n", "a", "b"]], policy: Self.policy.replacingOccurrences(of: #""team": "south""#, with: #""team": "north""#))
        try await s.waitUntilReady()
        #expect(try await s.request(.get, "/v1/opportunities/mine", as: nil).1["code"] as? String == "missing_credentials")
        #expect(try await s.request(.get, "/v1/opportunities/mine", rawToken: "not.a.jwt").1["code"] as? String == "invalid_token")
        let expired = try await s.token("a", .rep, expires: Date() - 60)
        #expect(try await s.request(.get, "/v1/opportunities/mine", rawToken: expired).0 == .unauthorized)
        let forged = try await EmployeeTokenVerifier(secret: Array("another-secret-of-at-least-32-bytes!!".utf8)).sign(
            EmployeeClaims(employeeID: "root", role: .admin, expires: Date() + 60))
        #expect(try await s.request(.put, "/v1/policies", body: "{}", rawToken: forged).0 == .unauthorized)
        #expect(try await s.request(.put, "/v1/policies", body: Self.policy, as: ("a", .rep)).1["code"] as? String == "admin_only")
        // A token claiming admin for an employee HR knows as a rep is a rep.
        #expect(try await s.request(.put, "/v1/policies", body: Self.policy, as: ("a", .admin)).0 == .forbidden)
        #expect(try await s.request(.get, "/v1/opportunities/mine", as: ("stranger", .rep)).1["code"] as? String == "unknown_employee")
        let token = try await s.token("a", .rep)
        #expect(try await s.request(.get, "/v1/opportunities/mine", rawToken: token).0 == .ok)
        var left = Funnel_Hr_V1_EmployeeEvent()
        left.employeeID = "a"
        left.left = Funnel_Hr_V1_EmployeeLeft()
        try await s.push("hr.employees.v1", [("a", left)])
        try await s.waitForCount("SELECT count(*) FROM \(identifier: s.schema).reps WHERE employee_id = 'a' AND NOT active", 1)
        let (status, problem, _) = try await s.request(.get, "/v1/opportunities/mine", rawToken: token)
        #expect(status == .unauthorized && problem["code"] as? String == "employee_left")
        await s.stop()
    }

    @Test func badRequestsGetProblemsAndInvalidPoliciesAre422() async throws {
        let s = try await SalesHarness.start()
        try await s.setUp(teams: ["north": ["a"]], policy: #"{"fallback_team": "north", "routing": [], "teams": {}}"#)
        let (malformed, p1, _) = try await s.request(.put, "/v1/policies", body: "{not json")
        #expect(malformed == .badRequest && p1["code"] as? String == "malformed_body")
        let zero = #"{"fallback_team": "north", "routing": [{"team": "nowhere"}], "teams": {"north": {"strategy": "weighted", "daily_new_cap": 0, "max_holding": -3, "time_zone": "Asia/Shanghai", "protection": {"follow_up_days": 3, "deal_days": 30, "warning_days": 1, "exempt": [], "recycle_to": "pool", "cooldown_days": -1, "credit_window_days": 0}, "claim": {"daily_claim_cap": 5, "holding_cap": 3}, "leaver": "pool"}}}"#
        let (invalid, p2, _) = try await s.request(.put, "/v1/policies", body: zero)
        #expect(invalid == .unprocessableContent)
        let fields = Set(((p2["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
        #expect(fields.isSuperset(of: ["routing[0].team", "teams.north.daily_new_cap", "teams.north.max_holding", "teams.north.protection.cooldown_days"]))
        let (weight, p3, _) = try await s.request(.put, "/v1/reps/z", body: #"{"team_id": "north", "weight": 0}"#)
        #expect(weight == .unprocessableContent && (p3["errors"] as? [[String: Any]])?.first?["field"] as? String == "weight")
        #expect(try await s.request(.put, "/v1/reps/z", body: #"{"team_id": "ghost"}"#).1["code"] as? String == "unknown_team")
        #expect(try await s.request(.put, "/v1/org-units/hq", body: #"{"name": "HQ", "parent_id": "north-unit"}"#).1["code"] as? String == "cycle")
        #expect(try await s.request(.post, "/v1/opportunities/not-a-uuid/claim", as: ("a", .rep)).0 == .badRequest)
        #expect(try await s.request(.post, "/v1/opportunities/\(UUID().lowercasedText)/claim", as: ("a", .rep)).0 == .notFound)
        #expect(try await s.request(.get, "/v1/policies?version=99").0 == .notFound)
        await s.stop()
    }

    @Test func simulationReplaysARangeAgainstACandidatePolicyWithoutSideEffects() async throws {
        let s = try await SalesHarness.start()
        try await s.setUp(teams: ["north": ["a", "b", "c"]], policy: #"{"fallback_team": "north", "routing": [], "teams": {}}"#)
        try await s.waitUntilReady()
        let from = Date() - 1
        try await s.pushLeads((0..<30).map { _ in UUID() })
        try await s.waitForCount("SELECT count(*) FROM \(identifier: s.schema).opportunities WHERE status = 'assigned'", 30)
        let before = try await s.postgres.query("SELECT count(*) FROM \(identifier: s.schema).decisions").first!.decode(Int.self)
        try requireOK(try await s.request(.put, "/v1/reps/a", body: #"{"team_id": "north", "weight": 4}"#))
        let candidate = #"{"fallback_team": "north", "routing": [], "teams": {"north": {"strategy": "weighted", "daily_new_cap": 100, "max_holding": 100, "time_zone": "Asia/Shanghai", "protection": {"follow_up_days": 3, "deal_days": 30, "warning_days": 1, "exempt": ["locked"], "recycle_to": "pool", "cooldown_days": 7, "credit_window_days": 0}, "claim": {"daily_claim_cap": 5, "holding_cap": 100}, "leaver": "pool"}}}"#
        let iso = ISO8601DateFormatter()
        let body = #"{"from": "\#(iso.string(from: from))", "to": "\#(iso.string(from: Date() + 1))", "policy": \#(candidate)}"#
        let (status, report, _) = try await s.request(.post, "/v1/policies/simulate", body: body)
        #expect(status == .ok)
        #expect(report["inputs"] as? Int == 30)
        let reps = Dictionary(uniqueKeysWithValues: (report["reps"] as! [[String: Any]]).map { ($0["employee_id"] as! String, $0) })
        #expect(reps["a"]?["simulated_assigned"] as? Int == 20 && reps["b"]?["simulated_assigned"] as? Int == 5)
        #expect(reps.values.map { $0["actual_assigned"] as! Int }.reduce(0, +) == 30)
        #expect(reps["a"]?["actual_assigned"] as? Int == 10)
        let after = try await s.postgres.query("SELECT count(*) FROM \(identifier: s.schema).decisions").first!.decode(Int.self)
        #expect(after == before)
        #expect(try await s.request(.post, "/v1/policies/simulate", body: #"{"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z", "policy": \#(candidate)}"#).0
                == .unprocessableContent)
        await s.stop()
    }

    @Test func managersActWithinTheirSubtreeAndEveryActionIsAudited() async throws {
        let s = try await SalesHarness.start()
        try await s.setUp(teams: ["north": ["lead-n", "a", "b"], "south": ["lead-s", "c"]], policy: Self.policy)
        try await s.waitUntilReady()
        try await s.pushLeads((0..<3).map { _ in UUID() })
        try await s.waitForCount("SELECT count(*) FROM \(identifier: s.schema).opportunities WHERE status = 'assigned'", 3)
        let held = try await s.postgres.query("SELECT id, owner_id FROM \(identifier: s.schema).opportunities ORDER BY owner_id")
            .map { try $0.decode(UUID.self, String.self) }
        let ofA = held.first { $0.1 == "a" }!.0.lowercasedText
        // The south lead cannot touch north's opportunities; a rep cannot transfer.
        #expect(try await s.request(.post, "/v1/opportunities/\(ofA)/lock", as: ("lead-s", .lead)).1["code"] as? String == "outside_subtree")
        #expect(try await s.request(.post, "/v1/opportunities/\(ofA)/transfer", body: #"{"employee_id": "b", "reason": "x"}"#, as: ("a", .rep)).0 == .forbidden)
        #expect(try await s.request(.post, "/v1/opportunities/\(ofA)/transfer", body: #"{"employee_id": "b"}"#, as: ("lead-n", .lead)).1["code"] as? String == "missing_reason")
        // The north lead transfers, locks, and a locked one cannot be released.
        let (moved, body, _) = try await s.request(.post, "/v1/opportunities/\(ofA)/transfer", body: #"{"employee_id": "b", "reason": "a on leave"}"#, as: ("lead-n", .lead))
        #expect(moved == .ok && body["owner_id"] as? String == "b")
        #expect(try await s.request(.post, "/v1/opportunities/\(ofA)/lock", body: #"{"reason": "VIP"}"#, as: ("lead-n", .lead)).0 == .ok)
        #expect(try await s.request(.post, "/v1/opportunities/\(ofA)/release", as: ("b", .rep)).1["code"] as? String == "locked")
        #expect(try await s.request(.post, "/v1/opportunities/\(ofA)/unlock", as: ("lead-n", .lead)).0 == .ok)
        // Pause: a rep pauses themself; a lead resumes them; a rep cannot pause a colleague.
        #expect(try await s.request(.post, "/v1/reps/a/pause", as: ("a", .rep)).1["paused"] as? Bool == true)
        #expect(try await s.request(.post, "/v1/reps/b/pause", as: ("a", .rep)).0 == .forbidden)
        #expect(try await s.request(.post, "/v1/reps/a/resume", as: ("lead-n", .lead)).1["paused"] as? Bool == false)
        // Bulk: everything b holds goes to lead-n.
        let (_, bulk, _) = try await s.request(.post, "/v1/opportunities/bulk-reassign",
                                               body: #"{"from_employee_id": "b", "to_employee_id": "lead-n", "reason": "b moves to QA"}"#, as: ("lead-n", .lead))
        #expect(bulk["moved"] as? Int == 2)
        let owners = try await s.postgres.query("SELECT owner_id FROM \(identifier: s.schema).opportunities WHERE status = 'assigned' ORDER BY owner_id")
            .map { try $0.decode(String.self) }
        #expect(owners == ["lead-n", "lead-n", "lead-n"])
        let kinds = try await s.postgres.query("SELECT kind FROM \(identifier: s.schema).decisions WHERE opportunity_id = \(UUID(uuidString: ofA)!) ORDER BY created_at")
            .map { try $0.decode(String.self) }
        #expect(kinds == ["assigned", "transferred", "locked", "unlocked", "transferred"])
        let events = try await s.readOpportunityEvents(atLeast: 11)
        #expect(Set(events.map(\.change)).isSuperset(of: ["created", "assigned", "transferred", "locked", "unlocked"]))
        await s.stop()
    }

    /// Two replicas in one group, leads for many customers (several per customer) racing: no rep above a cap,
    /// no opportunity held twice, no customer with two open opportunities for a line.
    @Test func twoReplicasNeverExceedCapsOrHoldAnOpportunityTwice() async throws {
        let first = try await SalesHarness.start()
        let policy = #"{"fallback_team": "north", "routing": [{"product_lines": ["java"], "team": "south"}], "teams": {"north": {"strategy": "least_loaded", "daily_new_cap": 40, "max_holding": 35, "time_zone": "Asia/Shanghai", "protection": {"follow_up_days": 3, "deal_days": 30, "warning_days": 1, "exempt": ["locked"], "recycle_to": "pool", "cooldown_days": 7, "credit_window_days": 0}, "claim": {"daily_claim_cap": 5, "holding_cap": 35}, "leaver": "pool"}, "south": {"strategy": "round_robin", "daily_new_cap": 25, "max_holding": 100, "time_zone": "Asia/Shanghai", "protection": {"follow_up_days": 3, "deal_days": 30, "warning_days": 1, "exempt": ["locked"], "recycle_to": "pool", "cooldown_days": 7, "credit_window_days": 0}, "claim": {"daily_claim_cap": 5, "holding_cap": 100}, "leaver": "pool"}}}"#
        try await first.setUp(teams: ["north": ["n1", "n2", "n3", "n4"], "south": ["s1", "s2"]], policy: policy)
        let second = try await SalesHarness.start(sharing: first)
        try await first.waitUntilReady()
        try await second.waitUntilReady()
        let customers = (0..<150).map { _ in UUID() }
        // Every customer twice for python, and a third for java: 450 records over 4 partitions.
        try await first.pushLeads(customers + customers.shuffled())
        try await first.pushLeads(customers, line: "java")
        // Consumed: the partitions' positions add up to every record pushed (offsets start at 0).
        try await first.waitForCount("""
            SELECT coalesce(sum(next_offset), 0)::int8 FROM \(identifier: first.schema).consumed_positions WHERE topic = \(first.prefix + "identity.customers.v1")
            """, 450, timeout: .seconds(60))
        let schema = first.schema
        let open = try await first.postgres.query("""
            SELECT count(*), count(DISTINCT (customer_id, product_line)) FROM \(identifier: schema).opportunities WHERE status IN ('queued', 'assigned', 'pool')
            """).first!.decode(Int.self, Int.self)
        #expect(open.0 == 300 && open.1 == 300)
        let reps = try await first.postgres.query("""
            SELECT r.employee_id, r.team_id, r.holding, r.new_today, (SELECT count(*) FROM \(identifier: schema).opportunities o
                WHERE o.owner_id = r.employee_id AND o.status = 'assigned')
            FROM \(identifier: schema).reps r
            """).map { try $0.decode(String.self, String.self, Int.self, Int.self, Int.self) }
        for (rep, team, holding, newToday, held) in reps {
            #expect(holding == held, "\(rep): counter \(holding) vs rows \(held)")
            if team == "north" { #expect(held <= 35 && newToday <= 40) } else { #expect(newToday <= 25) }
        }
        // north: 4 × 35 = 140 held, 10 queued; south: 2 × 25 = 50 held, 100 queued.
        #expect(reps.filter { $0.1 == "north" }.map(\.4).reduce(0, +) == 140)
        #expect(reps.filter { $0.1 == "south" }.map(\.4).reduce(0, +) == 50)
        let doubleHeld = try await first.postgres.query("""
            SELECT count(*) FROM (SELECT opportunity_id FROM \(identifier: schema).ownership WHERE ended_at IS NULL GROUP BY 1 HAVING count(*) > 1) x
            """).first!.decode(Int.self)
        #expect(doubleHeld == 0)
        let openIntervals = try await first.postgres.query("SELECT count(*) FROM \(identifier: schema).ownership WHERE ended_at IS NULL").first!.decode(Int.self)
        #expect(openIntervals == 190)
        await second.stop()
        await first.stop()
    }
}
