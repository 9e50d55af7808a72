import Contracts
import Foundation
import Postgres
@testable import SalesDispatch
import ServiceKit
import Testing

/// Each dispatch rule on its own, against the real PostgreSQL, with time moved by the fixture's clock.
@Suite struct DispatchRuleTests {
    @Test func newLeadIsRoutedAssignedAndExplained() async throws {
        let f = try await DispatchFixture()
        try await f.team("bj")
        try await f.team("sh")
        try await f.rep("a", team: "bj")
        try await f.rep("b", team: "sh")
        try await f.publish(DispatchPolicy(routing: [RoutingRule(name: "shanghai", regions: ["上海"], team: "sh")], fallbackTeam: "bj",
                                           teams: ["bj": TeamPolicy(), "sh": TeamPolicy()]))
        let events = try f.events(try await f.process([DispatchFixture.lead(customer: UUID(), geo: "上海市"), DispatchFixture.lead(customer: UUID(), geo: "北京市")]))
        #expect(events.map(\.change) == ["created", "assigned", "created", "assigned"])
        #expect(events[1].ownerID == "b" && events[1].teamID == "sh")
        #expect(events[3].ownerID == "a" && events[3].teamID == "bj")
        #expect(events[0].reason == "shanghai" && events[2].reason == "fallback")
        let detail = try await f.decisionDetail(events[1].decisionID)
        #expect(detail["picked"] as? String == "b")
        #expect(detail["strategy"] as? String == "round_robin")
        #expect((detail["candidates"] as? [[String: Any]])?.count == 1)
        #expect(!(detail["tie_break"] as? String ?? "").isEmpty)
        await f.close()
    }

