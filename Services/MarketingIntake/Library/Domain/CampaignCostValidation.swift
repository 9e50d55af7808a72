import Contracts
import FastText
import Foundation

/// A campaign's spend on one day, validated.
struct ValidCost: Sendable, Equatable {
    let channel: Channel
    let campaignID: String
    /// `YYYY-MM-DD`.
    let day: String
    let spendMinor: Int64
    let impressions: Int64
    let clicks: Int64
    let reportedBy: String
}

/// Validates campaign costs the same way for HTTP and the topic.
struct CostValidator: Sendable {
    let currency: String

    func validate(_ cost: Funnel_Marketing_V1_CampaignCost) -> Result<ValidCost, LeadRejection> {
        var violations: [LeadViolation] = []
        let channelText = cost.channel.trimmingSpaces.lowercased()
        let channel = Channel(rawValue: channelText)
        if channel == nil {
            violations.append(LeadViolation(code: channelText.isEmpty ? "missing_channel" : "unknown_channel", field: "channel",
                                             detail: "must be one of \(Channel.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        let campaign = cost.campaignID.trimmingSpaces
        if campaign.isEmpty { violations.append(LeadViolation(code: "missing_campaign_id", field: "campaign_id", detail: "name the campaign")) }
        if campaign.count > 128 { violations.append(LeadViolation(code: "field_too_long", field: "campaign_id", detail: "longer than 128 characters")) }
        if Self.day(cost.day) == nil {
            violations.append(LeadViolation(code: "invalid_day", field: "day", detail: "must be a date YYYY-MM-DD between 2000-01-01 and 2100-12-31"))
        }
        if cost.spendMinor < 0 { violations.append(LeadViolation(code: "negative_spend", field: "spend_minor", detail: "spend cannot be negative")) }
        if cost.impressions < 0 || cost.clicks < 0 {
            violations.append(LeadViolation(code: "negative_count", field: cost.impressions < 0 ? "impressions" : "clicks", detail: "cannot be negative"))
        }
        for (field, value) in [("channel", cost.channel), ("campaign_id", cost.campaignID), ("day", cost.day), ("currency", cost.currency),
                               ("reported_by", cost.reportedBy)] where value.utf8.contains(0) {
            violations.append(LeadViolation(code: "invalid_character", field: field, detail: "contains a NUL character"))
        }
        let currency = cost.currency.trimmingSpaces.uppercased()
        if !currency.isEmpty && currency != self.currency {
            violations.append(LeadViolation(code: "unsupported_currency", field: "currency", detail: "spend is kept in \(self.currency) only"))
        }
        if cost.reportedBy.count > 128 { violations.append(LeadViolation(code: "field_too_long", field: "reported_by", detail: "longer than 128 characters")) }
        guard violations.isEmpty, let channel else { return .failure(LeadRejection(violations: violations)) }
        return .success(ValidCost(channel: channel, campaignID: campaign, day: cost.day, spendMinor: cost.spendMinor, impressions: cost.impressions,
                                  clicks: cost.clicks, reportedBy: cost.reportedBy))
    }

    /// The UTC midnight of a `YYYY-MM-DD` text (strict: a real calendar date between 2000 and 2100), or nil.
    static func day(_ text: String) -> Date? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (2000...2100).contains(y) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components = DateComponents(year: y, month: m, day: d)
        guard components.isValidDate(in: calendar) else { return nil }
        return calendar.date(from: components)
    }
}
