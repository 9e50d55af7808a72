import Foundation

/// One customer as the resolver sees it.
struct CustomerNode: Sendable {
    enum Status: String, Sendable { case active, merged, erased }

    let id: UUID
    var status: Status = .active
    var mergedInto: UUID?
    var registered = false
    var registeredAt: Date?
    var firstSeenAt: Date
    var firstChannel: String?
    var firstCampaign: String?
    var displayName: String?
    var nameMasked: String?
    var phoneMasked: String?
    var identifiers: Set<Identifier> = []
    /// Customers an operator split from this one: never merged with it again automatically.
    var separatedFrom: Set<UUID> = []

    var lifecycle: String { registered ? "registered" : "lead" }

    func count(_ kind: IdentifierKind) -> Int { identifiers.reduce(0) { $0 + ($1.kind == kind ? 1 : 0) } }
}

/// A merge the resolver decided, in order.
struct MergeDecision: Sendable {
    let survivor: UUID
    let absorbed: UUID
    let linkedBy: IdentifierKind
    /// registered, earliest_seen or lowest_id.
    let survivorRule: String
    /// The identifiers that moved to the survivor.
    let moved: [Identifier]
}

/// What the resolver decided for one observation.
struct Resolution: Sendable {
    let customerID: UUID
    let newCustomer: Bool
    /// Identifiers linked by this record: `new` (now owned) or `matched` (already the customer's).
    var linked: [(identifier: Identifier, how: String)] = []
    /// Identifiers the record carried that were not linked, with the rule.
    var dropped: [(identifier: Identifier, rule: String)] = []
    var merges: [MergeDecision] = []
}

/// The part of the identity graph a batch touches, loaded from PostgreSQL, changed in memory by the resolver
/// and written back. Every identifier is owned by an active customer; absorbed customers point to their survivor.
struct IdentityGraph: Sendable {
    var owners: [String: UUID] = [:]
    var customers: [UUID: CustomerNode] = [:]
    /// Customers and identifiers to write back.
    var dirtyCustomers: Set<UUID> = []
    var dirtyIdentifiers: [String: Identifier] = [:]
    /// When each identifier was first linked, for the new ones.
    var linkedAt: [String: Date] = [:]

    /// Resolves one observation: joins the customer its identifiers point to (the highest-priority identifier
    /// decides), merges other customers they point to when the limits allow, links its new identifiers within
    /// the limits, or creates a customer.
    mutating func resolve(_ observation: Observation, rules: IdentityRules, newID: () -> UUID) -> Resolution {
        let ordered = observation.identifiers.sorted { rules.rank($0.kind) < rules.rank($1.kind) }
        let known = self.owners
        var anchor = ordered.lazy.compactMap { known[$0.ident] }.first
        let created = anchor == nil
        if anchor == nil {
            let id = newID()
            customers[id] = CustomerNode(id: id, firstSeenAt: observation.occurredAt)
            anchor = id
        }
        var current = anchor!
        var resolution = Resolution(customerID: current, newCustomer: created)
        var pending: [Identifier] = []
        for identifier in ordered {
            guard let owner = owners[identifier.ident] else {
                pending.append(identifier)
                continue
            }
            if owner == current {
                resolution.linked.append((identifier, "matched"))
                continue
            }
            if let refusal = mergeRefusal(current, owner, rules: rules) {
                resolution.dropped.append((identifier, refusal))
                continue
            }
            let merge = self.merge(current, owner, linkedBy: identifier.kind)
            resolution.merges.append(merge)
            current = merge.survivor
            resolution.linked.append((identifier, "matched"))
        }
        for identifier in pending {
            let node = customers[current]!
            if node.count(identifier.kind) >= rules.limit(identifier.kind) {
                resolution.dropped.append((identifier, "limit:\(identifier.kind.rawValue)"))
                continue
            }
            customers[current]!.identifiers.insert(identifier)
            owners[identifier.ident] = current
            dirtyIdentifiers[identifier.ident] = identifier
            linkedAt[identifier.ident] = observation.occurredAt
            resolution.linked.append((identifier, "new"))
        }
        resolution.dropped += observation.refused.map { ($0.identifier, $0.rule) }
        apply(observation, to: current)
        return Resolution(customerID: current, newCustomer: created, linked: resolution.linked,
                          dropped: resolution.dropped, merges: resolution.merges)
    }

