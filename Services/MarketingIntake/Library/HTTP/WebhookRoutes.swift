import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import ServiceKit

/// Ad platforms pushing leads:
/// - `POST /v1/webhooks/{source_id}`: Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`),
///   the body a CampaignLead's JSON or, with the source's field mapping, the platform's own JSON (one lead or many);
/// - `POST /v1/webhooks/google-ads/{source_id}`: Google Ads lead forms, verified by their `google_key`.
/// A wrong key or signature, a stale timestamp or a replayed id is a 401 and nothing is emitted.
struct WebhookRoutes: Sendable {
    let postgres: PostgresClient
    let writer: LeadWriter
    let webhooks: WebhookStore
    let maxBodyBytes: Int
    let relay: OutboxRelay
    let limits: IntakeLimits
    let tolerance: TimeInterval

    struct Results: Encodable {
        struct Item: Encodable {
            let leadID: String?
            let status: String
            let code: String?
            let detail: String?
            enum CodingKeys: String, CodingKey { case leadID = "lead_id", status, code, detail }
        }
        let results: [Item]
    }

    func add(to router: Router<ClientRequestContext>) {
        router.post("/v1/webhooks/google-ads/:source") { request, context in try await self.googleAds(request, context: context) }
        router.post("/v1/webhooks/:source") { request, context in try await self.standard(request, context: context) }
    }

    func standard(_ request: Request, context: ClientRequestContext) async throws -> Response {
        let (id, body) = try await prepare(request, context: context)
        let headers = request.headers
        let (webhooks, writer, tolerance) = (self.webhooks, self.writer, self.tolerance)
        let outcomes: [LeadOutcome] = try await postgres.withTransaction(planning: .reused) { tx in
            let settings = try Self.settings(id, webhooks: webhooks, in: tx)
            guard !settings.keys.isEmpty else {
                throw Self.unauthorized("webhook_not_configured", "this source has no webhook secret; an operator sets one with PUT /v1/admin/sources/{id}/webhook")
            }
            let webhookID = headers[HTTPField.Name("webhook-id")!]
            do {
                try WebhookSignature.verify(id: webhookID, timestamp: headers[HTTPField.Name("webhook-timestamp")!],
                                            signatures: headers[HTTPField.Name("webhook-signature")!], body: body, keys: settings.keys, tolerance: tolerance)
            } catch let error as WebhookSignature.Failure {
                throw Self.unauthorized(error.code, error.description)
            }
            let leads: [Funnel_Marketing_V1_CampaignLead]
            do {
                if let mapping = settings.mapping {
                    leads = try mapping.leads(from: body)
                } else {
                    leads = [try EventDecoder.decode(Funnel_Marketing_V1_CampaignLead.self, payload: body, contentType: .json)]
                }
            } catch let failure as FieldMapping.Failure {
                throw failure.problem
            } catch let error as EventDecodingError {
                throw Problem(.badRequest, code: "malformed_json", detail: error.detail)
            }
            guard try webhooks.recordDelivery(source: settings.source.id, webhookID: webhookID!, in: tx) else {
                throw Self.unauthorized("webhook_replayed", "this webhook-id was delivered before; a replay is refused")
            }
            let outcomes = try writer.write(leads, source: settings.source, via: "webhook", deadLetterRejected: leads.count > 1, in: tx)
            // A delivery of one invalid lead is refused whole (the sender sees why); of several, the invalid ones are dead-lettered.
            if leads.count == 1, case .rejected(let rejection) = outcomes[0] { throw LeadRoutes.invalid(rejection) }
            return outcomes
        }
        if outcomes.count == 1 { return try LeadRoutes.response(outcomes[0], relay: relay) }
        relay.signal()
        return jsonResponse(.ok, Results(results: outcomes.map(Self.item)))
    }

    func googleAds(_ request: Request, context: ClientRequestContext) async throws -> Response {
        let (id, body) = try await prepare(request, context: context)
        let (webhooks, writer) = (self.webhooks, self.writer)
        let outcome: LeadOutcome = try await postgres.withTransaction(planning: .reused) { tx in
            let settings = try Self.settings(id, webhooks: webhooks, in: tx)
            let lead: GoogleAdsLead
            do { lead = try GoogleAdsLead.parse(body) } catch let error as FieldMapping.Failure {
                throw error.problem
            }
            guard let stored = settings.googleKeyHash else {
                throw Self.unauthorized("webhook_not_configured", "this source has no Google Ads key; an operator sets one with PUT /v1/admin/sources/{id}/webhook")
            }
            guard !lead.googleKey.isEmpty, HMACSHA256.equal(stored, SHA256Digest.hash(Array(lead.googleKey.utf8))) else {
                throw Self.unauthorized("invalid_google_key", "google_key does not match the key configured for this source")
            }
            let outcome = try writer.write([lead.campaignLead(mapping: settings.mapping)], source: settings.source, via: "webhook", deadLetterRejected: false, in: tx)[0]
            if case .rejected(let rejection) = outcome { throw LeadRoutes.invalid(rejection) }
            return outcome
        }
        return try LeadRoutes.response(outcome, relay: relay)
    }

    /// The source id of the path (checked against its rate) and the body.
    private func prepare(_ request: Request, context: ClientRequestContext) async throws -> (UUID, [UInt8]) {
        guard let text = context.parameters.get("source"), let id = UUID(uuidString: text) else {
            throw Problem(.badRequest, code: "invalid_id", detail: "the path names a lead source by its UUID")
        }
        try limits.perSource.check(id.lowercasedText, what: "lead source")
        try LeadRoutes.requireJSON(request)
        var request = request
        return (id, Array(buffer: try await request.collectBody(limit: maxBodyBytes)))
    }

    static func settings(_ id: UUID, webhooks: WebhookStore, in tx: PostgresConnection) throws -> WebhookSettings {
        guard let settings = try webhooks.settings(of: id, in: tx) else {
            throw unauthorized("invalid_source", "no enabled lead source has this id")
        }
        return settings
    }

    static func unauthorized(_ code: String, _ detail: String) -> Problem {
        Problem(.unauthorized, code: code, detail: detail)
    }

    static func item(_ outcome: LeadOutcome) -> Results.Item {
        switch outcome {
        case .accepted(let id): return .init(leadID: id.lowercasedText, status: "accepted", code: nil, detail: nil)
        case .duplicate(let id): return .init(leadID: id.lowercasedText, status: "duplicate", code: nil, detail: nil)
        case .rejected(let r): return .init(leadID: nil, status: "rejected", code: r.code, detail: r.reason)
        }
    }
}
