import Foundation
import ServiceKit

/// A registered lead source (a landing page, an ad account, a partner) with its API key.
public struct LeadSource: Sendable, Codable, Equatable {
    public let id: UUID
    public let name: String
    public let defaultChannel: Channel
    public let keyPrefix: String
    public let createdAt: Date
    public let disabled: Bool

    enum CodingKeys: String, CodingKey {
        case id, name, defaultChannel = "default_channel", keyPrefix = "key_prefix", createdAt = "created_at", disabled
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.uuidString.lowercased(), forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(defaultChannel, forKey: .defaultChannel)
        try container.encode(keyPrefix, forKey: .keyPrefix)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(disabled, forKey: .disabled)
    }
}

/// A newly issued API key: shown once, stored only as a SHA-256 hash.
public struct IssuedKey: Sendable, Codable {
    public let source: LeadSource
    public let apiKey: String

    enum CodingKeys: String, CodingKey { case source, apiKey = "api_key" }
}

/// API keys: `fnl_<8-char prefix>_<32-char secret>`. The prefix finds the row; the hash proves the key.
enum APIKey {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

    static func generate() -> (key: String, prefix: String) {
        func random(_ n: Int) -> String {
            // 62 symbols; rejection sampling keeps it uniform.
            var out = ""
            while out.count < n {
                for byte in SecureRandom.bytes(n * 2) where byte < 248 && out.count < n {
                    out.append(alphabet[Int(byte) % 62])
                }
            }
            return out
        }
        let prefix = random(8)
        return ("fnl_\(prefix)_\(random(32))", prefix)
    }

    /// The prefix of a well-formed key, or nil.
    static func prefix(of key: String) -> String? {
        let parts = key.split(separator: "_")
        guard parts.count == 3, parts[0] == "fnl", parts[1].count == 8, parts[2].count == 32 else { return nil }
        return String(parts[1])
    }
}