    /// Why `a` and `b` may not become one customer, or nil.
    func mergeRefusal(_ a: UUID, _ b: UUID, rules: IdentityRules) -> String? {
        let left = customers[a]!
        let right = customers[b]!
        if left.separatedFrom.contains(b) || right.separatedFrom.contains(a) { return "separated_by_unmerge" }
        for kind in rules.priority {
            let combined = left.identifiers.union(right.identifiers).reduce(0) { $0 + ($1.kind == kind ? 1 : 0) }
            if combined > rules.limit(kind) { return "limit:\(kind.rawValue)" }
        }
        return nil
    }

    /// Merges two customers; the survivor is the registered one, else the one seen first, else the lower id.
    mutating func merge(_ a: UUID, _ b: UUID, linkedBy: IdentifierKind) -> MergeDecision {
        let (survivorID, absorbedID, rule) = Self.survivor(customers[a]!, customers[b]!)
        var survivor = customers[survivorID]!
        var absorbed = customers[absorbedID]!
        let moved = Array(absorbed.identifiers)
        for identifier in moved {
            owners[identifier.ident] = survivorID
            dirtyIdentifiers[identifier.ident] = identifier
        }
        survivor.identifiers.formUnion(absorbed.identifiers)
        survivor.separatedFrom.formUnion(absorbed.separatedFrom)
        if absorbed.registered && !survivor.registered {
            survivor.registered = true
            survivor.registeredAt = absorbed.registeredAt
        }
        if absorbed.firstSeenAt < survivor.firstSeenAt {
            survivor.firstSeenAt = absorbed.firstSeenAt
            survivor.firstChannel = absorbed.firstChannel ?? survivor.firstChannel
            survivor.firstCampaign = absorbed.firstCampaign ?? survivor.firstCampaign
        }
        survivor.displayName = survivor.displayName ?? absorbed.displayName
        survivor.nameMasked = survivor.nameMasked ?? absorbed.nameMasked
        survivor.phoneMasked = survivor.phoneMasked ?? absorbed.phoneMasked
        absorbed.identifiers = []
        absorbed.status = .merged
        absorbed.mergedInto = survivorID
        customers[survivorID] = survivor
        customers[absorbedID] = absorbed
        for (id, node) in customers where node.mergedInto == absorbedID {
            customers[id]!.mergedInto = survivorID
            dirtyCustomers.insert(id)
        }
        dirtyCustomers.insert(survivorID)
        dirtyCustomers.insert(absorbedID)
        return MergeDecision(survivor: survivorID, absorbed: absorbedID, linkedBy: linkedBy, survivorRule: rule, moved: moved)
    }

    static func survivor(_ a: CustomerNode, _ b: CustomerNode) -> (UUID, UUID, String) {
        if a.registered != b.registered { return a.registered ? (a.id, b.id, "registered") : (b.id, a.id, "registered") }
        if a.firstSeenAt != b.firstSeenAt { return a.firstSeenAt < b.firstSeenAt ? (a.id, b.id, "earliest_seen") : (b.id, a.id, "earliest_seen") }
        return a.id.uuidString.lowercased() < b.id.uuidString.lowercased() ? (a.id, b.id, "lowest_id") : (b.id, a.id, "lowest_id")
    }

    private mutating func apply(_ observation: Observation, to id: UUID) {
        var node = customers[id]!
        if observation.occurredAt < node.firstSeenAt {
            node.firstSeenAt = observation.occurredAt
            if let lead = observation.lead {
                node.firstChannel = lead.channel
                node.firstCampaign = lead.campaignID.isEmpty ? nil : lead.campaignID
            }
        } else if node.firstChannel == nil, let lead = observation.lead {
            node.firstChannel = lead.channel
            node.firstCampaign = lead.campaignID.isEmpty ? nil : lead.campaignID
        }
        if observation.subject == .registration && observation.identifiers.contains(where: { $0.kind == .userID && owners[$0.ident] == id }) {
            node.registered = true
            node.registeredAt = node.registeredAt.map { min($0, observation.occurredAt) } ?? observation.occurredAt
        }
        if let name = observation.displayName { node.displayName = name }
        if let mask = observation.nameMasked { node.nameMasked = mask }
        if let mask = observation.phoneMasked { node.phoneMasked = mask }
        customers[id] = node
        dirtyCustomers.insert(id)
    }
}
