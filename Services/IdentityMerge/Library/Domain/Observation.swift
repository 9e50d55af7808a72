import Contracts
import Foundation

/// What one input record says about a person: its identifiers and profile facts, normalised and keyed.
struct Observation: Sendable {
    enum Subject: String, Sendable { case lead, registration }

    var subject: Subject
    /// The lead id, or the user id of a registration.
    var subjectID: String
    var occurredAt: Date
    /// Usable identifiers, at most one per kind and key.
    var identifiers: [Identifier]
    /// Identifiers that may not link anything, with the rule (`blocked_value`, `blocked_digit_run`, `invalid_value`).
    var refused: [(identifier: Identifier, rule: String)] = []
    /// The display name, encrypted (serialized `EncryptedValue`, base64), and its mask.
    var displayName: String?
    var nameMasked: String?
    var phoneMasked: String?
    var lead: LeadFacts?
    var registeredAt: Date?
}

/// The lead's facts that travel on to sales (routing, attribution) in the `resolved` event.
struct LeadFacts: Sendable {
    var leadID: String
    var channel: String
    var campaignID: String
    var courseInterest: String
    var isTest: Bool
    var phoneKey: String
    var phone: Funnel_Common_V1_EncryptedValue?
    var phoneInfo: Funnel_Common_V1_PhoneInfo?
}
