import Foundation

/// An action refused by the rules; the HTTP layer answers 409 with its code and detail.
public struct DispatchRefusal: Error, Sendable, CustomStringConvertible {
    public let code: String
    public let detail: String
    public init(_ code: String, _ detail: String) {
        self.code = code
        self.detail = detail
    }
    public var description: String { "\(code): \(detail)" }
}

/// What a new demand carries (from a resolved lead).
public struct Demand: Sendable {
    public var customerID: UUID
    public var productLine: String
    public var channel: String
    public var region: String
    public var phoneMasked: String?
    public var phoneKey: String?
    public var campaignID: String?
    public var subject: String
}

extension DispatchUnit {
    /// A new opportunity for `demand`: routed to a team, then dispatched (assigned, or queued in the team). One
    /// decision explains both: the routing rule and the engine's choice.
    mutating func create(_ demand: Demand, id: UUID? = nil) -> UUID {
        let route = policy.route(productLine: demand.productLine, channel: demand.channel, region: demand.region)
        var opportunity = Opportunity(id: id ?? newID(now), customerID: demand.customerID, productLine: demand.productLine, status: .queued,
                                      teamID: route.team, channel: demand.channel, region: demand.region, createdAt: now)
        opportunity.phoneMasked = demand.phoneMasked
        opportunity.phoneKey = demand.phoneKey
        opportunity.campaignID = demand.campaignID
        touch(opportunity)
        untimed.insert(opportunity.id)
        inserted.insert(opportunity.id)
        dispatch(opportunity.id, actor: "system", announceQueued: true, route: (route.rule, demand.subject))
        return opportunity.id
    }

    /// Runs the engine for an unheld opportunity of its team: assigns it, or leaves it waiting (queued, or in the
    /// pool when `stayInPool`). Every run is a stored decision with the candidates and the tie-break; for a new
    /// opportunity (`route`) it also names the routing rule, and the `created` event comes first.
    @discardableResult
    mutating func dispatch(_ id: UUID, actor: String, excluding: Set<String> = [], stayInPool: Bool = false, announceQueued: Bool = false,
                           route: (rule: String, subject: String)? = nil) -> String? {
        guard var opportunity = opportunities[id] else { return nil }
        let teamPolicy = policy.team(opportunity.teamID)
        var excluded = excluding
        if let previous = opportunity.previousOwnerID, let until = opportunity.cooldownUntil, until > now { excluded.insert(previous) }
        let choice: DispatchChoice
        if let team = teams[opportunity.teamID] {
            let clock = clock(of: team.id)
            choice = DispatchEngine.choose(team: team, reps: reps(of: team.id), policy: teamPolicy, productLine: opportunity.productLine,
                                           now: now, excluding: excluded, day: clock.day, working: clock.working)
        } else {
            choice = DispatchChoice(team: opportunity.teamID, strategy: teamPolicy.strategy, candidates: [], picked: nil, tieBreak: "",
                                    noPickReason: opportunity.teamID.isEmpty ? "no_policy_published" : "unknown_team")
        }
        var json = choice.json
        if let route {
            var w = JSONWriter()
            w.field("rule", route.rule)
            w.field("subject", route.subject)
            // The route goes inside the choice's object. `removeLast` steps back one character; `dropLast()` is
            // Collection's, which counts the whole string first (a grapheme walk over a kilobyte per decision).
            json.removeLast()
            json += ",\"route\":" + w.json + "}"
        }
        let decision = decide(choice.picked == nil ? "waiting" : "assigned", opportunity: id, actor: actor, json: json)
        if let route { emit("created", opportunity, decision: decision, actor: "system", reason: route.rule) }
        guard let picked = choice.picked else {
            if !stayInPool && (opportunity.status != .queued || announceQueued) {
                opportunity.status = .queued
                opportunity.ownerID = nil
                touch(opportunity)
                emit("queued", opportunity, decision: decision, actor: actor, reason: choice.noPickReason ?? "")
            }
            return nil
        }
        give(id, to: picked, how: "assigned", decision: decision, actor: actor, claimed: false)
        return picked
    }

