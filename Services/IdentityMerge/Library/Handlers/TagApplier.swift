import Contracts
import FastText
import Foundation
import Kafka
import Postgres
import ServiceKit
import SwiftProtobuf

/// Applies `identity.tags.v1`: sets or removes a tag on the customer named by id (absorbed ids follow their
/// survivor) or by the main system's user id.
struct TagApplier: Sendable {
    let schema: String
    let events: CustomerEvents

    func apply(_ tag: Funnel_Identity_V1_CustomerTagged, in connection: PostgresConnection) throws -> HandlerOutcome {
        let name = tag.tag.trimmingSpacesAndNewlines
        let source = tag.source.trimmingSpacesAndNewlines
        guard !name.isEmpty, name.count <= 64 else { return .rejected(code: "invalid_tag", reason: "tag: required, at most 64 characters") }
        guard !source.isEmpty, source.count <= 64 else { return .rejected(code: "invalid_source", reason: "source: required, at most 64 characters") }
        let customerID: UUID
        switch try target(tag, in: connection) {
        case .failure(let rejection): return .rejected(code: rejection.code, reason: rejection.reason)
        case .success(let id): customerID = id
        }
        let expires: Date? = tag.hasExpiresAt ? tag.expiresAt.date : nil
        if tag.removed {
            _ = try connection.query("DELETE FROM \(identifier: schema).tags WHERE customer_id = \(customerID) AND tag = \(name) AND source = \(source)")
        } else {
            _ = try connection.query("""
                INSERT INTO \(identifier: schema).tags (customer_id, tag, source, expires_at) VALUES (\(customerID), \(name), \(source), \(expires))
                ON CONFLICT (customer_id, tag, source) DO UPDATE SET expires_at = EXCLUDED.expires_at, updated_at = now()
                """)
        }
        var detail = DecisionDetail()
        detail.note = "\(tag.removed ? "removed" : "set") \(name) from \(source)"
        let decision = StoredDecision(id: UUIDv7.generate(), customerID: customerID, action: "tagged", rule: nil,
                                      subject: "tag:\(source):\(name)", rulesVersion: nil, detail: detail.json, at: Date())
        _ = try connection.query(StoredDecision.insert([decision], schema: schema))
        let event = try events.event(customerID: customerID, decisionID: decision.id) { event in
            var changed = Funnel_Identity_V1_CustomerTagChanged()
            changed.tag = name
            changed.source = source
            if let expires { changed.expiresAt = Google_Protobuf_Timestamp(date: expires) }
            changed.removed = tag.removed
            event.tagged = changed
        }
        return .processed([event])
    }

    struct Rejection: Error {
        let code: String
        let reason: String
    }

    private func target(_ tag: Funnel_Identity_V1_CustomerTagged, in connection: PostgresConnection) throws -> Result<UUID, Rejection> {
        if !tag.customerID.isEmpty {
            guard let id = UUID(uuidString: tag.customerID) else { return .failure(Rejection(code: "invalid_customer_id", reason: "customer_id: not a UUID")) }
            guard let row = try connection.query("SELECT status, merged_into FROM \(identifier: schema).customers WHERE id = \(id)").first else {
                return .failure(Rejection(code: "unknown_customer", reason: "customer_id: no such customer"))
            }
            let (status, mergedInto) = try row.decode(String.self, UUID?.self)
            if status == "erased" { return .failure(Rejection(code: "customer_erased", reason: "customer_id: the customer was erased")) }
            return .success(mergedInto ?? id)
        }
        let user = tag.userID.trimmingSpacesAndNewlines
        guard !user.isEmpty else { return .failure(Rejection(code: "missing_subject", reason: "customer_id or user_id: one is required")) }
        guard let row = try connection.query("SELECT customer_id FROM \(identifier: schema).identifiers WHERE ident = \("user_id:" + user)").first else {
            return .failure(Rejection(code: "unknown_user", reason: "user_id: no customer has this user id"))
        }
        return .success(try row.decode(UUID.self))
    }
}
