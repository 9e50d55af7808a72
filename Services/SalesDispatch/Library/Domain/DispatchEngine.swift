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
    /// with `cooldown` (a recycled opportunity's previous owner). `reps` may hold other teams' reps (skipped);
    /// `day` and `working` may be passed when already known for `now`. One pass, no sorting: ties break by
    /// the lower employee id.
    public static func choose(team: TeamState, reps: [RepState], policy: TeamPolicy, productLine: String, now: Date,
                              excluding: Set<String> = [], day knownDay: String? = nil, working knownWorking: Bool? = nil) -> DispatchChoice {
        let day = knownDay ?? policy.day(of: now)
        var views: [CandidateView] = []
        views.reserveCapacity(reps.count)
        var best: Int?
        let strategy = policy.strategy
        func better(_ a: RepState, than b: RepState) -> Bool {
            switch strategy {
            case .roundRobin:
                return (a.lastAssignedSeq, a.id) < (b.lastAssignedSeq, b.id)
            case .weighted:
                return (effectivePass(a, team), a.id) < (effectivePass(b, team), b.id)
            case .leastLoaded:
                return (a.holding, a.lastAssignedSeq, a.id) < (b.holding, b.lastAssignedSeq, b.id)
            }
        }
        for index in reps.indices {
            let rep = reps[index]
            guard rep.teamID == team.id, rep.role != .admin else { continue }
            let newToday = rep.countsDay == day ? rep.newToday : 0
            let dailyCap = rep.dailyCap(policy), holdingCap = rep.holdingCap(policy)
            var reason: String?
            if !rep.active { reason = "left" }
            else if rep.paused { reason = "paused" }
            else if !rep.sells(productLine) { reason = "product_line" }
            else if excluding.contains(rep.id) { reason = "cooldown" }
            else if newToday >= dailyCap { reason = "daily_new_cap_reached" }
            else if rep.holding >= holdingCap { reason = "max_holding_reached" }
            views.append(CandidateView(employeeID: rep.id, holding: rep.holding, newToday: newToday,
                                       dailyNewCap: dailyCap == Int.max ? -1 : dailyCap, maxHolding: holdingCap == Int.max ? -1 : holdingCap,
                                       weight: rep.weight, filteredOut: reason))
            if reason == nil, best == nil || better(rep, than: reps[best!]) { best = index }
        }
        if views.count > 1 && !views.isSorted(by: { $0.employeeID < $1.employeeID }) { views.sort { $0.employeeID < $1.employeeID } }
        var choice = DispatchChoice(team: team.id, strategy: strategy, candidates: views, picked: nil, tieBreak: "", noPickReason: nil)
        guard knownWorking ?? policy.isWorking(at: now) else {
            choice.noPickReason = "outside_working_hours"
            return choice
        }
        guard let best else {
            choice.noPickReason = views.isEmpty ? "no_reps_in_team" : "no_eligible_rep"
            return choice
        }
        switch strategy {
        case .roundRobin: choice.tieBreak = "longest since last assignment, then employee id"
        case .weighted: choice.tieBreak = "lowest stride pass (assignments ÷ weight), then employee id"
        case .leastLoaded: choice.tieBreak = "fewest held, then longest since last assignment, then employee id"
        }
        choice.picked = reps[best].id
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
                             claimed: Bool = false, day: String? = nil) {
        guard var rep = reps[repID] else { return }
        rep.roll(to: day ?? policy.day(of: now))
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

extension Array {
    func isSorted(by areInIncreasingOrder: (Element, Element) -> Bool) -> Bool {
        var i = startIndex
        while i + 1 < endIndex {
            if areInIncreasingOrder(self[i + 1], self[i]) { return false }
            i += 1
        }
        return true
    }
}
