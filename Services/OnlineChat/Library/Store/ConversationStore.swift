import Contracts
import Foundation
import Postgres
import ServiceKit

/// A conversation as stored (names and phones in `answers` only sealed).
struct StoredConversation: Sendable {
    var id: UUID
    var siteID: String
    var visitorID: String
    var state: ConversationState
    var locale: ChatLocale
    var visit: Visit
    var operatorID: String?
    var leadID: UUID?
    var lastSeq: Int
    var visitorMessages: Int
    var createdAt: Date
    var updatedAt: Date
}

/// Why a visitor or operator action was refused.
struct ChatRefusal: Error, Sendable {
    enum Code: String {
        case unknownSession = "invalid_session", closed = "conversation_closed", unknownConversation = "not_found", siteDisabled = "site_disabled"
        case originNotAllowed = "origin_not_allowed"
    }
    let code: Code
}

/// Conversations, their messages and the leads they yield. Every write runs in the caller's transaction with the
/// conversation row locked, so two requests of one conversation (two tabs, two replicas) take turns and
/// sequence numbers never collide; each write also notifies the other replicas (``notifyChannel``).
struct ConversationStore: Sendable {
    let schema: String
    let sites: SiteStore
    let leads: ChatLeadBuilder
    let defaultRegion: String
    /// The `pg_notify` channel of this schema; the payload is `<conversation id> <writer instance>`.
    let notifyChannel: String
    let instanceID: String

    static let conversationColumns: StaticString = """
        id, site_id, visitor_id, status, step, attempts, answers::text, locale, page_url, referrer_url, utm::text, operator_id,
        lead_id, last_seq, visitor_messages, created_at, updated_at
        """

    // MARK: sessions

