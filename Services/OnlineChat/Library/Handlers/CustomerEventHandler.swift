import Contracts
import Foundation
import Kafka
import Postgres
import ServiceKit

/// Consumes `identity.customers.v1` to honour erasure: a resolved chat lead tells which customer a conversation
/// belongs to (merges and unmerges move that), and when the customer is erased every conversation of theirs loses
/// its messages, answers, contacts, visit and session token. Statements run in record order, in the batch's transaction.
struct CustomerEventHandler: BatchHandler {
    let schema: String

    func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome] {
        var outcomes: [HandlerOutcome] = []
        var statements: [PostgresQuery] = []
        for record in records {
            let event: Funnel_Identity_V1_CustomerEvent
            do {
                event = try EventDecoder.decode(Funnel_Identity_V1_CustomerEvent.self, from: record)
            } catch let error as EventDecodingError {
                outcomes.append(.rejected(error))
                continue
            }
            guard let customer = UUID(uuidString: event.customerID) else {
                outcomes.append(.rejected(code: "invalid_customer_id", reason: "customer_id must be a UUID"))
                continue
            }
            switch event.change {
            case .resolved(let resolved) where resolved.subjectKind == "lead":
                if let lead = UUID(uuidString: resolved.subjectID) {
                    statements.append("UPDATE \(identifier: schema).conversations SET customer_id = \(customer) WHERE lead_id = \(lead)")
                    // Events of different customers travel on different partitions: this one may come after its
                    // customer (or the customer that absorbed it) was erased.
                    statements.append(erase(customers: [customer], onlyIfErased: true))
                }
            case .merged(let merged):
                let absorbed = merged.absorbedIds.compactMap(UUID.init(uuidString:)).map { Optional($0) }
                statements.append("""
                    INSERT INTO \(identifier: schema).customer_aliases (alias, customer_id) SELECT a, \(customer) FROM unnest(\(PostgresArray(absorbed))::uuid[]) a
                    ON CONFLICT (alias) DO UPDATE SET customer_id = excluded.customer_id
                    """)
                statements.append("UPDATE \(identifier: schema).conversations SET customer_id = \(customer) WHERE customer_id = ANY(\(PostgresArray(absorbed))::uuid[])")
            case .unmerged(let unmerged):
                if let newID = UUID(uuidString: unmerged.newCustomerID) {
                    let leads = unmerged.movedLeadIds.compactMap(UUID.init(uuidString:)).map { Optional($0) }
                    statements.append("UPDATE \(identifier: schema).conversations SET customer_id = \(newID) WHERE lead_id = ANY(\(PostgresArray(leads))::uuid[])")
                }
            case .erased(let erased):
                let ids = ([customer] + erased.absorbedIds.compactMap(UUID.init(uuidString:))).map { Optional($0) }
                statements.append(erase(customers: ids))
            default:
                break
            }
            outcomes.append(.processed([]))
        }
        if !statements.isEmpty { _ = try connection.pipeline(statements) }
        return outcomes
    }

    /// Scrubs every conversation of `customers` and of every customer merged into them (by the aliases), and
    /// remembers them all as erased: messages and contacts deleted; answers, visit, client address and visitor id
    /// cleared; the session token replaced by a random one (the old token no longer resumes it); closed.
    /// With `onlyIfErased`, only customers erased before count (a late resolved event of an erased customer).
    func erase(customers: [UUID?], onlyIfErased: Bool = false) -> PostgresQuery {
        """
        WITH RECURSIVE seed(id) AS (
            SELECT c FROM unnest(\(PostgresArray(customers))::uuid[]) c
            WHERE NOT \(onlyIfErased) OR EXISTS (SELECT 1 FROM \(identifier: schema).erased_customers e WHERE e.customer_id = c)
        ), ids(id) AS (
            SELECT id FROM seed
            UNION SELECT a.alias FROM \(identifier: schema).customer_aliases a JOIN ids ON a.customer_id = ids.id
        ), marked AS (
            INSERT INTO \(identifier: schema).erased_customers (customer_id) SELECT id FROM ids ON CONFLICT DO NOTHING
        ), gone AS (
            UPDATE \(identifier: schema).conversations SET answers = '{}', page_url = NULL, referrer_url = NULL, utm = '{}', client_ip = NULL,
                visitor_id = 'erased', status = 'closed', closed_at = coalesce(closed_at, now()), erased_at = now(),
                token_hash = sha256(convert_to(gen_random_uuid()::text || id::text, 'UTF8'))
            WHERE customer_id IN (SELECT id FROM ids) RETURNING id
        ), messages AS (
            DELETE FROM \(identifier: schema).messages WHERE conversation_id IN (SELECT id FROM gone)
        )
        DELETE FROM \(identifier: schema).conversation_contacts WHERE conversation_id IN (SELECT id FROM gone)
        """
    }
}
