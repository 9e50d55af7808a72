import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import ServiceKit

/// `POST /v1/leads`: one lead as JSON (CampaignLead's JSON mapping, snake_case or camelCase), authenticated by
/// the lead source's API key (`Authorization: Bearer fnl_…` or `X-Api-Key`). Limited per client IP (before
/// anything else) and per source.
struct LeadRoutes: Sendable {
    let postgres: PostgresClient
    let writer: LeadWriter
    let schema: String
    let maxBodyBytes: Int
    let relay: OutboxRelay
    let limits: IntakeLimits
    /// Sources authenticated before: their check rides with the lead's first statements (two round trips, not three).
    let sources: SourceCache<[UInt8], LeadSource>

    struct Accepted: Encodable {
        let leadID: String
        let status: String
        enum CodingKeys: String, CodingKey { case leadID = "lead_id", status }
    }

    func add(to router: Router<ClientRequestContext>) {
        router.post("/v1/leads") { request, context in try await self.post(request, context: context) }
    }

    func post(_ request: Request, context: ClientRequestContext) async throws -> Response {
        try limits.perIP.check(context.clientIP(of: request, header: limits.clientIPHeader), what: "client address")
        var request = request
        let key = request.bearerToken ?? request.headers[HTTPField.Name("X-Api-Key")!]
        guard let key, !key.isEmpty else {
            throw Problem(.unauthorized, code: "missing_api_key", detail: "send the lead source's key as Authorization: Bearer <key> or X-Api-Key",
                          headers: [.wwwAuthenticate: "Bearer"])
        }
        try Self.requireJSON(request)
        let body = try await request.collectBody(limit: maxBodyBytes)
        let lead: Funnel_Marketing_V1_CampaignLead
        do {
            lead = try EventDecoder.decode(Funnel_Marketing_V1_CampaignLead.self, payload: Array(buffer: body), contentType: .json)
        } catch let error as EventDecodingError {
            throw Problem(.badRequest, code: "malformed_json", detail: error.detail)
        }
        let (schema, writer, limits, sources) = (self.schema, self.writer, self.limits, self.sources)
        let keyHash = SHA256Digest.hash(Array(key.utf8))
        if let cached = sources[keyHash], let check = Self.check(cached, key: key, keyHash: keyHash, schema: schema, limits: limits) {
            do {
                let outcome = try await postgres.withTransaction(planning: .reused) { tx in
                    try writer.write([lead], source: cached, via: "http", deadLetterRejected: false, check: check, in: tx)[0]
                }
                return try Self.response(outcome, relay: relay)
            } catch is CachedSourceChanged {
                // Rotated, disabled or edited since: authenticate from the row, below.
                sources.forget(keyHash)
            }
        }
        // One lead's statements are planned once per connection (``StatementPlanning/reused``): planning cost more than running them.
        let outcome: LeadOutcome? = try await postgres.withTransaction(planning: .reused) { tx in
            guard let source = try SourceStore.authenticate(key: key, keyHash: keyHash, schema: schema, in: tx) else { return nil }
            sources.remember(source, for: keyHash)
            try limits.perSource.check(source.id.lowercasedText, what: "lead source")
            return try writer.write([lead], source: source, via: "http", deadLetterRejected: false, in: tx)[0]
        }
        guard let outcome else {
            throw Problem(.unauthorized, code: "invalid_api_key", detail: "the API key is unknown, revoked or its source is disabled",
                          headers: [.wwwAuthenticate: "Bearer"])
        }
        return try Self.response(outcome, relay: relay)
    }

    /// The check that `key` still authenticates `cached` (then the source's rate limit, as after authenticating).
    static func check(_ cached: LeadSource, key: String, keyHash: [UInt8], schema: String, limits: IntakeLimits) -> SourceCheck? {
        guard let query = SourceStore.keyLookup(key: key, schema: schema) else { return nil }
        return SourceCheck([query]) { rows in
            guard try SourceStore.authenticated(keyHash: keyHash, by: rows[0]) == cached else { throw CachedSourceChanged() }
            try limits.perSource.check(cached.id.lowercasedText, what: "lead source")
        }
    }

    /// A JSON body, or 415. Landing pages often post JSON as text/plain to avoid a CORS preflight; that is accepted too.
    static func requireJSON(_ request: Request) throws {
        if let type = request.headers[.contentType], ContentType(header: type) != .json, !type.lowercased().hasPrefix("text/plain") {
            throw Problem(.unsupportedMediaType, code: "unsupported_media_type", detail: "send JSON (Content-Type: application/json)")
        }
    }

    /// The response to one lead: 202 accepted, 200 duplicate, or a 422 problem naming every invalid field.
    static func response(_ outcome: LeadOutcome, relay: OutboxRelay) throws -> Response {
        switch outcome {
        case .rejected(let rejection): throw invalid(rejection)
        case .accepted(let id):
            relay.signal()
            return jsonResponse(.accepted, Accepted(leadID: id.lowercasedText, status: "accepted"))
        case .duplicate(let id):
            return jsonResponse(.ok, Accepted(leadID: id.lowercasedText, status: "duplicate"))
        }
    }

    static func invalid(_ rejection: LeadRejection) -> Problem {
        Problem(.unprocessableContent, code: rejection.code, title: "Invalid lead", detail: rejection.reason,
                errors: rejection.violations.map { Problem.FieldError(field: $0.field, code: $0.code, detail: $0.detail) })
    }
}

/// The rate limits of the lead routes.
struct IntakeLimits: Sendable {
    let perIP: RateLimiter
    let perSource: RateLimiter
    let clientIPHeader: HTTPField.Name?

    init(_ configuration: IntakeConfiguration) {
        perIP = RateLimiter(rate: configuration.ipRate, burst: max(1, configuration.ipRate * 3))
        perSource = RateLimiter(rate: configuration.sourceRate, burst: max(1, configuration.sourceRate * 2))
        clientIPHeader = configuration.clientIPHeader
    }
}
