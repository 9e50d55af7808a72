import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import Metrics
import Postgres
import ServiceKit

/// `GET /v1/chat/ws?site=<id>` upgraded to a WebSocket: the widget's live channel. The page's origin is checked
/// against the site before the upgrade. Frames are JSON text:
/// - client: `{"type":"hello","token":"cs_…","after":N}` first (within 10 s), then `{"type":"message","text":"…"}`,
///   `{"type":"skip"}`, `{"type":"ping"}`;
/// - server: `{"type":"update","conversation_id":…,"messages":[…],"state":{…}}`, `{"type":"error","code":…,"detail":…}`,
///   `{"type":"pong"}`.
struct ChatWebSocket: Sendable {
    let postgres: PostgresClient
    let store: ConversationStore
    let hub: ConversationHub
    let relay: OutboxRelay
    let limits: ChatLimits

    private static let opened = Counter(label: "funnel_chat_websockets_opened_total")

    struct ClientFrame: Decodable {
        var type: String
        var token: String?
        var after: Int?
        var text: String?
    }

    struct ServerFrame<Body: Encodable>: Encodable {
        let type: String
        let body: Body
        func encode(to encoder: any Encoder) throws {
            try body.encode(to: encoder)
            var container = encoder.container(keyedBy: TypeKey.self)
            try container.encode(type, forKey: .type)
        }
        enum TypeKey: String, CodingKey { case type }
    }

    struct ErrorBody: Encodable {
        let code: String
        let detail: String
        var retryAfter: Int?
        enum CodingKeys: String, CodingKey { case code, detail, retryAfter = "retry_after" }
    }

    struct Empty: Encodable {}

    func add(to router: Router<ChatRequestContext>) {
        router.ws("/v1/chat/ws", shouldUpgrade: { request, context in
            do {
                return try await self.shouldUpgrade(request)
            } catch {
                context.logger.debug("WebSocket upgrade refused", metadata: ["error": "\(error)"])
                throw error
            }
        }) { inbound, outbound, context in
            try await self.session(inbound: inbound, outbound: outbound, context: context)
        }
    }

    private func shouldUpgrade(_ request: Request) async throws -> RouterShouldUpgrade {
        guard let siteID = request.uri.queryParameters.get("site"), ChatSite.isValidID(siteID) else {
            throw Problem(.unprocessableContent, code: "invalid_site", detail: "site: a site id (1 to 64 of a-z, 0-9, - and _) is required")
        }
        let (store, origin) = (self.store, request.headers[.origin])
        let site = try await postgres.withConnection { try store.sites.load(siteID, in: $0) }
        guard let site, !site.disabled else { throw Problem(.notFound, code: "unknown_site", detail: "no enabled chat site \(siteID)") }
        guard site.allows(origin: origin) else { throw Problem(.forbidden, code: "origin_not_allowed", detail: "this page's origin is not allowed for the site") }
        return .upgrade([:])
    }

    private func session(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
                         context: WebSocketRouterContext<ChatRequestContext>) async throws {
        Self.opened.increment()
        let siteID = context.request.uri.queryParameters.get("site") ?? ""
        let origin = context.request.headers[.origin]
        let ip = context.requestContext.clientIP(of: context.request, header: limits.clientIPHeader)
        var messages = inbound.messages(maxSize: 16_384).makeAsyncIterator()

        // The hello, within 10 seconds, or the socket is closed.
        let greeted = LockedBox(false)
        let deadline = Task {
            try await Task.sleep(for: .seconds(10))
            if !greeted.withLock({ $0 }) { try? await outbound.close(.policyViolation, reason: "hello expected") }
        }
        defer { deadline.cancel() }
        let hello = try await messages.next()
        greeted.withLock { $0 = true }
        guard case .text(let helloText) = hello, let frame = try? JSONDecoder().decode(ClientFrame.self, from: Data(helloText.utf8)),
              frame.type == "hello", let token = frame.token, !token.isEmpty, token.count <= 100 else {
            try? await send(outbound, "error", ErrorBody(code: "hello_expected", detail: "send {\"type\":\"hello\",\"token\":…} first"))
            try? await outbound.close(.policyViolation, reason: "hello expected")
            return
        }
        let after = max(0, frame.after ?? 0)
        let store = self.store
        let found = try await postgres.withConnection { try store.conversation(tokenHash: ConversationStore.tokenHash(token), lock: false, in: $0) }
        guard let conversation = found, conversation.siteID == siteID else {
            try await send(outbound, "error", ErrorBody(code: "invalid_session", detail: "the session token is unknown; start a session"))
            try await outbound.close(.policyViolation, reason: "invalid session")
            return
        }
        let (subscription, stream) = hub.subscribe(conversation.id, lastSeq: after)
        defer { hub.unsubscribe(conversation.id, id: subscription) }
        if let initial = try await postgres.withConnection({ try store.update(conversation.id, after: after, in: $0) }) {
            try await send(outbound, "update", initial)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Updates of this conversation (from this socket, other tabs, operators, other replicas) go out in order.
            group.addTask {
                var last = after
                for await update in stream {
                    let fresh = update.messages.filter { $0.seq > last }
                    guard !fresh.isEmpty || update.messages.isEmpty else { continue }
                    last = max(last, fresh.last?.seq ?? last)
                    try await self.send(outbound, "update", ConversationUpdate(conversationID: update.conversationID, messages: fresh, state: update.state))
                }
                // The stream ended: this socket fell too far behind (or is closing). Close it; the widget reconnects
                // with the last seq it has and reads the rest from the database.
                if !Task.isCancelled { try? await outbound.close(.goingAway, reason: "too far behind; reconnect") }
            }
            while let message = try await messages.next() {
                try await self.handle(message, token: token, ip: ip, origin: origin, outbound: outbound)
            }
            group.cancelAll()
        }
    }

    private func handle(_ message: WebSocketMessage, token: String, ip: String, origin: String?, outbound: WebSocketOutboundWriter) async throws {
        guard case .text(let text) = message, let frame = try? JSONDecoder().decode(ClientFrame.self, from: Data(text.utf8)) else {
            return try await send(outbound, "error", ErrorBody(code: "malformed_frame", detail: "frames are JSON objects with a type"))
        }
        let input: VisitorInput
        switch frame.type {
        case "ping": return try await send(outbound, "pong", Empty())
        case "skip": input = .skip
        case "message":
            do {
                input = .text(try ChatJSON.messageText(frame.text, maxCharacters: limits.maxMessageCharacters))
            } catch let problem as Problem {
                return try await send(outbound, "error", ErrorBody(code: problem.code, detail: problem.detail))
            }
        default:
            return try await send(outbound, "error", ErrorBody(code: "unknown_frame_type", detail: "types are message, skip and ping"))
        }
        do {
            try limits.messagesPerIP.check(ip, what: "client address")
            try limits.messagesPerConversation.check(token, what: "conversation")
            _ = try await ChatActions.visitorInput(token: token, input: input, origin: origin, postgres: postgres, store: store, hub: hub, relay: relay)
        } catch let problem as Problem {
            let retry = problem.headers[.retryAfter].flatMap { Int($0) }
            try await send(outbound, "error", ErrorBody(code: problem.code, detail: problem.detail, retryAfter: retry))
        } catch let refusal as ChatRefusal {
            try await send(outbound, "error", ErrorBody(code: refusal.code.rawValue, detail: refusal.problem.detail))
        }
    }

    private func send(_ outbound: WebSocketOutboundWriter, _ type: String, _ body: some Encodable) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(ServerFrame(type: type, body: body))
        try await outbound.write(.text(String(decoding: data, as: UTF8.self)))
    }
}
