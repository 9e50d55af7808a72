import Foundation
import Hummingbird
import Postgres
import ServiceKit

/// `GET /v1/identity-rules[?version=N]` shows the rules in force (or an older version);
/// `PUT /v1/identity-rules` validates and publishes a new version.
struct RulesRoutes: Sendable {
    let rules: RulesStore
    let postgres: PostgresClient
    let adminToken: String
    let maxBodyBytes: Int

    func add(to router: Router<BasicRequestContext>) {
        router.get("/v1/identity-rules") { request, _ in
            try request.requireAdmin(token: adminToken)
            var version: Int?
            if let text = request.uri.queryParameters.get("version") {
                guard let number = Int(text), number > 0 else {
                    throw Problem(.badRequest, code: "invalid_version", detail: "version must be a positive integer")
                }
                version = number
            }
            guard let found = try await rules.version(version, postgres: postgres) else {
                throw Problem(.notFound, code: "rules_version_not_found", detail: "no such rules version")
            }
            return jsonResponse(.ok, found)
        }
        router.put("/v1/identity-rules") { request, _ in
            try request.requireAdmin(token: adminToken)
            var request = request
            let body = try await request.collectBody(limit: maxBodyBytes)
            let input: IdentityRules
            do { input = try JSONDecoder().decode(IdentityRules.self, from: Data(buffer: body)) } catch {
                throw Problem(.badRequest, code: "malformed_rules",
                              detail: "expected {\"priority\": [...], \"limits\": {...}, \"blocked_values\": {...}, \"blocked_phone_digit_run\": 8}")
            }
            let violations = input.violations()
            guard violations.isEmpty else {
                throw Problem(.unprocessableContent, code: "invalid_rules", detail: "the rules are not valid", errors: violations)
            }
            let author = request.headers[.init("X-Requested-By")!] ?? "operator"
            return jsonResponse(.created, try await rules.publish(input, by: author, postgres: postgres))
        }
    }
}
