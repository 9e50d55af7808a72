import Contracts
import Foundation
import Hummingbird
import HummingbirdTesting
@testable import OnlineChat
import ServiceKit
import TestSupport
import Testing

/// The widget in a real browser (headless Chromium): a page on another origin embeds it with one script tag, a
/// visitor answers the bot with the keyboard, and the lead arrives on `leads.captured.v1`; a name written as HTML
/// stays text; a reload resumes the conversation; on a phone-sized window the chat fills the screen.
@Suite(.serialized) struct ChatBrowserTests {
    /// A host page on its own port (so its origin differs from the chat service's) embedding the widget.
    static func hostPage(chatPort: Int, site: String) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/landing") { _, _ in
            let html = """
                <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
                <title>IELTS spring course</title></head><body><h1>IELTS spring course</h1>
                <script src="http://127.0.0.1:\(chatPort)/widget.js" data-site="\(site)" data-lang="en"></script></body></html>
                """
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
        }
        // A browser without WebSocket (an old proxy strips upgrades): the widget must fall back to long polling.
        router.get("/no-websocket") { _, _ in
            let html = """
                <!doctype html><html lang="en"><head><meta charset="utf-8"><title>No WebSocket</title>
                <script>window.WebSocket = function () { throw new Error("no WebSocket here"); };</script></head><body>
                <script src="http://127.0.0.1:\(chatPort)/widget.js" data-site="\(site)" data-lang="en"></script></body></html>
                """
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
        }
        return router
    }

    /// Runs `body` with a chat service, a host page on another port whose origin the site allows, and a browser.
    static func withBrowser(_ body: @escaping @Sendable (ChatHarness, WebDriver, Int) async throws -> Void) async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = TestEnvironment.uniqueName("web").replacingOccurrences(of: "_", with: "-")
        let page = Application(router: Self.hostPage(chatPort: chat.port, site: site))
        try await page.test(.live) { client in
            let pagePort = try #require(client.port)
            try await chat.createSite(id: site, origins: ["http://127.0.0.1:\(pagePort)"])
            let browser = try await WebDriver.start()
            do {
                try await body(chat, browser, pagePort)
                await browser.quit()
            } catch {
                await browser.quit()
                throw error
            }
        }
    }

    @Test func aVisitorAnswersTheBotInABrowserAndTheLeadArrivesXSSStaysTextAndAReloadResumes() async throws {
        try await Self.withBrowser { chat, browser, pagePort in
            try await Self.converse(browser, pageURL: "http://127.0.0.1:\(pagePort)/landing?utm_source=baidu&utm_campaign=spring", chat: chat)
        }
    }

    @Test func withoutWebSocketTheWidgetLongPollsAndStillReceivesOperatorReplies() async throws {
        try await Self.withBrowser { chat, browser, pagePort in
            try await browser.navigate("http://127.0.0.1:\(pagePort)/no-websocket")
            try await browser.waitFor("the bubble", "document.querySelector('.fnl-chat-bubble')")
            try await browser.click(".fnl-chat-bubble")
            try await browser.waitFor("the first question", "document.querySelectorAll('.fnl-chat-msg-bot').length >= 2")
            try await browser.type(".fnl-chat-input", "Han Meimei\u{E007}")
            try await browser.waitFor("the course question", "document.body.textContent.indexOf('Which course') >= 0")
            let (_, list, _) = try await chat.request(.get, "/v1/operator/conversations", headers: chat.admin)
            let id = try #require((list["conversations"] as? [[String: Any]])?.first?["id"] as? String)
            let (status, _, _) = try await chat.request(.post, "/v1/operator/conversations/\(id)/messages", body: #"{"text": "Hi Han, I am your advisor"}"#,
                                                        headers: chat.admin)
            #expect(status == .created)
            try await browser.waitFor("the operator's reply by long poll",
                                      "document.querySelector('.fnl-chat-msg-operator') && document.body.textContent.indexOf('I am your advisor') >= 0")
            #expect(try await browser.script("return window.FunnelChat.transport();") as? String == "long-poll")
        }
    }

    static func converse(_ browser: WebDriver, pageURL: String, chat: ChatHarness) async throws {
        let xss = #"<img src=x onerror="window.__xss=1">"#
        try await browser.navigate(pageURL)
        try await browser.waitFor("the bubble", "document.querySelector('.fnl-chat-bubble')")
        try await browser.click(".fnl-chat-bubble")
        try await browser.waitFor("the first question", "document.querySelectorAll('.fnl-chat-msg-bot').length >= 2")
        #expect(try await browser.script("return document.activeElement.className;") as? String == "fnl-chat-input", "focus moves into the chat")

        try await browser.type(".fnl-chat-input", xss + "\u{E007}")
        try await browser.waitFor("the course question", "document.body.textContent.indexOf('Which course') >= 0")
        #expect(try await browser.script("return window.__xss === undefined;") as? Bool == true, "the name's HTML never ran")
        #expect(try await browser.script("return document.querySelectorAll('.fnl-chat-log img').length;") as? Int == 0)
        let visitorText = try await browser.script("return document.querySelector('.fnl-chat-msg-visitor').lastChild.textContent;") as? String
        #expect(visitorText == xss, "shown as the text it is")

        try await browser.click(".fnl-chat-options button") // the first course option, IELTS
        try await browser.waitFor("the phone question", "document.body.textContent.indexOf('phone number') >= 0")
        #expect(try await browser.script("return document.querySelector('.fnl-chat-input').type;") as? String == "tel")
        try await browser.type(".fnl-chat-input", "138 0013 8000\u{E007}")
        try await browser.waitFor("the completion", "document.body.textContent.indexOf('An advisor will contact you soon') >= 0")
        #expect(try await browser.script("return document.body.textContent.indexOf('13800138000') < 0 && document.body.textContent.indexOf('138****8000') >= 0;") as? Bool == true,
                "the number comes back masked")

        #expect(try await browser.script("return window.FunnelChat.transport();") as? String == "websocket")
        let leads = try await chat.readLeads(atLeast: 1)
        try #require(leads.count == 1)
        let lead = leads[0]
        #expect(lead.attribution.channel == "chat" && lead.phoneMasked == "138****8000" && lead.courseInterest == "IELTS")
        #expect(lead.attribution.utm.source == "baidu" && lead.attribution.utm.campaign == "spring")
        #expect(lead.attribution.landingURL == pageURL)
        #expect(try chat.settings.makeCipher().decrypt(lead.name, field: "name") == xss, "the name is data, kept as written")

        // Escape closes the window and gives focus back to the bubble.
        try await browser.type(".fnl-chat-input", "\u{E00C}")
        #expect(try await browser.script("return document.querySelector('.fnl-chat-panel').hidden;") as? Bool == true)
        #expect(try await browser.script("return document.activeElement.className;") as? String == "fnl-chat-bubble")

        // A reload resumes the same conversation.
        let before = try await browser.script("return document.querySelectorAll('.fnl-chat-msg').length;") as? Int ?? 0
        try await browser.navigate(pageURL)
        try await browser.waitFor("the bubble after reload", "document.querySelector('.fnl-chat-bubble')")
        try await browser.click(".fnl-chat-bubble")
        try await browser.waitFor("the resumed transcript", "document.querySelectorAll('.fnl-chat-msg').length >= \(before)")
        #expect(try await browser.script("return document.querySelector('.fnl-chat-msg-visitor').lastChild.textContent;") as? String == xss)
        try await browser.type(".fnl-chat-input", "When does the course start?\u{E007}")
        try await browser.waitFor("the new message", "document.body.textContent.indexOf('When does the course start?') >= 0")
        let (_, list, _) = try await chat.request(.get, "/v1/operator/conversations?status=all", headers: chat.admin)
        #expect((list["conversations"] as? [Any])?.count == 1, "the reload did not start a second conversation")

        // On a phone-sized window the chat fills the screen.
        try await browser.type(".fnl-chat-input", "\u{E00C}")
        try await browser.setWindow(width: 375, height: 740)
        try await browser.click(".fnl-chat-bubble")
        try await browser.waitFor("a full-width panel", "Math.abs(document.querySelector('.fnl-chat-panel').getBoundingClientRect().width - window.innerWidth) < 2")
    }
}
