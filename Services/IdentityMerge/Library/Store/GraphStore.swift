import Foundation
import Postgres

/// Loads the part of the identity graph a batch touches (locking it) and writes the resolver's changes back.
///
/// Concurrency: the batch's identifier keys are locked with transaction-scoped advisory locks (in one sorted
/// order, so two replicas never deadlock on them), then the customers they belong to are locked `FOR UPDATE`.
/// Two replicas resolving the same phone at once therefore serialise, and the second sees the first's customer.
struct GraphStore: Sendable {
    let schema: String

    /// Locks `idents` and loads their owners, those customers, all their identifiers and separations.
    func load(idents: [String], into graph: inout IdentityGraph, in connection: PostgresConnection) throws {
        guard !idents.isEmpty else { return }
        let identArray = PostgresArray(idents.map { Optional($0) })
        var locked = Set<UUID>()
        for round in 0..<8 {
            // The first round takes the locks and then reads the owners in one round trip: pipelined statements
            // run one after the other, each with a snapshot of its own (read committed), so the owners are read
            // after the locks are held. (One statement doing both would read with a snapshot from before the wait.)
            let ownersQuery: PostgresQuery = "SELECT ident, customer_id FROM \(identifier: schema).identifiers WHERE ident = ANY(\(identArray))"
            let owners: PostgresRows = round == 0 ? try connection.pipeline([
                """
                SELECT count(pg_advisory_xact_lock(h)) FROM (
                    SELECT DISTINCT hashtextextended(\(schema) || ':' || i, 0) AS h FROM unnest(\(identArray)::text[]) i ORDER BY 1
                ) sorted
                """,
                ownersQuery,
            ])[1] : try connection.query(ownersQuery)
            var wanted = Set<UUID>()
            for row in owners {
                let (ident, customer) = try row.decode(String.self, UUID.self)
                graph.owners[ident] = customer
                if !locked.contains(customer) { wanted.insert(customer) }
            }
            guard !wanted.isEmpty else { return }
            let loaded = try loadCustomers(Array(wanted), into: &graph, in: connection)
            locked.formUnion(wanted)
            // A customer merged away between reading its identifiers and locking it: read the owners again.
            if loaded.allSatisfy({ graph.customers[$0]?.status == .active }) { return }
            for id in loaded where graph.customers[id]?.status != .active {
                graph.customers[id] = nil
            }
        }
        throw GraphChangedError()
    }

    /// Locks and loads customers by id, with their identifiers and separations. Returns the ids loaded.
    @discardableResult
    func loadCustomers(_ ids: [UUID], into graph: inout IdentityGraph, in connection: PostgresConnection) throws -> [UUID] {
        let idArray = PostgresArray(ids.map { Optional($0) })
        // Locked first; the identifiers and separations are read after the locks are held (pipelined, in order).
        let results = try connection.pipeline([
            """
            SELECT id, status, merged_into, registered, registered_at, first_seen_at, first_channel, first_campaign,
                   display_name, name_masked, phone_masked
            FROM \(identifier: schema).customers WHERE id = ANY(\(idArray)) ORDER BY id FOR UPDATE
            """,
            "SELECT ident, customer_id, mask FROM \(identifier: schema).identifiers WHERE customer_id = ANY(\(idArray))",
            "SELECT customer_id, other_id FROM \(identifier: schema).separations WHERE customer_id = ANY(\(idArray))",
        ])
        let rows = results[0]
        var loaded: [UUID] = []
        for row in rows {
            let (id, status, mergedInto, registered, registeredAt, firstSeen, channel, campaign, name, nameMasked, phoneMasked) =
                try row.decode(UUID.self, String.self, UUID?.self, Bool.self, Date?.self, Date.self, String?.self, String?.self,
                               String?.self, String?.self, String?.self)
            var node = CustomerNode(id: id, firstSeenAt: firstSeen)
            node.status = CustomerNode.Status(rawValue: status) ?? .active
            node.mergedInto = mergedInto
            node.registered = registered
            node.registeredAt = registeredAt
            node.firstChannel = channel
            node.firstCampaign = campaign
            node.displayName = name
            node.nameMasked = nameMasked
            node.phoneMasked = phoneMasked
            graph.customers[id] = node
            loaded.append(id)
        }
        for row in results[1] {
            let (ident, customer, mask) = try row.decode(String.self, UUID.self, String.self)
            guard let identifier = Self.identifier(ident: ident, mask: mask) else { continue }
            graph.customers[customer]?.identifiers.insert(identifier)
            graph.owners[ident] = customer
        }
        for row in results[2] {
            let (customer, other) = try row.decode(UUID.self, UUID.self)
            graph.customers[customer]?.separatedFrom.insert(other)
        }
        return loaded
    }