    /// Hands an unheld opportunity to `rep` (counts, rotation, deadlines, ownership interval, event).
    mutating func give(_ id: UUID, to repID: String, how: String, decision: UUID, actor: String, claimed: Bool, reason: String = "") {
        guard var opportunity = opportunities[id], var team = teams[reps[repID]?.teamID ?? ""] else { return }
        let teamPolicy = policy.team(team.id)
        DispatchEngine.apply(pick: repID, reps: &reps, team: &team, policy: teamPolicy, now: now, claimed: claimed, day: clock(of: team.id).day)
        holdingDelta[repID, default: 0] += 1
        teams[team.id] = team
        changedTeams.insert(team.id)
        changedReps.insert(repID)
        let previous = opportunity.ownerID
        opportunity.status = .assigned
        opportunity.teamID = team.id
        opportunity.ownerID = repID
        opportunity.assignedAt = now
        opportunity.followUpDue = now + teamPolicy.protection.followUpDays * 86_400
        opportunity.dealDue = now + teamPolicy.protection.dealDays * 86_400
        opportunity.followUpWarned = false
        opportunity.dealWarned = false
        touch(opportunity)
        ownership.append(OwnershipChange(opportunityID: id, employeeID: repID, at: now, how: how, decisionID: decision, opens: true))
        emit(how, opportunity, decision: decision, actor: actor, reason: reason, previousOwner: previous)
    }

    /// Takes an opportunity away from its holder (released, recycled, transferred_out, left, won, merged).
    mutating func takeAway(_ id: UUID, how: String, decision: UUID?) {
        guard var opportunity = opportunities[id], opportunity.status == .assigned, let owner = opportunity.ownerID else { return }
        if var rep = reps[owner] {
            rep.holding = max(0, rep.holding - 1)
            reps[owner] = rep
        }
        holdingDelta[owner, default: 0] -= 1
        ownership.append(OwnershipChange(opportunityID: id, employeeID: owner, at: now, how: how, decisionID: decision, opens: false))
        opportunity.previousOwnerID = owner
        opportunity.ownerID = nil
        opportunity.status = .pool
        touch(opportunity)
    }

    /// Gives queued opportunities of `team` to reps with capacity, highest priority then oldest first.
    mutating func drainQueue(team: String, queued: [UUID]) {
        for id in queued {
            guard opportunities[id]?.status == .queued else { continue }
            if dispatch(id, actor: "system") == nil { break }
        }
    }

    /// A rep claims from the pool: claim caps, holding cap and the previous owner's cooldown apply.
    mutating func claim(_ id: UUID, by repID: String) throws {
        guard let opportunity = opportunities[id] else { throw DispatchRefusal("not_found", "no such opportunity") }
        guard opportunity.status == .pool else {
            throw DispatchRefusal("not_in_pool", "the opportunity is \(opportunity.status.rawValue), not in the pool")
        }
        guard let rep = reps[repID], rep.active else { throw DispatchRefusal("not_a_rep", "only an active rep can claim") }
        guard !rep.paused else { throw DispatchRefusal("rep_paused", "a paused rep cannot claim; resume first") }
        guard teams[rep.teamID] != nil else { throw DispatchRefusal("team_not_locked", "internal: the claimer's team was not locked") }
        let teamPolicy = policy.team(rep.teamID)
        var counted = rep
        counted.roll(to: teamPolicy.day(of: now))
        if opportunity.previousOwnerID == repID, let until = opportunity.cooldownUntil, until > now {
            throw DispatchRefusal("cooldown", "you held it before; you may claim it again after \(ISO8601DateFormatter().string(from: until))")
        }
        if counted.claimsToday >= teamPolicy.claim.dailyClaimCap {
            throw DispatchRefusal("daily_claim_cap_reached", "you claimed \(counted.claimsToday) today; the cap is \(teamPolicy.claim.dailyClaimCap)")
        }
        let holdingCap = min(teamPolicy.claim.holdingCap, rep.holdingCap(teamPolicy))
        if counted.holding >= holdingCap {
            throw DispatchRefusal("holding_cap_reached", "you hold \(counted.holding); the cap is \(holdingCap)")
        }
        let decision = decide("claimed", opportunity: id, actor: repID,
                              detail: ["claims_today": counted.claimsToday + 1, "daily_claim_cap": teamPolicy.claim.dailyClaimCap,
                                       "holding": counted.holding + 1, "holding_cap": holdingCap])
        give(id, to: repID, how: "claimed", decision: decision, actor: repID, claimed: true)
    }

