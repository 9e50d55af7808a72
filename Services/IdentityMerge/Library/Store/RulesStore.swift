import Foundation
import Postgres
import ServiceKit

/// The versioned identity rules. Version 1 is ``IdentityRules/standard``; every change is a new version.
final class RulesStore: Sendable {
    let schema: String
    private let keyer: IdentityKeyer
    private let defaultRegion: String
    private let cache = LockedBox<(CompiledRules, ContinuousClock.Instant)?>(nil)

    init(schema: String, keyer: IdentityKeyer, defaultRegion: String) {
        self.schema = schema
        self.keyer = keyer
        self.defaultRegion = defaultRegion
    }

    /// Writes version 1 if the schema has no rules yet.
    func ensureDefault(_ postgres: PostgresClient) async throws {
        let body = try PostgresJSON(encoding: IdentityRules.standard)
        _ = try await postgres.query("INSERT INTO \(identifier: schema).rules (version, body, created_by) VALUES (1, \(body), 'default') ON CONFLICT DO NOTHING")
    }

    /// The newest rules, compiled. Read from the table at most every `refresh` (a published version applies to
    /// batches from then on), and compiled once per version.
    func current(in connection: PostgresConnection, refresh: Duration = .seconds(2)) throws -> CompiledRules {
        let now = ContinuousClock.now
        if let (compiled, checked) = cache.withLock({ $0 }), now - checked < refresh { return compiled }
        let rows = try connection.query("SELECT version, body::text FROM \(identifier: schema).rules ORDER BY version DESC LIMIT 1")
        guard let row = rows.first else { return compile(version: 0, rules: .standard) }
        let (version, body) = try row.decode(Int.self, String.self)
        if let (cached, _) = cache.withLock({ $0 }), cached.version == version {
            cache.withLock { $0 = (cached, now) }
            return cached
        }
        let rules = try JSONDecoder().decode(IdentityRules.self, from: Data(body.utf8))
        let compiled = compile(version: version, rules: rules)
        cache.withLock { $0 = (compiled, now) }
        return compiled
    }

    /// Forgets the cached rules (after publishing a version here, so this replica applies it at once).
    func invalidate() { cache.withLock { $0 = nil } }

    func compile(version: Int, rules: IdentityRules) -> CompiledRules {
        CompiledRules(version: version, rules: rules, keyer: keyer, defaultRegion: defaultRegion)
    }

    /// One version (the newest when nil), with who wrote it and when.
    func version(_ version: Int?, postgres: PostgresClient) async throws -> RulesVersion? {
        let rows: PostgresRows
        if let version {
            rows = try await postgres.query("SELECT version, body::text, created_by, created_at FROM \(identifier: schema).rules WHERE version = \(version)")
        } else {
            rows = try await postgres.query("SELECT version, body::text, created_by, created_at FROM \(identifier: schema).rules ORDER BY version DESC LIMIT 1")
        }
        guard let row = rows.first else { return nil }
        let (number, body, by, at) = try row.decode(Int.self, String.self, String.self, Date.self)
        return RulesVersion(version: number, rules: try JSONDecoder().decode(IdentityRules.self, from: Data(body.utf8)), createdBy: by, createdAt: at)
    }

    /// Stores `rules` as the next version (they must be valid) and returns it.
    func publish(_ rules: IdentityRules, by author: String, postgres: PostgresClient) async throws -> RulesVersion {
        let body = try PostgresJSON(encoding: rules)
        let schema = self.schema
        let (version, at) = try await postgres.withTransaction { connection in
            _ = try connection.query("LOCK TABLE \(identifier: schema).rules IN EXCLUSIVE MODE")
            let row = try connection.query("""
                INSERT INTO \(identifier: schema).rules (version, body, created_by)
                SELECT coalesce(max(version), 0) + 1, \(body), \(author) FROM \(identifier: schema).rules
                RETURNING version, created_at
                """).first!
            return try row.decode(Int.self, Date.self)
        }
        invalidate()
        return RulesVersion(version: version, rules: rules, createdBy: author, createdAt: at)
    }
}

/// A stored version of the rules.
struct RulesVersion: Codable, Sendable {
    let version: Int
    let rules: IdentityRules
    let createdBy: String
    let createdAt: Date

    enum CodingKeys: String, CodingKey {
        case version, rules
        case createdBy = "created_by"
        case createdAt = "created_at"
    }
}
