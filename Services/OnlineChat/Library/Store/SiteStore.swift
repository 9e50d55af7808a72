import Foundation
import Postgres
import ServiceKit

/// Sites in the service's schema. Loaded per request (a site's origins and flow change rarely, but a change
/// applies to the next request on every replica).
struct SiteStore: Sendable {
    let schema: String

    static let columns: StaticString = "id, name, allowed_origins, locale, bot_flow::text, flow_version, disabled_at IS NOT NULL"

    func load(_ id: String, in conn: PostgresConnection) throws -> ChatSite? {
        try conn.query("SELECT \(sql: Self.columns) FROM \(identifier: schema).sites WHERE id = \(id)").first.map(Self.site)
    }

    func list(in conn: PostgresConnection) throws -> [ChatSite] {
        try conn.query("SELECT \(sql: Self.columns) FROM \(identifier: schema).sites ORDER BY id").map(Self.site)
    }

    /// Inserts a site; false when the id is taken.
    func insert(_ site: ChatSite, in conn: PostgresConnection) throws -> Bool {
        let flow = String(decoding: try JSONEncoder().encode(site.botFlow), as: UTF8.self)
        return try conn.query("""
            INSERT INTO \(identifier: schema).sites (id, name, allowed_origins, locale, bot_flow)
            VALUES (\(site.id), \(site.name), \(PostgresArray(site.allowedOrigins.map { Optional($0) }))::text[], \(site.locale.rawValue), \(flow)::jsonb)
            ON CONFLICT (id) DO NOTHING
            """).affectedRows == 1
    }

    /// Replaces a site's settings; the flow version goes up when the flow changed. Nil when unknown.
    func update(_ site: ChatSite, in conn: PostgresConnection) throws -> ChatSite? {
        let flow = String(decoding: try JSONEncoder().encode(site.botFlow), as: UTF8.self)
        return try conn.query("""
            UPDATE \(identifier: schema).sites SET name = \(site.name), allowed_origins = \(PostgresArray(site.allowedOrigins.map { Optional($0) }))::text[],
                locale = \(site.locale.rawValue), bot_flow = \(flow)::jsonb, updated_at = now(),
                flow_version = flow_version + CASE WHEN bot_flow = \(flow)::jsonb THEN 0 ELSE 1 END,
                disabled_at = CASE WHEN \(site.disabled) THEN coalesce(disabled_at, now()) ELSE NULL END
            WHERE id = \(site.id)
            RETURNING \(sql: Self.columns)
            """).first.map(Self.site)
    }

    /// Whether any enabled site allows `origin` (CORS preflights carry no site).
    func anyAllows(origin: String, in conn: PostgresConnection) throws -> Bool {
        try conn.query("""
            SELECT EXISTS (SELECT 1 FROM \(identifier: schema).sites
                           WHERE disabled_at IS NULL AND (lower(\(origin)) = ANY (SELECT lower(o) FROM unnest(allowed_origins) o) OR '*' = ANY (allowed_origins)))
            """).first!.decode(Bool.self, at: 0)
    }

    static func site(_ row: PostgresRow) throws -> ChatSite {
        let (id, name, origins, locale, flow, version, disabled) = try row.decode(String.self, String.self, String.self, String.self, String.self, Int.self, Bool.self)
        return ChatSite(id: id, name: name, allowedOrigins: PostgresTextArray.parse(origins), locale: ChatLocale(rawValue: locale) ?? .zh,
                        botFlow: try JSONDecoder().decode(BotFlow.self, from: Data(flow.utf8)), flowVersion: version, disabled: disabled)
    }
}

/// Reads PostgreSQL's text form of a `text[]` (`{a,"b c"}`).
enum PostgresTextArray {
    static func parse(_ text: String) -> [String] {
        guard text.hasPrefix("{"), text.hasSuffix("}") else { return [] }
        var items: [String] = []
        var current = ""
        var quoted = false, escaped = false, any = false
        for c in text.dropFirst().dropLast() {
            if escaped { current.append(c); escaped = false; continue }
            switch c {
            case "\\" where quoted: escaped = true
            case "\"": quoted.toggle(); any = true
            case "," where !quoted: items.append(current); current = ""; any = false
            default: current.append(c); any = true
            }
        }
        if any || !current.isEmpty { items.append(current) }
        return items
    }
}
