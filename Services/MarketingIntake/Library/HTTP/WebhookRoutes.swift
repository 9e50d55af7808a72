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
    /// Settings of sources whose deliveries verified before (their row is still checked on every delivery).
    let sources: SourceCache<UUID, WebhookSettings>

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
        let (webhooks, writer, tolerance, sources) = (self.webhooks, self.writer, self.tolerance, self.sources)
        if let cached = sources[id], let (webhookID, leads) = Self.verifiedLeads(body, headers: headers, settings: cached, tolerance: tolerance) {
            // Remembered settings that verify the signature and parse the body: the row's fingerprint and the delivery
            // record travel with the lead's first statements (two round trips, not four).
            let check = SourceCheck([webhooks.fingerprint(of: id)] + webhooks.deliveryStatements(source: id, webhookID: webhookID)) { rows in
                guard try rows[0].first?.decode(String.self, at: 0) == cached.fingerprint else { throw CachedSourceChanged() }
                guard WebhookStore.isFirstDelivery(rows) else { throw Self.replayed }
            }
            do {
                let outcomes = try await postgres.withTransaction(planning: .reused) { tx in
                    try Self.write(leads, settings: cached, check: check, writer: writer, in: tx)
                }
                return try respond(outcomes)
            } catch is CachedSourceChanged {
                // New secrets, mapping or state since: verify against the row, below.
                sources.forget(id)
            }
        }
        let outcomes: [LeadOutcome] = try await postgres.withTransaction(planning: .reused) { tx in
            let settings = try Self.settings(id, webhooks: webhooks, in: tx)
            guard !settings.keys.isEmpty else {
                throw Self.unauthorized("webhook_not_configured", "this source has no webhook secret; an operator sets one with PUT /v1/admin/sources/{id}/webhook")
            }
            sources.remember(settings, for: id)
            let webhookID = headers[HTTPField.Name("webhook-id")!]
            do {
                try Self.verifySignature(body, headers: headers, keys: settings.keys, tolerance: tolerance)
            } catch let error as WebhookSignature.Failure {
                throw Self.unauthorized(error.code, error.description)
            }
            let leads = try Self.leads(body, mapping: settings.mapping)
            guard try webhooks.recordDelivery(source: settings.source.id, webhookID: webhookID!, in: tx) else { throw Self.replayed }
            return try Self.write(leads, settings: settings, check: nil, writer: writer, in: tx)
        }
        return try respond(outcomes)
    }

    /// The delivery's id and leads when `settings` verify its signature and its body parses; nil otherwise (the
    /// request then goes the way that reads the settings first, and answers any failure from them).
    static func verifiedLeads(_ body: [UInt8], headers: HTTPFields, settings: WebhookSettings,
                              tolerance: TimeInterval) -> (String, [Funnel_Marketing_V1_CampaignLead])? {
        guard !settings.keys.isEmpty, let webhookID = headers[HTTPField.Name("webhook-id")!] else { return nil }
        do {
            try verifySignature(body, headers: headers, keys: settings.keys, tolerance: tolerance)
            return (webhookID, try leads(body, mapping: settings.mapping))
        } catch {
            return nil
        }
    }

    /// Checks the delivery's Standard Webhooks headers (id, timestamp, signatures) against `keys`.
    static func verifySignature(_ body: [UInt8], headers: HTTPFields, keys: [[UInt8]], tolerance: TimeInterval) throws {
        try WebhookSignature.verify(id: headers[HTTPField.Name("webhook-id")!], timestamp: headers[HTTPField.Name("webhook-timestamp")!],
                                    signatures: headers[HTTPField.Name("webhook-signature")!], body: body, keys: keys, tolerance: tolerance)
    }

    /// The leads of a body: the platform's JSON through the source's field mapping, or one CampaignLead.
    static func leads(_ body: [UInt8], mapping: FieldMapping?) throws -> [Funnel_Marketing_V1_CampaignLead] {
        do {
            if let mapping { return try mapping.leads(from: body) }
            return [try EventDecoder.decode(Funnel_Marketing_V1_CampaignLead.self, payload: body, contentType: .json)]
        } catch let failure as FieldMapping.Failure {
            throw failure.problem
        } catch let error as EventDecodingError {
            throw Problem(.badRequest, code: "malformed_json", detail: error.detail)
        }
    }

    /// Writes a delivery's leads. A delivery of one invalid lead is refused whole (the sender sees why); of several,
    /// the invalid ones are dead-lettered.
    static func write(_ leads: [Funnel_Marketing_V1_CampaignLead], settings: WebhookSettings, check: SourceCheck?, writer: LeadWriter,
                      in tx: PostgresConnection) throws -> [LeadOutcome] {
        let outcomes = try writer.write(leads, source: settings.source, via: "webhook", deadLetterRejected: leads.count > 1, check: check, in: tx)
        if leads.count == 1, case .rejected(let rejection) = outcomes[0] { throw LeadRoutes.invalid(rejection) }
        return outcomes
    }

    private func respond(_ outcomes: [LeadOutcome]) throws -> Response {
        if outcomes.count == 1 { return try LeadRoutes.response(outcomes[0], relay: relay) }
        relay.signal()
        return jsonResponse(.ok, Results(results: outcomes.map(Self.item)))
    }

    static let replayed = unauthorized("webhook_replayed", "this webhook-id was delivered before; a replay is refused")

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
