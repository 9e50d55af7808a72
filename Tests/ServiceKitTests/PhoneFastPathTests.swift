import Foundation
import PropertyBased
import ServiceKit
import Testing

/// The shim reads mainland mobile numbers in their common ASCII shapes without libphonenumber's `Parse`. The same
/// input with full-width digits means the same number but always goes through `Parse`, so the two must agree on
/// every outcome: the E.164 form, type, region and place, or the refusal and its reason.
@Suite("Phone numbers: the mainland mobile shortcut agrees with Parse")
struct PhoneFastPathTests {
    /// The outcome of parsing `input`, as text that two outcomes can be compared by.
    static func outcome(_ input: String, region: String = "CN") -> String {
        do {
            let phone = try PhoneNumber.parse(input, defaultRegion: region)
            return "\(phone.e164) \(phone.type) \(phone.regionCode) \(phone.geo)"
        } catch {
            return "invalid \(error.reason)"
        }
    }

    /// `text` with every ASCII digit written full-width (U+FF10…U+FF19), which only `Parse` reads.
    static func fullWidth(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            ("0"..."9").contains(scalar) ? Unicode.Scalar(scalar.value - 0x30 + 0xFF10)! : scalar
        }))
    }

    static let shapes: [@Sendable (String) -> String] = [
        { $0 }, { "+86\($0)" }, { "+86 \($0)" }, { "+86-\($0)" }, { "0086\($0)" }, { "0086-\($0)" },
        { "\($0.prefix(3))-\($0.dropFirst(3).prefix(4))-\($0.suffix(4))" },
        { "+86 \($0.prefix(3)) \($0.dropFirst(3).prefix(4)) \($0.suffix(4))" },
        { "86\($0)" }, { "+8\($0)" }, { "\($0)0" }, { "\($0.dropLast())" }, { "\($0)  " }, { "+86  \($0)" },
    ]

    @Test func everyShapeOfEveryPrefixAgreesWithParse() async {
        // Prefixes 100–199 cover the shortcut's numbers (13x–19x) and those it leaves to Parse (11x, 12x, 179).
        var checked = 0
        await propertyCheck(count: 3_000, input: Gen.int(in: 100...199), Gen.int(in: 0...99_999_999)) { prefix, rest in
            let national = String(format: "%03d%08d", prefix, rest)
            checked += 1
            if checked % 300 == 0 { await Task.yield() }
            for shape in Self.shapes {
                let input = shape(national)
                #expect(Self.outcome(input) == Self.outcome(Self.fullWidth(input)), "\(input)")
            }
            // With another default region only the +86 shapes are the shortcut's; 0086 and bare numbers are not.
            for input in ["+86\(national)", "0086\(national)", national] {
                #expect(Self.outcome(input, region: "US") == Self.outcome(Self.fullWidth(input), region: "US"), "US: \(input)")
            }
        }
    }

    @Test func shortcutNumbersKeepTheirTypeAndPlace() {
        #expect(Self.outcome("+86 138 0013 8000") == "+8613800138000 mobile CN 北京市")
        #expect(Self.outcome("0086-13812345678") == "+8613812345678 mobile CN 江苏省连云港市")
        // A carrier-selection prefix before a number is stripped by Parse, never read as an 11-digit number.
        #expect(Self.outcome("17951 13800138000") == Self.outcome(Self.fullWidth("17951 13800138000")))
    }
}
