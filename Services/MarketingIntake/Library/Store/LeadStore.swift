import Contracts
import Foundation
import Postgres
import ServiceKit

/// Writes accepted leads and their `leads.captured.v1` event in one statement: an exact redelivery (same source
/// and platform lead id) only counts a redelivery on the stored lead, and the same phone within the flood window
/// only counts a flood duplicate on the first lead; neither emits anything.
struct LeadStore: Sendable {
    let schema: String
    let service: String
    /// The output topic's full name (with the deployment's prefix).
    let outputTopic: String

    /// The same phone again within this window is one lead plus a counted duplicate (zero: no flood limit).
    var floodWindow: Duration = .seconds(60)

    /// The statement; it returns `lead_id`, `inserted` (false for a duplicate, with the original lead id) and
    /// `flooded` (the phone was seen within the flood window: counted on that lead, not emitted). An exact
    /// redelivery (same source and platform lead id) counts a redelivery instead.
    func insert(_ lead: ValidatedLead) throws -> PostgresQuery {
        let event = try CloudEvent(topic: Topics.leadsCaptured, key: lead.key, event: lead.event, source: service,
                                   id: lead.event.leadID, time: lead.event.receivedAt.date)
        var record = OutboxRecord(event)
        record.topic = outputTopic
        let e = lead.event
        func text(_ s: String) -> String? { s.isEmpty ? nil : s }
        let windowMS = Int64(floodWindow.components.seconds * 1_000 + floodWindow.components.attoseconds / 1_000_000_000_000_000)
        let phoneKey = windowMS > 0 ? text(e.phoneKey) : nil
        return """
            WITH flood AS (
                SELECT lead_id FROM \(identifier: schema).leads
                WHERE phone_key = \(phoneKey)::text AND received_at > \(e.receivedAt.date) - \(windowMS) * interval '1 millisecond'
                  AND NOT coalesce(source_id = \(lead.source.id) AND platform_lead_id = \(lead.platformLeadID)::text, false)
                ORDER BY received_at LIMIT 1
            ), counted AS (
                UPDATE \(identifier: schema).leads SET flood_duplicates = flood_duplicates + 1
                WHERE lead_id = (SELECT lead_id FROM flood) RETURNING lead_id
            ), up AS (
                INSERT INTO \(identifier: schema).leads (lead_id, source_id, platform_lead_id, channel, campaign_id, ad_group_id, ad_id,
                    phone_key, email_key, wechat_key, phone_masked, phone_region, course_interest, is_test, occurred_at, received_at,
                    received_via, event, click_id)
                SELECT \(UUID(uuidString: e.leadID)!), \(lead.source.id), \(lead.platformLeadID)::text, \(lead.channel.rawValue)::text,
                    \(text(e.attribution.campaignID))::text, \(text(e.attribution.adGroupID))::text, \(text(e.attribution.adID))::text,
                    \(text(e.phoneKey))::text, \(text(e.emailKey))::text, \(text(e.wechatKey))::text, \(text(e.phoneMasked))::text,
                    \(text(e.phoneInfo.geo))::text, \(text(e.courseInterest))::text, \(e.isTest), \(e.occurredAt.date), \(e.receivedAt.date),
                    \(e.receivedVia)::text, \(record.payload), \(text(e.attribution.clickID))::text
                WHERE NOT EXISTS (SELECT 1 FROM flood)
                ON CONFLICT (source_id, platform_lead_id) WHERE platform_lead_id IS NOT NULL
                DO UPDATE SET redeliveries = leads.redeliveries + 1
                RETURNING lead_id, (xmax = 0) AS inserted
            ), queued AS (
                INSERT INTO \(identifier: schema).outbox (topic, key, headers, payload)
                SELECT \(record.topic), \(record.key), \(HeaderCodec.encode(record.headers)), \(record.payload) FROM up WHERE up.inserted
            )
            SELECT lead_id, inserted, false AS flooded FROM up
            UNION ALL SELECT lead_id, false, true FROM counted
            """
    }

    /// Takes the flood lock of each phone among `leads` (transaction-scoped advisory locks, in one sorted order so
    /// two batches never deadlock), so concurrent requests for one number serialise and only one becomes a lead.
    func floodLocks(_ leads: [ValidatedLead]) -> PostgresQuery? {
        guard floodWindow > .zero else { return nil }
        let keys = Set(leads.compactMap { lead -> Int64? in
            let key = lead.event.phoneKey
            guard key.utf8.count >= 16, let value = UInt64(key.prefix(16), radix: 16) else { return nil }
            return Int64(bitPattern: value)
        }).sorted()
        guard !keys.isEmpty else { return nil }
        return "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(\(PostgresArray(keys.map { Optional($0) }))::bigint[]) AS k"
    }

    static func decodeResult(_ rows: PostgresRows) throws -> (leadID: UUID, inserted: Bool) {
        guard let row = rows.first else {
            throw PostgresDecodingError(column: "lead_id", index: 0, type: "UUID", reason: "statement returned no row")
        }
        let (id, inserted) = try row.decode(UUID.self, Bool.self)
        return (id, inserted)
    }
}
