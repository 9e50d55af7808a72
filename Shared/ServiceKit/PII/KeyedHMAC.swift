@preconcurrency import COpenSSL
@preconcurrency import Glibc

/// HMAC-SHA256 under one key, many messages: the keyed contexts are set up once and reused (see
/// ``CryptoContextPool``), where the one-shot ``HMACSHA256/mac(key:message:)`` sets up a context per call.
public struct KeyedHMACSHA256: Sendable {
    private let pool: CryptoContextPool

    public init(key: [UInt8]) {
        pool = CryptoContextPool(make: {
            guard let mac = FetchedAlgorithms.hmac, let context = EVP_MAC_CTX_new(mac) else { return nil }
            let digest = strdup("SHA256")
            defer { free(digest) }
            var params = [OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()]
            guard key.withUnsafeBufferPointer({ EVP_MAC_init(context, $0.baseAddress, $0.count, &params) }) == 1 else {
                EVP_MAC_CTX_free(context)
                return nil
            }
            return context
        }, release: { EVP_MAC_CTX_free($0) })
    }

    /// The 32-byte MAC of `message`.
    public func mac(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        let result = try? pool.withContext { context -> [UInt8] in
            // A NULL key starts the context over under the key it was made with.
            guard EVP_MAC_init(context, nil, 0, nil) == 1,
                  EVP_MAC_update(context, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1 else { throw Failed() }
            return try [UInt8](unsafeUninitializedCapacity: 32) { buffer, count in
                var length = 0
                guard EVP_MAC_final(context, buffer.baseAddress, &length, 32) == 1, length == 32 else { throw Failed() }
                count = length
            }
        }
        guard let result else { preconditionFailure("HMAC-SHA256 failed in libcrypto") }
        return result
    }

    /// The MAC of a string's UTF-8 bytes.
    public func mac(_ message: String) -> [UInt8] {
        var message = message
        return message.withUTF8 { mac(UnsafeRawBufferPointer($0)) }
    }

    private struct Failed: Error {}
}
