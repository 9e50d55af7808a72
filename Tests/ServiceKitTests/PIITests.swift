import Contracts
import Foundation
import ServiceKit
import Testing

@Suite("PII helpers")
struct PIITests {
    @Test(arguments: ["+86 138 0013 8000", "0086-13800138000", "86 13800138000", "(+86)13800138000", "138-0013-8000", "１３８００１３８０００", "13800138000"])
    func chineseMobileNumbersNormaliseToE164(input: String) throws {
        let phone = try PhoneNumber.parse(input)
        #expect(phone.e164 == "+8613800138000")
        #expect(phone.type == "mobile" && phone.regionCode == "CN" && phone.geo == "北京市")
        #expect(phone.masked == "138****8000")
    }

    @Test func regionsAndTypesComeFromLibphonenumber() throws {
        #expect(try PhoneNumber.parse("+8613812345678").geo == "江苏省连云港市")
        #expect(try PhoneNumber.parse("+16502530000").geo == "美国")
        let fixed = try PhoneNumber.parse("010-6552 9988")
        #expect(fixed.e164 == "+861065529988" && fixed.type == "fixed-line" && fixed.geo == "北京市")
    }

    /// Types that are not geographical are described by their country, as libphonenumber's own
    /// GetDescriptionForNumber does (the shim takes a shorter path for geographical ones).
    @Test(arguments: [("+86 800 810 8888", "toll-free", "中国"), ("+44 800 123 4567", "toll-free", "英国"),
                      ("+16502530000", "fixed-line-or-mobile", "美国")])
    func nonGeographicalNumbersAreDescribedByTheirCountry(input: String, type: String, geo: String) throws {
        let phone = try PhoneNumber.parse(input)
        #expect(phone.type == type && phone.geo == geo)
    }

    @Test(arguments: [("1380013800", PhoneNumber.Invalid.Reason.invalidForRegion), ("23800138000", .invalidForRegion),
                      ("hello", .notANumber), ("", .empty), ("+999 1234", .invalidCountryCode), (String(repeating: "1", count: 70), .tooLong)])
    func invalidNumbersSayWhy(input: String, reason: PhoneNumber.Invalid.Reason) {
        #expect(throws: PhoneNumber.Invalid(reason: reason)) { try PhoneNumber.parse(input) }
    }

