import Contracts
import FastText
import Foundation
import ServiceKit
import SwiftProtobuf

/// Turns input records into observations: identifiers keyed as intake keys them, blocked values refused with
/// the rule, raw contacts (registrations only) encrypted and never kept raw.
struct ObservationBuilder: Sendable {
    let keyer: IdentityKeyer
    let cipher: PIICipher
    let defaultRegion: String

    struct Rejection: Error {
        let code: String
        let reason: String
    }

    /// A lead from intake or chat. Its contacts arrive keyed and encrypted; the phone is decrypted only to
    /// check the digit-run rule.
    func observation(lead: Funnel_Leads_V1_LeadCaptured, rules: CompiledRules) throws(Rejection) -> Observation {
        guard !lead.leadID.isEmpty, lead.leadID.count <= 64 else { throw Rejection(code: "missing_lead_id", reason: "lead_id: required, at most 64 characters") }
        var sorted = SortedIdentifiers(rules: rules)
        if !lead.phoneKey.isEmpty {
            guard Self.isKey(lead.phoneKey) else { throw Rejection(code: "invalid_identity_key", reason: "phone_key: expected 64 hex digits") }
            var e164: String?
            if lead.hasPhone {
                do { e164 = try cipher.decrypt(lead.phone, field: "phone") } catch {
                    throw Rejection(code: "undecryptable_phone", reason: "phone: cannot be decrypted with this deployment's PII keys (key id \(lead.phone.keyID))")
                }
            }
            sorted.consider(Identifier(kind: .phone, key: lead.phoneKey, mask: lead.phoneMasked.isEmpty ? "***" : lead.phoneMasked), e164: e164)
        }
        if !lead.emailKey.isEmpty {
            guard Self.isKey(lead.emailKey) else { throw Rejection(code: "invalid_identity_key", reason: "email_key: expected 64 hex digits") }
            sorted.consider(Identifier(kind: .email, key: lead.emailKey, mask: lead.emailMasked.isEmpty ? "***" : lead.emailMasked))
        }
        if !lead.wechatKey.isEmpty {
            guard Self.isKey(lead.wechatKey) else { throw Rejection(code: "invalid_identity_key", reason: "wechat_key: expected 64 hex digits") }
            let mask = lead.hasWechat ? ((try? cipher.decrypt(lead.wechat, field: "wechat")).map(Masking.generic) ?? "***") : "***"
            sorted.consider(Identifier(kind: .wechat, key: lead.wechatKey, mask: mask))
        }
        if !lead.visitorID.isEmpty {
            guard let visitor = IdentityNormalizer.normalize(kind: .visitor, lead.visitorID, defaultRegion: defaultRegion) else {
                throw Rejection(code: "invalid_visitor_id", reason: "visitor_id: at most 128 characters, no spaces")
            }
            sorted.consider(identifier(.visitor, visitor), rawValue: visitor)
        }
        let occurredAt = lead.hasOccurredAt ? lead.occurredAt.date : (lead.hasReceivedAt ? lead.receivedAt.date : Date())
        var observation = Observation(subject: .lead, subjectID: lead.leadID, occurredAt: occurredAt, identifiers: sorted.usable)
        observation.refused = sorted.refused
        observation.phoneMasked = lead.phoneMasked.isEmpty ? nil : lead.phoneMasked
        if lead.hasName { observation.displayName = Self.encode(lead.name) }
        observation.nameMasked = lead.nameMasked.isEmpty ? nil : lead.nameMasked
        observation.lead = LeadFacts(
            leadID: lead.leadID, channel: lead.attribution.channel.isEmpty ? "other" : lead.attribution.channel,
            campaignID: lead.attribution.campaignID, courseInterest: lead.courseInterest, isTest: lead.isTest, phoneKey: lead.phoneKey,
            phone: lead.hasPhone ? lead.phone : nil, phoneInfo: lead.hasPhoneInfo ? lead.phoneInfo : nil
        )
        return observation
    }

