import Contracts
import Foundation
import Postgres
import ServiceKit

/// Why an operator's request cannot be carried out (mapped to 404/409/410/422 by the routes).
struct CustomerAdminFailure: Error, Sendable {
    enum Kind: Sendable { case notFound, erased, merged(UUID), invalid }
    let kind: Kind
    let code: String
    let detail: String
}

/// The result of an unmerge.
struct UnmergeResult: Encodable, Sendable {
    let customerID: String
    let newCustomerID: String
    let movedIdentifiers: [String]
    let movedLeads: [String]
    enum CodingKeys: String, CodingKey {
        case customerID = "customer_id", newCustomerID = "new_customer_id", movedIdentifiers = "moved_identifiers", movedLeads = "moved_leads"
    }
}

/// The result of an erasure.
struct ErasureResult: Encodable, Sendable {
    let customerID: String
    let absorbedIDs: [String]
    enum CodingKeys: String, CodingKey { case customerID = "customer_id", absorbedIDs = "absorbed_ids" }
}

extension CustomerStore {
    /// Splits the given identifiers (raw values, normalised here) off `id` into a new customer. A lead goes
    /// with its strongest identifier; the two customers are never merged again automatically.
    func unmerge(_ id: UUID, identifiers requested: [(kind: IdentifierKind, value: String)], reason: String, by author: String) async throws -> UnmergeResult {
        var idents: [String] = []
        for (kind, value) in requested {
            guard let normalized = IdentityNormalizer.normalize(kind: kind, value, defaultRegion: defaultRegion) else {
                throw CustomerAdminFailure(kind: .invalid, code: "invalid_identifier", detail: "\(kind.rawValue): not a valid value")
            }
            idents.append("\(kind.rawValue):\(IdentityNormalizer.key(kind: kind, normalized: normalized, keyer: keyer))")
        }
        let moving = Set(idents)
        let schema = self.schema
        let events = self.events
        let rules = self.rules
        let outbox = Outbox(schema: schema)
        return try await postgres.withTransaction { connection in
            try Self.lockActive(id, schema: schema, in: connection)
            var owned: [String: (kind: String, mask: String, linkedAt: Date)] = [:]
            for row in try connection.query("SELECT ident, kind, mask, linked_at FROM \(identifier: schema).identifiers WHERE customer_id = \(id)") {
                let (ident, kind, mask, linked) = try row.decode(String.self, String.self, String.self, Date.self)
                owned[ident] = (kind, mask, linked)
            }
            guard moving.isSubset(of: owned.keys) else {
                throw CustomerAdminFailure(kind: .invalid, code: "identifier_not_on_customer", detail: "identifiers: every identifier must belong to this customer")
            }
            guard moving.count < owned.count else {
                throw CustomerAdminFailure(kind: .invalid, code: "nothing_would_remain", detail: "identifiers: leave at least one identifier on the customer")
            }
            let remaining = Set(owned.keys).subtracting(moving)
            let priority = try rules.current(in: connection).rules.priority
            func rank(_ ident: String) -> Int {
                priority.firstIndex { ident.hasPrefix($0.rawValue + ":") } ?? priority.count
            }
            var leadsMoving: [(id: String, channel: String?, campaign: String?, at: Date)] = []
            for row in try connection.query("SELECT lead_id, channel, campaign_id, occurred_at, array_to_string(idents, ' ') FROM \(identifier: schema).customer_leads WHERE customer_id = \(id)") {
                let (lead, channel, campaign, at, identsText) = try row.decode(String.self, String?.self, String?.self, Date.self, String.self)
                // A lead goes with its strongest identifier (the rules' priority).
                let strongest = identsText.split(separator: " ").map(String.init).min { rank($0) < rank($1) }
                if let strongest, moving.contains(strongest) { leadsMoving.append((lead, channel, campaign, at)) }
            }
            leadsMoving.sort { $0.at < $1.at }
            let newID = UUIDv7.generate()
            let movedKinds = moving.compactMap { owned[$0]?.kind }.sorted()
            let firstSeen = (leadsMoving.map(\.at) + moving.compactMap { owned[$0]?.linkedAt }).min() ?? Date()
            let newRegistered = moving.contains { $0.hasPrefix("user_id:") }
            let newPhoneMask = moving.sorted().first { $0.hasPrefix("phone:") }.flatMap { owned[$0]?.mask }
            let remainingPhoneMask = remaining.sorted().first { $0.hasPrefix("phone:") }.flatMap { owned[$0]?.mask }
            let leadIDs = leadsMoving.map(\.id)
            let unmergeDecision = UUIDv7.generate()
            var detail = DecisionDetail()
            detail.linked = moving.sorted().map { DecisionDetail.Item(kind: owned[$0]!.kind, mask: owned[$0]!.mask, rule: "moved") }
            detail.merged = [newID.lowercasedText]
            detail.note = "unmerged by \(author): \(reason)"
            let event = try events.event(customerID: id, decisionID: unmergeDecision) { event in
                var unmerged = Funnel_Identity_V1_CustomerUnmerged()
                unmerged.newCustomerID = newID.lowercasedText
                unmerged.movedIdentifierKinds = movedKinds
                unmerged.movedLeadIds = leadIDs
                unmerged.reason = reason
                event.unmerged = unmerged
            }
            _ = try connection.pipeline([
                """
                INSERT INTO \(identifier: schema).customers (id, status, registered, registered_at, first_seen_at, first_channel, first_campaign, phone_masked)
                VALUES (\(newID), 'active', \(newRegistered), \(newRegistered ? Optional(Date()) : nil), \(firstSeen),
                        \(leadsMoving.first?.channel), \(leadsMoving.first?.campaign), \(newPhoneMask))
                """,
                "UPDATE \(identifier: schema).identifiers SET customer_id = \(newID) WHERE ident = ANY(\(PostgresArray(moving.map { Optional($0) })))",
                "UPDATE \(identifier: schema).customer_leads SET customer_id = \(newID) WHERE lead_id = ANY(\(PostgresArray(leadIDs.map { Optional($0) })))",
                """
                UPDATE \(identifier: schema).customers SET registered = \(remaining.contains { $0.hasPrefix("user_id:") }),
                    phone_masked = \(remainingPhoneMask), updated_at = now() WHERE id = \(id)
                """,
                "INSERT INTO \(identifier: schema).separations (customer_id, other_id) VALUES (\(id), \(newID)), (\(newID), \(id)) ON CONFLICT DO NOTHING",
                StoredDecision.insert([
                    StoredDecision(id: unmergeDecision, customerID: id, action: "unmerged", rule: "operator", subject: "operator:" + author,
                                   rulesVersion: nil, detail: detail.json, at: Date()),
                    StoredDecision(id: UUIDv7.generate(), customerID: newID, action: "created", rule: "unmerged_from",
                                   subject: "customer:" + id.lowercasedText, rulesVersion: nil, detail: detail.json, at: Date()),
                ], schema: schema),
                outbox.insert(event),
            ])
            return UnmergeResult(customerID: id.lowercasedText, newCustomerID: newID.lowercasedText,
                                 movedIdentifiers: movedKinds, movedLeads: leadIDs)
        }
    }

