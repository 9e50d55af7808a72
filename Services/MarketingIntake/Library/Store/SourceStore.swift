import FastText
import Foundation
import Postgres
import ServiceKit

/// Lead sources and their keys, in the service's schema.
struct SourceStore: Sendable {
    let schema: String
    let postgres: PostgresClient

    struct Failure: Error, CustomStringConvertible {
        let code: String
        let description: String
    }

    func create(name: String, defaultChannel: Channel) async throws -> IssuedKey {
        let trimmed = name.trimmingSpacesAndNewlines
        guard (1...100).contains(trimmed.count) else { throw Failure(code: "invalid_name", description: "name must be 1 to 100 characters") }
        let (key, prefix) = APIKey.generate()
        let id = UUID()
        let hash = SHA256Digest.hash(Array(key.utf8))
        do {
            let source = try await postgres.withConnection { [schema] conn in
                try conn.query("""
                    INSERT INTO \(identifier: schema).lead_sources (id, name, default_channel, key_prefix, key_hash)
                    VALUES (\(id), \(trimmed), \(defaultChannel.rawValue), \(prefix), \(hash))
                    RETURNING id, name, default_channel, key_prefix, created_at, disabled_at IS NOT NULL
                    """).first.map(Self.source)!
            }
            return IssuedKey(source: source, apiKey: key)
        } catch let error as PostgresError where error.isUniqueViolation {
            throw Failure(code: "duplicate_name", description: "a lead source with this name exists")
        }
    }

    func list() async throws -> [LeadSource] {
        try await postgres.withConnection { [schema] conn in
            try conn.query("SELECT id, name, default_channel, key_prefix, created_at, disabled_at IS NOT NULL FROM \(identifier: schema).lead_sources ORDER BY created_at, name")
                .map(Self.source)
        }
    }

    /// Issues a new key for `id` (the old one stops working at once).
    func rotateKey(id: UUID) async throws -> IssuedKey? {
        let (key, prefix) = APIKey.generate()
        let hash = SHA256Digest.hash(Array(key.utf8))
        let source = try await postgres.withConnection { [schema] conn in
            try conn.query("""
                UPDATE \(identifier: schema).lead_sources SET key_prefix = \(prefix), key_hash = \(hash), key_rotated_at = now()
                WHERE id = \(id)
                RETURNING id, name, default_channel, key_prefix, created_at, disabled_at IS NOT NULL
                """).first.map(Self.source)
        }
        return source.map { IssuedKey(source: $0, apiKey: key) }
    }

    /// Disables a source: its key and its topic leads are refused from then on. Returns false if unknown.
    func disable(id: UUID) async throws -> Bool {
        try await postgres.withConnection { [schema] conn in
            try conn.query("UPDATE \(identifier: schema).lead_sources SET disabled_at = coalesce(disabled_at, now()) WHERE id = \(id)").affectedRows == 1
        }
    }

    /// The enabled source whose key this is, or nil (unknown, malformed, disabled, or a wrong secret).
    /// `keyHash` is the key's SHA-256, which the caller has already worked out.
    static func authenticate(key: String, keyHash: [UInt8], schema: String, in conn: PostgresConnection) throws -> LeadSource? {
        guard let query = keyLookup(key: key, schema: schema) else { return nil }
        return try authenticated(keyHash: keyHash, by: conn.query(query))
    }

    /// The row a key names (by its prefix), or nil when the key is malformed.
    static func keyLookup(key: String, schema: String) -> PostgresQuery? {
        guard let prefix = APIKey.prefix(of: key) else { return nil }
        return """
            SELECT id, name, default_channel, key_prefix, created_at, disabled_at IS NOT NULL, key_hash
            FROM \(identifier: schema).lead_sources WHERE key_prefix = \(prefix)
            """
    }

    /// The enabled source whose row (``keyLookup(key:schema:)``'s result) holds `keyHash` (the key's SHA-256), or nil.
    static func authenticated(keyHash: [UInt8], by rows: PostgresRows) throws -> LeadSource? {
        guard let row = rows.first else { return nil }
        let stored = try row.decode(column: "key_hash", as: [UInt8].self)
        guard HMACSHA256.equal(stored, keyHash) else { return nil }
        let source = try Self.source(row)
        return source.disabled ? nil : source
    }

    /// Sources by name, for topic leads.
    static func byName(_ names: [String], schema: String, in conn: PostgresConnection) throws -> [String: LeadSource] {
        let rows = try conn.query("""
            SELECT id, name, default_channel, key_prefix, created_at, disabled_at IS NOT NULL
            FROM \(identifier: schema).lead_sources WHERE name = ANY(\(PostgresArray(names)))
            """)
        var result: [String: LeadSource] = [:]
        for row in rows {
            let source = try Self.source(row)
            result[source.name] = source
        }
        return result
    }

    static func source(_ row: PostgresRow) throws -> LeadSource {
        let (id, name, channel, prefix, created, disabled) = try row.decode(UUID.self, String.self, String.self, String.self, Date.self, Bool.self)
        return LeadSource(id: id, name: name, defaultChannel: Channel(rawValue: channel) ?? .other, keyPrefix: prefix, createdAt: created, disabled: disabled)
    }
}
