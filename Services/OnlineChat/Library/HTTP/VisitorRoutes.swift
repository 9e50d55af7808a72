import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import ServiceKit

/// The visitor API the widget uses (WebSocket's HTTP fallback, and the way in):
/// `POST /v1/chat/sessions` starts or resumes a conversation, `POST /v1/chat/messages` sends a message or a skip,
/// `GET /v1/chat/messages?after=N&wait=S` long-polls for what is new. A session is `Authorization: Bearer cs_…`.
struct VisitorRoutes: Sendable {
    let postgres: PostgresClient
    let store: ConversationStore
    let hub: ConversationHub
    let relay: OutboxRelay
    let limits: ChatLimits
    let maxBodyBytes: Int
    let longPollSeconds: Int

    struct StartSession: Decodable {
        var site: String
        var token: String?
        var pageURL: String?
        var referrerURL: String?
        var utm: [String: String]?
        var locale: String?
        enum CodingKeys: String, CodingKey { case site, token, pageURL = "page_url", referrerURL = "referrer_url", utm, locale }
    }

    struct Session: Encodable {
        let token: String
        let conversationID: String
        let visitorID: String
        let resumed: Bool
        let locale: ChatLocale
        let messages: [ChatMessage]
        let state: ConversationView
        enum CodingKeys: String, CodingKey {
            case token, conversationID = "conversation_id", visitorID = "visitor_id", resumed, locale, messages, state
        }
    }

    func add(to router: Router<ChatRequestContext>) {
        router.post("/v1/chat/sessions") { request, context in try await self.start(request, context: context) }
        router.post("/v1/chat/messages") { request, context in try await self.send(request, context: context) }
        router.get("/v1/chat/messages") { request, context in try await self.poll(request, context: context) }
    }

    func start(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let ip = context.clientIP(of: request, header: limits.clientIPHeader)
        try limits.sessionsPerIP.check(ip, what: "client address")
        var request = request
        let body = try await request.collectBody(limit: maxBodyBytes)
        let input = try ChatJSON.decode(StartSession.self, from: body)
        var errors: [Problem.FieldError] = []
        if !ChatSite.isValidID(input.site) { errors.append(.init(field: "site", code: "invalid_site", detail: "a site id: 1 to 64 of a-z, 0-9, - and _")) }
        if let token = input.token, token.count > 100 { errors.append(.init(field: "token", code: "invalid_token", detail: "at most 100 characters")) }
        let pageURL = try ChatJSON.optionalText(input.pageURL, field: "page_url", max: 2_000, errors: &errors)
        let referrer = try ChatJSON.optionalText(input.referrerURL, field: "referrer_url", max: 2_000, errors: &errors)
        var utm: [String: String] = [:]
        for (key, value) in input.utm ?? [:] {
            guard Visit.utmKeys.contains(key) else { errors.append(.init(field: "utm.\(key)", code: "unknown_field", detail: "UTM keys are \(Visit.utmKeys.joined(separator: ", "))")); continue }
            if let text = try ChatJSON.optionalText(value, field: "utm.\(key)", max: 200, errors: &errors) { utm[key] = text }
        }
        guard errors.isEmpty else { throw Problem(.unprocessableContent, code: errors[0].code, title: "Invalid session request", detail: errors[0].detail, errors: errors) }
        let origin = request.headers[.origin]
        let (store, token) = (self.store, input.token)
        let requested = input.locale.flatMap(ChatLocale.init(tag:))
        let visit = Visit(pageURL: pageURL, referrerURL: referrer, utm: utm)
        let session: Session = try await postgres.withTransaction { tx in
            guard let site = try store.sites.load(input.site, in: tx), !site.disabled else {
                throw Problem(.notFound, code: "unknown_site", detail: "no enabled chat site \(input.site)")
            }
            guard site.allows(origin: origin) else { throw Problem(.forbidden, code: "origin_not_allowed", detail: "this page's origin is not allowed for the site") }
            let (newToken, conversation, resumed) = try store.startOrResume(site: site, token: token, visit: visit, locale: requested ?? site.locale,
                                                                            clientIP: ip, in: tx)
            let messages = try store.messages(conversation.id, after: max(0, conversation.lastSeq - 200), in: tx)
            return Session(token: newToken, conversationID: conversation.id.lowercasedText, visitorID: conversation.visitorID, resumed: resumed, locale: conversation.locale,
                           messages: messages, state: store.view(conversation.state, flow: site.botFlow))
        }
        return jsonResponse(session.resumed ? .ok : .created, session)
    }

