import Foundation
import Hummingbird
import Postgres
import ServiceKit

/// `/v1/admin/sources/{id}/webhook` (admin token): a source's webhook settings.
/// `PUT {"secrets": ["whsec_…"], "generate_secret": true, "google_key": "…", "field_mapping": {…}}` replaces them
/// (several secrets verify during a rotation; a generated one is shown once); `GET` shows them without secrets.
struct WebhookAdminRoutes: Sendable {
    let postgres: PostgresClient
    let webhooks: WebhookStore
    let adminToken: String
    let maxBodyBytes: Int

    struct Settings: Decodable {
        var secrets: [String]?
        var generateSecret: Bool?
        var googleKey: String?
        var fieldMapping: FieldMapping?
        enum CodingKeys: String, CodingKey { case secrets, generateSecret = "generate_secret", googleKey = "google_key", fieldMapping = "field_mapping" }
    }

    func add(to router: Router<ClientRequestContext>) {
        router.put("/v1/admin/sources/:id/webhook") { request, context in try await self.put(request, context: context) }
        router.get("/v1/admin/sources/:id/webhook") { request, context in
            try request.requireAdmin(token: adminToken)
            guard let view = try await webhooks.view(id: try AdminRoutes.id(context), postgres: postgres) else { throw AdminRoutes.notFound }
            return jsonResponse(.ok, view)
        }
    }

    func put(_ request: Request, context: ClientRequestContext) async throws -> Response {
        try request.requireAdmin(token: adminToken)
        let id = try AdminRoutes.id(context)
        var request = request
        let body = try await request.collectBody(limit: maxBodyBytes)
        let input: Settings
        do { input = try JSONDecoder().decode(Settings.self, from: Data(buffer: body)) } catch {
            throw Problem(.badRequest, code: "malformed_json",
                          detail: "expected {\"secrets\": [\"whsec_…\"], \"generate_secret\": bool, \"google_key\": \"…\", \"field_mapping\": {\"records\", \"fields\", \"constants\"}}")
        }
        var errors: [Problem.FieldError] = []
        var secrets = input.secrets ?? []
        for (index, secret) in secrets.enumerated() where WebhookSignature.key(fromSecret: secret) == nil {
            errors.append(.init(field: "secrets[\(index)]", code: "invalid_secret", detail: "a secret is whsec_ followed by base64 of 16 to 64 bytes"))
        }
        if secrets.count > 5 { errors.append(.init(field: "secrets", code: "too_many_secrets", detail: "at most 5 secrets (old and new during a rotation)")) }
        if let key = input.googleKey, !(8...256).contains(key.count) {
            errors.append(.init(field: "google_key", code: "invalid_google_key", detail: "8 to 256 characters"))
        }
        for violation in input.fieldMapping?.violations() ?? [] {
            errors.append(.init(field: "field_mapping.\(violation.field)", code: "invalid_field_mapping", detail: violation.detail))
        }
        guard errors.isEmpty else { throw Problem(.unprocessableContent, code: errors[0].code, title: "Invalid webhook settings", detail: "see errors", errors: errors) }
        var generated: String?
        if input.generateSecret == true {
            generated = WebhookSignature.newSecret()
            secrets.insert(generated!, at: 0)
        }
        guard var view = try await webhooks.configure(id: id, secrets: secrets, googleKey: input.googleKey, mapping: input.fieldMapping, postgres: postgres) else {
            throw AdminRoutes.notFound
        }
        view.newSecret = generated
        return jsonResponse(.ok, view)
    }
}
