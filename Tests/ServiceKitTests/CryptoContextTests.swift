import Foundation
@testable import ServiceKit
import Testing

/// The reused libcrypto contexts give the published answers, call after call, encrypting and decrypting in turn and
/// from several threads at once.
@Suite("Reused crypto contexts")
struct CryptoContextTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The GCM specification's test case 16 (AES-256, 96-bit IV, with AAD).
    static let key = bytes("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
    static let plaintext = bytes("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
    static let aad = bytes("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    static let nonce = bytes("cafebabefacedbaddecaf888")
    static let sealed = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        + "76fc6ece0f4e1768cddf8853bb2d551b"

    @Test func aesGCMGivesTheSpecificationsAnswerOnEveryReuseOfItsContext() throws {
        let cipher = try PIICipher(keys: ["k": Self.key], activeKeyID: "k")
        for _ in 0..<3 {
            let sealed = try cipher.seal(Self.plaintext, aad: Self.aad, nonce: Self.nonce, keyID: "k")
            #expect(Self.hex(sealed) == Self.sealed)
            #expect(try cipher.open(sealed, aad: Self.aad, nonce: Self.nonce, keyID: "k") == Self.plaintext)
            // A refused value throws away its context; the next call still gets the right answer.
            var tampered = sealed
            tampered[tampered.count - 1] ^= 1
            #expect(throws: PIICipher.Failure.self) { try cipher.open(tampered, aad: Self.aad, nonce: Self.nonce, keyID: "k") }
            #expect(throws: PIICipher.Failure.self) { try cipher.open(sealed, aad: [], nonce: Self.nonce, keyID: "k") }
        }
        // No AAD and an empty plaintext: only the tag (test case 13 with the AAD of none and the zero key).
        let zero = try PIICipher(keys: ["z": [UInt8](repeating: 0, count: 32)], activeKeyID: "z")
        #expect(Self.hex(try zero.seal([], aad: [], nonce: [UInt8](repeating: 0, count: 12), keyID: "z")) == "530f8afbc74536b9a963b4f1c4cb738b")
    }

    @Test func keyedHMACGivesTheRFC4231AnswersOnEveryReuse() {
        let jefe = KeyedHMACSHA256(key: Array("Jefe".utf8))
        let other = KeyedHMACSHA256(key: [UInt8](repeating: 0x0b, count: 20))
        for _ in 0..<3 {
            #expect(Self.hex(jefe.mac("what do ya want for nothing?")) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
            #expect(Self.hex(other.mac("Hi There")) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
            #expect(jefe.mac("") == HMACSHA256.mac(key: Array("Jefe".utf8), message: []))
        }
    }

    @Test func contextsServeManyThreadsAtOnce() async throws {
        let cipher = try PIICipher(keys: ["k": Self.key], activeKeyID: "k")
        let keyer = IdentityKeyer(pepper: Array("pepper-0123456789".utf8))
        let expected = keyer.key(kind: "phone", normalized: "+8613800138000")
        let nonces = try await withThrowingTaskGroup(of: [[UInt8]].self) { group in
            for task in 0..<8 {
                group.addTask {
                    var nonces: [[UInt8]] = []
                    for index in 0..<500 {
                        let text = "+86138\(task)\(index)"
                        let value = try cipher.encrypt(text, field: "phone")
                        guard try cipher.decrypt(value, field: "phone") == text else { throw CancellationError() }
                        guard keyer.key(kind: "phone", normalized: "+8613800138000") == expected else { throw CancellationError() }
                        nonces.append(Array(value.nonce))
                    }
                    return nonces
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(nonces.count == 4_000 && Set(nonces).count == 4_000, "every encryption draws its own nonce")
        #expect(nonces.allSatisfy { $0.count == 12 })
    }
}
