import Foundation

/// Standard Webhooks signatures (standardwebhooks.com): `webhook-signature: v1,<base64 HMAC-SHA256 of
/// "<webhook-id>.<webhook-timestamp>.<body>">`, several space-separated signatures allowed, secrets written
/// `whsec_<base64>`. Used for webhooks in (ad platforms) and out (delivery reports).
public enum WebhookSignature {
    /// Why a delivery was refused; `code` is the problem code.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public let code: String
        public let description: String
    }

    /// The key bytes of a `whsec_<base64>` secret (16 to 64 bytes), or nil when it is not one.
    public static func key(fromSecret secret: String) -> [UInt8]? {
        guard secret.hasPrefix("whsec_"), let data = Data(base64Encoded: String(secret.dropFirst(6))), (16...64).contains(data.count) else { return nil }
        return Array(data)
    }

    /// A new random secret, `whsec_` + base64 of 32 bytes.
    public static func newSecret() -> String { "whsec_" + Data(SecureRandom.bytes(32)).base64EncodedString() }

    /// The `v1,<base64>` signature of a delivery under `key`.
    public static func sign(id: String, timestamp: Int64, body: [UInt8], key: [UInt8]) -> String {
        "v1," + Data(HMACSHA256.mac(key: key, message: Array("\(id).\(timestamp).".utf8) + body)).base64EncodedString()
    }

    /// Checks the three headers against any of `keys` (rotation) and the clock, within `tolerance` either way.
    /// Replays (an id seen before) are the caller's to refuse, as they need storage.
    public static func verify(id: String?, timestamp: String?, signatures: String?, body: [UInt8], keys: [[UInt8]],
                              now: Date = Date(), tolerance: TimeInterval = 300) throws(Failure) {
        guard let id, !id.isEmpty, let timestamp, let signatures, !signatures.isEmpty else {
            throw Failure(code: "missing_signature", description: "send webhook-id, webhook-timestamp and webhook-signature")
        }
        guard id.utf8.count <= 200 else { throw Failure(code: "invalid_webhook_id", description: "webhook-id is longer than 200 bytes") }
        guard let seconds = Int64(timestamp) else {
            throw Failure(code: "invalid_timestamp", description: "webhook-timestamp must be whole seconds since 1970")
        }
        guard abs(now.timeIntervalSince1970 - Double(seconds)) <= tolerance else {
            throw Failure(code: "stale_timestamp", description: "webhook-timestamp is more than \(Int(tolerance)) s from the server's clock")
        }
        let given = signatures.split(separator: " ").compactMap { item -> [UInt8]? in
            let parts = item.split(separator: ",", maxSplits: 1)
            guard parts.count == 2, parts[0] == "v1", let data = Data(base64Encoded: String(parts[1])) else { return nil }
            return Array(data)
        }
        let message = Array("\(id).\(timestamp).".utf8) + body
        for key in keys {
            let expected = HMACSHA256.mac(key: key, message: message)
            if given.contains(where: { HMACSHA256.equal($0, expected) }) { return }
        }
        throw Failure(code: "invalid_signature", description: "no v1 signature matches a configured secret")
    }
}
