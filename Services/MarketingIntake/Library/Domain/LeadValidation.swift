import Contracts
import FastText
import Foundation
import ServiceKit

/// One reason a lead was refused: a stable code, the field, and words for a person.
public struct LeadViolation: Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let field: String
    public let detail: String
    public var description: String { "\(field): \(detail)" }
}

/// Why a lead was refused: every violation found.
public struct LeadRejection: Error, Sendable {
    public let violations: [LeadViolation]
    public var code: String { violations.first?.code ?? "invalid_lead" }
    public var reason: String { violations.map(\.description).joined(separator: "; ") }
}

/// A lead that passed validation, normalised, with its contacts turned into keys, ciphertexts and masks.
struct ValidatedLead: Sendable {
    let event: Funnel_Leads_V1_LeadCaptured
    /// The event's `lead_id`, not parsed back from its text.
    let leadID: UUID
    let source: LeadSource
    let platformLeadID: String?
    let channel: Channel
    /// The Kafka key: the phone's identity key, else email's, else WeChat's, else the lead id.
    let key: String
}

/// Validates and normalises campaign leads, the same way for HTTP and topic input.
struct LeadValidator: Sendable {
    let keyer: IdentityKeyer
    let cipher: PIICipher
    let defaultRegion: String
    /// Injected for tests.
    var now: @Sendable () -> Date = { Date() }

    /// Calls `check` with each free-text field, its name and its longest length in characters. (A list of key
    /// paths was rebuilt and projected for every lead: 4 % of the service's CPU on the topic.)
    static func forEachLimitedField(of input: Funnel_Marketing_V1_CampaignLead, _ check: (String, String, Int) -> Void) {
        check("platform_lead_id", input.platformLeadID, 128); check("campaign_id", input.campaignID, 128)
        check("ad_group_id", input.adGroupID, 128); check("ad_id", input.adID, 128); check("keyword", input.keyword, 256)
        check("landing_url", input.landingURL, 2_048); check("referrer_url", input.referrerURL, 2_048); check("name", input.name, 100)
        check("phone", input.phone, 64); check("email", input.email, 254); check("wechat", input.wechat, 64)
        check("course_interest", input.courseInterest, 128); check("note", input.note, 2_000); check("source", input.source, 100)
        check("channel", input.channel, 32); check("utm.source", input.utm.source, 256); check("utm.medium", input.utm.medium, 256)
        check("utm.campaign", input.utm.campaign, 256); check("utm.term", input.utm.term, 256); check("utm.content", input.utm.content, 256)
        check("click_id", input.clickID, 256)
    }

