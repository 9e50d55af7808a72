import FastText
import Foundation
import ServiceKit

/// The identity rules, kept as versioned data (`GET /v1/identity-rules`): which identifier wins when records
/// disagree, how many of each kind one customer may hold, and which values never link anything.
public struct IdentityRules: Codable, Sendable, Equatable {
    /// Highest first. Every kind appears exactly once.
    public var priority: [IdentifierKind]
    /// At most this many identifiers of a kind per customer. `user_id` is always 1: two different registered
    /// users are never one customer.
    public var limits: [String: Int]
    /// Values per kind that never link anything (test numbers, placeholders). Phones are compared after
    /// normalisation, emails lower-cased.
    public var blockedValues: [String: [String]]
    /// A phone whose national number holds a run of this many identical digits is blocked (0 = off).
    public var blockedPhoneDigitRun: Int

    enum CodingKeys: String, CodingKey {
        case priority, limits
        case blockedValues = "blocked_values"
        case blockedPhoneDigitRun = "blocked_phone_digit_run"
    }

    public init(priority: [IdentifierKind], limits: [String: Int], blockedValues: [String: [String]], blockedPhoneDigitRun: Int) {
        self.priority = priority
        self.limits = limits
        self.blockedValues = blockedValues
        self.blockedPhoneDigitRun = blockedPhoneDigitRun
    }

    /// The rules a new deployment starts with (version 1).
    public static let standard = IdentityRules(
        priority: [.userID, .phone, .email, .unionid, .wechat, .visitor],
        limits: ["user_id": 1, "phone": 3, "email": 3, "unionid": 1, "wechat": 3, "visitor": 20],
        blockedValues: [
            "phone": ["13800138000", "13900139000", "18888888888", "12345678901", "+8613800000000"],
            "user_id": ["", "0", "-1", "null", "NULL", "undefined", "none"],
            "email": ["test@test.com", "null@null.com", "a@a.com"],
            "unionid": ["", "null", "-1", "undefined"],
            "wechat": ["null", "-1", "undefined"],
            "visitor": ["", "null", "undefined"],
        ],
        blockedPhoneDigitRun: 8
    )

