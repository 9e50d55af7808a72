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

    static var limits: [(String, KeyPath<Funnel_Marketing_V1_CampaignLead, String>, Int)] { [
        ("platform_lead_id", \.platformLeadID, 128), ("campaign_id", \.campaignID, 128), ("ad_group_id", \.adGroupID, 128),
        ("ad_id", \.adID, 128), ("keyword", \.keyword, 256), ("landing_url", \.landingURL, 2_048), ("referrer_url", \.referrerURL, 2_048),
        ("name", \.name, 100), ("phone", \.phone, 64), ("email", \.email, 254), ("wechat", \.wechat, 64),
        ("course_interest", \.courseInterest, 128), ("note", \.note, 2_000), ("source", \.source, 100), ("channel", \.channel, 32),
        ("utm.source", \.utm.source, 256), ("utm.medium", \.utm.medium, 256), ("utm.campaign", \.utm.campaign, 256),
        ("utm.term", \.utm.term, 256), ("utm.content", \.utm.content, 256), ("click_id", \.clickID, 256),
    ] }

    func validate(_ input: Funnel_Marketing_V1_CampaignLead, source: LeadSource, receivedVia: String) -> Result<ValidatedLead, LeadRejection> {
        var violations: [LeadViolation] = []
        for (field, path, limit) in Self.limits {
            let value = input[keyPath: path]
            if value.count > limit {
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
        let leadID = UUIDv7.generate(at: receivedAt).lowercasedText
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
        return ValidatedLead(event: event, source: source, platformLeadID: event.platformLeadID.isEmpty ? nil : event.platformLeadID,
                             channel: channel, key: key)
    }
}
