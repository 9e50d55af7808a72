import Contracts
import Foundation
import Postgres
import ServiceKit

/// Writes accepted leads and their `leads.captured.v1` event in one statement: an exact redelivery (same source
/// and platform lead id) only counts a redelivery on the stored lead and emits nothing.
struct LeadStore: Sendable {
    let schema: String
    let service: String
    /// The output topic's full name (with the deployment's prefix).
    let outputTopic: String

    /// The statement; it returns `lead_id` and `inserted` (false for a redelivery, with the original lead id).
    func insert(_ lead: ValidatedLead) throws -> PostgresQuery {
        let event = try CloudEvent(topic: Topics.leadsCaptured, key: lead.key, event: lead.event, source: service,
                                   id: lead.event.leadID, time: lead.event.receivedAt.date)
        var record = OutboxRecord(event)
        record.topic = outputTopic
        let e = lead.event
        func text(_ s: String) -> String? { s.isEmpty ? nil : s }
        return """
            WITH up AS (
                INSERT INTO \(identifier: schema).leads (lead_id, source_id, platform_lead_id, channel, campaign_id, ad_group_id, ad_id,
                    phone_key, email_key, wechat_key, phone_masked, phone_region, course_interest, is_test, occurred_at, received_at,
                    received_via, event)
                VALUES (\(UUID(uuidString: e.leadID)!), \(lead.source.id), \(lead.platformLeadID), \(lead.channel.rawValue),
                    \(text(e.attribution.campaignID)), \(text(e.attribution.adGroupID)), \(text(e.attribution.adID)),
                    \(text(e.phoneKey)), \(text(e.emailKey)), \(text(e.wechatKey)), \(text(e.phoneMasked)), \(text(e.phoneInfo.geo)),
                    \(text(e.courseInterest)), \(e.isTest), \(e.occurredAt.date), \(e.receivedAt.date), \(e.receivedVia), \(record.payload))
                ON CONFLICT (source_id, platform_lead_id) WHERE platform_lead_id IS NOT NULL
                DO UPDATE SET redeliveries = leads.redeliveries + 1
                RETURNING lead_id, (xmax = 0) AS inserted
            ), queued AS (
                INSERT INTO \(identifier: schema).outbox (topic, key, headers, payload)
                SELECT \(record.topic), \(record.key), \(HeaderCodec.encode(record.headers)), \(record.payload) FROM up WHERE up.inserted
            )
            SELECT lead_id, inserted FROM up
            """
    }

    static func decodeResult(_ rows: PostgresRows) throws -> (leadID: UUID, inserted: Bool) {
        guard let row = rows.first else {
            throw PostgresDecodingError(column: "lead_id", index: 0, type: "UUID", reason: "statement returned no row")
        }
        let (id, inserted) = try row.decode(UUID.self, Bool.self)
        return (id, inserted)
    }
}
