import Contracts
import Foundation
import HTTPTypes
@testable import OnlineChat
import ServiceKit
import TestSupport
import Testing

/// The visitor, operator and admin APIs against the real PostgreSQL and the devbroker.
@Suite(.serialized) struct ChatHTTPTests {
    @Test func aConversationThatYieldsAPhoneEmitsOneChatLeadWithTheVisitAndAMaskedSummary() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite()
        let (status, token, session) = try await chat.startSession(site: site)
        #expect(status == .created)
        #expect(ChatHarness.bodies(session) == [BotFlow.standard.greeting.zh, BotFlow.standard.questions[0].prompt.zh])
        #expect((ChatHarness.state(session)["question"] as? [String: Any])?["kind"] as? String == "name")
        _ = try await chat.say("王小明", token: token)
        _ = try await chat.say("IELTS", token: token)
        let (phoneStatus, update) = try await chat.say("138 0013 8000", token: token)
        #expect(phoneStatus == .created)
        #expect(ChatHarness.bodies(update) == ["138****8000", BotFlow.standard.completion.zh])
        #expect(ChatHarness.state(update)["status"] as? String == "waiting")

        let leads = try await chat.readLeads(atLeast: 1)
        try #require(leads.count == 1)
        let lead = leads[0]
        #expect(lead.attribution.channel == "chat")
        #expect(lead.sourceID == site)
        #expect(lead.attribution.landingURL == "https://www.example-school.cn/ielts?utm_source=baidu")
        #expect(lead.attribution.utm.source == "baidu" && lead.attribution.utm.campaign == "spring-ielts")
        #expect(lead.conversationID == session["conversation_id"] as? String)
        #expect(lead.visitorID == session["visitor_id"] as? String)
        #expect(lead.phoneMasked == "138****8000" && lead.phoneInfo.geo == "北京市")
        let cipher = try chat.settings.makeCipher()
        #expect(try cipher.decrypt(lead.phone, field: "phone") == "+8613800138000")
        #expect(try cipher.decrypt(lead.name, field: "name") == "王小明")
        #expect(lead.courseInterest == "IELTS")
        #expect(lead.transcriptSummary == "name: 王**; course: IELTS; phone: 138****8000; visitor messages: 3")
        #expect(!lead.transcriptSummary.contains("13800138000") && !lead.transcriptSummary.contains("小明"))
        #expect(lead.phoneKey == chat.settings.makeKeyer().key(kind: "phone", normalized: "+8613800138000"))
    }

    @Test func theSamePhoneAgainIsNotEmittedTwiceAndANewPhoneUpdatesTheSameLead() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite()
        let (_, token, _) = try await chat.startSession(site: site)
        _ = try await chat.say("Li", token: token)
        _ = try await chat.say("CPA", token: token)
        _ = try await chat.say("13800138000", token: token)
        let (_, again) = try await chat.say("我的电话是 138-0013-8000", token: token)
        #expect(ChatHarness.bodies(again) == ["我的电话是 138-****-8000"])
        _ = try await chat.say("or my office: 13912345678", token: token)
        let leads = try await chat.readLeads(atLeast: 2, settle: .seconds(1))
        #expect(leads.count == 2, "one per phone, not one per message")
        #expect(Set(leads.map(\.leadID)).count == 1, "a later contact updates the conversation's lead")
        #expect(Set(leads.map(\.phoneMasked)) == ["138****8000", "139****5678"])
    }

    @Test func aReloadResumesTheConversationAndAClosedOneStartsANewOneForTheSameVisitor() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite()
        let (_, token, first) = try await chat.startSession(site: site)
        _ = try await chat.say("Li", token: token)
        let (status, sameToken, resumed) = try await chat.startSession(site: site, token: token)
        #expect(status == .ok && sameToken == token && resumed["resumed"] as? Bool == true)
        #expect(resumed["conversation_id"] as? String == first["conversation_id"] as? String)
        #expect(ChatHarness.bodies(resumed).count == 4, "greeting, question, answer, next question")

        let id = try #require(first["conversation_id"] as? String)
        let (closed, _, _) = try await chat.request(.post, "/v1/operator/conversations/\(id)/close", headers: chat.admin)
        #expect(closed == .ok)
        let (refused, problem) = try await chat.say("hello?", token: token)
        #expect(refused == .conflict && problem["code"] as? String == "conversation_closed")
        let (newStatus, newToken, fresh) = try await chat.startSession(site: site, token: token)
        #expect(newStatus == .created && newToken != token)
        #expect(fresh["visitor_id"] as? String == first["visitor_id"] as? String)
        #expect(fresh["conversation_id"] as? String != first["conversation_id"] as? String)
    }

    @Test func optionalQuestionsAreSkippedAndRequiredOnesRefuseASkip() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite()
        let (_, token, _) = try await chat.startSession(site: site)
        let headers: HTTPFields = [.authorization: "Bearer \(token)", .origin: ChatHarness.pageOrigin]
        let (skipped, update, _) = try await chat.request(.post, "/v1/chat/messages", body: #"{"skip": true}"#, headers: headers)
        #expect(skipped == .created)
        #expect((ChatHarness.state(update)["question"] as? [String: Any])?["id"] as? String == "course")
        _ = try await chat.request(.post, "/v1/chat/messages", body: #"{"skip": true}"#, headers: headers)
        let (refused, refusal, _) = try await chat.request(.post, "/v1/chat/messages", body: #"{"skip": true}"#, headers: headers)
        #expect(refused == .ok)
        #expect(ChatHarness.bodies(refusal) == [BotFlow.requiredRefusal.zh])
        #expect((ChatHarness.state(refusal)["question"] as? [String: Any])?["id"] as? String == "phone")
    }

    @Test func anOperatorTakesOverAndALongPollWakesWithTheReply() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite()
        let (_, token, session) = try await chat.startSession(site: site)
        let id = try #require(session["conversation_id"] as? String)
        let (listed, list, _) = try await chat.request(.get, "/v1/operator/conversations?status=open", headers: chat.admin)
        #expect(listed == .ok)
        #expect((list["conversations"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == true)

        async let poll = chat.request(.get, "/v1/chat/messages?after=2&wait=8", headers: [.authorization: "Bearer \(token)", .origin: ChatHarness.pageOrigin])
        try await Task.sleep(for: .milliseconds(300))
        let operatorToken = try await EmployeeTokenVerifier(secret: chat.settings.jwtSecret)
            .sign(EmployeeClaims(employeeID: "e-1001", role: .rep, expires: Date().addingTimeInterval(600)))
        let (replied, reply, _) = try await chat.request(.post, "/v1/operator/conversations/\(id)/messages", body: #"{"text": "您好，我是顾问小张"}"#,
                                                         headers: [.authorization: "Bearer \(operatorToken)"])
        #expect(replied == .created)
        #expect(ChatHarness.state(reply)["status"] as? String == "operator")
        let (polled, news, _) = try await poll
        #expect(polled == .ok)
        #expect(ChatHarness.bodies(news) == ["您好，我是顾问小张"])
        let messages = try #require(news["messages"] as? [[String: Any]])
        #expect(messages[0]["author"] as? String == "operator" && messages[0]["author_id"] as? String == "e-1001")

        let (detail, conversation, _) = try await chat.request(.get, "/v1/operator/conversations/\(id)", headers: chat.admin)
        #expect(detail == .ok && (conversation["messages"] as? [Any])?.count == 3)
        let (anonymous, _, _) = try await chat.request(.get, "/v1/operator/conversations", headers: [.authorization: "Bearer cs_not_an_operator"])
        #expect(anonymous == .unauthorized)
    }

    @Test func originsOutsideTheSitesAllowListAreRefusedAndPreflightsAnswered() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite()
        let (forbidden, _, problem) = try await chat.startSession(site: site, origin: "https://evil.example.com")
        #expect(forbidden == .forbidden && problem["code"] as? String == "origin_not_allowed")
        let (_, token, _) = try await chat.startSession(site: site)
        let (stolen, stolenProblem) = try await chat.say("hi", token: token, origin: "https://evil.example.com")
        #expect(stolen == .forbidden && stolenProblem["code"] as? String == "origin_not_allowed")

        let (preflight, _, headers) = try await chat.request(.options, "/v1/chat/messages", headers: [.origin: ChatHarness.pageOrigin,
                                                                                                      .accessControlRequestMethod: "POST"])
        #expect(preflight == .noContent && headers[.accessControlAllowOrigin] == ChatHarness.pageOrigin)
        let (evilPreflight, _, evilHeaders) = try await chat.request(.options, "/v1/chat/messages", headers: [.origin: "https://evil.example.com"])
        #expect(evilPreflight == .forbidden && evilHeaders[.accessControlAllowOrigin] == nil)
        let (ok, _, okHeaders) = try await chat.request(.post, "/v1/chat/sessions", body: #"{"site": "\#(site)"}"#, headers: [.origin: ChatHarness.pageOrigin])
        #expect(ok == .created && okHeaders[.accessControlAllowOrigin] == ChatHarness.pageOrigin)
    }

    @Test func badVisitorInputGetsSpecificProblemsAndNothingIsStored() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite()
        let (_, token, _) = try await chat.startSession(site: site)
        let auth: HTTPFields = [.authorization: "Bearer \(token)", .origin: ChatHarness.pageOrigin]
        func post(_ body: String, _ headers: HTTPFields) async throws -> (HTTPResponse.Status, String?) {
            let (status, json, _) = try await chat.request(.post, "/v1/chat/messages", body: body, headers: headers)
            return (status, json["code"] as? String)
        }
        #expect(try await post(#"{"text": "\#(String(repeating: "长", count: 1_001))"}"#, auth) == (.unprocessableContent, "message_too_long"))
        #expect(try await post(#"{"text": "   "}"#, auth) == (.unprocessableContent, "empty_message"))
        #expect(try await post(#"{"text": "a\u0000b"}"#, auth) == (.unprocessableContent, "invalid_character"))
        #expect(try await post(#"{"text": 5}"#, auth) == (.unprocessableContent, "invalid_type"))
        #expect(try await post(#"{"text": "#, auth) == (.badRequest, "malformed_json"))
        #expect(try await post(#"{"text": "hi", "skip": true}"#, auth) == (.unprocessableContent, "invalid_message"))
        #expect(try await post(#"{"text": "\#(String(repeating: "x", count: 9_000))"}"#, auth) == (.contentTooLarge, "body_too_large"))
        #expect(try await post(#"{"text": "hi"}"#, [.origin: ChatHarness.pageOrigin]) == (.unauthorized, "missing_session"))
        #expect(try await post(#"{"text": "hi"}"#, [.authorization: "Bearer cs_unknown"]) == (.unauthorized, "invalid_session"))
        let (badSite, _, siteProblem) = try await chat.startSession(site: "Not A Site")
        #expect(badSite == .unprocessableContent && siteProblem["code"] as? String == "invalid_site")
        let (unknown, _, unknownProblem) = try await chat.startSession(site: "no-such-site")
        #expect(unknown == .notFound && unknownProblem["code"] as? String == "unknown_site")
        let (badUTM, _, utmProblem) = try await chat.startSession(site: site, extra: #", "utm": {"gclid": "x"}"#)
        #expect(badUTM == .unprocessableContent && utmProblem["code"] as? String == "unknown_field")
        let (resumed, _, session) = try await chat.startSession(site: site, token: token)
        #expect(resumed == .ok && ChatHarness.bodies(session).count == 2, "none of the refused messages was stored")
    }

    @Test func sessionsAndMessagesAreRateLimitedWithRetryAfter() async throws {
        var configuration = ChatHarness.roomyConfiguration
        // A burst of 1 refilled in 100 s, so a slow machine cannot refill it mid-test (RateLimiterTests check
        // rates and bursts against an injected clock).
        configuration.sessionRate = 0.01
        configuration.messageRate = 0.01
        let chat = try await ChatHarness.start(configuration: configuration)
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite()
        var statuses: [HTTPResponse.Status] = []
        var token = ""
        for _ in 0..<2 {
            let (status, t, _) = try await chat.startSession(site: site)
            statuses.append(status)
            if status == .created { token = t }
        }
        #expect(statuses == [.created, .tooManyRequests])
        let (limited, _, headers) = try await chat.request(.post, "/v1/chat/sessions", body: #"{"site": "\#(site)"}"#)
        #expect(limited == .tooManyRequests && Int(headers[.retryAfter] ?? "") ?? 0 >= 1)
        var messageStatuses: [HTTPResponse.Status] = []
        for i in 0..<3 { messageStatuses.append(try await chat.say("m\(i)", token: token).0) }
        #expect(messageStatuses == [.created, .tooManyRequests, .tooManyRequests])
    }

    @Test func sitesAreValidatedOnWriteAndFlowChangesBumpTheVersion() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let (bad, problem, _) = try await chat.request(.post, "/v1/admin/sites",
            body: #"{"id": "Bad Id", "name": "", "allowed_origins": ["https://ok.cn/path", "ftp://x"], "locale": "fr", "bot_flow": {"greeting": {"zh": "", "en": "hi"}, "questions": [], "completion": {"zh": "a", "en": "b"}}}"#,
            headers: chat.admin)
        #expect(bad == .unprocessableContent)
        let fields = Set((problem["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String })
        #expect(fields == ["id", "name", "allowed_origins[0]", "allowed_origins[1]", "locale", "bot_flow.greeting.zh"])
        let site = try await chat.createSite()
        let (duplicate, _, _) = try await chat.request(.post, "/v1/admin/sites", body: #"{"id": "\#(site)", "name": "x", "allowed_origins": ["*"]}"#, headers: chat.admin)
        #expect(duplicate == .conflict)
        let flow = #"{"greeting": {"zh": "你好", "en": "Hi"}, "questions": [{"id": "phone", "kind": "phone", "prompt": {"zh": "电话？", "en": "Phone?"}, "required": true}], "completion": {"zh": "谢谢", "en": "Thanks"}}"#
        let (updated, json, _) = try await chat.request(.put, "/v1/admin/sites/\(site)",
            body: #"{"name": "Renamed", "allowed_origins": ["\#(ChatHarness.pageOrigin)"], "bot_flow": \#(flow)}"#, headers: chat.admin)
        #expect(updated == .ok && json["flow_version"] as? Int == 2 && json["name"] as? String == "Renamed")
        let (_, _, session) = try await chat.startSession(site: site)
        #expect(ChatHarness.bodies(session) == ["你好", "电话？"])
        let (unauthorized, _, _) = try await chat.request(.get, "/v1/admin/sites")
        #expect(unauthorized == .unauthorized)
    }

    @Test func theWidgetAndTheAPIDocumentAreServed() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let response = try await chat.raw("/widget.js")
        #expect(response.status == .ok && response.contentType?.hasPrefix("application/javascript") == true)
        #expect(response.body.contains("textContent") && !response.body.contains("innerHTML"), "the widget never renders text as HTML")
        let (status, document, _) = try await chat.request(.get, "/openapi.json")
        #expect(status == .ok && document["openapi"] as? String == "3.1.0")
    }
}
