import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
@testable import OnlineChat
import ServiceKit
import TestSupport
import Testing

/// A visitor's live channel over a real WebSocket: hello, bot replies, operator pushes, other replicas' writes.
@Suite(.serialized) struct ChatWebSocketTests {
    /// Frames a socket received, readable while it is open.
    final class Received: Sendable {
        private let frames = LockedBox<[[String: Any]]>([])
        private struct Box: @unchecked Sendable { let value: [String: Any] }

        func append(_ text: String) {
            guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return }
            let box = Box(value: json)
            frames.withLock { $0.append(box.value) }
        }

        var all: [[String: Any]] { frames.withLock { $0 } }

        /// Message bodies of every update received, in order.
        var bodies: [String] { all.filter { $0["type"] as? String == "update" }.flatMap { ChatHarness.bodies($0) } }

        /// Waits until `condition` holds on the frames, or fails after 10 s.
        func wait(_ what: String, _ condition: @escaping @Sendable ([[String: Any]]) -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if condition(all) { return }
                try await Task.sleep(for: .milliseconds(20))
            }
            Issue.record("timed out waiting for \(what); frames: \(all)")
            throw CancellationError()
        }
    }

    /// Opens a socket to `chat`, runs `body` with a send function, then closes it. The client always sends
    /// `Origin: ws://127.0.0.1`, so sites these sockets use allow `*` (the browser test checks real origins).
    static func withSocket(_ chat: ChatHarness, site: String, received: Received,
                           _ body: @escaping @Sendable (@escaping @Sendable (String) async throws -> Void) async throws -> Void) async throws {
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(chat.port)/v1/chat/ws?site=\(site)",
                                          logger: TestEnvironment.logger("ws")) { inbound, outbound, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await message in inbound.messages(maxSize: 1 << 16) {
                        if case .text(let text) = message { received.append(text) }
                    }
                }
                try await body { try await outbound.write(.text($0)) }
                try await outbound.close(.normalClosure, reason: nil)
                group.cancelAll()
            }
        }
    }

    @Test func aVisitorChatsOverTheSocketAndOperatorRepliesArePushed() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite(origins: ["*"])
        let (_, token, session) = try await chat.startSession(site: site)
        let id = try #require(session["conversation_id"] as? String)
        let received = Received()
        try await Self.withSocket(chat, site: site, received: received) { send in
            try await send(#"{"type": "hello", "token": "\#(token)", "after": 2}"#)
            try await received.wait("the initial update") { $0.contains { $0["type"] as? String == "update" } }
            try await send(#"{"type": "message", "text": "Li Lei"}"#)
            try await received.wait("the bot's next question") { frames in frames.contains { ChatHarness.bodies($0).contains(BotFlow.standard.questions[1].prompt.zh) } }
            try await send(#"{"type": "ping"}"#)
            try await received.wait("pong") { $0.contains { $0["type"] as? String == "pong" } }
            let (status, _, _) = try await chat.request(.post, "/v1/operator/conversations/\(id)/messages", body: #"{"text": "<b>顾问</b> here"}"#, headers: chat.admin)
            #expect(status == .created)
            try await received.wait("the operator's reply") { frames in frames.contains { ChatHarness.bodies($0).contains("<b>顾问</b> here") } }
            try await send(#"{"type": "message", "text": "\#(String(repeating: "x", count: 1_001))"}"#)
            try await send(#"{"type": "dance"}"#)
            try await received.wait("two errors") { $0.filter { $0["type"] as? String == "error" }.count == 2 }
        }
        #expect(received.bodies == ["Li Lei", BotFlow.standard.questions[1].prompt.zh, "<b>顾问</b> here"], "no message twice, none lost, text verbatim")
        #expect(received.all.compactMap { $0["code"] as? String } == ["message_too_long", "unknown_frame_type"])
    }

    @Test func aWriteOnAnotherReplicaReachesTheSocketThroughPostgresNotifications() async throws {
        let a = try await ChatHarness.start()
        defer { Task { await a.stop() } }
        let b = try await ChatHarness.start(replicaOf: a)
        defer { Task { await b.stop() } }
        let site = try await a.createSite(origins: ["*"])
        let (_, token, session) = try await a.startSession(site: site)
        let id = try #require(session["conversation_id"] as? String)
        let received = Received()
        try await Self.withSocket(a, site: site, received: received) { send in
            try await send(#"{"type": "hello", "token": "\#(token)", "after": 2}"#)
            try await received.wait("the initial update") { $0.contains { $0["type"] as? String == "update" } }
            _ = try await b.say("from another tab", token: token)
            let (status, _, _) = try await b.request(.post, "/v1/operator/conversations/\(id)/messages", body: #"{"text": "operator on replica b"}"#, headers: b.admin)
            #expect(status == .created)
            try await received.wait("replica b's writes") { frames in frames.contains { ChatHarness.bodies($0).contains("operator on replica b") } }
        }
        #expect(received.bodies == ["from another tab", BotFlow.standard.questions[1].prompt.zh, "operator on replica b"])
    }

    @Test func aSocketWithoutAValidHelloIsClosedAndForeignOriginsCannotUpgrade() async throws {
        let chat = try await ChatHarness.start()
        defer { Task { await chat.stop() } }
        let site = try await chat.createSite(origins: ["*"])
        let received = Received()
        try await Self.withSocket(chat, site: site, received: received) { send in
            try await send(#"{"type": "hello", "token": "cs_forged"}"#)
            try await received.wait("the refusal") { $0.contains { $0["code"] as? String == "invalid_session" } }
        }
        let foreign = Received()
        await #expect(throws: (any Error).self) {
            try await Self.withSocket(chat, site: try await chat.createSite(), received: foreign) { send in
                try await send(#"{"type": "ping"}"#)
            }
        }
        #expect(foreign.all.isEmpty)
    }
}
