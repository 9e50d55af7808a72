import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import ServiceKit

/// `POST /v1/leads`: one lead as JSON (CampaignLead's JSON mapping, snake_case or camelCase), authenticated by
/// the lead source's API key (`Authorization: Bearer fnl_…` or `X-Api-Key`).
struct LeadRoutes: Sendable {
    let postgres: PostgresClient
    let validator: LeadValidator
    let store: LeadStore
    let schema: String
    let maxBodyBytes: Int
    let relay: OutboxRelay

    struct Accepted: Encodable {
        let leadID: String
        let status: String
        enum CodingKeys: String, CodingKey { case leadID = "lead_id", status }
    }

    func add(to router: Router<BasicRequestContext>) {
        router.post("/v1/leads") { request, context in try await self.post(request, context: context) }
    }

    func post(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let key = request.bearerToken ?? request.headers[HTTPField.Name("X-Api-Key")!]
        guard let key, !key.isEmpty else {
            throw Problem(.unauthorized, code: "missing_api_key", detail: "send the lead source's key as Authorization: Bearer <key> or X-Api-Key",
                          headers: [.wwwAuthenticate: "Bearer"])
        }
        // Landing pages often post JSON as text/plain to avoid a CORS preflight; accept that too.
        if let type = request.headers[.contentType], ContentType(header: type) != .json,
           !type.lowercased().hasPrefix("text/plain") {
            throw Problem(.unsupportedMediaType, code: "unsupported_media_type", detail: "send the lead as JSON (Content-Type: application/json)")
        }
        let body = try await request.collectBody(limit: maxBodyBytes)
        let lead: Funnel_Marketing_V1_CampaignLead
        do {
            lead = try EventDecoder.decode(Funnel_Marketing_V1_CampaignLead.self, payload: Array(buffer: body), contentType: .json)
        } catch let error as EventDecodingError {
            throw Problem(.badRequest, code: "malformed_json", detail: error.detail)
        }
        let (schema, validator, store) = (self.schema, self.validator, self.store)
        let outcome: Result<(UUID, Bool), LeadRejection>? = try await postgres.withTransaction { tx in
            guard let source = try SourceStore.authenticate(key: key, schema: schema, in: tx) else { return nil }
            switch validator.validate(lead, source: source, receivedVia: "http") {
            case .failure(let rejection): return .failure(rejection)
            case .success(let valid): return .success(try LeadStore.decodeResult(tx.query(store.insert(valid))))
            }
        }
        switch outcome {
        case nil:
            throw Problem(.unauthorized, code: "invalid_api_key", detail: "the API key is unknown, revoked or its source is disabled",
                          headers: [.wwwAuthenticate: "Bearer"])
        case .failure(let rejection):
            throw Problem(.unprocessableContent, code: rejection.code, title: "Invalid lead", detail: rejection.reason,
                          errors: rejection.violations.map { Problem.FieldError(field: $0.field, code: $0.code, detail: $0.detail) })
        case .success(let (leadID, inserted)):
            if inserted { relay.signal() }
            return jsonResponse(inserted ? .accepted : .ok, Accepted(leadID: leadID.lowercasedText, status: inserted ? "accepted" : "duplicate"))
        }
    }
}
