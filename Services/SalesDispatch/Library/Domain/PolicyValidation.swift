import FastText
import Foundation
import ServiceKit

extension DispatchPolicy {
    /// The standard policy of a new deployment (version 1): everything to `fallbackTeam`, round-robin.
    static func initial(fallbackTeam: String) -> DispatchPolicy {
        DispatchPolicy(routing: [], fallbackTeam: fallbackTeam, teams: [:])
    }

    /// What is wrong with this policy against the org as it is (`activeReps`: team id → active reps), field by
    /// field; empty when it is valid. A policy that names an unknown or empty team is refused on write, so
    /// dispatch never meets one later.
    public func violations(activeReps: [String: Int]) -> [Problem.FieldError] {
        var errors: [Problem.FieldError] = []
        func checkTeam(_ team: String, field: String) {
            if team.isEmpty {
                errors.append(.init(field: field, code: "missing_team", detail: "name a team id"))
            } else if activeReps[team] == nil {
                errors.append(.init(field: field, code: "unknown_team", detail: "no team \(team) in the org"))
            } else if activeReps[team] == 0 {
                errors.append(.init(field: field, code: "empty_team", detail: "team \(team) has no active rep"))
            }
        }
        checkTeam(fallbackTeam, field: "fallback_team")
        for (index, rule) in routing.enumerated() {
            checkTeam(rule.team, field: "routing[\(index)].team")
            let conditions = (rule.productLines ?? []) + (rule.channels ?? []) + (rule.regions ?? [])
            if conditions.contains(where: { $0.trimmingSpaces.isEmpty }) {
                errors.append(.init(field: "routing[\(index)]", code: "empty_condition", detail: "conditions must not be empty strings"))
            }
        }
        for (id, team) in teams.sorted(by: { $0.key < $1.key }) {
            let at = "teams.\(id)"
            checkTeam(id, field: at)
            errors += team.violations(at: at)
        }
        return errors
    }
}

extension TeamPolicy {
    func violations(at: String) -> [Problem.FieldError] {
        var errors: [Problem.FieldError] = []
        func positive(_ value: Int, _ field: String) {
            if value <= 0 { errors.append(.init(field: "\(at).\(field)", code: "not_positive", detail: "must be at least 1 (got \(value))")) }
        }
        func nonNegative(_ value: Double, _ field: String) {
            if !(value >= 0) || !value.isFinite {
                errors.append(.init(field: "\(at).\(field)", code: "negative", detail: "must be zero or more (got \(value))"))
            }
        }
        positive(dailyNewCap, "daily_new_cap")
        positive(maxHolding, "max_holding")
        positive(claim.dailyClaimCap, "claim.daily_claim_cap")
        positive(claim.holdingCap, "claim.holding_cap")
        if TimeZone(identifier: timeZone) == nil {
            errors.append(.init(field: "\(at).time_zone", code: "unknown_time_zone", detail: "not an IANA time zone: \(timeZone)"))
        }
        if let hours = workingHours {
            if WorkingHours.minutes(hours.start) == nil || WorkingHours.minutes(hours.end) == nil || hours.start == hours.end {
                errors.append(.init(field: "\(at).working_hours", code: "invalid_hours", detail: "start and end are distinct HH:MM times"))
            }
            if hours.days.isEmpty || hours.days.contains(where: { !(1...7).contains($0) }) {
                errors.append(.init(field: "\(at).working_hours.days", code: "invalid_days", detail: "ISO weekdays 1 (Monday) to 7, at least one"))
            }
        }
        let p = protection
        if !(p.followUpDays > 0) { errors.append(.init(field: "\(at).protection.follow_up_days", code: "not_positive", detail: "must be more than zero")) }
        if !(p.dealDays > 0) { errors.append(.init(field: "\(at).protection.deal_days", code: "not_positive", detail: "must be more than zero")) }
        nonNegative(p.warningDays, "protection.warning_days")
        nonNegative(p.cooldownDays, "protection.cooldown_days")
        nonNegative(p.creditWindowDays, "protection.credit_window_days")
        if p.warningDays >= p.followUpDays && p.warningDays > 0 {
            errors.append(.init(field: "\(at).protection.warning_days", code: "warning_too_late",
                                detail: "must be less than follow_up_days, or the warning would come before the rep took it"))
        }
        return errors
    }
}

/// A rep's own settings, validated on write.
public struct RepSettings: Codable, Sendable, Equatable {
    public var name: String
    public var teamID: String
    public var role: EmployeeRole
    public var productLines: [String]
    public var weight: Int
    public var dailyNewCap: Int?
    public var maxHolding: Int?

    enum CodingKeys: String, CodingKey {
        case name, role, weight
        case teamID = "team_id"
        case productLines = "product_lines"
        case dailyNewCap = "daily_new_cap"
        case maxHolding = "max_holding"
    }

    public init(name: String, teamID: String, role: EmployeeRole = .rep, productLines: [String] = [], weight: Int = 1,
                dailyNewCap: Int? = nil, maxHolding: Int? = nil) {
        self.name = name
        self.teamID = teamID
        self.role = role
        self.productLines = productLines
        self.weight = weight
        self.dailyNewCap = dailyNewCap
        self.maxHolding = maxHolding
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        teamID = try c.decode(String.self, forKey: .teamID)
        role = try c.decodeIfPresent(EmployeeRole.self, forKey: .role) ?? .rep
        productLines = try c.decodeIfPresent([String].self, forKey: .productLines) ?? []
        weight = try c.decodeIfPresent(Int.self, forKey: .weight) ?? 1
        dailyNewCap = try c.decodeIfPresent(Int.self, forKey: .dailyNewCap)
        maxHolding = try c.decodeIfPresent(Int.self, forKey: .maxHolding)
    }

    public func violations() -> [Problem.FieldError] {
        var errors: [Problem.FieldError] = []
        if teamID.isEmpty { errors.append(.init(field: "team_id", code: "missing_team", detail: "name the rep's team")) }
        if weight <= 0 { errors.append(.init(field: "weight", code: "not_positive", detail: "weight must be at least 1 (got \(weight))")) }
        if let cap = dailyNewCap, cap < 0 { errors.append(.init(field: "daily_new_cap", code: "negative", detail: "must be zero or more (got \(cap))")) }
        if let cap = maxHolding, cap < 0 { errors.append(.init(field: "max_holding", code: "negative", detail: "must be zero or more (got \(cap))")) }
        return errors
    }
}
