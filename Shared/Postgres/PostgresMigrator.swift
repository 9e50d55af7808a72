@preconcurrency import COpenSSL
import Foundation
import Logging

/// One schema change: a version (applied in ascending order, never reused), a name and SQL text.
public struct PostgresMigration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// SHA-256 of the SQL text, hex: an applied migration whose text changed is refused.
    public var checksum: String {
        let bytes = Array(sql.utf8)
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        _ = bytes.withUnsafeBufferPointer { SHA256($0.baseAddress, $0.count, &digest) }
        return digest.map { String(format: "%02x", $0) }.joined()
    }
}

/// Applies a service's migrations to its own schema: ordered, checksummed, one transaction each (with
/// `search_path` set to the schema), under an advisory lock so replicas starting together are safe.
public struct PostgresMigrator: Sendable {
    public let schema: String
    public let migrations: [PostgresMigration]

    public init(schema: String, migrations: [PostgresMigration]) {
        self.schema = schema
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Applies what is missing; returns the versions it applied.
    @discardableResult
    public func migrate(_ client: PostgresClient, logger: Logger) async throws -> [Int] {
        let schema = self.schema
        let migrations = self.migrations
        if Set(migrations.map(\.version)).count != migrations.count {
            throw PostgresError(kind: .migration, message: "duplicate migration versions in schema \(schema)")
        }
        let applied: [Int] = try await client.withConnection { conn in
            let lockKey = "funnel.migrations.\(schema)"
            try conn.query("SELECT pg_advisory_lock(hashtextextended(\(lockKey), 0))")
            defer { _ = try? conn.query("SELECT pg_advisory_unlock(hashtextextended(\(lockKey), 0))") }
            try conn.query("CREATE SCHEMA IF NOT EXISTS \(identifier: schema)")
            try conn.query("""
                CREATE TABLE IF NOT EXISTS \(identifier: schema).schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let existing = try conn.query("SELECT version, checksum FROM \(identifier: schema).schema_migrations")
                .decode(Int.self, String.self)
            let known = Dictionary(uniqueKeysWithValues: existing.map { ($0.0, $0.1) })
            var done: [Int] = []
            for migration in migrations {
                if let checksum = known[migration.version] {
                    guard checksum == migration.checksum else {
                        throw PostgresError(kind: .migration, message: "migration \(migration.version) (\(migration.name)) in schema \(schema) was changed after it was applied")
                    }
                    continue
                }
                try conn.transaction { tx in
                    try tx.query("SELECT set_config('search_path', \(schema), true)")
                    try tx.executeScript(migration.sql)
                    try tx.query("INSERT INTO \(identifier: schema).schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))")
                }
                done.append(migration.version)
            }
            return done
        }
        if !applied.isEmpty {
            logger.info("migrations applied", metadata: ["schema": "\(schema)", "versions": "\(applied.map(String.init).joined(separator: ","))"])
        }
        return applied
    }

    /// True when every known migration is applied (for readiness).
    public func isCurrent(_ client: PostgresClient) async throws -> Bool {
        let schema = self.schema
        let latest = migrations.last?.version ?? 0
        return try await client.withConnection { conn in
            let exists = try conn.query("SELECT to_regclass(\(schema + ".schema_migrations")) IS NOT NULL").first!.decode(Bool.self)
            guard exists else { return latest == 0 }
            let count = try conn.query("SELECT count(*) FROM \(identifier: schema).schema_migrations WHERE version <= \(latest)").first!.decode(Int.self)
            return count == migrations.count
        }
    }
}