    func send(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let token = try Self.sessionToken(request)
        try limits.messagesPerIP.check(context.clientIP(of: request, header: limits.clientIPHeader), what: "client address")
        try limits.messagesPerConversation.check(token, what: "conversation")
        var request = request
        let body = try await request.collectBody(limit: maxBodyBytes)
        let input = try ChatJSON.visitorInput(body, maxCharacters: limits.maxMessageCharacters)
        let result = try await ChatActions.visitorInput(token: token, input: input, origin: request.headers[.origin], postgres: postgres, store: store,
                                                        hub: hub, relay: relay)
        return jsonResponse(result.refused ? .ok : .created, result.update)
    }

    func poll(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let token = try Self.sessionToken(request)
        let after = try ChatJSON.intParameter(request, "after", range: 0...Int(Int32.max), default: 0)
        // A client does not know this deployment's longest wait: a longer one is shortened, not refused.
        let wait = min(longPollSeconds, try ChatJSON.intParameter(request, "wait", range: 0...120, default: longPollSeconds))
        let (store, origin) = (self.store, request.headers[.origin])
        let (conversationID, site): (UUID, ChatSite) = try await postgres.withConnection { conn in
            guard let conversation = try store.conversation(tokenHash: ConversationStore.tokenHash(token), lock: false, in: conn) else {
                throw ChatRefusal(code: .unknownSession)
            }
            guard let site = try store.sites.load(conversation.siteID, in: conn), site.allows(origin: origin) else {
                throw Problem(.forbidden, code: "origin_not_allowed", detail: "this page's origin is not allowed for the site")
            }
            return (conversation.id, site)
        }
        // Subscribe before reading, so nothing written in between is missed.
        let (subscription, stream) = hub.subscribe(conversationID, lastSeq: after)
        defer { hub.unsubscribe(conversationID, id: subscription) }
        var update = try await postgres.withConnection { try store.update(conversationID, site: site, after: after, in: $0) }
        if update?.messages.isEmpty == true && wait > 0 {
            let arrived = await Self.first(of: stream, within: .seconds(wait))
            if arrived { update = try await postgres.withConnection { try store.update(conversationID, site: site, after: after, in: $0) } }
        }
        guard let update else { throw Problem(.unauthorized, code: "invalid_session", detail: "the session token is unknown") }
        return jsonResponse(.ok, update)
    }

    /// True when `stream` yields within `timeout`.
    static func first(of stream: AsyncStream<ConversationUpdate>, within timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                var iterator = stream.makeAsyncIterator()
                return await iterator.next() != nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let result = await group.next() ?? false
            group.cancelAll()
            return result
        }
    }

    static func sessionToken(_ request: Request) throws -> String {
        guard let token = request.bearerToken, !token.isEmpty else {
            throw Problem(.unauthorized, code: "missing_session", detail: "send the session token of POST /v1/chat/sessions as Authorization: Bearer <token>",
                          headers: [.wwwAuthenticate: "Bearer"])
        }
        guard token.count <= 100, !token.contains("\u{0}") else { throw Problem(.unauthorized, code: "invalid_session", detail: "the session token is unknown") }
        return token
    }
}

/// Actions shared by the HTTP and WebSocket transports.
enum ChatActions {
    /// Stores a visitor's input in one transaction, pushes the update to the conversation's subscribers, and wakes
    /// the outbox relay when a lead was emitted.
    static func visitorInput(token: String, input: VisitorInput, origin: String?, postgres: PostgresClient, store: ConversationStore,
                             hub: ConversationHub, relay: OutboxRelay) async throws -> ConversationStore.VisitorResult {
        let result = try await postgres.withTransaction { tx in
            try store.visitorInput(token: token, input: input, origin: origin, in: tx)
        }
        if !result.update.messages.isEmpty { hub.publish(result.update) }
        if result.leadEmitted { relay.signal() }
        return result
    }
}

extension ChatRefusal {
    var problem: Problem {
        switch code {
        case .unknownSession: Problem(.unauthorized, code: code.rawValue, detail: "the session token is unknown; start a session", headers: [.wwwAuthenticate: "Bearer"])
        case .closed: Problem(.conflict, code: code.rawValue, detail: "the conversation is closed; start a new session")
        case .unknownConversation: Problem(.notFound, code: code.rawValue, detail: "no such conversation")
        case .siteDisabled: Problem(.forbidden, code: code.rawValue, detail: "the site's chat is disabled")
        case .originNotAllowed: Problem(.forbidden, code: code.rawValue, detail: "this page's origin is not allowed for the site")
        }
    }
}

/// Turns a ``ChatRefusal`` escaping a route into its problem+json answer.
struct ChatRefusalMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do { return try await next(request, context) } catch let refusal as ChatRefusal { throw refusal.problem }
    }
}