    /// What is wrong with these rules, field by field (empty when they are valid).
    public func violations() -> [Problem.FieldError] {
        var errors: [Problem.FieldError] = []
        let kinds = Set(IdentifierKind.allCases)
        if Set(priority) != kinds || priority.count != kinds.count {
            errors.append(.init(field: "priority", code: "invalid_priority",
                                detail: "list every identifier kind exactly once: \(IdentifierKind.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        for (kind, limit) in limits {
            guard let parsed = IdentifierKind(rawValue: kind) else {
                errors.append(.init(field: "limits.\(kind)", code: "unknown_kind", detail: "not an identifier kind"))
                continue
            }
            if parsed == .userID && limit != 1 {
                errors.append(.init(field: "limits.user_id", code: "invalid_limit", detail: "a customer holds exactly one user id at most; the limit must be 1"))
            } else if !(1...100).contains(limit) {
                errors.append(.init(field: "limits.\(kind)", code: "invalid_limit", detail: "a limit is between 1 and 100"))
            }
        }
        for kind in IdentifierKind.allCases where limits[kind.rawValue] == nil {
            errors.append(.init(field: "limits.\(kind.rawValue)", code: "missing_limit", detail: "every kind needs a limit"))
        }
        for (kind, values) in blockedValues {
            if IdentifierKind(rawValue: kind) == nil {
                errors.append(.init(field: "blocked_values.\(kind)", code: "unknown_kind", detail: "not an identifier kind"))
            }
            if values.count > 10_000 || values.contains(where: { $0.count > 254 }) {
                errors.append(.init(field: "blocked_values.\(kind)", code: "too_long", detail: "at most 10,000 values of at most 254 characters"))
            }
        }
        if blockedPhoneDigitRun != 0 && !(4...15).contains(blockedPhoneDigitRun) {
            errors.append(.init(field: "blocked_phone_digit_run", code: "invalid_run", detail: "0 (off) or between 4 and 15"))
        }
        return errors
    }

    public func limit(_ kind: IdentifierKind) -> Int { kind == .userID ? 1 : (limits[kind.rawValue] ?? 1) }

    public func rank(_ kind: IdentifierKind) -> Int { priority.firstIndex(of: kind) ?? priority.count }
}

/// Rules ready to apply: a version, the rules, and the blocked values turned into the keys records carry.
public struct CompiledRules: Sendable {
    public let version: Int
    public let rules: IdentityRules
    private let blockedIdents: Set<String>

    public init(version: Int, rules: IdentityRules, keyer: IdentityKeyer, defaultRegion: String) {
        self.version = version
        self.rules = rules
        var idents = Set<String>()
        for (kindText, values) in rules.blockedValues {
            guard let kind = IdentifierKind(rawValue: kindText) else { continue }
            for value in values {
                if let normalized = IdentityNormalizer.normalize(kind: kind, value, defaultRegion: defaultRegion) {
                    idents.insert("\(kind.rawValue):\(IdentityNormalizer.key(kind: kind, normalized: normalized, keyer: keyer))")
                }
                // Placeholders such as "" or "null" are blocked as written, too.
                idents.insert("\(kind.rawValue):raw:\(value)")
            }
        }
        self.blockedIdents = idents
    }

    /// Why this identifier may not link anything, or nil. `e164` is the phone's number, when known.
    public func blockReason(_ identifier: Identifier, rawValue: String? = nil, e164: String? = nil) -> String? {
        if blockedIdents.contains(identifier.ident) { return "blocked_value" }
        if let rawValue, blockedIdents.contains("\(identifier.kind.rawValue):raw:\(rawValue)") { return "blocked_value" }
        if identifier.kind == .phone, let e164, rules.blockedPhoneDigitRun > 0, Self.longestRun(e164) >= rules.blockedPhoneDigitRun {
            return "blocked_digit_run"
        }
        return nil
    }

    static func longestRun(_ text: String) -> Int {
        var best = 0
        var run = 0
        var last: Character?
        for ch in text where ch.isNumber {
            run = ch == last ? run + 1 : 1
            last = ch
            best = max(best, run)
        }
        return best
    }
}

/// Normalises raw identifier values (registrations carry them raw) and keys them as intake does.
public enum IdentityNormalizer {
    /// The normalised value, or nil when it is not a usable value of this kind.
    public static func normalize(kind: IdentifierKind, _ raw: String, defaultRegion: String) -> String? {
        let trimmed = raw.trimmingSpacesAndNewlines
        guard !trimmed.isEmpty else { return nil }
        switch kind {
        case .phone:
            return try? PhoneNumber.parse(trimmed, defaultRegion: defaultRegion).e164
        case .email:
            let lower = trimmed.lowercased()
            guard lower.range(of: #"^[^@\s]+@[^@\s]+\.[^@\s]+$"#, options: .regularExpression) != nil else { return nil }
            return lower
        case .userID, .unionid, .wechat, .visitor:
            guard trimmed.count <= 128, !trimmed.contains(where: \.isWhitespace) else { return nil }
            return trimmed
        }
    }

    /// The key the graph matches on: the user id as is, every other kind as an HMAC (the same keys intake emits).
    public static func key(kind: IdentifierKind, normalized: String, keyer: IdentityKeyer) -> String {
        kind == .userID ? normalized : keyer.key(kind: kind.rawValue, normalized: normalized)
    }

    /// What an operator sees of a value.
    public static func mask(kind: IdentifierKind, normalized: String) -> String {
        switch kind {
        case .phone: return Masking.phone(normalized)
        case .email: return Masking.email(normalized)
        case .userID: return normalized
        case .unionid, .wechat, .visitor: return Masking.generic(normalized)
        }
    }
}
