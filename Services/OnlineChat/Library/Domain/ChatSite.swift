import Foundation

/// A website that embeds the widget: the origins allowed to open conversations for it, its default language,
/// and its bot flow (versioned: each change bumps ``flowVersion``; a conversation keeps the version it began with).
public struct ChatSite: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var allowedOrigins: [String]
    public var locale: ChatLocale
    public var botFlow: BotFlow
    public var flowVersion: Int
    public var disabled: Bool

    enum CodingKeys: String, CodingKey {
        case id, name, allowedOrigins = "allowed_origins", locale, botFlow = "bot_flow", flowVersion = "flow_version", disabled
    }

    /// Whether a browser on `origin` may use this site's chat. No `Origin` header (a server, curl) is allowed: the
    /// allow-list stops other web pages from embedding the widget, which always send one.
    func allows(origin: String?) -> Bool {
        guard let origin else { return true }
        return allowedOrigins.contains { $0 == "*" || $0.caseInsensitiveCompare(origin) == .orderedSame }
    }

    /// `https://example.com` or `http://127.0.0.1:8080`: scheme, host and optional port, no path; or `*`.
    static func isValidOrigin(_ origin: String) -> Bool {
        if origin == "*" { return true }
        guard origin.count <= 200, let url = URL(string: origin), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty, url.path.isEmpty, url.query == nil, url.fragment == nil, url.user == nil else { return false }
        return true
    }

    static func isValidID(_ id: String) -> Bool {
        (1...64).contains(id.count) && id.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" || $0 == "_" }
    }
}
