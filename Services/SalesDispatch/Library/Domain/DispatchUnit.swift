import Foundation

/// A stored decision: what was decided, by which rule and policy version, and why (JSON detail).
public struct DecisionRecord: Sendable {
    public var id: UUID
    public var opportunityID: UUID?
    public var kind: String
    public var policyVersion: Int
    public var actor: String
    public var detail: String
    public var at: Date
}

/// An event to emit on `sales.opportunities.v1`, with the opportunity as it was after the change.
public struct OpportunityChange: Sendable {
    public var change: String
    public var opportunity: Opportunity
    public var decisionID: UUID?
    public var actor: String
    public var reason: String = ""
    public var previousOwnerID: String?
    public var deadline: String = ""
    public var creditedTo: String = ""
    public var orderID: String = ""
    public var amountCents: Int64 = 0
    public var at: Date
}

/// An ownership interval opened or closed.
public struct OwnershipChange: Sendable {
    public var opportunityID: UUID
    public var employeeID: String
    public var at: Date
    /// Opening: assigned, claimed, transferred_in, reassigned. Closing: released, recycled, transferred_out, won, left, merged.
    public var how: String
    public var decisionID: UUID?
    public var opens: Bool
}

/// An input a policy simulation replays (read back from opportunities, re-inquiry decisions, follow-ups and conversions).
public struct DispatchInput: Sendable {
    /// demand (a new opportunity or a re-inquiry), follow_up, deal.
    public var kind: String
    public var opportunityID: UUID
    public var productLine: String
    public var channel: String
    public var region: String
    public var at: Date
}

/// The working set of one transaction: the policy, the locked teams and their reps, the opportunities touched,
/// and everything decided (decisions, ownership, events) — written back by `DispatchStore.save`.
public struct DispatchUnit: Sendable {
    public var policy: DispatchPolicy
    public var policyVersion: Int
    public var now: Date
    public var teams: [String: TeamState] = [:]
    public var reps: [String: RepState] = [:]
    public var opportunities: [UUID: Opportunity] = [:]
    public var changedTeams: Set<String> = []
    public var changedReps: Set<String> = []
    public var changedOpportunities: Set<UUID> = []
    /// Opportunities whose deadlines must be rewritten (changed ones whose timers may differ).
    public var retimed: Set<UUID> = []
    /// Opportunities without a stored timer to replace (created here, or whose timer just fired).
    public var untimed: Set<UUID> = []
    /// Opportunities created in this unit (inserted, not updated).
    public var inserted: Set<UUID> = []
    /// Net change of each rep's holding in this unit. Holdings are written as deltas, so paths that only free
    /// capacity (a deadline firing) need no team lock: a concurrent decision can only see a holding too high.
    public var holdingDelta: [String: Int] = [:]
    public var decisions: [DecisionRecord] = []
    public var ownership: [OwnershipChange] = []
    public var events: [OpportunityChange] = []
    /// True when the unit only simulates: nothing is written.
    public var newID: @Sendable (Date) -> UUID

    public init(policy: DispatchPolicy, policyVersion: Int, now: Date, newID: @escaping @Sendable (Date) -> UUID) {
        self.policy = policy
        self.policyVersion = policyVersion
        self.now = now
        self.newID = newID
    }

    /// Reps by team, sorted by id (rebuilt when a loader adds a rep; counters change in place).
    private var repIndex: [String: [String]]?
    /// The team's local day and working state at `now`, per team.
    private var teamClock: [String: (now: Date, day: String, working: Bool)] = [:]

    /// Adds or replaces a rep loaded from the store.
    mutating func setRep(_ rep: RepState) {
        reps[rep.id] = rep
        repIndex = nil
    }

    mutating func reps(of team: String) -> [RepState] {
        if repIndex == nil {
            var index: [String: [String]] = [:]
            for rep in reps.values { index[rep.teamID, default: []].append(rep.id) }
            for key in index.keys { index[key]!.sort() }
            repIndex = index
        }
        return (repIndex![team] ?? []).compactMap { reps[$0] }
    }

    /// The team's day (daily caps) and whether it is working, at `now`.
    mutating func clock(of team: String) -> (day: String, working: Bool) {
        if let cached = teamClock[team], cached.now == now { return (cached.day, cached.working) }
        let policy = policy.team(team)
        let value = (now: now, day: policy.day(of: now), working: policy.isWorking(at: now))
        teamClock[team] = value
        return (value.day, value.working)
    }

    mutating func touch(_ opportunity: Opportunity, retime: Bool = true) {
        opportunities[opportunity.id] = opportunity
        changedOpportunities.insert(opportunity.id)
        if retime { retimed.insert(opportunity.id) }
    }

    mutating func emit(_ change: String, _ opportunity: Opportunity, decision: UUID?, actor: String, reason: String = "",
                       previousOwner: String? = nil, fill: (inout OpportunityChange) -> Void = { _ in }) {
        var event = OpportunityChange(change: change, opportunity: opportunity, decisionID: decision, actor: actor, reason: reason,
                                      previousOwnerID: previousOwner, at: now)
        fill(&event)
        events.append(event)
    }

    mutating func decide(_ kind: String, opportunity: UUID?, actor: String, json: String) -> UUID {
        let id = newID(now)
        decisions.append(DecisionRecord(id: id, opportunityID: opportunity, kind: kind, policyVersion: policyVersion, actor: actor, detail: json, at: now))
        return id
    }

    mutating func decide(_ kind: String, opportunity: UUID?, actor: String, detail: [String: String]) -> UUID {
        decide(kind, opportunity: opportunity, actor: actor, json: JSONWriter.object(detail))
    }

    mutating func decide(_ kind: String, opportunity: UUID?, actor: String, detail: [String: Int]) -> UUID {
        decide(kind, opportunity: opportunity, actor: actor, json: JSONWriter.object(detail))
    }

    mutating func decide(_ kind: String, opportunity: UUID?, actor: String, detail: DispatchChoice) -> UUID {
        decide(kind, opportunity: opportunity, actor: actor, json: detail.json)
    }
}
