import Contracts
import Foundation
import Kafka
import Postgres
import ServiceKit

/// New leads as columns, for one insert of the whole batch: text columns as arrays, the event payloads, Kafka keys
/// and headers as binary blobs cut apart by offset (each payload is bound once and stored in the lead and its
/// outbox row).
struct LeadRows {
    private var ids: [UUID?] = []
    private var sources: [UUID?] = []
    private var platformLeadIDs: [String?] = []
    private var channels: [String?] = []
    private var campaigns: [String?] = []
    private var adGroups: [String?] = []
    private var ads: [String?] = []
    private var phoneKeys: [String?] = []
    private var emailKeys: [String?] = []
    private var wechatKeys: [String?] = []
    private var phonesMasked: [String?] = []
    private var regions: [String?] = []
    private var courses: [String?] = []
    private var tests: [Bool?] = []
    private var occurred: [Date?] = []
    private var received: [Date?] = []
    private var via: [String?] = []
    private var clicks: [String?] = []
    private var floods: [Int64?] = []
    private var redeliveries: [Int64?] = []
    private var keys: [[UInt8]?] = []
    private var headers: [[UInt8]?] = []
    private var payloads: [[UInt8]?] = []

    var isEmpty: Bool { ids.isEmpty }

    mutating func append(_ lead: ValidatedLead, floods: Int, redeliveries: Int, service: String) throws {
        let e = lead.event
        let event = try CloudEvent(topic: Topics.leadsCaptured, key: lead.key, event: e, source: service, id: e.leadID, time: e.receivedAt.date)
        func text(_ s: String) -> String? { s.isEmpty ? nil : s }
        ids.append(lead.leadID)
        sources.append(lead.source.id)
        platformLeadIDs.append(lead.platformLeadID)
        channels.append(lead.channel.rawValue)
        campaigns.append(text(e.attribution.campaignID))
        adGroups.append(text(e.attribution.adGroupID))
        ads.append(text(e.attribution.adID))
        phoneKeys.append(text(e.phoneKey))
        emailKeys.append(text(e.emailKey))
        wechatKeys.append(text(e.wechatKey))
        phonesMasked.append(text(e.phoneMasked))
        regions.append(text(e.phoneInfo.geo))
        courses.append(text(e.courseInterest))
        tests.append(e.isTest)
        occurred.append(e.occurredAt.date)
        received.append(e.receivedAt.date)
        via.append(e.receivedVia)
        clicks.append(text(e.attribution.clickID))
        self.floods.append(Int64(floods))
        self.redeliveries.append(Int64(redeliveries))
        keys.append(Array(event.key.utf8))
        headers.append(HeaderCodec.encode(event.headers))
        payloads.append(event.payload)
    }

    /// One statement: the leads inserted in order, and an outbox row for each lead it inserted. Returns `lead_id,
    /// source_id, platform_lead_id, inserted` per row written.
    ///
    /// `onConflict`: a platform lead id a concurrent writer stored first counts a redelivery on that lead (with this
    /// batch's counts for it). Without it, such a lead fails the statement with a unique violation of
    /// `leads_source_platform_lead`, for a caller that runs the transaction again (its plan then sees that lead): the
    /// speculative insertion ON CONFLICT needs cost PostgreSQL 3-4 us per lead (an extra index probe and WAL record),
    /// about a tenth of the insert, for a race that is rare on the topic.
    func insert(schema: String, topic: String, onConflict: Bool = true) -> PostgresQuery {
        let keys = PostgresByteSlices(keys), headers = PostgresByteSlices(headers), payloads = PostgresByteSlices(payloads)
        return """
            WITH input AS (
                SELECT i.*, substring(\(payloads.blob)::bytea from po::int for pl::int) AS event,
                       substring(\(keys.blob)::bytea from ko::int for kl::int) AS kafka_key,
                       substring(\(headers.blob)::bytea from ho::int for hl::int) AS kafka_headers
                FROM unnest(\(PostgresArray(ids))::uuid[], \(PostgresArray(sources))::uuid[], \(PostgresArray(platformLeadIDs))::text[],
                            \(PostgresArray(channels))::text[], \(PostgresArray(campaigns))::text[], \(PostgresArray(adGroups))::text[],
                            \(PostgresArray(ads))::text[], \(PostgresArray(phoneKeys))::text[], \(PostgresArray(emailKeys))::text[],
                            \(PostgresArray(wechatKeys))::text[], \(PostgresArray(phonesMasked))::text[], \(PostgresArray(regions))::text[],
                            \(PostgresArray(courses))::text[], \(PostgresArray(tests))::bool[], \(PostgresArray(occurred))::timestamptz[],
                            \(PostgresArray(received))::timestamptz[], \(PostgresArray(via))::text[], \(PostgresArray(clicks))::text[],
                            \(PostgresArray(floods))::int8[], \(PostgresArray(redeliveries))::int8[], \(keys.offsets)::int8[], \(keys.lengths)::int8[],
                            \(headers.offsets)::int8[], \(headers.lengths)::int8[], \(payloads.offsets)::int8[], \(payloads.lengths)::int8[])
                     WITH ORDINALITY AS i(lead_id, source_id, platform_lead_id, channel, campaign_id, ad_group_id, ad_id, phone_key, email_key,
                                          wechat_key, phone_masked, phone_region, course_interest, is_test, occurred_at, received_at, received_via,
                                          click_id, floods, redeliveries, ko, kl, ho, hl, po, pl, n)
            ), up AS (
                INSERT INTO \(identifier: schema).leads AS l (lead_id, source_id, platform_lead_id, channel, campaign_id, ad_group_id, ad_id,
                    phone_key, email_key, wechat_key, phone_masked, phone_region, course_interest, is_test, occurred_at, received_at,
                    received_via, event, click_id, flood_duplicates, redeliveries)
                SELECT lead_id, source_id, platform_lead_id, channel, campaign_id, ad_group_id, ad_id, phone_key, email_key, wechat_key,
                       phone_masked, phone_region, course_interest, is_test, occurred_at, received_at, received_via, event, click_id, floods, redeliveries
                FROM input ORDER BY n
                \(sql: onConflict ? Self.countRedeliveryOnConflict : "RETURNING l.lead_id, l.source_id, l.platform_lead_id, true AS inserted")
            ), queued AS (
                INSERT INTO \(identifier: schema).outbox (topic, key, headers, payload)
                SELECT \(topic), \(sql: onConflict ? "i.kafka_key, i.kafka_headers, i.event FROM input i JOIN up ON up.lead_id = i.lead_id AND up.inserted ORDER BY i.n"
                                              : "kafka_key, kafka_headers, event FROM input ORDER BY n")
            )
            SELECT lead_id, source_id, platform_lead_id, inserted FROM up
            """
    }

    private static let countRedeliveryOnConflict: StaticString = """
        ON CONFLICT (source_id, platform_lead_id) WHERE platform_lead_id IS NOT NULL
        DO UPDATE SET redeliveries = l.redeliveries + 1 + EXCLUDED.redeliveries, flood_duplicates = l.flood_duplicates + EXCLUDED.flood_duplicates
        RETURNING l.lead_id, l.source_id, l.platform_lead_id, (l.xmax = 0) AS inserted
        """
}