    /// Moves a held (or waiting) opportunity to `repID` by hand; caps are reported, not enforced, for a manager.
    mutating func transfer(_ id: UUID, to repID: String, actor: String, reason: String, how: String = "transferred") throws {
        guard let opportunity = opportunities[id] else { throw DispatchRefusal("not_found", "no such opportunity") }
        guard opportunity.status.isOpen else { throw DispatchRefusal("closed", "the opportunity is \(opportunity.status.rawValue)") }
        guard let rep = reps[repID], rep.active, rep.role != .admin else { throw DispatchRefusal("not_a_rep", "\(repID) is not an active rep") }
        guard opportunity.ownerID != repID else { throw DispatchRefusal("already_holder", "\(repID) already holds it") }
        guard teams[rep.teamID] != nil else { throw DispatchRefusal("team_not_locked", "internal: the receiving rep's team was not locked") }
        let teamPolicy = policy.team(rep.teamID)
        let decision = decide(how, opportunity: id, actor: actor,
                              detail: ["from": opportunity.ownerID ?? "", "to": repID, "reason": reason,
                                       "to_holding": "\(rep.holding)", "to_max_holding": "\(rep.holdingCap(teamPolicy))"])
        takeAway(id, how: "transferred_out", decision: decision)
        give(id, to: repID, how: how, decision: decision, actor: actor, claimed: false, reason: reason)
    }

    /// The holder (or a manager) gives it up: to the pool, and redistributed when the team's policy says so.
    mutating func release(_ id: UUID, actor: String, reason: String) throws {
        guard let opportunity = opportunities[id], opportunity.status == .assigned else {
            throw DispatchRefusal("not_held", "only a held opportunity can be released")
        }
        guard !opportunity.locked else { throw DispatchRefusal("locked", "a locked opportunity cannot be released; unlock it first") }
        let decision = decide("released", opportunity: id, actor: actor, detail: ["from": opportunity.ownerID ?? "", "reason": reason])
        takeAway(id, how: "released", decision: decision)
        let after = opportunities[id]!
        emit("released", after, decision: decision, actor: actor, reason: reason, previousOwner: after.previousOwnerID)
    }

    /// A deadline fired: the holder loses it, the previous owner gets a cooldown, and it goes to the public pool —
    /// or, when the policy redistributes, to the team's queue, from which the next drain hands it to someone else.
    mutating func recycle(_ id: UUID, deadline: DeadlineKind) {
        guard var opportunity = opportunities[id], opportunity.status == .assigned else { return }
        let teamPolicy = policy.team(opportunity.teamID)
        if opportunity.isExempt(teamPolicy) { return }
        let owner = opportunity.ownerID
        let decision = decide("recycled", opportunity: id, actor: "system",
                              detail: ["deadline": deadline.rawValue, "owner": owner ?? "", "recycle_to": teamPolicy.protection.recycleTo.rawValue,
                                       "cooldown_days": String(teamPolicy.protection.cooldownDays)])
        takeAway(id, how: "recycled", decision: decision)
        opportunity = opportunities[id]!
        opportunity.cooldownUntil = now + teamPolicy.protection.cooldownDays * 86_400
        if teamPolicy.protection.recycleTo == .redistribute { opportunity.status = .queued }
        touch(opportunity)
        emit("recycled", opportunity, decision: decision, actor: "system", reason: deadline.rawValue, previousOwner: owner) { $0.deadline = deadline.rawValue }
    }

    /// A warning before a deadline.
    mutating func warn(_ id: UUID, deadline: DeadlineKind) {
        guard var opportunity = opportunities[id], opportunity.status == .assigned else { return }
        if deadline == .followUpWarning { opportunity.followUpWarned = true } else { opportunity.dealWarned = true }
        touch(opportunity)
        let which = deadline == .followUpWarning ? "follow_up" : "deal"
        emit("warned", opportunity, decision: nil, actor: "system", reason: "\(which) deadline approaching") { $0.deadline = which }
    }
}
