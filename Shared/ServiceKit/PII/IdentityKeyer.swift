@preconcurrency import COpenSSL
import FastText

/// Turns a normalised contact into a matching key: HMAC-SHA256 under a secret pepper, hex. Unlike a plain hash,
/// the key cannot be reversed by hashing every phone number without the pepper.
public struct IdentityKeyer: Sendable {
    private let hmac: KeyedHMACSHA256

    public init(pepper: [UInt8]) {
        precondition(!pepper.isEmpty, "the identity pepper must not be empty")
        hmac = KeyedHMACSHA256(key: pepper)
    }

    /// The key of a kind of identifier (`phone`, `email`, `wechat`) and its normalised value; the kind is part of
    /// the MAC so equal strings of different kinds never collide.
    public func key(kind: String, normalized value: String) -> String {
        Hex.encode(hmac.mac("\(kind):\(value)"))
    }
}

/// HMAC-SHA256 through libcrypto.
public enum HMACSHA256 {
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), m.bindMemory(to: UInt8.self).baseAddress, m.count, &out, &length)
            }
        }
        return out
    }

    /// Constant-time comparison, for signatures and API key hashes.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, a.count) == 0 } }
    }
}

/// SHA-256 through libcrypto.
public enum SHA256Digest {
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        _ = bytes.withUnsafeBufferPointer { SHA256($0.baseAddress, $0.count, &out) }
        return out
    }

    public static func hex(_ bytes: [UInt8]) -> String { Hex.encode(hash(bytes)) }
}

/// Cryptographically secure random bytes from libcrypto.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        precondition(RAND_bytes(&out, Int32(count)) == 1, "RAND_bytes failed")
        return out
    }
}
