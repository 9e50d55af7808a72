import Foundation
import Postgres
import ServiceKit

/// A stored version of the dispatch policy.
struct PolicyVersion: Codable, Sendable {
    let version: Int
    let policy: DispatchPolicy
    let createdBy: String
    let createdAt: Date

    enum CodingKeys: String, CodingKey {
        case version, policy
        case createdBy = "created_by"
        case createdAt = "created_at"
    }
}

/// The versioned dispatch policies. Before the first version is published, everything waits in the queue of
/// the unrouted team `""` and is dispatched when a policy arrives.
final class PolicyStore: Sendable {
    let schema: String
    private let cache = LockedBox<((DispatchPolicy, Int), ContinuousClock.Instant)?>(nil)

    init(schema: String) { self.schema = schema }

    /// The policy in force and its version, read at most every `refresh` (version 0 when none is published).
    func current(in connection: PostgresConnection, refresh: Duration = .seconds(2)) throws -> (DispatchPolicy, Int) {
        let now = ContinuousClock.now
        if let (cached, checked) = cache.withLock({ $0 }), now - checked < refresh { return cached }
        let rows = try connection.query("SELECT version, body::text FROM \(identifier: schema).policies ORDER BY version DESC LIMIT 1")
        var current = (DispatchPolicy.initial(fallbackTeam: ""), 0)
        if let row = rows.first {
            let (version, body) = try row.decode(Int.self, String.self)
            current = (try JSONDecoder().decode(DispatchPolicy.self, from: Data(body.utf8)), version)
        }
        cache.withLock { $0 = (current, now) }
        return current
    }

    func invalidate() { cache.withLock { $0 = nil } }

    func version(_ version: Int?, postgres: PostgresClient) async throws -> PolicyVersion? {
        let rows: PostgresRows
        if let version {
            rows = try await postgres.query("SELECT version, body::text, created_by, created_at FROM \(identifier: schema).policies WHERE version = \(version)")
        } else {
            rows = try await postgres.query("SELECT version, body::text, created_by, created_at FROM \(identifier: schema).policies ORDER BY version DESC LIMIT 1")
        }
        guard let row = rows.first else { return nil }
        let (number, body, by, at) = try row.decode(Int.self, String.self, String.self, Date.self)
        return PolicyVersion(version: number, policy: try JSONDecoder().decode(DispatchPolicy.self, from: Data(body.utf8)), createdBy: by, createdAt: at)
    }

    /// Validates `policy` against the org and stores it as the next version, in one transaction that locks the
    /// policies and reads the org, so a team cannot be emptied between the check and the write.
    func publish(_ policy: DispatchPolicy, by author: String, postgres: PostgresClient) async throws -> PolicyVersion {
        let body = try PostgresJSON(encoding: policy)
        let schema = self.schema
        let result: Result<(Int, Date), Problem> = try await postgres.withTransaction { connection in
            _ = try connection.query("LOCK TABLE \(identifier: schema).policies IN EXCLUSIVE MODE")
            let rows = try connection.query("""
                SELECT t.id, count(r.employee_id) FILTER (WHERE r.active AND r.role <> 'admin')
                FROM \(identifier: schema).teams t LEFT JOIN \(identifier: schema).reps r ON r.team_id = t.id GROUP BY t.id
                """)
            var active: [String: Int] = [:]
            for row in rows {
                let (team, count) = try row.decode(String.self, Int.self)
                active[team] = count
            }
            let violations = policy.violations(activeReps: active)
            guard violations.isEmpty else {
                return .failure(Problem(.unprocessableContent, code: "invalid_policy", detail: "the policy is not valid", errors: violations))
            }
            let row = try connection.query("""
                INSERT INTO \(identifier: schema).policies (version, body, created_by)
                SELECT coalesce(max(version), 0) + 1, \(body), \(author) FROM \(identifier: schema).policies
                RETURNING version, created_at
                """).first!
            return .success(try row.decode(Int.self, Date.self))
        }
        let (version, at) = try result.get()
        invalidate()
        return PolicyVersion(version: version, policy: policy, createdBy: author, createdAt: at)
    }
}
