import Contracts
import Foundation
import ServiceKit

/// The dispatch policy, kept as versioned data (`GET/PUT /v1/policies`): how a new opportunity is routed to a
/// team, how each team picks a rep, protects and recycles what reps hold, and limits claims from the pool.
public struct DispatchPolicy: Codable, Sendable, Equatable {
    /// Ordered: the first rule that matches routes the opportunity.
    public var routing: [RoutingRule]
    /// Where an opportunity no rule matches goes.
    public var fallbackTeam: String
    /// Per team (by team id).
    public var teams: [String: TeamPolicy]

    enum CodingKeys: String, CodingKey {
        case routing, teams
        case fallbackTeam = "fallback_team"
    }

    public init(routing: [RoutingRule], fallbackTeam: String, teams: [String: TeamPolicy]) {
        self.routing = routing
        self.fallbackTeam = fallbackTeam
        self.teams = teams
    }

    /// The team an opportunity goes to, and the rule that sent it there (`fallback` when none matched).
    public func route(productLine: String, channel: String, region: String) -> (team: String, rule: String) {
        for (index, rule) in routing.enumerated() where rule.matches(productLine: productLine, channel: channel, region: region) {
            return (rule.team, rule.name ?? "routing[\(index)]")
        }
        return (fallbackTeam, "fallback")
    }

    /// A team's policy (the standard one when the policy names the team only in routing).
    public func team(_ id: String) -> TeamPolicy { teams[id] ?? .standard }
}

/// One routing rule: every non-empty condition must match.
public struct RoutingRule: Codable, Sendable, Equatable {
    public var name: String?
    public var productLines: [String]?
    public var channels: [String]?
    /// Region prefixes from the phone's geocoder, e.g. `北京` or `江苏省`.
    public var regions: [String]?
    public var team: String

    enum CodingKeys: String, CodingKey {
        case name, channels, regions, team
        case productLines = "product_lines"
    }

    public init(name: String? = nil, productLines: [String]? = nil, channels: [String]? = nil, regions: [String]? = nil, team: String) {
        self.name = name
        self.productLines = productLines
        self.channels = channels
        self.regions = regions
        self.team = team
    }

    func matches(productLine: String, channel: String, region: String) -> Bool {
        if let lines = productLines, !lines.isEmpty, !lines.contains(productLine) { return false }
        if let channels, !channels.isEmpty, !channels.contains(channel) { return false }
        if let regions, !regions.isEmpty, !regions.contains(where: { region.hasPrefix($0) }) { return false }
        return true
    }
}

/// How a team picks reps.
public enum DispatchStrategy: String, Codable, Sendable, CaseIterable {
    case roundRobin = "round_robin"
    case weighted
    case leastLoaded = "least_loaded"
}

/// What exempts a held opportunity from recycling.
public enum RecycleExemption: String, Codable, Sendable, CaseIterable {
    case locked
    case openOrder = "open_order"
    case paid
}

/// Where a recycled opportunity goes.
public enum RecycleTarget: String, Codable, Sendable {
    /// To the public pool, to be claimed.
    case pool
    /// To the pool and at once redistributed to another rep of the team (the previous owner excluded).
    case redistribute
}

/// What happens to a leaver's opportunities.
public enum LeaverPolicy: String, Codable, Sendable {
    case pool
    case reassign
}

/// A team's dispatch, protection and claim rules.
public struct TeamPolicy: Codable, Sendable, Equatable {
    public var strategy: DispatchStrategy
    /// Per-rep defaults; a rep's own setting wins when lower.
    public var dailyNewCap: Int
    public var maxHolding: Int
    /// Local working hours ("09:00"–"21:00"; end before start spans midnight) and ISO weekdays (1 = Monday).
    public var workingHours: WorkingHours?
    /// IANA time zone of the team's day (daily caps, working hours).
    public var timeZone: String
    public var protection: Protection
    public var claim: ClaimRules
    public var leaver: LeaverPolicy

    enum CodingKeys: String, CodingKey {
        case strategy, protection, claim, leaver
        case dailyNewCap = "daily_new_cap"
        case maxHolding = "max_holding"
        case workingHours = "working_hours"
        case timeZone = "time_zone"
    }

    public init(strategy: DispatchStrategy = .roundRobin, dailyNewCap: Int = 50, maxHolding: Int = 300, workingHours: WorkingHours? = nil,
                timeZone: String = "Asia/Shanghai", protection: Protection = Protection(), claim: ClaimRules = ClaimRules(),
                leaver: LeaverPolicy = .pool) {
        self.strategy = strategy
        self.dailyNewCap = dailyNewCap
        self.maxHolding = maxHolding
        self.workingHours = workingHours
        self.timeZone = timeZone
        self.protection = protection
        self.claim = claim
        self.leaver = leaver
    }

