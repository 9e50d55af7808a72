import Foundation
import Hummingbird
import Postgres
import ServiceKit

/// `POST /v1/policies/simulate`: a candidate policy against a past range of inputs, with no side effects.
struct SimulationRoutes: Sendable {
    let access: Access
    let postgres: PostgresClient
    let simulator: PolicySimulator
    let maxBodyBytes: Int

    struct Body: Decodable {
        let from: Date
        let to: Date
        let policy: DispatchPolicy
    }

    func add(to router: Router<BasicRequestContext>) {
        router.post("/v1/policies/simulate") { request, _ in
            _ = try await access.requireManager(request)
            let body = try await decodeBody(Body.self, from: request, limit: max(maxBodyBytes, 1 << 20),
                                            expected: "{\"from\": \"ISO 8601\", \"to\": \"ISO 8601\", \"policy\": {...the policy document...}}")
            guard body.from < body.to else { throw Problem(.unprocessableContent, code: "invalid_range", detail: "from must be before to") }
            let schema = simulator.schema, simulator = self.simulator
            // The candidate is validated against the org like a published one: a simulation of an invalid policy is refused.
            let active = try await postgres.query("""
                SELECT t.id, count(r.employee_id) FILTER (WHERE r.active AND r.role <> 'admin')
                FROM \(identifier: schema).teams t LEFT JOIN \(identifier: schema).reps r ON r.team_id = t.id GROUP BY t.id
                """).reduce(into: [String: Int]()) { result, row in
                let (team, count) = try row.decode(String.self, Int.self)
                result[team] = count
            }
            let violations = body.policy.violations(activeReps: active)
            guard violations.isEmpty else {
                throw Problem(.unprocessableContent, code: "invalid_policy", detail: "the candidate policy is not valid", errors: violations)
            }
            do {
                // Read-only: the simulation runs in a transaction that is rolled back (never writes).
                let report = try await postgres.withConnection { connection in
                    _ = try connection.query("BEGIN READ ONLY")
                    defer { _ = try? connection.query("ROLLBACK") }
                    return try simulator.simulate(policy: body.policy, from: body.from, to: body.to, in: connection)
                }
                return jsonResponse(.ok, report)
            } catch let refusal as DispatchRefusal {
                throw Problem(.unprocessableContent, code: refusal.code, detail: refusal.detail)
            }
        }
    }
}
