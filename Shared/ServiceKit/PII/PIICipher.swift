@preconcurrency import COpenSSL
import Contracts

/// AES-256-GCM encryption of personal values in events, with a keyring: new values use the active key; values
/// under any key still in the ring decrypt, so keys rotate without re-encrypting history at once.
public struct PIICipher: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Per key id, contexts holding the key's AES schedule.
    private let contexts: [String: CryptoContextPool]
    public let activeKeyID: String

    /// `keys` maps key ids to 32-byte keys; `activeKeyID` must be among them.
    public init(keys: [String: [UInt8]], activeKeyID: String) throws {
        guard let active = keys[activeKeyID] else { throw Failure(description: "active PII key \(activeKeyID) is not in the keyring") }
        guard active.count == 32, keys.values.allSatisfy({ $0.count == 32 }) else { throw Failure(description: "PII keys must be 32 bytes (AES-256)") }
        contexts = keys.mapValues { key in
            CryptoContextPool(make: {
                guard let cipher = FetchedAlgorithms.aes256GCM, let context = EVP_CIPHER_CTX_new() else { return nil }
                guard EVP_CipherInit_ex2(context, cipher, key, nil, 1, nil) == 1 else {
                    EVP_CIPHER_CTX_free(context)
                    return nil
                }
                return context
            }, release: { EVP_CIPHER_CTX_free($0) })
        }
        self.activeKeyID = activeKeyID
    }

    /// Encrypts `plaintext`; `field` (e.g. `phone`) is authenticated so a value cannot be moved to another field.
    public func encrypt(_ plaintext: String, field: String) throws -> Funnel_Common_V1_EncryptedValue {
        let nonce = RandomBuffer.shared.bytes(12)
        var value = Funnel_Common_V1_EncryptedValue()
        value.keyID = activeKeyID
        value.ciphertext = .init(try seal(Array(plaintext.utf8), aad: Array(field.utf8), nonce: nonce, keyID: activeKeyID))
        value.nonce = .init(nonce)
        return value
    }

    /// Decrypts a value sealed for `field`; fails on an unknown key, tampering or a different field.
    public func decrypt(_ value: Funnel_Common_V1_EncryptedValue, field: String) throws -> String {
        guard contexts[value.keyID] != nil else { throw Failure(description: "PII key \(value.keyID) is not in the keyring") }
        let plain = try open(Array(value.ciphertext), aad: Array(field.utf8), nonce: Array(value.nonce), keyID: value.keyID)
        return String(decoding: plain, as: UTF8.self)
    }

    /// AES-256-GCM of `plaintext` under the key `keyID` with `nonce`: the ciphertext followed by the 16-byte tag.
    func seal(_ plaintext: [UInt8], aad: [UInt8], nonce: [UInt8], keyID: String) throws -> [UInt8] {
        try withContext(keyID: keyID, nonce: nonce, aad: aad, encrypting: true) { context in
            try [UInt8](unsafeUninitializedCapacity: plaintext.count + 16) { buffer, count in
                let out = buffer.baseAddress!
                var length: Int32 = 0
                var total: Int32 = 0
                if !plaintext.isEmpty {
                    guard EVP_CipherUpdate(context, out, &length, plaintext, Int32(plaintext.count)) == 1 else { throw Failure(description: "cipher update failed") }
                    total = length
                }
                guard EVP_CipherFinal_ex(context, out + Int(total), &length) == 1 else { throw Failure(description: "cipher final failed") }
                total += length
                guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, out + Int(total)) == 1 else { throw Failure(description: "tag failed") }
                count = Int(total) + 16
            }
        }
    }

    /// The plaintext of `sealed` (ciphertext and tag) under the key `keyID`, if the tag verifies.
    func open(_ sealed: [UInt8], aad: [UInt8], nonce: [UInt8], keyID: String) throws -> [UInt8] {
        guard sealed.count >= 16 else { throw Failure(description: "ciphertext is shorter than its tag") }
        let bodyCount = sealed.count - 16
        return try withContext(keyID: keyID, nonce: nonce, aad: aad, encrypting: false) { context in
            var tag = Array(sealed[bodyCount...])
            return try [UInt8](unsafeUninitializedCapacity: bodyCount + 16) { buffer, count in
                let out = buffer.baseAddress!
                var length: Int32 = 0
                var total: Int32 = 0
                if bodyCount > 0 {
                    let updated = sealed.withUnsafeBufferPointer { EVP_CipherUpdate(context, out, &length, $0.baseAddress, Int32(bodyCount)) }
                    guard updated == 1 else { throw Failure(description: "cipher update failed") }
                    total = length
                }
                guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { throw Failure(description: "tag failed") }
                guard EVP_CipherFinal_ex(context, out + Int(total), &length) == 1 else {
                    throw Failure(description: "ciphertext failed authentication (wrong key, field or tampered)")
                }
                count = Int(total + length)
            }
        }
    }

    /// Runs `body` with a context of key `keyID`, started for one value: `nonce` set, `aad` authenticated.
    private func withContext<R>(keyID: String, nonce: [UInt8], aad: [UInt8], encrypting: Bool,
                                _ body: (OpaquePointer) throws -> R) throws -> R {
        guard nonce.count == 12 else { throw Failure(description: "GCM nonce must be 12 bytes") }
        guard let pool = contexts[keyID] else { throw Failure(description: "PII key \(keyID) is not in the keyring") }
        return try pool.withContext { context in
            guard EVP_CipherInit_ex2(context, nil, nil, nonce, encrypting ? 1 : 0, nil) == 1 else { throw Failure(description: "cipher init failed") }
            if !aad.isEmpty {
                var length: Int32 = 0
                guard EVP_CipherUpdate(context, nil, &length, aad, Int32(aad.count)) == 1 else { throw Failure(description: "AAD rejected") }
            }
            return try body(context)
        }
    }
}
