@preconcurrency import COpenSSL
import Contracts

/// AES-256-GCM encryption of personal values in events, with a keyring: new values use the active key; values
/// under any key still in the ring decrypt, so keys rotate without re-encrypting history at once.
public struct PIICipher: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    private let keys: [String: [UInt8]]
    public let activeKeyID: String

    /// `keys` maps key ids to 32-byte keys; `activeKeyID` must be among them.
    public init(keys: [String: [UInt8]], activeKeyID: String) throws {
        guard let active = keys[activeKeyID] else { throw Failure(description: "active PII key \(activeKeyID) is not in the keyring") }
        guard active.count == 32, keys.values.allSatisfy({ $0.count == 32 }) else { throw Failure(description: "PII keys must be 32 bytes (AES-256)") }
        self.keys = keys
        self.activeKeyID = activeKeyID
    }

    /// Encrypts `plaintext`; `field` (e.g. `phone`) is authenticated so a value cannot be moved to another field.
    public func encrypt(_ plaintext: String, field: String) throws -> Funnel_Common_V1_EncryptedValue {
        let nonce = SecureRandom.bytes(12)
        let sealed = try Self.gcm(encrypt: true, key: keys[activeKeyID]!, nonce: nonce, aad: Array(field.utf8), input: Array(plaintext.utf8))
        var value = Funnel_Common_V1_EncryptedValue()
        value.keyID = activeKeyID
        value.nonce = .init(nonce)
        value.ciphertext = .init(sealed)
        return value
    }

    /// Decrypts a value sealed for `field`; fails on an unknown key, tampering or a different field.
    public func decrypt(_ value: Funnel_Common_V1_EncryptedValue, field: String) throws -> String {
        guard let key = keys[value.keyID] else { throw Failure(description: "PII key \(value.keyID) is not in the keyring") }
        let plain = try Self.gcm(encrypt: false, key: key, nonce: Array(value.nonce), aad: Array(field.utf8), input: Array(value.ciphertext))
        return String(decoding: plain, as: UTF8.self)
    }

    private static func gcm(encrypt: Bool, key: [UInt8], nonce: [UInt8], aad: [UInt8], input: [UInt8]) throws -> [UInt8] {
        guard nonce.count == 12 else { throw Failure(description: "GCM nonce must be 12 bytes") }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw Failure(description: "EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let tagLength = 16
        var body = input
        var tag = [UInt8](repeating: 0, count: tagLength)
        if !encrypt {
            guard input.count >= tagLength else { throw Failure(description: "ciphertext is shorter than its tag") }
            body = Array(input.dropLast(tagLength))
            tag = Array(input.suffix(tagLength))
        }
        let initialised = encrypt
            ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce)
            : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce)
        guard initialised == 1 else { throw Failure(description: "cipher init failed") }
        var length: Int32 = 0
        if !aad.isEmpty {
            let ok = encrypt ? EVP_EncryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) : EVP_DecryptUpdate(ctx, nil, &length, aad, Int32(aad.count))
            guard ok == 1 else { throw Failure(description: "AAD rejected") }
        }
        var output = [UInt8](repeating: 0, count: body.count + 16)
        var total: Int32 = 0
        if !body.isEmpty {
            let ok = encrypt ? EVP_EncryptUpdate(ctx, &output, &length, body, Int32(body.count)) : EVP_DecryptUpdate(ctx, &output, &length, body, Int32(body.count))
            guard ok == 1 else { throw Failure(description: "cipher update failed") }
            total = length
        }
        if encrypt {
            let finished = output.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + Int(total), &length) }
            guard finished == 1 else { throw Failure(description: "cipher final failed") }
            total += length
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(tagLength), &tag) == 1 else { throw Failure(description: "tag failed") }
            return Array(output.prefix(Int(total))) + tag
        } else {
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, Int32(tagLength), &tag) == 1 else { throw Failure(description: "tag failed") }
            let finished = output.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + Int(total), &length) }
            guard finished == 1 else { throw Failure(description: "ciphertext failed authentication (wrong key, field or tampered)") }
            total += length
            return Array(output.prefix(Int(total)))
        }
    }
}
