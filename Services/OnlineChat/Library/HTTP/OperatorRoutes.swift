import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import ServiceKit

/// Who may act as an operator (pre-sales reception): the admin token, or an employee's bearer JWT (any role) of
/// someone HR has not marked as left.
struct OperatorAuth: Sendable {
    let adminToken: String
    let verifier: EmployeeTokenVerifier
    let postgres: PostgresClient
    let schema: String

    /// The acting operator's id (`admin` for the admin token, else the employee id).
    func operatorID(of request: Request) async throws -> String {
        guard let token = request.bearerToken, !token.isEmpty else {
            throw Problem(.unauthorized, code: "missing_credentials", detail: "send Authorization: Bearer <employee JWT or admin token>",
                          headers: [.wwwAuthenticate: "Bearer"])
        }
        if Request.tokensMatch(token, adminToken) { return "admin" }
        let employee = try await verifier.principal(token: token).employeeID
        let schema = self.schema
        let left = try await postgres.withConnection { conn in
            try conn.query("SELECT EXISTS (SELECT 1 FROM \(identifier: schema).employees_left WHERE employee_id = \(employee))").first!.decode(Bool.self, at: 0)
        }
        guard !left else {
            throw Problem(.unauthorized, code: "employee_left", detail: "HR has marked this employee as left", headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
        }
        return employee
    }
}

/// The operator API: list open conversations, read one, reply (taking it over from the bot), close.
struct OperatorRoutes: Sendable {
    let postgres: PostgresClient
    let store: ConversationStore
    let hub: ConversationHub
    let auth: OperatorAuth
    let maxBodyBytes: Int
    let maxMessageCharacters: Int

    struct Summary: Encodable {
        let id: String
        let siteID: String
        let visitorID: String
        let status: ConversationStatus
        let operatorID: String?
        let leadID: String?
        let pageURL: String?
        let utm: [String: String]
        let answers: [String: String]
        let messageCount: Int
        let createdAt: Date
        let updatedAt: Date
        enum CodingKeys: String, CodingKey {
            case id, siteID = "site_id", visitorID = "visitor_id", status, operatorID = "operator_id", leadID = "lead_id", pageURL = "page_url", utm
            case answers, messageCount = "message_count", createdAt = "created_at", updatedAt = "updated_at"
        }

        /// Answers as operators see them: plain for courses and free text, masked for names and phones.
        init(_ c: StoredConversation) {
            id = c.id.lowercasedText; siteID = c.siteID; visitorID = c.visitorID; status = c.state.status; operatorID = c.operatorID; leadID = c.leadID?.lowercasedText
            pageURL = c.visit.pageURL; utm = c.visit.utm; messageCount = c.lastSeq; createdAt = c.createdAt; updatedAt = c.updatedAt
            answers = c.state.answers.compactMapValues { $0.value ?? $0.masked }
        }
    }

    struct Listing: Encodable {
        let conversations: [Summary]
    }

    struct Detail: Encodable {
        let conversation: Summary
        let messages: [ChatMessage]
    }

    struct Reply: Decodable {
        var text: String?
    }

    func add(to router: Router<ChatRequestContext>) {
        router.get("/v1/operator/conversations") { request, _ in try await self.list(request) }
        router.get("/v1/operator/conversations/:id") { request, context in try await self.show(request, id: try Self.id(context)) }
        router.post("/v1/operator/conversations/:id/messages") { request, context in try await self.reply(request, id: try Self.id(context)) }
        router.post("/v1/operator/conversations/:id/close") { request, context in try await self.close(request, id: try Self.id(context)) }
    }

    static func id(_ context: ChatRequestContext) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw Problem(.notFound, code: "not_found", detail: "no such conversation (ids are UUIDs)")
        }
        return id
    }

    func list(_ request: Request) async throws -> Response {
        _ = try await auth.operatorID(of: request)
        let statusText = request.uri.queryParameters.get("status") ?? "open"
        let status: ConversationStatus?
        let openOnly: Bool
        switch statusText {
        case "open": (status, openOnly) = (nil, true)
        case "all": (status, openOnly) = (nil, false)
        default:
            guard let s = ConversationStatus(rawValue: statusText) else {
                throw Problem(.unprocessableContent, code: "invalid_parameter", detail: "status is open, all, bot, waiting, operator or closed")
            }
            (status, openOnly) = (s, false)
        }
        let site = request.uri.queryParameters.get("site").map { String($0) }
        if let site, !ChatSite.isValidID(site) { throw Problem(.unprocessableContent, code: "invalid_parameter", detail: "site is a site id") }
        let limit = try ChatJSON.intParameter(request, "limit", range: 1...500, default: 100)
        let store = self.store
        let found = try await postgres.withConnection { try store.list(status: status, openOnly: openOnly, siteID: site, limit: limit, in: $0) }
        return jsonResponse(.ok, Listing(conversations: found.map(Summary.init)))
    }

    func show(_ request: Request, id: UUID) async throws -> Response {
        _ = try await auth.operatorID(of: request)
        let store = self.store
        let detail: Detail? = try await postgres.withConnection { conn in
            guard let c = try store.conversation(id: id, lock: false, in: conn) else { return nil }
            return Detail(conversation: Summary(c), messages: try store.messages(id, after: 0, limit: 5_000, in: conn))
        }
        guard let detail else { throw ChatRefusal(code: .unknownConversation) }
        return jsonResponse(.ok, detail)
    }

    func reply(_ request: Request, id: UUID) async throws -> Response {
        let operatorID = try await auth.operatorID(of: request)
        var request = request
        let body = try await request.collectBody(limit: maxBodyBytes)
        let text = try ChatJSON.messageText(ChatJSON.decode(Reply.self, from: body).text, maxCharacters: maxMessageCharacters)
        let store = self.store
        let update = try await postgres.withTransaction { try store.operatorReply(conversationID: id, operatorID: operatorID, text: text, in: $0) }
        hub.publish(update)
        return jsonResponse(.created, update)
    }

    func close(_ request: Request, id: UUID) async throws -> Response {
        let operatorID = try await auth.operatorID(of: request)
        let store = self.store
        let update = try await postgres.withTransaction { try store.close(conversationID: id, by: operatorID, in: $0) }
        hub.publish(update)
        return jsonResponse(.ok, update)
    }
}