    /// A registration from the main business system: raw contacts are normalised, keyed and encrypted here.
    func observation(registration: Funnel_Identity_V1_UserRegistered, rules: CompiledRules) throws(Rejection) -> (Observation, RegistrationFacts) {
        let userRaw = registration.userID.trimmingSpacesAndNewlines
        guard !userRaw.isEmpty else { throw Rejection(code: "missing_user_id", reason: "user_id: required") }
        guard let userID = IdentityNormalizer.normalize(kind: .userID, userRaw, defaultRegion: defaultRegion) else {
            throw Rejection(code: "invalid_user_id", reason: "user_id: at most 128 characters, no spaces")
        }
        guard registration.displayName.count <= 100 else { throw Rejection(code: "field_too_long", reason: "display_name: at most 100 characters") }
        var sorted = SortedIdentifiers(rules: rules)
        var facts = RegistrationFacts()
        sorted.consider(Identifier(kind: .userID, key: userID, mask: userID), rawValue: userRaw)
        let phoneRaw = registration.phone.trimmingSpacesAndNewlines
        if !phoneRaw.isEmpty {
            switch Result(catching: { () throws(PhoneNumber.Invalid) -> PhoneNumber in try PhoneNumber.parse(phoneRaw, defaultRegion: defaultRegion) }) {
            case .success(let phone):
                let phoneIdentifier = identifier(.phone, phone.e164)
                sorted.consider(phoneIdentifier, e164: phone.e164)
                facts.phone = try? cipher.encrypt(phone.e164, field: "phone")
                facts.phoneKey = phoneIdentifier.key
                facts.phoneMasked = phone.masked
                facts.phoneInfo = phone.info
            case .failure:
                sorted.refuse(.phone, rule: "invalid_value")
            }
        }
        for (kind, raw) in [(IdentifierKind.email, registration.email), (.unionid, registration.wechatUnionid)] {
            let trimmed = raw.trimmingSpacesAndNewlines
            guard !trimmed.isEmpty else { continue }
            guard let value = IdentityNormalizer.normalize(kind: kind, trimmed, defaultRegion: defaultRegion) else {
                sorted.refuse(kind, rule: "invalid_value")
                continue
            }
            sorted.consider(identifier(kind, value), rawValue: value)
        }
        let occurredAt = registration.hasRegisteredAt ? registration.registeredAt.date : Date()
        var observation = Observation(subject: .registration, subjectID: userID, occurredAt: occurredAt, identifiers: sorted.usable)
        observation.refused = sorted.refused
        observation.registeredAt = occurredAt
        observation.phoneMasked = facts.phoneMasked
        let name = registration.displayName.trimmingSpacesAndNewlines
        if !name.isEmpty, let encrypted = try? cipher.encrypt(name, field: "name") {
            observation.displayName = Self.encode(encrypted)
            observation.nameMasked = Masking.name(name)
        }
        facts.userID = userID
        return (observation, facts)
    }

    /// A normalised value as the graph keys and masks it.
    private func identifier(_ kind: IdentifierKind, _ normalized: String) -> Identifier {
        Identifier(kind: kind, key: IdentityNormalizer.key(kind: kind, normalized: normalized, keyer: keyer),
                   mask: IdentityNormalizer.mask(kind: kind, normalized: normalized))
    }

    static func isKey(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// An encrypted value as stored in a text column: its protobuf bytes, base64.
    static func encode(_ value: Funnel_Common_V1_EncryptedValue) -> String? {
        (try? value.serializedBytes() as [UInt8]).map { Data($0).base64EncodedString() }
    }

    static func decode(_ text: String) -> Funnel_Common_V1_EncryptedValue? {
        guard let data = Data(base64Encoded: text) else { return nil }
        return try? Funnel_Common_V1_EncryptedValue(serializedBytes: [UInt8](data))
    }
}

/// A record's identifiers split into those that may link and those the rules refuse (with the rule).
private struct SortedIdentifiers {
    let rules: CompiledRules
    var usable: [Identifier] = []
    var refused: [(identifier: Identifier, rule: String)] = []

    mutating func consider(_ identifier: Identifier, rawValue: String? = nil, e164: String? = nil) {
        if let rule = rules.blockReason(identifier, rawValue: rawValue, e164: e164) { refused.append((identifier, rule)) } else { usable.append(identifier) }
    }

    /// A value that could not be normalised: nothing to key, only the rule to record.
    mutating func refuse(_ kind: IdentifierKind, rule: String) {
        refused.append((Identifier(kind: kind, key: "invalid", mask: "***"), rule))
    }
}

/// What a registration adds to its `resolved` event.
struct RegistrationFacts: Sendable {
    var userID = ""
    var phoneKey = ""
    var phone: Funnel_Common_V1_EncryptedValue?
    var phoneMasked: String?
    var phoneInfo: Funnel_Common_V1_PhoneInfo?
}
