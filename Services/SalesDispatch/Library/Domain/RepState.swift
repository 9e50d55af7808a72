import Foundation
import ServiceKit

/// A rep as dispatch sees them: settings, rotation state and today's counts.
public struct RepState: Sendable, Equatable {
    public var id: String
    public var name: String
    public var teamID: String
    public var role: EmployeeRole
    public var productLines: [String]
    public var weight: Int
    public var dailyNewCap: Int?
    public var maxHolding: Int?
    public var paused: Bool
    public var active: Bool
    /// Opportunities held now.
    public var holding: Int
    /// New assignments and claims on `countsDay` (the team's local day).
    public var newToday: Int
    public var claimsToday: Int
    public var countsDay: String
    /// Round-robin position: the team sequence number of the rep's last assignment (0 = never).
    public var lastAssignedSeq: Int64
    /// Weighted (stride) position: grows by 1/weight per assignment.
    public var pass: Double

    public init(id: String, name: String = "", teamID: String, role: EmployeeRole = .rep, productLines: [String] = [], weight: Int = 1,
                dailyNewCap: Int? = nil, maxHolding: Int? = nil, paused: Bool = false, active: Bool = true, holding: Int = 0,
                newToday: Int = 0, claimsToday: Int = 0, countsDay: String = "", lastAssignedSeq: Int64 = 0, pass: Double = 0) {
        self.id = id
        self.name = name
        self.teamID = teamID
        self.role = role
        self.productLines = productLines
        self.weight = weight
        self.dailyNewCap = dailyNewCap
        self.maxHolding = maxHolding
        self.paused = paused
        self.active = active
        self.holding = holding
        self.newToday = newToday
        self.claimsToday = claimsToday
        self.countsDay = countsDay
        self.lastAssignedSeq = lastAssignedSeq
        self.pass = pass
    }

    /// The daily new cap in force: the rep's own when lower than the team's.
    func dailyCap(_ team: TeamPolicy) -> Int { min(dailyNewCap ?? Int.max, team.dailyNewCap) }
    func holdingCap(_ team: TeamPolicy) -> Int { min(maxHolding ?? Int.max, team.maxHolding) }

    /// Resets today's counts when the team's day has rolled over.
    mutating func roll(to day: String) {
        if countsDay != day {
            countsDay = day
            newToday = 0
            claimsToday = 0
        }
    }

    func sells(_ productLine: String) -> Bool { productLines.isEmpty || productLines.contains(productLine) }
}

/// A team's rotation state, locked while a decision is made.
public struct TeamState: Sendable, Equatable {
    public var id: String
    public var name: String
    public var orgUnitID: String
    /// The last sequence number handed out (round-robin order).
    public var sequence: Int64
    /// The stride scheduler's virtual time (weighted).
    public var virtualTime: Double

    public init(id: String, name: String = "", orgUnitID: String = "", sequence: Int64 = 0, virtualTime: Double = 0) {
        self.id = id
        self.name = name
        self.orgUnitID = orgUnitID
        self.sequence = sequence
        self.virtualTime = virtualTime
    }
}