    static func identifier(ident: String, mask: String) -> Identifier? {
        guard let colon = ident.firstIndex(of: ":"), let kind = IdentifierKind(rawValue: String(ident[..<colon])) else { return nil }
        return Identifier(kind: kind, key: String(ident[ident.index(after: colon)...]), mask: mask)
    }

    /// The statements that write the graph's changes, the batch's leads and decisions (pipeline them).
    func save(_ graph: IdentityGraph, merges: [MergeDecision], leads: [StoredLead], decisions: [StoredDecision]) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        for merge in merges {
            let (s, a) = (merge.survivor, merge.absorbed)
            statements += [
                "UPDATE \(identifier: schema).customer_leads SET customer_id = \(s) WHERE customer_id = \(a)",
                """
                INSERT INTO \(identifier: schema).tags (customer_id, tag, source, expires_at, updated_at)
                SELECT \(s), tag, source, expires_at, updated_at FROM \(identifier: schema).tags WHERE customer_id = \(a)
                ON CONFLICT (customer_id, tag, source) DO NOTHING
                """,
                "DELETE FROM \(identifier: schema).tags WHERE customer_id = \(a)",
                """
                INSERT INTO \(identifier: schema).separations (customer_id, other_id)
                SELECT \(s), other_id FROM \(identifier: schema).separations WHERE customer_id = \(a)
                UNION SELECT customer_id, \(s) FROM \(identifier: schema).separations WHERE other_id = \(a)
                ON CONFLICT DO NOTHING
                """,
                "DELETE FROM \(identifier: schema).separations WHERE customer_id = \(a) OR other_id = \(a)",
                "UPDATE \(identifier: schema).customers SET merged_into = \(s), updated_at = now() WHERE merged_into = \(a)",
            ]
        }
        let customers = graph.dirtyCustomers.compactMap { graph.customers[$0] }
        if !customers.isEmpty {
            statements.append("""
                INSERT INTO \(identifier: schema).customers (id, status, merged_into, registered, registered_at, first_seen_at, first_channel,
                    first_campaign, display_name, name_masked, phone_masked)
                SELECT * FROM unnest(\(PostgresArray(customers.map { Optional($0.id) }))::uuid[],
                    \(PostgresArray(customers.map { Optional($0.status.rawValue) }))::text[],
                    \(PostgresArray(customers.map(\.mergedInto)))::uuid[],
                    \(PostgresArray(customers.map { Optional($0.registered) }))::boolean[],
                    \(PostgresArray(customers.map(\.registeredAt)))::timestamptz[],
                    \(PostgresArray(customers.map { Optional($0.firstSeenAt) }))::timestamptz[],
                    \(PostgresArray(customers.map(\.firstChannel)))::text[],
                    \(PostgresArray(customers.map(\.firstCampaign)))::text[],
                    \(PostgresArray(customers.map(\.displayName)))::text[],
                    \(PostgresArray(customers.map(\.nameMasked)))::text[],
                    \(PostgresArray(customers.map(\.phoneMasked)))::text[])
                ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, merged_into = EXCLUDED.merged_into,
                    registered = EXCLUDED.registered, registered_at = EXCLUDED.registered_at, first_seen_at = EXCLUDED.first_seen_at,
                    first_channel = EXCLUDED.first_channel, first_campaign = EXCLUDED.first_campaign, display_name = EXCLUDED.display_name,
                    name_masked = EXCLUDED.name_masked, phone_masked = EXCLUDED.phone_masked, updated_at = now()
                """)
        }
        let identifiers = Array(graph.dirtyIdentifiers.values)
        if !identifiers.isEmpty {
            let now = Date()
            statements.append("""
                INSERT INTO \(identifier: schema).identifiers (ident, kind, customer_id, mask, linked_at)
                SELECT * FROM unnest(\(PostgresArray(identifiers.map { Optional($0.ident) }))::text[],
                    \(PostgresArray(identifiers.map { Optional($0.kind.rawValue) }))::text[],
                    \(PostgresArray(identifiers.map { graph.owners[$0.ident] }))::uuid[],
                    \(PostgresArray(identifiers.map { Optional($0.mask) }))::text[],
                    \(PostgresArray(identifiers.map { Optional(graph.linkedAt[$0.ident] ?? now) }))::timestamptz[])
                ON CONFLICT (ident) DO UPDATE SET customer_id = EXCLUDED.customer_id
                """)
        }
        if !leads.isEmpty {
            // The lead's idents travel as one text per lead (space-separated) and are split back into an array.
            statements.append("""
                INSERT INTO \(identifier: schema).customer_leads (lead_id, customer_id, channel, campaign_id, course_interest, occurred_at, idents)
                SELECT l, c, ch, ca, ci, o, string_to_array(i, ' ') FROM unnest(\(PostgresArray(leads.map { Optional($0.leadID) }))::text[],
                    \(PostgresArray(leads.map { Optional(graph.finalOwner($0.customerID)) }))::uuid[],
                    \(PostgresArray(leads.map { Optional($0.channel) }))::text[],
                    \(PostgresArray(leads.map(\.campaignID)))::text[],
                    \(PostgresArray(leads.map(\.courseInterest)))::text[],
                    \(PostgresArray(leads.map { Optional($0.occurredAt) }))::timestamptz[],
                    \(PostgresArray(leads.map { Optional($0.idents.joined(separator: " ")) }))::text[]) AS x(l, c, ch, ca, ci, o, i)
                ON CONFLICT (lead_id) DO NOTHING
                """)
        }
        if !decisions.isEmpty { statements.append(StoredDecision.insert(decisions, schema: schema)) }
        return statements
    }
}