    /// Erases the customer's PII (and its absorbed customers') from this schema and emits `erased`. Its
    /// identifiers are removed, so a later lead with the same phone starts a new customer.
    func erase(_ id: UUID, by author: String) async throws -> ErasureResult {
        let schema = self.schema
        let events = self.events
        let outbox = Outbox(schema: schema)
        return try await postgres.withTransaction { connection in
            try Self.lockActive(id, schema: schema, in: connection)
            let absorbed = try connection.query("SELECT id FROM \(identifier: schema).customers WHERE merged_into = \(id) ORDER BY id FOR UPDATE")
                .map { try $0.decode(UUID.self) }
            let all = PostgresArray(([id] + absorbed).map { Optional($0) })
            let decisionID = UUIDv7.generate()
            var detail = DecisionDetail()
            detail.note = "erased on request by \(author)"
            let event = try events.event(customerID: id, decisionID: decisionID) { event in
                var erased = Funnel_Identity_V1_CustomerErased()
                erased.absorbedIds = absorbed.map { $0.lowercasedText }
                event.erased = erased
            }
            _ = try connection.pipeline([
                "DELETE FROM \(identifier: schema).identifiers WHERE customer_id = ANY(\(all))",
                "DELETE FROM \(identifier: schema).tags WHERE customer_id = ANY(\(all))",
                "DELETE FROM \(identifier: schema).customer_leads WHERE customer_id = ANY(\(all))",
                "DELETE FROM \(identifier: schema).separations WHERE customer_id = ANY(\(all)) OR other_id = ANY(\(all))",
                """
                UPDATE \(identifier: schema).customers SET status = 'erased', display_name = NULL, name_masked = NULL, phone_masked = NULL,
                    first_channel = NULL, first_campaign = NULL, erased_at = now(), updated_at = now() WHERE id = ANY(\(all))
                """,
                // Decisions keep what happened, not who: masks and subjects go.
                "UPDATE \(identifier: schema).decisions SET detail = '{\"note\": \"erased\"}'::jsonb, subject = NULL WHERE customer_id = ANY(\(all))",
                StoredDecision.insert([StoredDecision(id: decisionID, customerID: id, action: "erased", rule: "erasure_request", subject: nil,
                                                      rulesVersion: nil, detail: detail.json, at: Date())], schema: schema),
                outbox.insert(event),
            ])
            return ErasureResult(customerID: id.lowercasedText, absorbedIDs: absorbed.map { $0.lowercasedText })
        }
    }

    static func lockActive(_ id: UUID, schema: String, in connection: PostgresConnection) throws {
        guard let row = try connection.query("SELECT status, merged_into FROM \(identifier: schema).customers WHERE id = \(id) FOR UPDATE").first else {
            throw CustomerAdminFailure(kind: .notFound, code: "customer_not_found", detail: "no customer with this id")
        }
        let (status, mergedInto) = try row.decode(String.self, UUID?.self)
        if status == "erased" { throw CustomerAdminFailure(kind: .erased, code: "customer_erased", detail: "this customer was erased") }
        if status == "merged", let mergedInto {
            throw CustomerAdminFailure(kind: .merged(mergedInto), code: "customer_merged",
                                       detail: "this customer was merged into \(mergedInto.lowercasedText); act on that one")
        }
    }
}
