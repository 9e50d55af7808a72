import FastText
import Foundation
import Postgres

/// An opportunity as the APIs show it. The phone mask is shown to its holder and managers; the pool hides it
/// until claimed.
struct OpportunityView: Codable, Sendable {
    let id: String
    let customerID: String
    let productLine: String
    let status: String
    let teamID: String
    let ownerID: String?
    let previousOwnerID: String?
    let cooldownUntil: Date?
    let locked: Bool
    let openOrders: Int
    let priority: Int
    let channel: String
    let region: String
    let phoneMasked: String?
    let createdAt: Date
    let assignedAt: Date?
    let lastFollowUpAt: Date?
    let followUpDue: Date?
    let dealDue: Date?
    let nextDeadline: Date?
    let mergedInto: String?
    let reinquiries: Int

    enum CodingKeys: String, CodingKey {
        case id, status, locked, priority, channel, region
        case customerID = "customer_id"
        case productLine = "product_line"
        case teamID = "team_id"
        case ownerID = "owner_id"
        case previousOwnerID = "previous_owner_id"
        case cooldownUntil = "cooldown_until"
        case openOrders = "open_orders"
        case phoneMasked = "phone_masked"
        case createdAt = "created_at"
        case assignedAt = "assigned_at"
        case lastFollowUpAt = "last_follow_up_at"
        case followUpDue = "follow_up_due"
        case dealDue = "deal_due"
        case nextDeadline = "next_deadline"
        case mergedInto = "merged_into"
        case reinquiries
    }

    init(_ o: Opportunity, showPhone: Bool = true) {
        id = o.id.lowercasedText
        customerID = o.customerID.lowercasedText
        productLine = o.productLine
        status = o.status.rawValue
        teamID = o.teamID
        ownerID = o.ownerID
        previousOwnerID = o.previousOwnerID
        cooldownUntil = o.cooldownUntil
        locked = o.locked
        openOrders = o.openOrders
        priority = o.priority
        channel = o.channel
        region = o.region
        phoneMasked = showPhone ? o.phoneMasked : o.phoneMasked.map(Self.hidden)
        createdAt = o.createdAt
        assignedAt = o.assignedAt
        lastFollowUpAt = o.lastFollowUpAt
        followUpDue = o.status == .assigned ? o.followUpDue : nil
        dealDue = o.status == .assigned ? o.dealDue : nil
        nextDeadline = o.status == .assigned && !o.locked ? [o.followUpDue, o.dealDue].compactMap { $0 }.min() : nil
        mergedInto = o.mergedInto?.lowercasedText
        reinquiries = o.reinquiries
    }

    /// `138****8000` → `1*********0`: the pool shows that a number exists, not which.
    static func hidden(_ mask: String) -> String {
        guard let first = mask.first, let last = mask.last, mask.count > 2 else { return "***" }
        return String(first) + String(repeating: "*", count: mask.count - 2) + String(last)
    }
}

struct ListResponse<T: Codable & Sendable>: Codable, Sendable {
    let items: [T]
    let count: Int
    init(_ items: [T]) {
        self.items = items
        self.count = items.count
    }
}
