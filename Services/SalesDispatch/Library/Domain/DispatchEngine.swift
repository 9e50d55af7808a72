import Foundation

/// One candidate as the engine saw it: counts, caps and whether (and why not) it could take the opportunity.
public struct CandidateView: Codable, Sendable, Equatable {
    public var employeeID: String
    public var holding: Int
    public var newToday: Int
    public var dailyNewCap: Int
    public var maxHolding: Int
    public var weight: Int
    /// nil when eligible; else paused, left, product_line, cooldown, daily_new_cap_reached, max_holding_reached.
    public var filteredOut: String?

    enum CodingKeys: String, CodingKey {
        case holding, weight
        case employeeID = "employee_id"
        case newToday = "new_today"
        case dailyNewCap = "daily_new_cap"
        case maxHolding = "max_holding"
        case filteredOut = "filtered_out"
    }
}

/// The engine's choice and its explanation (stored with the decision).
public struct DispatchChoice: Codable, Sendable, Equatable {
    public var team: String
    public var strategy: DispatchStrategy
    public var candidates: [CandidateView]
    /// The rep picked; nil when nobody is eligible (the opportunity waits in the team's queue).
    public var picked: String?
    /// How the strategy ranked and what broke the tie.
    public var tieBreak: String
    /// Why nobody was picked.
    public var noPickReason: String?

    enum CodingKeys: String, CodingKey {
        case team, strategy, candidates, picked
        case tieBreak = "tie_break"
        case noPickReason = "no_pick_reason"
    }
}

/// The dispatch engine: pure and deterministic. Filters the team's reps, applies the caps, ranks by the team's
/// strategy and breaks ties by a fixed order; the caller applies the pick with ``apply(_:to:team:policy:)``.
public enum DispatchEngine {
    /// Chooses a rep of `team` for an opportunity of `productLine` at `now`. `excluding` reps are filtered out
    /// with `cooldown` (a recycled opportunity's previous owner).
    public static func choose(team: TeamState, reps: [RepState], policy: TeamPolicy, productLine: String, now: Date,
                              excluding: Set<String> = []) -> DispatchChoice {
        let day = policy.day(of: now)
        var views: [CandidateView] = []
        var eligible: [RepState] = []
        for var rep in reps.sorted(by: { $0.id < $1.id }) where rep.teamID == team.id && rep.role != .admin {
            rep.roll(to: day)
            var reason: String?
            if !rep.active { reason = "left" }
            else if rep.paused { reason = "paused" }
            else if !rep.sells(productLine) { reason = "product_line" }
            else if excluding.contains(rep.id) { reason = "cooldown" }
            else if rep.newToday >= rep.dailyCap(policy) { reason = "daily_new_cap_reached" }
            else if rep.holding >= rep.holdingCap(policy) { reason = "max_holding_reached" }
            views.append(CandidateView(employeeID: rep.id, holding: rep.holding, newToday: rep.newToday,
                                       dailyNewCap: rep.dailyCap(policy) == Int.max ? -1 : rep.dailyCap(policy),
                                       maxHolding: rep.holdingCap(policy) == Int.max ? -1 : rep.holdingCap(policy),
                                       weight: rep.weight, filteredOut: reason))
            if reason == nil { eligible.append(rep) }
        }
        var choice = DispatchChoice(team: team.id, strategy: policy.strategy, candidates: views, picked: nil, tieBreak: "", noPickReason: nil)
        guard policy.isWorking(at: now) else {
            choice.noPickReason = "outside_working_hours"
            return choice
        }
        guard !eligible.isEmpty else {
            choice.noPickReason = views.isEmpty ? "no_reps_in_team" : "no_eligible_rep"
            return choice
        }
        let ranked: [RepState]
        switch policy.strategy {
        case .roundRobin:
            ranked = eligible.sorted { ($0.lastAssignedSeq, $0.id) < ($1.lastAssignedSeq, $1.id) }
            choice.tieBreak = "longest since last assignment, then employee id"
        case .weighted:
            ranked = eligible.sorted { (effectivePass($0, team), $0.id) < (effectivePass($1, team), $1.id) }
            choice.tieBreak = "lowest stride pass (assignments ÷ weight), then employee id"
        case .leastLoaded:
            ranked = eligible.sorted { ($0.holding, $0.lastAssignedSeq, $0.id) < ($1.holding, $1.lastAssignedSeq, $1.id) }
            choice.tieBreak = "fewest held, then longest since last assignment, then employee id"
        }
        choice.picked = ranked[0].id
        return choice
    }

    /// A rep returning from a pause (or new) never jumps ahead of the team by more than one turn, and never
    /// falls behind: its pass is lifted to the team's virtual time less one of its own strides.
    static func effectivePass(_ rep: RepState, _ team: TeamState) -> Double {
        max(rep.pass, team.virtualTime - 1 / Double(max(rep.weight, 1)))
    }

    /// Applies a pick: the rep holds one more, counts one more new today, moves to the back of the rotation.
    /// `claimed` counts against the daily claim cap instead of the daily new cap.
    public static func apply(pick repID: String, reps: inout [String: RepState], team: inout TeamState, policy: TeamPolicy, now: Date,
                             claimed: Bool = false) {
        guard var rep = reps[repID] else { return }
        rep.roll(to: policy.day(of: now))
        team.sequence += 1
        rep.lastAssignedSeq = team.sequence
        let pass = effectivePass(rep, team)
        team.virtualTime = max(team.virtualTime, pass)
        rep.pass = pass + 1 / Double(max(rep.weight, 1))
        rep.holding += 1
        if claimed { rep.claimsToday += 1 } else { rep.newToday += 1 }
        reps[repID] = rep
    }
}
