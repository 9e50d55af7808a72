import Contracts
import Foundation
import Postgres
import ServiceKit

/// Reads customer profiles and history, and carries out the operator's unmerge and erasure, each in one
/// transaction with its decision and its events in the outbox.
struct CustomerStore: Sendable {
    let schema: String
    let postgres: PostgresClient
    let events: CustomerEvents
    let rules: RulesStore
    let cipher: PIICipher
    let keyer: IdentityKeyer
    let defaultRegion: String

    enum Lookup: Sendable {
        case found(CustomerProfile)
        /// An absorbed id: the customer it was merged into.
        case mergedInto(UUID)
        case erased
        case notFound
    }

    func profile(_ id: UUID) async throws -> Lookup {
        let schema = self.schema
        let cipher = self.cipher
        return try await postgres.withConnection { connection in
            guard let row = try connection.query("""
                SELECT status, merged_into, registered, registered_at, first_seen_at, first_channel, first_campaign, display_name,
                       name_masked, phone_masked, created_at, updated_at
                FROM \(identifier: schema).customers WHERE id = \(id)
                """).first else { return .notFound }
            let (status, mergedInto, registered, registeredAt, firstSeen, channel, campaign, name, nameMasked, phoneMasked, created, updated) =
                try row.decode(String.self, UUID?.self, Bool.self, Date?.self, Date.self, String?.self, String?.self, String?.self,
                               String?.self, String?.self, Date.self, Date.self)
            if status == "erased" { return .erased }
            if status == "merged", let mergedInto { return .mergedInto(mergedInto) }
            let parts = try connection.pipeline([
                "SELECT kind, mask, linked_at FROM \(identifier: schema).identifiers WHERE customer_id = \(id) ORDER BY linked_at, ident",
                "SELECT tag, source, expires_at FROM \(identifier: schema).tags WHERE customer_id = \(id) AND (expires_at IS NULL OR expires_at > now()) ORDER BY tag, source",
                "SELECT lead_id, channel, campaign_id, occurred_at FROM \(identifier: schema).customer_leads WHERE customer_id = \(id) ORDER BY occurred_at, lead_id",
                "SELECT id FROM \(identifier: schema).customers WHERE merged_into = \(id) ORDER BY id",
            ])
            var profile = CustomerProfile(id: id.lowercasedText, status: status, registered: registered, registeredAt: registeredAt,
                                          lifecycle: registered ? "registered" : "lead", firstSeenAt: firstSeen, firstChannel: channel,
                                          firstCampaign: campaign, phoneMasked: phoneMasked, nameMasked: nameMasked, createdAt: created, updatedAt: updated)
            if let name, let value = ObservationBuilder.decode(name) { profile.displayName = try? cipher.decrypt(value, field: "name") }
            for row in parts[0] {
                let (kind, mask, linked) = try row.decode(String.self, String.self, Date.self)
                profile.identifiers.append(.init(kind: kind, mask: mask, linkedAt: linked))
            }
            for row in parts[1] {
                let (tag, source, expires) = try row.decode(String.self, String.self, Date?.self)
                profile.tags.append(.init(tag: tag, source: source, expiresAt: expires))
            }
            for row in parts[2] {
                let (lead, channel, campaign, at) = try row.decode(String.self, String?.self, String?.self, Date.self)
                profile.leads.append(.init(leadID: lead, channel: channel, campaignID: campaign, occurredAt: at))
            }
            for row in parts[3] { profile.mergedFrom.append(try row.decode(UUID.self).lowercasedText) }
            return .found(profile)
        }
    }

    enum Standing: Sendable {
        case active
        case mergedInto(UUID)
        case erased
        case notFound
    }

    /// Whether the id is a customer, an absorbed one (and into which) or an erased one, in one query.
    func standing(_ id: UUID) async throws -> Standing {
        guard let row = try await postgres.query("SELECT status, merged_into FROM \(identifier: schema).customers WHERE id = \(id)").first else {
            return .notFound
        }
        let (status, mergedInto) = try row.decode(String.self, UUID?.self)
        if status == "erased" { return .erased }
        if status == "merged", let mergedInto { return .mergedInto(mergedInto) }
        return .active
    }

