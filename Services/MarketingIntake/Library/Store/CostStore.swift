import Foundation
import Postgres
import ServiceKit

/// One row of the lead stats: a group (day, channel, campaign — those asked for) and its figures.
struct LeadStatsRow: Encodable, Sendable, Equatable {
    var day: String?
    var channel: String?
    var campaignID: String?
    var leads: Int
    var testLeads: Int
    var duplicates: Int
    var spendMinor: Int64
    /// Spend divided by leads, in the currency's minor unit, rounded half up; nil without leads.
    var costPerLeadMinor: Int64?

    enum CodingKeys: String, CodingKey {
        case day, channel, campaignID = "campaign_id", leads, testLeads = "test_leads", duplicates, spendMinor = "spend_minor"
        case costPerLeadMinor = "cost_per_lead_minor"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let day { try c.encode(day, forKey: .day) }
        if let channel { try c.encode(channel, forKey: .channel) }
        if let campaignID { try c.encode(campaignID, forKey: .campaignID) }
        try c.encode(leads, forKey: .leads)
        try c.encode(testLeads, forKey: .testLeads)
        try c.encode(duplicates, forKey: .duplicates)
        try c.encode(spendMinor, forKey: .spendMinor)
        try c.encode(costPerLeadMinor, forKey: .costPerLeadMinor)
    }
}

/// What the stats are grouped by.
struct StatsGrouping: Sendable, Equatable {
    var day = true
    var channel = true
    var campaign = true
}

/// Campaign spend (upserted: a restatement replaces) and the lead stats that join it.
struct CostStore: Sendable {
    let schema: String

    /// One cost per channel, campaign and day: the last of repeated ones (a restatement within one report).
    static func latest(_ costs: [ValidCost]) -> [ValidCost] {
        var latest: [String: ValidCost] = [:]
        var order: [String] = []
        for cost in costs {
            let key = "\(cost.channel.rawValue)\u{1F}\(cost.campaignID)\u{1F}\(cost.day)"
            if latest[key] == nil { order.append(key) }
            latest[key] = cost
        }
        return order.map { latest[$0]! }
    }

    /// The statement that stores `costs` (the last of duplicates within one call wins).
    func upsert(_ costs: [ValidCost]) -> PostgresQuery {
        let c = Self.latest(costs)
        return """
            INSERT INTO \(identifier: schema).campaign_costs (channel, campaign_id, day, spend_minor, impressions, clicks, reported_by)
            SELECT ch, ca, d::date, s, i, k, r FROM unnest(\(PostgresArray(c.map { Optional($0.channel.rawValue) }))::text[],
                \(PostgresArray(c.map { Optional($0.campaignID) }))::text[], \(PostgresArray(c.map { Optional($0.day) }))::text[],
                \(PostgresArray(c.map { Optional($0.spendMinor) }))::bigint[], \(PostgresArray(c.map { Optional($0.impressions) }))::bigint[],
                \(PostgresArray(c.map { Optional($0.clicks) }))::bigint[], \(PostgresArray(c.map { Optional($0.reportedBy) }))::text[]) AS u(ch, ca, d, s, i, k, r)
            ON CONFLICT (channel, campaign_id, day) DO UPDATE SET spend_minor = EXCLUDED.spend_minor, impressions = EXCLUDED.impressions,
                clicks = EXCLUDED.clicks, reported_by = EXCLUDED.reported_by, updated_at = now()
            """
    }

    /// Leads (not test), test leads, duplicates (exact redeliveries and flood repeats), spend and cost per lead per
    /// group, for the days `from` through `to` (inclusive) of `timeZone`. A lead counts on the day it occurred;
    /// a lead without a campaign is grouped under the campaign "".
    func leadStats(from: String, to: String, timeZone: String, grouping: StatsGrouping, channel: String?, campaign: String?,
                   in conn: PostgresConnection) throws -> [LeadStatsRow] {
        let rows = try conn.query("""
            WITH l AS (
                SELECT (occurred_at AT TIME ZONE \(timeZone))::date AS day, channel, coalesce(campaign_id, '') AS campaign_id,
                       count(*) FILTER (WHERE NOT is_test) AS leads, count(*) FILTER (WHERE is_test) AS test_leads,
                       sum(redeliveries + flood_duplicates)::bigint AS duplicates, 0::bigint AS spend
                FROM \(identifier: schema).leads
                WHERE occurred_at >= (\(from)::date)::timestamp AT TIME ZONE \(timeZone)
                  AND occurred_at < (\(to)::date + 1)::timestamp AT TIME ZONE \(timeZone)
                  AND (\(channel)::text IS NULL OR channel = \(channel)::text) AND (\(campaign)::text IS NULL OR campaign_id = \(campaign)::text)
                GROUP BY 1, 2, 3
            ), c AS (
                SELECT day, channel, campaign_id, 0::bigint, 0::bigint, 0::bigint, sum(spend_minor)::bigint
                FROM \(identifier: schema).campaign_costs
                WHERE day BETWEEN \(from)::date AND \(to)::date
                  AND (\(channel)::text IS NULL OR channel = \(channel)::text) AND (\(campaign)::text IS NULL OR campaign_id = \(campaign)::text)
                GROUP BY 1, 2, 3
            ), g AS (
                SELECT CASE WHEN \(grouping.day) THEN to_char(day, 'YYYY-MM-DD') END AS day, CASE WHEN \(grouping.channel) THEN channel END AS channel,
                       CASE WHEN \(grouping.campaign) THEN campaign_id END AS campaign_id,
                       sum(leads)::bigint AS leads, sum(test_leads)::bigint AS test_leads, sum(duplicates)::bigint AS duplicates, sum(spend)::bigint AS spend
                FROM (SELECT * FROM l UNION ALL SELECT * FROM c) x GROUP BY 1, 2, 3
            )
            SELECT day, channel, campaign_id, leads, test_leads, duplicates, spend,
                   CASE WHEN leads > 0 THEN round(spend::numeric / leads)::bigint END
            FROM g ORDER BY day NULLS FIRST, channel NULLS FIRST, campaign_id NULLS FIRST
            """)
        return try rows.map { row in
            let (day, channel, campaign, leads, tests, duplicates, spend, perLead) =
                try row.decode(String?.self, String?.self, String?.self, Int.self, Int.self, Int.self, Int64.self, Int64?.self)
            return LeadStatsRow(day: day, channel: channel, campaignID: campaign, leads: leads, testLeads: tests, duplicates: duplicates,
                                spendMinor: spend, costPerLeadMinor: perLead)
        }
    }
}
