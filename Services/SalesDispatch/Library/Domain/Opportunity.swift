import Foundation

/// A customer's interest in one product line (course category), and who holds it.
public struct Opportunity: Sendable, Equatable {
    public enum Status: String, Sendable, Codable {
        /// Routed to a team, waiting for a rep with capacity.
        case queued
        /// Held by `ownerID`.
        case assigned
        /// In the public pool (公海), claimable.
        case pool
        case won
        case lost
        /// Folded into `mergedInto` when its customer was merged.
        case merged

        var isOpen: Bool { self == .queued || self == .assigned || self == .pool }
    }

    public var id: UUID
    public var customerID: UUID
    public var productLine: String
    public var status: Status
    public var teamID: String
    public var ownerID: String?
    public var previousOwnerID: String?
    public var cooldownUntil: Date?
    public var locked: Bool = false
    public var openOrders: Int = 0
    public var paid: Bool = false
    /// Raised by each re-inquiry; queues and the pool serve higher first.
    public var priority: Int = 0
    public var channel: String
    public var region: String
    public var phoneMasked: String?
    public var phoneKey: String?
    public var campaignID: String?
    public var createdAt: Date
    public var assignedAt: Date?
    public var lastFollowUpAt: Date?
    public var followUpDue: Date?
    public var dealDue: Date?
    public var followUpWarned = false
    public var dealWarned = false
    public var mergedInto: UUID?
    public var reinquiries: Int = 0

    public init(id: UUID, customerID: UUID, productLine: String, status: Status, teamID: String, channel: String, region: String, createdAt: Date) {
        self.id = id
        self.customerID = customerID
        self.productLine = productLine
        self.status = status
        self.teamID = teamID
        self.channel = channel
        self.region = region
        self.createdAt = createdAt
    }

    /// True when `policy` exempts it from recycling now.
    func isExempt(_ policy: TeamPolicy) -> Bool {
        let exempt = Set(policy.protection.exempt)
        return (locked && exempt.contains(.locked)) || (openOrders > 0 && exempt.contains(.openOrder)) || (paid && exempt.contains(.paid))
    }

    /// Its pending timers (none unless held and not exempt): warnings not yet given, and both deadlines.
    func deadlines(_ policy: TeamPolicy) -> [(kind: DeadlineKind, due: Date)] {
        guard status == .assigned, !isExempt(policy), let followUpDue, let dealDue else { return [] }
        var out: [(DeadlineKind, Date)] = [(.followUp, followUpDue), (.deal, dealDue)]
        let warning = policy.protection.warningDays * 86_400
        if warning > 0 {
            if !followUpWarned { out.append((.followUpWarning, followUpDue - warning)) }
            if !dealWarned { out.append((.dealWarning, dealDue - warning)) }
        }
        return out
    }

    /// The timer the scheduler holds for it: the earliest pending one. Firing it schedules the next.
    func nextDeadline(_ policy: TeamPolicy) -> (kind: DeadlineKind, due: Date)? {
        deadlines(policy).min { ($0.due, $0.kind.order) < ($1.due, $1.kind.order) }
    }
}

/// The timers an opportunity can have.
public enum DeadlineKind: String, Sendable, Codable {
    case followUpWarning = "follow_up_warning"
    case followUp = "follow_up"
    case dealWarning = "deal_warning"
    case deal

    /// Warnings before deadlines when due together.
    var order: Int {
        switch self {
        case .followUpWarning: 0
        case .dealWarning: 1
        case .followUp: 2
        case .deal: 3
        }
    }
}