    /// The customer holding this phone (any format) or user id now.
    func find(kind: IdentifierKind, value: String) async throws -> UUID? {
        guard let normalized = IdentityNormalizer.normalize(kind: kind, value, defaultRegion: defaultRegion) else { return nil }
        let ident = "\(kind.rawValue):\(IdentityNormalizer.key(kind: kind, normalized: normalized, keyer: keyer))"
        let rows = try await postgres.query("SELECT customer_id FROM \(identifier: schema).identifiers WHERE ident = \(ident)")
        return try rows.first?.decode(UUID.self)
    }

    /// The decisions about this customer and every customer merged into it, oldest first.
    func history(_ id: UUID) async throws -> [HistoryEntry] {
        let rows = try await postgres.query("""
            SELECT d.id, d.customer_id, d.action, d.rule, d.subject, d.rules_version, d.detail::text, d.at
            FROM \(identifier: schema).decisions d
            WHERE d.customer_id = \(id) OR d.customer_id IN (SELECT c.id FROM \(identifier: schema).customers c WHERE c.merged_into = \(id))
            ORDER BY d.at, d.id
            """)
        return try rows.map { row in
            let (decision, customer, action, rule, subject, version, detail, at) =
                try row.decode(UUID.self, UUID.self, String.self, String?.self, String?.self, Int?.self, String.self, Date.self)
            return HistoryEntry(id: decision.lowercasedText, customerID: customer.lowercasedText, action: action, rule: rule,
                                subject: subject, rulesVersion: version, detail: (try? JSONDecoder().decode(DecisionDetail.self, from: Data(detail.utf8))) ?? DecisionDetail(), at: at)
        }
    }
}

/// A customer as the operator API shows it: PII masked, except the display name for operators.
struct CustomerProfile: Encodable, Sendable {
    struct IdentifierView: Encodable, Sendable {
        let kind: String
        let mask: String
        let linkedAt: Date
        enum CodingKeys: String, CodingKey { case kind, mask, linkedAt = "linked_at" }
    }

    struct TagView: Encodable, Sendable {
        let tag: String
        let source: String
        let expiresAt: Date?
        enum CodingKeys: String, CodingKey { case tag, source, expiresAt = "expires_at" }
    }

    struct LeadView: Encodable, Sendable {
        let leadID: String
        let channel: String?
        let campaignID: String?
        let occurredAt: Date
        enum CodingKeys: String, CodingKey { case leadID = "lead_id", channel, campaignID = "campaign_id", occurredAt = "occurred_at" }
    }

    let id: String
    let status: String
    let registered: Bool
    let registeredAt: Date?
    let lifecycle: String
    let firstSeenAt: Date
    let firstChannel: String?
    let firstCampaign: String?
    let phoneMasked: String?
    let nameMasked: String?
    let createdAt: Date
    let updatedAt: Date
    var displayName: String?
    var identifiers: [IdentifierView] = []
    var tags: [TagView] = []
    var leads: [LeadView] = []
    var mergedFrom: [String] = []

    enum CodingKeys: String, CodingKey {
        case id, status, registered, lifecycle, identifiers, tags, leads
        case registeredAt = "registered_at", firstSeenAt = "first_seen_at", firstChannel = "first_channel"
        case firstCampaign = "first_campaign", phoneMasked = "phone_masked", nameMasked = "name_masked"
        case createdAt = "created_at", updatedAt = "updated_at", displayName = "display_name", mergedFrom = "merged_from"
    }
}

/// One stored decision.
struct HistoryEntry: Encodable, Sendable {
    let id: String
    let customerID: String
    let action: String
    let rule: String?
    let subject: String?
    let rulesVersion: Int?
    let detail: DecisionDetail
    let at: Date

    enum CodingKeys: String, CodingKey {
        case id, action, rule, subject, detail, at
        case customerID = "customer_id", rulesVersion = "rules_version"
    }
}

