import FastText
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

    /// Resolves one observation. Its identifiers are taken in priority order: the first one already known
    /// decides the customer; each later known one merges its customer in when the limits allow (counting the
    /// record's higher-priority new identifiers), else it is dropped from the link; new identifiers are then
    /// linked within the limits. With nothing known, the record creates a customer.
    mutating func resolve(_ observation: Observation, rules: IdentityRules, newID: () -> UUID) -> Resolution {
        let ordered = observation.identifiers.sorted { rules.rank($0.kind) < rules.rank($1.kind) }
        var target: UUID?
        var pending: [Identifier] = []
        var linked: [(identifier: Identifier, how: String)] = []
        var dropped: [(identifier: Identifier, rule: String)] = []
        var merges: [MergeDecision] = []
        for identifier in ordered {
            guard let owner = owners[identifier.ident] else {
                pending.append(identifier)
                continue
            }
            if owner == target {
                linked.append((identifier, "matched"))
                continue
            }
            if let refusal = linkRefusal(target, owner, plus: pending, rules: rules) {
                dropped.append((identifier, refusal))
                continue
            }
            if let current = target {
                let merge = self.merge(current, owner, linkedBy: identifier.kind)
                merges.append(merge)
                target = merge.survivor
            } else {
                target = owner
            }
            linked.append((identifier, "matched"))
        }
        let created = target == nil
        let current: UUID
        if let target {
            current = target
        } else {
            current = newID()
            customers[current] = CustomerNode(id: current, firstSeenAt: observation.occurredAt)
        }
        for identifier in pending {
            if customers[current]!.count(identifier.kind) >= rules.limit(identifier.kind) {
                dropped.append((identifier, "limit:\(identifier.kind.rawValue)"))
                continue
            }
            customers[current]!.identifiers.insert(identifier)
            owners[identifier.ident] = current
            dirtyIdentifiers[identifier.ident] = identifier
            linkedAt[identifier.ident] = observation.occurredAt
            linked.append((identifier, "new"))
        }
        dropped += observation.refused.map { ($0.identifier, $0.rule) }
        apply(observation, to: current)
        return Resolution(customerID: current, newCustomer: created, linked: linked, dropped: dropped, merges: merges)
    }

    /// Why the record may not link `owner`'s customer (to `target`'s, when it has one already), or nil:
    /// an operator's separation, or a kind whose identifiers would exceed its limit, counting `plus`.
    func linkRefusal(_ target: UUID?, _ owner: UUID, plus: [Identifier], rules: IdentityRules) -> String? {
        let right = customers[owner]!
        var combined = right.identifiers.union(plus)
        if let target {
            let left = customers[target]!
            if left.separatedFrom.contains(owner) || right.separatedFrom.contains(target) { return "separated_by_unmerge" }
            combined.formUnion(left.identifiers)
        }
        for kind in rules.priority where combined.reduce(0, { $0 + ($1.kind == kind ? 1 : 0) }) > rules.limit(kind) {
            return "limit:\(kind.rawValue)"
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
        return a.id.lowercasedText < b.id.lowercasedText ? (a.id, b.id, "lowest_id") : (b.id, a.id, "lowest_id")
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
