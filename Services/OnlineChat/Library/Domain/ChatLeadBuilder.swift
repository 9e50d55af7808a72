import Contracts
import Foundation
import ServiceKit
import SwiftProtobuf

/// Turns a conversation's contact into `leads.captured.v1`: channel `chat`, the site as source, the visit's page
/// and UTM, the visitor id, the answers (name encrypted, course interest), the phone encrypted with its mask and
/// region, and a transcript summary with every contact masked.
struct ChatLeadBuilder: Sendable {
    let keyer: IdentityKeyer
    let cipher: PIICipher
    let service: String
    /// The output topic's full name (with the deployment's prefix).
    let outputTopic: String

    func record(leadID: UUID, conversationID: UUID, site: ChatSite, visitorID: String, visit: Visit, answers: [String: Answer],
                phone: PhoneNumber, visitorMessages: Int, now: Date) throws -> (OutboxRecord, phoneKey: String) {
        var event = Funnel_Leads_V1_LeadCaptured()
        event.leadID = leadID.lowercasedText
        event.sourceID = site.id
        event.sourceName = site.name
        event.conversationID = conversationID.lowercasedText
        event.visitorID = visitorID
        var attribution = Funnel_Leads_V1_Attribution()
        attribution.channel = "chat"
        attribution.landingURL = visit.pageURL ?? ""
        attribution.referrerURL = visit.referrerURL ?? ""
        var utm = Funnel_Marketing_V1_Utm()
        utm.source = visit.utm["source"] ?? ""
        utm.medium = visit.utm["medium"] ?? ""
        utm.campaign = visit.utm["campaign"] ?? ""
        utm.term = visit.utm["term"] ?? ""
        utm.content = visit.utm["content"] ?? ""
        if !visit.utm.isEmpty { attribution.utm = utm }
        attribution.campaignID = visit.utm["campaign"] ?? ""
        event.attribution = attribution
        event.phoneKey = keyer.key(kind: "phone", normalized: phone.e164)
        event.phone = try cipher.encrypt(phone.e164, field: "phone")
        event.phoneMasked = phone.masked
        event.phoneInfo = phone.info
        let questions = site.botFlow.questions
        if let nameQuestion = questions.first(where: { $0.kind == .name }), let sealed = answers[nameQuestion.id]?.sealed,
           let name = try? unseal(sealed, field: "name") {
            event.name = try cipher.encrypt(name, field: "name")
            event.nameMasked = Masking.name(name)
        }
        if let course = questions.first(where: { $0.kind == .course }), let value = answers[course.id]?.value { event.courseInterest = value }
        event.transcriptSummary = Self.summary(questions: questions, answers: answers, visitorMessages: visitorMessages)
        event.occurredAt = .init(date: now)
        event.receivedAt = .init(date: now)
        event.receivedVia = "chat"
        // Each contact is its own record (a fresh ce_id); the lead id stays the conversation's.
        let cloudEvent = try CloudEvent(topic: Topics.leadsCaptured, key: event.phoneKey, event: event, source: service, time: now)
        var record = OutboxRecord(cloudEvent)
        record.topic = outputTopic
        return (record, event.phoneKey)
    }

    /// `name: 张*; course: IELTS; phone: 138****8000; visitor messages: 4`: answers by question id, contacts masked.
    static func summary(questions: [BotQuestion], answers: [String: Answer], visitorMessages: Int) -> String {
        var parts: [String] = []
        for question in questions {
            guard let answer = answers[question.id] else { continue }
            let shown = question.kind == .name || question.kind == .phone ? answer.masked : answer.value.map { String($0.prefix(80)) }
            if let shown, !shown.isEmpty { parts.append("\(question.id): \(shown)") }
        }
        parts.append("visitor messages: \(visitorMessages)")
        return String(parts.joined(separator: "; ").prefix(1_000))
    }

    /// An answer sealed for storage: the encrypted value's protobuf, base64.
    func seal(_ plaintext: String, field: String) throws -> String {
        try Data(cipher.encrypt(plaintext, field: field).serializedBytes() as [UInt8]).base64EncodedString()
    }

    func unseal(_ sealed: String, field: String) throws -> String {
        guard let data = Data(base64Encoded: sealed) else { throw SealedValueError() }
        return try cipher.decrypt(Funnel_Common_V1_EncryptedValue(serializedBytes: [UInt8](data)), field: field)
    }

    /// Answers ready to store: names and phones sealed, their plain values dropped.
    func sealed(_ answers: [String: Answer], questions: [BotQuestion]) throws -> [String: Answer] {
        var out = answers
        for question in questions where question.kind == .name || question.kind == .phone {
            guard var answer = out[question.id], let value = answer.value else { continue }
            answer.sealed = try seal(value, field: question.kind.rawValue)
            answer.value = nil
            out[question.id] = answer
        }
        return out
    }
}

/// A stored sealed answer that is not base64 (never written by this service).
struct SealedValueError: Error, CustomStringConvertible {
    var description: String { "sealed value is not base64" }
}