    @Test func reinquiryRaisesPriorityAndNeverDuplicatesTheOpportunity() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.rep("a", team: "t")
        try await f.publish(.single("t"))
        let customer = UUID()
        let events = try f.events(try await f.process([DispatchFixture.lead(customer: customer), DispatchFixture.lead(customer: customer),
                                                        DispatchFixture.lead(customer: customer, line: "java")]))
        #expect(events.map(\.change) == ["created", "assigned", "reinquired", "created", "assigned"])
        let opportunities = try await f.opportunities(of: customer)
        #expect(opportunities.count == 2)
        #expect(opportunities.first { $0.productLine == "python" }?.priority == 1)
        await f.close()
    }

    @Test func capsFilterRepsAndAFullTeamQueuesUntilADayRollsOver() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.rep("a", team: "t", dailyCap: 1)
        try await f.rep("b", team: "t")
        try await f.publish(.single("t", TeamPolicy(dailyNewCap: 2, maxHolding: 100)))
        let events = try f.events(try await f.process((0..<4).map { _ in DispatchFixture.lead(customer: UUID()) }))
        let owners = events.filter { $0.change == "assigned" }.map(\.ownerID)
        #expect(owners == ["a", "b", "b"])  // a's own cap is 1, b reaches the team's 2
        let queued = events.filter { $0.change == "queued" }
        #expect(queued.count == 1 && queued[0].reason == "no_eligible_rep")
        let detail = try await f.decisionDetail(queued[0].decisionID)
        let reasons = (detail["candidates"] as! [[String: Any]]).map { $0["filtered_out"] as? String }
        #expect(reasons == ["daily_new_cap_reached", "daily_new_cap_reached"])
        // The next morning the queue drains.
        f.clock.advance(by: 86_400)
        try await f.scheduler.drainAll()
        let waiting = try await f.opportunity(UUID(uuidString: queued[0].opportunityID)!)
        #expect(waiting.status == .assigned && waiting.ownerID == "a")
        await f.close()
    }

    @Test func pausedRepIsSkippedAndResumingKeepsTheirPlace() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.rep("a", team: "t")
        try await f.rep("b", team: "t")
        try await f.publish(.single("t"))
        try await f.runner.run { unit, connection in
            try f.runner.store.lockTeams(["t"], into: &unit, in: connection)
            try unit.setPaused("a", true)
        }
        let first = try f.events(try await f.process((0..<3).map { _ in DispatchFixture.lead(customer: UUID()) })).filter { $0.change == "assigned" }
        #expect(first.map(\.ownerID) == ["b", "b", "b"])
        try await f.runner.run { unit, connection in
            try f.runner.store.lockTeams(["t"], into: &unit, in: connection)
            try unit.setPaused("a", false)
        }
        // Back in rotation at the front (the longest since an assignment), not penalised.
        let next = try f.events(try await f.process((0..<2).map { _ in DispatchFixture.lead(customer: UUID()) })).filter { $0.change == "assigned" }
        #expect(next.map(\.ownerID) == ["a", "b"])
        await f.close()
    }

    @Test func followUpPushesTheDeadlineBackAndWarningComesFirst() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.rep("a", team: "t")
        try await f.rep("b", team: "t")
        try await f.publish(.single("t", TeamPolicy(protection: .init(followUpDays: 3, dealDays: 30, warningDays: 1, recycleTo: .pool, cooldownDays: 7))))
        let customer = UUID()
        let assigned = try f.events(try await f.process([DispatchFixture.lead(customer: customer)])).first { $0.change == "assigned" }!
        let id = UUID(uuidString: assigned.opportunityID)!
        f.clock.advance(by: 2.5 * 86_400)
        #expect(try await f.scheduler.fireAllDue() == 1)  // the warning
        // A connected call by the holder after 2.5 days pushes the deadline to 5.5 days.
        _ = try await f.process([DispatchFixture.call(id, by: assigned.ownerID, at: f.clock.now())])
        f.clock.advance(by: 1 * 86_400)
        #expect(try await f.scheduler.fireAllDue() == 0)
        #expect(try await f.opportunity(id).status == .assigned)
        // A call by someone else does not protect it.
        _ = try await f.process([DispatchFixture.call(id, by: "b", at: f.clock.now())])
        f.clock.advance(by: 2.01 * 86_400)
        #expect(try await f.scheduler.fireAllDue() == 2)  // the second warning and the recycle
        let recycled = try await f.opportunity(id)
        #expect(recycled.status == .pool && recycled.previousOwnerID == assigned.ownerID && recycled.ownerID == nil)
        #expect(recycled.cooldownUntil == f.clock.now() + 7 * 86_400)
        await f.close()
    }

    @Test func recycledOpportunityCannotBeReclaimedByPreviousOwnerDuringCooldown() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.rep("a", team: "t")
        try await f.publish(.single("t", TeamPolicy(protection: .init(followUpDays: 1, dealDays: 30, warningDays: 0, recycleTo: .pool, cooldownDays: 2))))
        let assigned = try f.events(try await f.process([DispatchFixture.lead(customer: UUID())])).first { $0.change == "assigned" }!
        let id = UUID(uuidString: assigned.opportunityID)!
        f.clock.advance(by: 86_401)
        #expect(try await f.scheduler.fireAllDue() == 1)
        try await f.rep("b", team: "t")
        await #expect(throws: DispatchRefusal.self) {
            try await f.runner.run { unit, connection in
                try f.runner.store.lock(opportunities: [id], extraTeams: ["t"], into: &unit, in: connection)
                try unit.claim(id, by: "a")
            }
        }
        try await f.runner.run { unit, connection in
            try f.runner.store.lock(opportunities: [id], extraTeams: ["t"], into: &unit, in: connection)
            try unit.claim(id, by: "b")
        }
        let claimed = try await f.opportunity(id)
        #expect(claimed.ownerID == "b" && claimed.status == .assigned)
        #expect(try await f.repState("a").holding == 0)
        let b = try await f.repState("b")
        #expect(b.holding == 1 && b.claimsToday == 1)
        await f.close()
    }

    @Test func redistributionSkipsThePreviousOwner() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.rep("a", team: "t")
        try await f.rep("b", team: "t")
        try await f.publish(.single("t", TeamPolicy(protection: .init(followUpDays: 1, dealDays: 30, warningDays: 0, recycleTo: .redistribute, cooldownDays: 3))))
        let assigned = try f.events(try await f.process([DispatchFixture.lead(customer: UUID())])).first { $0.change == "assigned" }!
        f.clock.advance(by: 86_401)
        try await f.scheduler.fireAllDue()
        let moved = try await f.opportunity(UUID(uuidString: assigned.opportunityID)!)
        #expect(moved.status == .assigned && moved.ownerID != assigned.ownerID)
        await f.close()
    }

    @Test func lockedOpportunityIsExemptFromRecycling() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.rep("a", team: "t")
        try await f.publish(.single("t", TeamPolicy(protection: .init(followUpDays: 1, dealDays: 2, warningDays: 0, recycleTo: .pool))))
        let assigned = try f.events(try await f.process([DispatchFixture.lead(customer: UUID())])).first { $0.change == "assigned" }!
        let id = UUID(uuidString: assigned.opportunityID)!
        try await f.runner.run { unit, connection in
            try f.runner.store.lock(opportunities: [id], into: &unit, in: connection)
            try unit.setLocked(id, true, actor: "lead", reason: "VIP")
        }
        f.clock.advance(by: 10 * 86_400)
        #expect(try await f.scheduler.fireAllDue() == 0)
        #expect(try await f.opportunity(id).ownerID == "a")
        await f.close()
    }

    @Test func leaverLosesEveryOpportunity() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.rep("a", team: "t")
        try await f.rep("b", team: "t")
        try await f.publish(.single("t", TeamPolicy(leaver: .reassign)))
        _ = try await f.process((0..<6).map { _ in DispatchFixture.lead(customer: UUID()) })
        #expect(try await f.repState("a").holding == 3)
        let events = try f.events(try await f.process([DispatchFixture.left("a")]))
        #expect(events.filter { $0.change == "released" }.count == 3)
        #expect(events.filter { $0.change == "assigned" }.allSatisfy { $0.ownerID == "b" })
        let stillHeld = try await f.postgres.query("SELECT count(*) FROM \(identifier: f.schema).opportunities WHERE owner_id = 'a'").first!.decode(Int.self)
        #expect(stillHeld == 0)
        let a = try await f.repState("a")
        #expect(a.active == false && a.holding == 0)
        #expect(try await f.repState("b").holding == 6)
        await f.close()
    }

    @Test func conversionIsCreditedToTheHolderOrThePreviousOneWithinTheWindow() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.rep("a", team: "t")
        try await f.rep("b", team: "t")
        try await f.publish(.single("t", TeamPolicy(protection: .init(creditWindowDays: 2))))
        let (c1, c2) = (UUID(), UUID())
        let created = try f.events(try await f.process([DispatchFixture.lead(customer: c1), DispatchFixture.lead(customer: c2)])).filter { $0.change == "assigned" }
        #expect(created.map(\.ownerID) == ["a", "b"])
        // c1's opportunity is transferred from a to b; paid a day later: inside the 2-day window, a is credited.
        let id1 = UUID(uuidString: created[0].opportunityID)!
        f.clock.advance(by: 3 * 86_400)
        try await f.runner.run { unit, connection in
            try f.runner.store.lock(opportunities: [id1], into: &unit, in: connection)
            try unit.transfer(id1, to: "b", actor: "lead", reason: "a is overloaded")
        }
        f.clock.advance(by: 86_400)
        let won1 = try f.events(try await f.process([DispatchFixture.conversion(order: "o1", customer: c1, at: f.clock.now())]))
        #expect(won1.first?.change == "won" && won1.first?.creditedTo == "a")
        // c2 paid while b held it from the start: b.
        let won2 = try f.events(try await f.process([DispatchFixture.conversion(order: "o2", customer: c2, at: f.clock.now())]))
        #expect(won2.first?.creditedTo == "b")
        // The same order again changes nothing.
        #expect(try f.events(try await f.process([DispatchFixture.conversion(order: "o2", customer: c2, at: f.clock.now())])).isEmpty)
        await f.close()
    }

    @Test func mergedCustomersFoldTheirOpportunitiesAndErasureRemovesPII() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.rep("a", team: "t")
        try await f.rep("b", team: "t")
        try await f.publish(.single("t"))
        let (survivor, absorbed) = (UUID(), UUID())
        _ = try await f.process([DispatchFixture.lead(customer: survivor), DispatchFixture.lead(customer: absorbed),
                                 DispatchFixture.lead(customer: absorbed, line: "java")])
        let events = try f.events(try await f.process([DispatchFixture.merged(survivor: survivor, absorbed: [absorbed])]))
        #expect(events.map(\.change) == ["merged"])
        let all = try await f.opportunities(of: survivor)
        #expect(all.count == 3)
        #expect(all.filter { $0.status.isOpen }.map(\.productLine).sorted() == ["java", "python"])
        #expect(try await f.repState("b").holding == 0)  // b let go of the folded one (a holds the kept python and java)
        let erased = try f.events(try await f.process([DispatchFixture.erased(survivor)]))
        #expect(erased.count == 3 && erased.allSatisfy { $0.change == "erased" && $0.phoneMasked.isEmpty })
        let leftover = try await f.postgres.query("""
            SELECT count(*) FROM \(identifier: f.schema).opportunities WHERE phone_masked IS NOT NULL OR phone_key IS NOT NULL
            """).first!.decode(Int.self)
        #expect(leftover == 0)
        await f.close()
    }

    @Test func badRecordsAreDeadLetteredWithTheReason() async throws {
        let f = try await DispatchFixture()
        var event = Funnel_Identity_V1_CustomerEvent()
        event.customerID = "not-a-uuid"
        event.resolved = Funnel_Identity_V1_CustomerResolved()
        var garbage = DispatchFixture.lead(customer: UUID())
        garbage = .init(topic: garbage.topic, partition: 0, offset: 0, key: nil, value: [0xFF, 0x01], headers: garbage.headers, timestampMilliseconds: nil)
        var hired = Funnel_Hr_V1_EmployeeEvent()
        hired.employeeID = "x"
        var employee = Funnel_Hr_V1_Employee()
        employee.teamID = "nowhere"
        hired.hired = employee
        let outcomes = try await f.process([DispatchFixture.record(DispatchFixture.topics.customers, event), garbage,
                                            DispatchFixture.record(DispatchFixture.topics.employees, hired),
                                            DispatchFixture.conversion(order: "o", customer: UUID(), status: "teleported", at: Date())])
        let codes = outcomes.map { outcome -> String in
            if case .rejected(let code, _) = outcome { return code }
            return "processed"
        }
        #expect(codes[0] == "invalid_customer_id")
        #expect(codes[1] != "processed")
        #expect(codes[2] == "unknown_team")
        #expect(codes[3] == "invalid_status")
        await f.close()
    }

    @Test func policyWithZeroCapsUnknownOrEmptyTeamsIsRefusedFieldByField() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        try await f.team("empty")
        try await f.rep("a", team: "t")
        var bad = TeamPolicy(dailyNewCap: 0, maxHolding: -1, timeZone: "Mars/Base")
        bad.protection.followUpDays = 0
        let policy = DispatchPolicy(routing: [RoutingRule(team: "ghost")], fallbackTeam: "empty", teams: ["t": bad])
        do {
            try await f.publish(policy)
            Issue.record("an invalid policy was published")
        } catch let problem as Problem {
            #expect(problem.status == .unprocessableContent)
            let fields = Set(problem.errors.map { "\($0.field):\($0.code)" })
            #expect(fields.isSuperset(of: ["fallback_team:empty_team", "routing[0].team:unknown_team", "teams.t.daily_new_cap:not_positive",
                                           "teams.t.max_holding:not_positive", "teams.t.time_zone:unknown_time_zone",
                                           "teams.t.protection.follow_up_days:not_positive"]))
        }
        #expect(RepSettings(name: "z", teamID: "t", weight: 0).violations().map(\.code) == ["not_positive"])
        await f.close()
    }
}
