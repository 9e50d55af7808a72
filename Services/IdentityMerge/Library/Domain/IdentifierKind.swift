/// The kinds of identifier that link records to a customer. Every value is matched by its key: an HMAC of the
/// normalised value under the deployment's pepper, except the main system's user id, which is a business id.
public enum IdentifierKind: String, CaseIterable, Codable, Sendable, Comparable {
    case userID = "user_id"
    case phone
    case email
    case unionid
    case wechat
    case visitor

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// One identifier as the graph stores it: `kind:key` is its primary key.
public struct Identifier: Hashable, Sendable {
    public let kind: IdentifierKind
    /// HMAC-SHA256 hex of the normalised value, or the user id itself.
    public let key: String
    /// For display: `138****8000`, `a***@example.com`, or the user id.
    public let mask: String

    public init(kind: IdentifierKind, key: String, mask: String) {
        self.kind = kind
        self.key = key
        self.mask = mask
    }

    /// The stored key, unique across kinds.
    public var ident: String { "\(kind.rawValue):\(key)" }

    public static func == (a: Self, b: Self) -> Bool { a.kind == b.kind && a.key == b.key }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        hasher.combine(key)
    }
}