    func validate(_ input: Funnel_Marketing_V1_CampaignLead, source: LeadSource, receivedVia: String) -> Result<ValidatedLead, LeadRejection> {
        var violations: [LeadViolation] = []
        Self.forEachLimitedField(of: input) { field, value, limit in
            // A character is at least one byte: only a value with more bytes than the limit needs counting.
            if value.utf8.count > limit && value.count > limit {
                violations.append(LeadViolation(code: "field_too_long", field: field, detail: "longer than \(limit) characters"))
            } else if value.utf8.contains(0) {
                violations.append(LeadViolation(code: "invalid_character", field: field, detail: "contains a NUL character"))
            }
        }
        if !violations.isEmpty { return .failure(LeadRejection(violations: violations)) }

        let channelText = input.channel.trimmingSpaces.lowercased()
        var channel = source.defaultChannel
        if !channelText.isEmpty {
            if let parsed = Channel(rawValue: channelText) { channel = parsed } else {
                violations.append(LeadViolation(code: "unknown_channel", field: "channel",
                                                 detail: "must be one of \(Channel.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
        }
        let phoneText = input.phone.trimmingSpacesAndNewlines
        let emailText = input.email.trimmingSpacesAndNewlines.lowercased()
        let wechatText = input.wechat.trimmingSpacesAndNewlines
        if phoneText.isEmpty && emailText.isEmpty && wechatText.isEmpty {
            violations.append(LeadViolation(code: "missing_contact", field: "phone", detail: "a lead needs a phone, an email or a WeChat id"))
        }
        var phone: PhoneNumber?
        if !phoneText.isEmpty {
            do { phone = try PhoneNumber.parse(phoneText, defaultRegion: defaultRegion) } catch {
                violations.append(LeadViolation(code: "invalid_phone", field: "phone", detail: error.description))
            }
        }
        if !emailText.isEmpty, emailText.range(of: #"^[^@\s]+@[^@\s]+\.[^@\s]+$"#, options: .regularExpression) == nil {
            violations.append(LeadViolation(code: "invalid_email", field: "email", detail: "not an email address"))
        }
        if !wechatText.isEmpty, !(2...64).contains(wechatText.count) || wechatText.contains(where: \.isWhitespace) {
            violations.append(LeadViolation(code: "invalid_wechat", field: "wechat", detail: "a WeChat id has no spaces"))
        }
        for (field, url) in [("landing_url", input.landingURL), ("referrer_url", input.referrerURL)] where !url.isEmpty {
            let lower = url.lowercased()
            if !(lower.hasPrefix("https://") || lower.hasPrefix("http://")) || URL(string: url)?.host == nil {
                violations.append(LeadViolation(code: "invalid_url", field: field, detail: "must be an http(s) URL"))
            }
        }
        let receivedAt = now()
        var occurredAt = receivedAt
        if input.hasOccurredAt {
            let given = input.occurredAt.date
            if given > receivedAt.addingTimeInterval(300) {
                violations.append(LeadViolation(code: "invalid_occurred_at", field: "occurred_at", detail: "is in the future"))
            } else if given < Date(timeIntervalSince1970: 946_684_800) {
                violations.append(LeadViolation(code: "invalid_occurred_at", field: "occurred_at", detail: "is before the year 2000"))
            } else {
                occurredAt = given
            }
        }
        if !violations.isEmpty { return .failure(LeadRejection(violations: violations)) }

        do {
            return .success(try build(input, source: source, channel: channel, phone: phone, email: emailText, wechat: wechatText,
                                      occurredAt: occurredAt, receivedAt: receivedAt, receivedVia: receivedVia))
        } catch {
            return .failure(LeadRejection(violations: [LeadViolation(code: "encryption_failed", field: "phone", detail: "could not encrypt contacts")]))
        }
    }

    private func build(_ input: Funnel_Marketing_V1_CampaignLead, source: LeadSource, channel: Channel, phone: PhoneNumber?,
                       email: String, wechat: String, occurredAt: Date, receivedAt: Date, receivedVia: String) throws -> ValidatedLead {
        var event = Funnel_Leads_V1_LeadCaptured()
        let id = UUIDv7.generate(at: receivedAt)
        let leadID = id.lowercasedText
        event.leadID = leadID
        event.sourceID = source.id.lowercasedText
        event.sourceName = source.name
        event.platformLeadID = input.platformLeadID.trimmingSpaces
        var attribution = Funnel_Leads_V1_Attribution()
        attribution.channel = channel.rawValue
        attribution.campaignID = input.campaignID
        attribution.adGroupID = input.adGroupID
        attribution.adID = input.adID
        attribution.keyword = input.keyword
        if input.hasUtm { attribution.utm = input.utm }
        attribution.landingURL = input.landingURL
        attribution.referrerURL = input.referrerURL
        attribution.clickID = input.clickID
        event.attribution = attribution
        if let phone {
            event.phoneKey = keyer.key(kind: "phone", normalized: phone.e164)
            event.phone = try cipher.encrypt(phone.e164, field: "phone")
            event.phoneMasked = phone.masked
            event.phoneInfo = phone.info
        }
        if !email.isEmpty {
            event.emailKey = keyer.key(kind: "email", normalized: email)
            event.email = try cipher.encrypt(email, field: "email")
            event.emailMasked = Masking.email(email)
        }
        if !wechat.isEmpty {
            event.wechatKey = keyer.key(kind: "wechat", normalized: wechat)
            event.wechat = try cipher.encrypt(wechat, field: "wechat")
        }
        let name = input.name.trimmingSpacesAndNewlines
        if !name.isEmpty {
            event.name = try cipher.encrypt(name, field: "name")
            event.nameMasked = Masking.name(name)
        }
        event.courseInterest = input.courseInterest.trimmingSpacesAndNewlines
        if !input.note.isEmpty { event.note = try cipher.encrypt(input.note, field: "note") }
        event.isTest = input.isTest
        event.occurredAt = .init(date: occurredAt)
        event.receivedAt = .init(date: receivedAt)
        event.receivedVia = receivedVia
        let key = [event.phoneKey, event.emailKey, event.wechatKey].first { !$0.isEmpty } ?? leadID
        return ValidatedLead(event: event, leadID: id, source: source, platformLeadID: event.platformLeadID.isEmpty ? nil : event.platformLeadID,
                             channel: channel, key: key)
    }
}
