/// Masks for display and logs: enough for a person to recognise, never enough to contact.
public enum Masking {
    /// `+8613800138000` → `138****8000`; other lengths keep at most the first 3 and last 4 digits.
    /// Only ASCII digits count (E.164 has no others; `Character.isNumber` cost a Unicode lookup per character).
    public static func phone(_ e164: String) -> String {
        var digits = e164.utf8.filter { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        if e164.hasPrefix("+86"), digits.count == 13 { digits.removeFirst(2) }
        guard digits.count > 7 else { return String(repeating: "*", count: digits.count) }
        return String(decoding: digits.prefix(3), as: UTF8.self) + "****" + String(decoding: digits.suffix(4), as: UTF8.self)
    }

    /// `zhang.san@example.com` → `z***@example.com`.
    public static func email(_ email: String) -> String {
        guard let at = email.firstIndex(of: "@"), at != email.startIndex else { return "***" }
        return String(email[email.startIndex]) + "***" + String(email[at...])
    }

    /// `张三丰` → `张**`, `Alice` → `A****`.
    public static func name(_ name: String) -> String {
        guard let first = name.first else { return "" }
        return String(first) + String(repeating: "*", count: max(1, name.count - 1))
    }

    /// An opaque id (WeChat id, unionid, visitor id): `oABCdef123456` → `oA***56`.
    public static func generic(_ value: String) -> String {
        guard value.count > 6 else { return String(repeating: "*", count: max(3, value.count)) }
        return String(value.prefix(2)) + "***" + String(value.suffix(2))
    }
}