    public static let standard = TeamPolicy()

    public struct WorkingHours: Codable, Sendable, Equatable {
        public var start: String
        public var end: String
        public var days: [Int]
        public init(start: String, end: String, days: [Int] = [1, 2, 3, 4, 5, 6, 7]) {
            self.start = start
            self.end = end
            self.days = days
        }

        static func minutes(_ text: String) -> Int? {
            let parts = text.split(separator: ":")
            guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...23).contains(h), (0...59).contains(m) else { return nil }
            return h * 60 + m
        }
    }

    public struct Protection: Codable, Sendable, Equatable {
        /// Days a rep may hold without a follow-up before it is recycled.
        public var followUpDays: Double
        /// Days a rep may hold without a deal.
        public var dealDays: Double
        /// A warning this many days before either deadline (0 = none).
        public var warningDays: Double
        public var exempt: [RecycleExemption]
        public var recycleTo: RecycleTarget
        /// Days before the previous owner may claim or be given the same opportunity again.
        public var cooldownDays: Double
        /// A conversion paid within this many days after a transfer is credited to the previous owner.
        public var creditWindowDays: Double

        enum CodingKeys: String, CodingKey {
            case exempt
            case followUpDays = "follow_up_days"
            case dealDays = "deal_days"
            case warningDays = "warning_days"
            case recycleTo = "recycle_to"
            case cooldownDays = "cooldown_days"
            case creditWindowDays = "credit_window_days"
        }

        public init(followUpDays: Double = 3, dealDays: Double = 30, warningDays: Double = 1, exempt: [RecycleExemption] = RecycleExemption.allCases,
                    recycleTo: RecycleTarget = .redistribute, cooldownDays: Double = 7, creditWindowDays: Double = 0) {
            self.followUpDays = followUpDays
            self.dealDays = dealDays
            self.warningDays = warningDays
            self.exempt = exempt
            self.recycleTo = recycleTo
            self.cooldownDays = cooldownDays
            self.creditWindowDays = creditWindowDays
        }
    }

    public struct ClaimRules: Codable, Sendable, Equatable {
        public var dailyClaimCap: Int
        public var holdingCap: Int
        enum CodingKeys: String, CodingKey {
            case dailyClaimCap = "daily_claim_cap"
            case holdingCap = "holding_cap"
        }
        public init(dailyClaimCap: Int = 20, holdingCap: Int = 300) {
            self.dailyClaimCap = dailyClaimCap
            self.holdingCap = holdingCap
        }
    }

    /// The team's local day of `date` (`yyyy-mm-dd`): daily caps reset when it changes.
    func day(of date: Date) -> String { LocalTime(date, zone: timeZone).dayText }

    /// True when `date` falls in the team's working hours (always, without working hours).
    func isWorking(at date: Date) -> Bool {
        guard let hours = workingHours, let start = WorkingHours.minutes(hours.start), let end = WorkingHours.minutes(hours.end) else { return true }
        let local = LocalTime(date, zone: timeZone)
        let minute = local.minuteOfDay
        let inHours = start <= end ? (minute >= start && minute < end) : (minute >= start || minute < end)
        // A shift past midnight belongs to the day it started on.
        let shiftDay = (start > end && minute < end) ? (local.isoWeekday + 5) % 7 + 1 : local.isoWeekday
        return inHours && hours.days.contains(shiftDay)
    }
}

/// A moment in a team's time zone: its day, weekday and minute, computed from the zone's offset with integer
/// arithmetic (a decision needs them several times; Calendar would be built each time).
struct LocalTime {
    let days: Int64
    let secondOfDay: Int64

    private static let zones = LockedBox<[String: TimeZone]>([:])

    init(_ date: Date, zone identifier: String) {
        let zone = Self.zones.withLock { cache -> TimeZone in
            if let zone = cache[identifier] { return zone }
            let zone = TimeZone(identifier: identifier) ?? TimeZone(secondsFromGMT: 8 * 3_600)!
            cache[identifier] = zone
            return zone
        }
        let local = Int64(date.timeIntervalSince1970.rounded(.down)) + Int64(zone.secondsFromGMT(for: date))
        var days = local / 86_400
        var second = local % 86_400
        if second < 0 { second += 86_400; days -= 1 }
        self.days = days
        self.secondOfDay = second
    }

    var minuteOfDay: Int { Int(secondOfDay / 60) }
    /// 1 = Monday … 7 = Sunday (1970-01-01 was a Thursday).
    var isoWeekday: Int { Int(((days % 7) + 7 + 3) % 7) + 1 }

    var dayText: String {
        let (y, m, d) = RFC3339.civil(fromDays: days)
        func pad(_ v: Int64, _ n: Int) -> String { let t = String(v); return String(repeating: "0", count: max(0, n - t.count)) + t }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }
}
