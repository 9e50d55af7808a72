import Contracts
import FastText
import Foundation
import ServiceKit
import SwiftProtobuf

/// Builds `identity.customers.v1` events (keyed by customer id) and the decisions that explain them.
struct CustomerEvents: Sendable {
    let service: String
    /// The output topic's full name (with the deployment's prefix).
    let topic: String

    func event(customerID: UUID, decisionID: UUID, time: Date = Date(), _ fill: (inout Funnel_Identity_V1_CustomerEvent) -> Void) throws -> CloudEvent {
        var event = Funnel_Identity_V1_CustomerEvent()
        event.customerID = customerID.lowercasedText
        event.decisionID = decisionID.lowercasedText
        event.occurredAt = Google_Protobuf_Timestamp(date: time)
        fill(&event)
        var cloudEvent = try CloudEvent(topic: Topics.customers, key: event.customerID, event: event, source: service, time: time)
        cloudEvent.topic = topic
        return cloudEvent
    }

    func resolved(_ resolution: Resolution, observation: Observation, registration: RegistrationFacts?, customer: CustomerNode,
                  decisionID: UUID) throws -> CloudEvent {
        try event(customerID: resolution.customerID, decisionID: decisionID) { event in
            var resolved = Funnel_Identity_V1_CustomerResolved()
            resolved.subjectKind = observation.subject.rawValue
            resolved.subjectID = observation.subjectID
            resolved.newCustomer = resolution.newCustomer
            resolved.lifecycle = customer.lifecycle
            resolved.registered = customer.registered
            resolved.userID = customer.identifiers.first { $0.kind == .userID }?.key ?? ""
            resolved.nameMasked = customer.nameMasked ?? ""
            resolved.subjectOccurredAt = Google_Protobuf_Timestamp(date: observation.occurredAt)
            resolved.dropped = resolution.dropped.map { "\($0.identifier.kind.rawValue):\($0.rule)" }
            if let lead = observation.lead {
                resolved.phoneKey = lead.phoneKey
                if let phone = lead.phone { resolved.phone = phone }
                resolved.phoneMasked = observation.phoneMasked ?? ""
                if let info = lead.phoneInfo { resolved.phoneInfo = info }
                resolved.channel = lead.channel
                resolved.campaignID = lead.campaignID
                resolved.courseInterest = lead.courseInterest
                resolved.isTest = lead.isTest
            } else if let registration {
                resolved.phoneKey = registration.phoneKey
                if let phone = registration.phone { resolved.phone = phone }
                resolved.phoneMasked = registration.phoneMasked ?? ""
                if let info = registration.phoneInfo { resolved.phoneInfo = info }
            }
            event.resolved = resolved
        }
    }

    func merged(_ merge: MergeDecision, decisionID: UUID) throws -> CloudEvent {
        try event(customerID: merge.survivor, decisionID: decisionID) { event in
            var merged = Funnel_Identity_V1_CustomersMerged()
            merged.absorbedIds = [merge.absorbed.lowercasedText]
            merged.linkedBy = merge.linkedBy.rawValue
            merged.survivorRule = merge.survivorRule
            event.merged = merged
        }
    }

    static func subject(_ observation: Observation) -> String { "\(observation.subject.rawValue):\(observation.subjectID)" }

    static func resolvedDecision(_ resolution: Resolution, subject observation: Observation, rulesVersion: Int) -> StoredDecision {
        let detail = DecisionDetail(
            linked: resolution.linked.map { .init(kind: $0.identifier.kind.rawValue, mask: $0.identifier.mask, rule: $0.how) },
            dropped: resolution.dropped.map { .init(kind: $0.identifier.kind.rawValue, mask: $0.identifier.mask, rule: $0.rule) },
            merged: resolution.merges.map { $0.absorbed.lowercasedText }
        )
        let rule: String
        if resolution.newCustomer {
            rule = observation.identifiers.isEmpty ? "no_usable_identifier" : "no_identifier_known"
        } else {
            let first = resolution.linked.first { $0.how == "matched" }?.identifier.kind.rawValue ?? "identifier"
            rule = "matched_by:\(first)"
        }
        return StoredDecision(id: UUIDv7.generate(), customerID: resolution.customerID, action: resolution.newCustomer ? "created" : "resolved",
                              rule: rule, subject: subject(observation), rulesVersion: rulesVersion, detail: detail.json, at: Date())
    }

    static func mergeDecision(_ merge: MergeDecision, subject observation: Observation, rulesVersion: Int) -> StoredDecision {
        let detail = DecisionDetail(
            linked: merge.moved.map { .init(kind: $0.kind.rawValue, mask: $0.mask, rule: "moved") },
            merged: [merge.absorbed.lowercasedText], survivorRule: merge.survivorRule, linkedBy: merge.linkedBy.rawValue
        )
        return StoredDecision(id: UUIDv7.generate(), customerID: merge.survivor, action: "merged", rule: "linked_by:\(merge.linkedBy.rawValue)",
                              subject: subject(observation), rulesVersion: rulesVersion, detail: detail.json, at: Date())
    }
}

/// The explanation stored with a decision.
struct DecisionDetail: Codable, Sendable {
    struct Item: Codable, Sendable {
        let kind: String
        let mask: String
        let rule: String
    }

    var linked: [Item] = []
    var dropped: [Item] = []
    var merged: [String] = []
    var survivorRule: String?
    var linkedBy: String?
    var note: String?

    enum CodingKeys: String, CodingKey {
        case linked, dropped, merged, note
        case survivorRule = "survivor_rule"
        case linkedBy = "linked_by"
    }

    /// The stored JSON, written by hand: JSONEncoder costs tens of microseconds per decision on the hot path.
    var json: String {
        var out = "{"
        func string(_ text: String) {
            out += "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 {
                        out += String(format: "\\u%04x", scalar.value)
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            out += "\""
        }
        func items(_ name: String, _ list: [Item]) {
            out += "\"\(name)\":["
            for (i, item) in list.enumerated() {
                if i > 0 { out += "," }
                out += "{\"kind\":"
                string(item.kind)
                out += ",\"mask\":"
                string(item.mask)
                out += ",\"rule\":"
                string(item.rule)
                out += "}"
            }
            out += "]"
        }
        items("dropped", dropped)
        out += ","
        items("linked", linked)
        if let linkedBy {
            out += ",\"linked_by\":"
            string(linkedBy)
        }
        out += ",\"merged\":["
        for (i, id) in merged.enumerated() {
            if i > 0 { out += "," }
            string(id)
        }
        out += "]"
        if let note {
            out += ",\"note\":"
            string(note)
        }
        if let survivorRule {
            out += ",\"survivor_rule\":"
            string(survivorRule)
        }
        return out + "}"
    }
}
