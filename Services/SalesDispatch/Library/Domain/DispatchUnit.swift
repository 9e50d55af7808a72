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

/// An input worth replaying in a policy simulation.
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
    public var decisions: [DecisionRecord] = []
    public var ownership: [OwnershipChange] = []
    public var events: [OpportunityChange] = []
    public var inputs: [DispatchInput] = []
    /// True when the unit only simulates: nothing is written.
    public var newID: @Sendable (Date) -> UUID

    public init(policy: DispatchPolicy, policyVersion: Int, now: Date, newID: @escaping @Sendable (Date) -> UUID) {
        self.policy = policy
        self.policyVersion = policyVersion
        self.now = now
        self.newID = newID
    }

    func reps(of team: String) -> [RepState] { reps.values.filter { $0.teamID == team } }

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

    mutating func decide(_ kind: String, opportunity: UUID?, actor: String, detail: some Encodable) -> UUID {
        let id = newID(now)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = (try? encoder.encode(detail)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        decisions.append(DecisionRecord(id: id, opportunityID: opportunity, kind: kind, policyVersion: policyVersion, actor: actor, detail: text, at: now))
        return id
    }
}