extension IdentityGraph {
    /// Follows merges to the customer that holds `id` now.
    func finalOwner(_ id: UUID) -> UUID {
        var current = id
        var hops = 0
        while let next = customers[current]?.mergedInto, hops < 64 {
            current = next
            hops += 1
        }
        return current
    }
}

/// A lead to remember on its customer.
struct StoredLead: Sendable {
    let leadID: String
    let customerID: UUID
    let channel: String
    let campaignID: String?
    let courseInterest: String?
    let occurredAt: Date
    let idents: [String]
}

/// A decision and its reason, as `GET /v1/customers/{id}/history` shows it.
struct StoredDecision: Sendable {
    let id: UUID
    let customerID: UUID
    /// created, resolved, merged, unmerged, erased, tagged, rules_changed
    let action: String
    let rule: String?
    let subject: String?
    let rulesVersion: Int?
    /// JSON.
    let detail: String
    let at: Date

    /// One statement storing `decisions`.
    static func insert(_ decisions: [StoredDecision], schema: String) -> PostgresQuery {
        """
        INSERT INTO \(identifier: schema).decisions (id, customer_id, action, rule, subject, rules_version, detail, at)
        SELECT id, c, a, r, s, v::integer, d::jsonb, t FROM unnest(\(PostgresArray(decisions.map { Optional($0.id) }))::uuid[],
            \(PostgresArray(decisions.map { Optional($0.customerID) }))::uuid[],
            \(PostgresArray(decisions.map { Optional($0.action) }))::text[],
            \(PostgresArray(decisions.map(\.rule)))::text[],
            \(PostgresArray(decisions.map(\.subject)))::text[],
            \(PostgresArray(decisions.map { $0.rulesVersion.map(Int64.init) }))::bigint[],
            \(PostgresArray(decisions.map { Optional($0.detail) }))::text[],
            \(PostgresArray(decisions.map { Optional($0.at) }))::timestamptz[]) AS x(id, c, a, r, s, v, d, t)
        """
    }
}

/// The customers a batch touches kept being merged by another replica; the batch is retried.
struct GraphChangedError: Error, CustomStringConvertible {
    var description: String { "the identity graph kept changing under the batch; it is retried" }
}