    /// A new session token: shown to the widget once, stored only as its SHA-256.
    static func newToken() -> String {
        "cs_" + Data(SecureRandom.bytes(24)).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    static func tokenHash(_ token: String) -> [UInt8] { SHA256Digest.hash(Array(token.utf8)) }

    /// Resumes the open conversation of `token` on `site`, or starts a new one (keeping the visitor id of a closed
    /// conversation of the same token). Returns the token to keep (a new one for a new conversation).
    func startOrResume(site: ChatSite, token: String?, visit: Visit, locale: ChatLocale, clientIP: String,
                       in tx: PostgresConnection) throws -> (token: String, conversation: StoredConversation, resumed: Bool) {
        var visitorID: String?
        if let token {
            if let existing = try conversation(tokenHash: Self.tokenHash(token), lock: false, in: tx), existing.siteID == site.id {
                if existing.state.status != .closed { return (token, existing, true) }
                visitorID = existing.visitorID
            }
        }
        let now = Date()
        let id = UUIDv7.generate(at: now)
        let newToken = Self.newToken()
        let engine = BotEngine(flow: site.botFlow, locale: locale, defaultRegion: defaultRegion)
        let (state, greeting) = engine.start()
        let utm = String(decoding: try JSONEncoder().encode(visit.utm), as: UTF8.self)
        let visitor = visitorID ?? "v_" + UUIDv7.generate(at: now).lowercasedText
        _ = try tx.pipeline([
            """
            INSERT INTO \(identifier: schema).conversations (id, site_id, token_hash, visitor_id, status, step, attempts, flow_version, locale,
                page_url, referrer_url, utm, client_ip, last_seq)
            VALUES (\(id), \(site.id), \(Self.tokenHash(newToken)), \(visitor), \(state.status.rawValue), \(state.step), 0, \(site.flowVersion),
                \(locale.rawValue), \(visit.pageURL), \(visit.referrerURL), \(utm)::jsonb, \(clientIP), \(greeting.count))
            """,
            insertMessages(id, first: 1, greeting.map { ("bot", nil, $0) }, at: now),
        ])
        let stored = StoredConversation(id: id, siteID: site.id, visitorID: visitor, state: state, locale: locale, visit: visit, operatorID: nil,
                                        leadID: nil, lastSeq: greeting.count, visitorMessages: 0, createdAt: now, updatedAt: now)
        return (newToken, stored, false)
    }

    func conversation(tokenHash: [UInt8], lock: Bool, in conn: PostgresConnection) throws -> StoredConversation? {
        let suffix: StaticString = lock ? "FOR UPDATE" : ""
        return try conn.query("SELECT \(sql: Self.conversationColumns) FROM \(identifier: schema).conversations WHERE token_hash = \(tokenHash) \(sql: suffix)")
            .first.map(Self.decode)
    }

    func conversation(id: UUID, lock: Bool, in conn: PostgresConnection) throws -> StoredConversation? {
        let suffix: StaticString = lock ? "FOR UPDATE" : ""
        return try conn.query("SELECT \(sql: Self.conversationColumns) FROM \(identifier: schema).conversations WHERE id = \(id) \(sql: suffix)")
            .first.map(Self.decode)
    }

    // MARK: visitor

    /// The outcome of a visitor's input.
    struct VisitorResult: Sendable {
        var update: ConversationUpdate
        var leadEmitted: Bool
        var refused: Bool
    }

    /// Handles a visitor's message or skip on the conversation of `token`: stores it, runs the bot, and emits the
    /// lead of a new phone once per conversation and phone (the conversation's lead id is reused for later phones).
    func visitorInput(token: String, input: VisitorInput, origin: String?, in tx: PostgresConnection) throws -> VisitorResult {
        guard var conversation = try conversation(tokenHash: Self.tokenHash(token), lock: true, in: tx) else { throw ChatRefusal(code: .unknownSession) }
        guard conversation.state.status != .closed else { throw ChatRefusal(code: .closed) }
        guard let site = try sites.load(conversation.siteID, in: tx) else { throw ChatRefusal(code: .unknownSession) }
        guard !site.disabled else { throw ChatRefusal(code: .siteDisabled) }
        guard site.allows(origin: origin) else { throw ChatRefusal(code: .originNotAllowed) }
        let engine = BotEngine(flow: site.botFlow, locale: conversation.locale, defaultRegion: defaultRegion)
        var state = conversation.state
        state.step = min(state.step, site.botFlow.questions.count) // the flow may have been shortened since
        let turn = engine.handle(input, state: state)
        let now = Date()
        var authored: [(String, String?, String)] = []
        if let text = turn.storedVisitorText { authored.append(("visitor", nil, text)) }
        authored += turn.replies.map { ("bot", nil, $0) }
        let first = conversation.lastSeq + 1
        conversation.lastSeq += authored.count
        if turn.storedVisitorText != nil { conversation.visitorMessages += 1 }
        conversation.state = turn.state
        conversation.state.answers = try leads.sealed(turn.state.answers, questions: site.botFlow.questions)

        var statements: [PostgresQuery] = []
        if !authored.isEmpty { statements.append(insertMessages(conversation.id, first: first, authored, at: now)) }
        var leadStatement: Int?
        if let phone = turn.contact {
            let leadID = conversation.leadID ?? UUIDv7.generate(at: now)
            conversation.leadID = leadID
            let (record, phoneKey) = try leads.record(leadID: leadID, conversationID: conversation.id, site: site, visitorID: conversation.visitorID,
                                                      visit: conversation.visit, answers: conversation.state.answers, phone: phone,
                                                      visitorMessages: conversation.visitorMessages, now: now)
            leadStatement = statements.count
            statements.append("""
                WITH contact AS (
                    INSERT INTO \(identifier: schema).conversation_contacts (conversation_id, phone_key, lead_id)
                    VALUES (\(conversation.id), \(phoneKey), \(leadID)) ON CONFLICT DO NOTHING RETURNING 1
                ), queued AS (
                    INSERT INTO \(identifier: schema).outbox (topic, key, headers, payload)
                    SELECT \(record.topic), \(record.key), \(HeaderCodec.encode(record.headers)), \(record.payload) FROM contact
                )
                SELECT count(*) FROM contact
                """)
        }
        statements.append(saveState(conversation, at: now))
        if !authored.isEmpty { statements.append(notify(conversation.id)) }
        let results = try tx.pipeline(statements)
        let emitted = try leadStatement.map { try results[$0].first!.decode(Int.self, at: 0) > 0 } ?? false
        let messages = authored.enumerated().map { i, m in ChatMessage(seq: first + i, author: m.0, authorID: m.1, body: m.2, at: now) }
        return VisitorResult(update: ConversationUpdate(conversationID: conversation.id, messages: messages, state: view(conversation.state, flow: site.botFlow)),
                             leadEmitted: emitted, refused: turn.refused)
    }

    // MARK: operators

    /// An operator's reply: the operator takes the conversation over (the bot stops asking).
    func operatorReply(conversationID: UUID, operatorID: String, text: String, in tx: PostgresConnection) throws -> ConversationUpdate {
        guard var conversation = try conversation(id: conversationID, lock: true, in: tx) else { throw ChatRefusal(code: .unknownConversation) }
        guard conversation.state.status != .closed else { throw ChatRefusal(code: .closed) }
        let now = Date()
        let seq = conversation.lastSeq + 1
        conversation.lastSeq = seq
        conversation.state.status = .`operator`
        conversation.operatorID = operatorID
        _ = try tx.pipeline([insertMessages(conversationID, first: seq, [("operator", operatorID, text)], at: now), saveState(conversation, at: now),
                             notify(conversationID)])
        return ConversationUpdate(conversationID: conversationID, messages: [ChatMessage(seq: seq, author: "operator", authorID: operatorID, body: text, at: now)],
                                  state: ConversationView(status: .`operator`, question: nil))
    }

    /// Closes a conversation; the visitor's next message starts a new one.
    func close(conversationID: UUID, by operatorID: String, in tx: PostgresConnection) throws -> ConversationUpdate {
        guard var conversation = try conversation(id: conversationID, lock: true, in: tx) else { throw ChatRefusal(code: .unknownConversation) }
        guard conversation.state.status != .closed else { throw ChatRefusal(code: .closed) }
        let now = Date()
        let seq = conversation.lastSeq + 1
        conversation.lastSeq = seq
        conversation.state.status = .closed
        let body = conversation.locale == .zh ? "对话已结束。" : "The conversation has ended."
        _ = try tx.pipeline([insertMessages(conversationID, first: seq, [("system", operatorID, body)], at: now), saveState(conversation, at: now),
                             "UPDATE \(identifier: schema).conversations SET closed_at = \(now) WHERE id = \(conversationID)", notify(conversationID)])
        return ConversationUpdate(conversationID: conversationID, messages: [ChatMessage(seq: seq, author: "system", authorID: operatorID, body: body, at: now)],
                                  state: ConversationView(status: .closed, question: nil))
    }

    /// Conversations for the operator list, newest activity first.
    func list(status: ConversationStatus?, openOnly: Bool, siteID: String?, limit: Int, in conn: PostgresConnection) throws -> [StoredConversation] {
        try conn.query("""
            SELECT \(sql: Self.conversationColumns) FROM \(identifier: schema).conversations
            WHERE (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue)::text)
              AND (NOT \(openOnly) OR status <> 'closed')
              AND (\(siteID)::text IS NULL OR site_id = \(siteID)::text)
            ORDER BY updated_at DESC, id LIMIT \(limit)
            """).map(Self.decode)
    }

    // MARK: reading

    /// Messages after `after` (at most `limit`, oldest first).
    func messages(_ conversationID: UUID, after: Int, limit: Int = 500, in conn: PostgresConnection) throws -> [ChatMessage] {
        try conn.query("""
            SELECT seq, author, author_id, body, created_at FROM \(identifier: schema).messages
            WHERE conversation_id = \(conversationID) AND seq > \(after) ORDER BY seq LIMIT \(limit)
            """).map { row in
            let (seq, author, authorID, body, at) = try row.decode(Int.self, String.self, String?.self, String.self, Date.self)
            return ChatMessage(seq: seq, author: author, authorID: authorID, body: body, at: at)
        }
    }

    /// A conversation's messages after `after` and its current state (for pushes and long polls). Pass the
    /// conversation's `site` when the caller has it already, to spare reading it again.
    func update(_ conversationID: UUID, site known: ChatSite? = nil, after: Int, in conn: PostgresConnection) throws -> ConversationUpdate? {
        guard let conversation = try conversation(id: conversationID, lock: false, in: conn),
              let site = try known ?? sites.load(conversation.siteID, in: conn) else { return nil }
        return ConversationUpdate(conversationID: conversationID, messages: try messages(conversationID, after: after, in: conn),
                                  state: view(conversation.state, flow: site.botFlow))
    }

    func view(_ state: ConversationState, flow: BotFlow) -> ConversationView {
        guard state.status == .bot, flow.questions.indices.contains(state.step) else { return ConversationView(status: state.status, question: nil) }
        let q = flow.questions[state.step]
        return ConversationView(status: .bot, question: .init(id: q.id, kind: q.kind, required: q.required, options: q.options ?? []))
    }

    // MARK: statements

    private func insertMessages(_ conversationID: UUID, first: Int, _ messages: [(author: String, authorID: String?, body: String)], at: Date) -> PostgresQuery {
        """
        INSERT INTO \(identifier: schema).messages (conversation_id, seq, author, author_id, body, created_at)
        SELECT \(conversationID), \(first) + n - 1, a, i, b, \(at)
        FROM unnest(\(PostgresArray(messages.map { Optional($0.author) }))::text[], \(PostgresArray(messages.map(\.authorID)))::text[],
                    \(PostgresArray(messages.map { Optional($0.body) }))::text[]) WITH ORDINALITY AS m(a, i, b, n)
        """
    }

    private func saveState(_ c: StoredConversation, at: Date) -> PostgresQuery {
        let answers = String(decoding: (try? JSONEncoder().encode(c.state.answers)) ?? Data("{}".utf8), as: UTF8.self)
        return """
            UPDATE \(identifier: schema).conversations SET status = \(c.state.status.rawValue), step = \(c.state.step), attempts = \(c.state.attempts),
                answers = \(answers)::jsonb, operator_id = \(c.operatorID), lead_id = \(c.leadID), last_seq = \(c.lastSeq),
                visitor_messages = \(c.visitorMessages), updated_at = \(at)
            WHERE id = \(c.id)
            """
    }

    private func notify(_ conversationID: UUID) -> PostgresQuery {
        "SELECT pg_notify(\(notifyChannel), \(conversationID.lowercasedText + " " + instanceID))"
    }

    static func decode(_ row: PostgresRow) throws -> StoredConversation {
        let (id, site, visitor, status, step, attempts, answers, locale, page, referrer, utm, op, lead, lastSeq, visitorMessages, created, updated) =
            try row.decode(UUID.self, String.self, String.self, String.self, Int.self, Int.self, String.self, String.self, String?.self, String?.self,
                           String.self, String?.self, UUID?.self, Int.self, Int.self, Date.self, Date.self)
        let decoder = JSONDecoder()
        return StoredConversation(
            id: id, siteID: site, visitorID: visitor,
            state: ConversationState(status: ConversationStatus(rawValue: status) ?? .waiting, step: step, attempts: attempts,
                                     answers: (try? decoder.decode([String: Answer].self, from: Data(answers.utf8))) ?? [:]),
            locale: ChatLocale(rawValue: locale) ?? .zh,
            visit: Visit(pageURL: page, referrerURL: referrer, utm: (try? decoder.decode([String: String].self, from: Data(utm.utf8))) ?? [:]),
            operatorID: op, leadID: lead, lastSeq: lastSeq, visitorMessages: visitorMessages, createdAt: created, updatedAt: updated)
    }
}