    @Test func identityKeysAreStablePerPepperAndKind() {
        let a = IdentityKeyer(pepper: Array("pepper-one-0123456789".utf8))
        let b = IdentityKeyer(pepper: Array("pepper-two-0123456789".utf8))
        #expect(a.key(kind: "phone", normalized: "+8613800138000") == a.key(kind: "phone", normalized: "+8613800138000"))
        #expect(a.key(kind: "phone", normalized: "+8613800138000") != b.key(kind: "phone", normalized: "+8613800138000"))
        #expect(a.key(kind: "phone", normalized: "x") != a.key(kind: "email", normalized: "x"))
        #expect(a.key(kind: "phone", normalized: "+8613800138000").count == 64)
        // RFC 4231 test case 2.
        let mac = HMACSHA256.mac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(mac.map { String(format: "%02x", $0) }.joined() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func encryptionRoundTripsRotatesAndRejectsTampering() throws {
        let old = [UInt8](repeating: 1, count: 32)
        let new = [UInt8](repeating: 2, count: 32)
        let before = try PIICipher(keys: ["k1": old], activeKeyID: "k1")
        let sealed = try before.encrypt("+8613800138000", field: "phone")
        #expect(sealed.keyID == "k1" && sealed.nonce.count == 12)
        #expect(!String(decoding: sealed.ciphertext, as: UTF8.self).contains("13800138000"))
        let after = try PIICipher(keys: ["k1": old, "k2": new], activeKeyID: "k2")
        #expect(try after.decrypt(sealed, field: "phone") == "+8613800138000", "old values still decrypt after rotation")
        #expect(try after.encrypt("x", field: "phone").keyID == "k2")
        #expect(throws: PIICipher.Failure.self) { try after.decrypt(sealed, field: "email") }
        var tampered = sealed
        tampered.ciphertext[0] ^= 0x01
        #expect(throws: PIICipher.Failure.self) { try after.decrypt(tampered, field: "phone") }
        let withoutOld = try PIICipher(keys: ["k2": new], activeKeyID: "k2")
        #expect(throws: PIICipher.Failure.self) { try withoutOld.decrypt(sealed, field: "phone") }
        #expect(throws: PIICipher.Failure.self) { try PIICipher(keys: ["k": [1, 2, 3]], activeKeyID: "k") }
        // Equal plaintexts encrypt differently (random nonce).
        #expect(try after.encrypt("same", field: "phone").ciphertext != after.encrypt("same", field: "phone").ciphertext)
    }

    @Test func masksHideEnough() {
        #expect(Masking.phone("+8613800138000") == "138****8000")
        #expect(Masking.phone("+16502530000") == "165****0000")
        #expect(Masking.phone("+861234") == "******")
        #expect(Masking.email("zhang.san@example.com") == "z***@example.com")
        #expect(Masking.name("张三丰") == "张**")
        #expect(Masking.name("A") == "A*")
    }
}

@Suite("Settings")
struct SettingsTests {
    let base = ["FUNNEL_PII_PEPPER": "0123456789abcdef0123", "FUNNEL_PII_KEYS": "k1:" + Data(repeating: 7, count: 32).base64EncodedString(), "FUNNEL_ADMIN_TOKEN": "a-long-admin-token",
                "FUNNEL_JWT_SECRET": "a-jwt-secret-of-at-least-32-bytes-long"]

    @Test func defaultsRunTheEmbeddedStack() throws {
        let settings = try ServiceSettings.fromEnvironment(service: "marketing-intake", defaultHTTPPort: 8081, environment: [:])
        #expect(settings.schema == "marketing_intake" && settings.httpPort == 8081 && settings.kafkaBootstrap == "127.0.0.1:9092")
        #expect(settings.usesDevelopmentSecrets)
        let production = try ServiceSettings.fromEnvironment(service: "x", defaultHTTPPort: 1, environment: base.merging(["FUNNEL_KAFKA_PROPERTIES": "security.protocol=SASL_SSL"]) { $1 })
        #expect(!production.usesDevelopmentSecrets && production.kafkaProperties["security.protocol"] == "SASL_SSL")
        #expect(production.jwtSecret == Array("a-jwt-secret-of-at-least-32-bytes-long".utf8))
    }

    @Test(arguments: [("FUNNEL_HTTP_PORT", "eighty"), ("FUNNEL_HTTP_PORT", "70000"), ("FUNNEL_LOG_FORMAT", "xml"), ("FUNNEL_PII_PEPPER", "short"),
                      ("FUNNEL_PII_KEYS", "k1:notbase64"), ("FUNNEL_PII_ACTIVE_KEY", "k9"), ("FUNNEL_SCHEMA", "Bad-Schema"),
                      ("FUNNEL_KAFKA_PROPERTIES", "novalue"), ("FUNNEL_ADMIN_TOKEN", "short"), ("FUNNEL_TOPIC_PREFIX", "a b"),
                      ("FUNNEL_JWT_SECRET", "too-short-for-hs256"), ("FUNNEL_JWT_SECRET", "base64:%%%")])
    func badValuesNameTheVariable(variable: String, value: String) {
        var environment = base
        environment[variable] = value
        do {
            _ = try ServiceSettings.fromEnvironment(service: "x", defaultHTTPPort: 1, environment: environment)
            Issue.record("\(variable)=\(value) must be refused")
        } catch let error as ConfigurationError {
            #expect(error.variable == variable)
            if variable == "FUNNEL_PII_PEPPER" { #expect(!error.description.contains(value)) }
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
