import Contracts
import Foundation
import HTTPTypes
@testable import OnlineChat
import ServiceKit
import TestSupport
import Testing

/// What online-chat consumes. Erasure: when identity-merge erases a customer, online-chat scrubs that customer's
/// conversations, following merges. Leavers: HR's `left` refuses an operator's token at once. Bad records go to
/// the dead-letter topic.
@Suite(.serialized) struct ChatInputTopicTests {
    static func event(_ customer: String, _ change: Funnel_Identity_V1_CustomerEvent.OneOf_Change) throws -> (key: String, value: [UInt8], contentType: String) {
        var event = Funnel_Identity_V1_CustomerEvent()
        event.customerID = customer
        event.occurredAt = .init(date: Date())
        event.change = change
        return (customer, try event.serializedBytes(), "application/protobuf")
    }

    static func resolved(_ customer: String, lead: String) throws -> (key: String, value: [UInt8], contentType: String) {
        var resolved = Funnel_Identity_V1_CustomerResolved()
        resolved.subjectKind = "lead"
        resolved.subjectID = lead
        return try event(customer, .resolved(resolved))
    }

    /// A conversation that yielded a phone; returns its token, id and lead id.
    static func conversationWithLead(_ chat: ChatHarness, site: String, phone: String) async throws -> (token: String, id: String, visitor: String) {
        let (_, token, session) = try await chat.startSession(site: site)
        for answer in ["赵六", "CPA", phone] { _ = try await chat.say(answer, token: token) }
        return (token, session["conversation_id"] as? String ?? "", session["visitor_id"] as? String ?? "")
    }

    @Test func erasingACustomerScrubsTheirConversationsIncludingOnesOfCustomersMergedIntoThem() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite()
        let first = try await Self.conversationWithLead(chat, site: site, phone: "13800138011")
        let second = try await Self.conversationWithLead(chat, site: site, phone: "13800138012")
        let kept = try await Self.conversationWithLead(chat, site: site, phone: "13800138013")
        let leads = try await chat.readLeads(atLeast: 3)
        func lead(_ conversation: String) -> String { leads.first { $0.conversationID == conversation }?.leadID ?? "" }
        let (c1, c2, c3) = (UUIDv7.generate().lowercasedText, UUIDv7.generate().lowercasedText, UUIDv7.generate().lowercasedText)
        var merged = Funnel_Identity_V1_CustomersMerged()
        merged.absorbedIds = [c2]
        try await chat.waitReady()
        // The absorbed customer's resolved event comes last: events of different customers travel on different
        // partitions, so it can arrive after the survivor was erased.
        try await chat.publishCustomerEvents([
            try Self.resolved(c1, lead: lead(first.id)), try Self.resolved(c3, lead: lead(kept.id)),
            try Self.event(c1, .merged(merged)), try Self.event(c1, .erased(Funnel_Identity_V1_CustomerErased())),
            (c3, Array("not a customer event".utf8), "application/json"),
        ])
        func detail(_ id: String) async throws -> [String: Any] { try await chat.request(.get, "/v1/operator/conversations/\(id)", headers: chat.admin).1 }
        func waitErased(_ id: String) async throws {
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, (try await detail(id)["messages"] as? [Any])?.isEmpty == false {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        try await waitErased(first.id)
        try await chat.publishCustomerEvents([try Self.resolved(c2, lead: lead(second.id))])
        try await waitErased(second.id)
        for erased in [first, second] {
            let json = try await detail(erased.id)
            let conversation = json["conversation"] as? [String: Any] ?? [:]
            #expect((json["messages"] as? [Any])?.isEmpty == true, "messages deleted")
            #expect((conversation["answers"] as? [String: Any])?.isEmpty == true && conversation["page_url"] == nil)
            #expect(conversation["visitor_id"] as? String == "erased" && conversation["status"] as? String == "closed")
            let (status, _, session) = try await chat.startSession(site: site, token: erased.token)
            #expect(status == .created && session["visitor_id"] as? String != erased.visitor, "the old token leads nowhere")
        }
        let untouched = try await detail(kept.id)
        #expect((untouched["messages"] as? [Any])?.count == 8, "another customer's conversation is kept")

        let reader = try TopicReader(topic: chat.prefix + "dlq.online-chat.v1")
        let letters = try await reader.read(atLeast: 1, timeout: .seconds(30))
        await reader.close()
        #expect(letters.count == 1)
        #expect(letters.first?.headers.first { $0.key == "dlq_error_code" }.flatMap { $0.value.map { String(decoding: $0, as: UTF8.self) } } == "malformed_json")
    }

    @Test func aLeaversOperatorTokenIsRefusedAtOnceAndARehireLiftsIt() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let verifier = await EmployeeTokenVerifier(secret: chat.settings.jwtSecret)
        let leaver = try await verifier.sign(EmployeeClaims(employeeID: "e-2002", role: .rep, expires: Date().addingTimeInterval(3_600)))
        let colleague = try await verifier.sign(EmployeeClaims(employeeID: "e-2003", role: .rep, expires: Date().addingTimeInterval(3_600)))
        func status(_ token: String) async throws -> (HTTPResponse.Status, String?) {
            let (status, json, _) = try await chat.request(.get, "/v1/operator/conversations", headers: [.authorization: "Bearer \(token)"])
            return (status, json["code"] as? String)
        }
        #expect(try await status(leaver).0 == .ok)
        try await chat.waitReady()
        func employeeEvent(_ change: Funnel_Hr_V1_EmployeeEvent.OneOf_Change, at: Date) throws -> (key: String, value: [UInt8], contentType: String) {
            var event = Funnel_Hr_V1_EmployeeEvent()
            event.employeeID = "e-2002"
            event.occurredAt = .init(date: at)
            event.change = change
            return ("e-2002", try event.serializedBytes(), "application/protobuf")
        }
        try await chat.publishCustomerEvents([try employeeEvent(.left(Funnel_Hr_V1_EmployeeLeft()), at: Date()),
                                              ("e-x", Array(#"{"employeeId": ""}"#.utf8), "application/json")], topic: "hr.employees.v1")
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, try await status(leaver).0 == .ok { try await Task.sleep(for: .milliseconds(200)) }
        #expect(try await status(leaver) == (.unauthorized, "employee_left"))
        #expect(try await status(colleague).0 == .ok)

        var rehired = Funnel_Hr_V1_Employee()
        rehired.employeeID = "e-2002"
        try await chat.publishCustomerEvents([try employeeEvent(.hired(rehired), at: Date().addingTimeInterval(1))], topic: "hr.employees.v1")
        let rehireDeadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < rehireDeadline, try await status(leaver).0 != .ok { try await Task.sleep(for: .milliseconds(200)) }
        #expect(try await status(leaver).0 == .ok)

        let reader = try TopicReader(topic: chat.prefix + "dlq.online-chat.v1")
        let letters = try await reader.read(atLeast: 1, timeout: .seconds(30))
        await reader.close()
        #expect(letters.first?.headers.first { $0.key == "dlq_error_code" }.flatMap { $0.value.map { String(decoding: $0, as: UTF8.self) } } == "missing_employee_id")
    }
}
