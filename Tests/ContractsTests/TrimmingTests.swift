import FastText
import Foundation
import PropertyBased
import Testing

/// FastText's trimming must agree with Foundation's `trimmingCharacters(in:)` for the character sets it replaces.
@Suite struct TrimmingTests {
    static let pool: [Character] = [
        " ", "\t", "\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{A0}", "\u{1680}", "\u{2003}", "\u{2028}", "\u{2029}",
        "\u{202F}", "\u{3000}", "\u{200B}", "\u{FEFF}", "\r\n", "a", "Z", "1", "学", "员", "😀", "e\u{301}", "\u{0}", "-",
    ]

    @Test func agreesWithFoundationOnFixedCases() {
        for text in ["", " ", "\t\n", "  +86 138 0013 8000  ", "\u{3000}学员\u{3000}", "\u{A0}x\u{A0}", "\r\nabc\r\n", "\u{85}q\u{85}",
                     "\u{2028}line\u{2029}", "\u{200B}zero width\u{200B}", "e\u{301} ", " \u{301}x"] {
            #expect(text.trimmingSpaces == text.trimmingCharacters(in: .whitespaces), "\(text.unicodeScalars.map(\.value))")
            #expect(text.trimmingSpacesAndNewlines == text.trimmingCharacters(in: .whitespacesAndNewlines), "\(text.unicodeScalars.map(\.value))")
        }
    }

    @Test func agreesWithFoundationOnEveryScalarOfTheBasicPlane() async {
        for value in UInt32(0)...0xFFFF {
            // Yields now and then: the suite's other tests share the two cooperative threads.
            if value % 4_096 == 0 { await Task.yield() }
            guard let scalar = Unicode.Scalar(value) else { continue }
            let text = String(scalar) + "x" + String(scalar)
            #expect(text.trimmingSpaces == text.trimmingCharacters(in: .whitespaces), "U+\(String(value, radix: 16))")
            #expect(text.trimmingSpacesAndNewlines == text.trimmingCharacters(in: .whitespacesAndNewlines), "U+\(String(value, radix: 16))")
        }
    }

    @Test func agreesWithFoundationOnRandomStrings() async {
        let strings = Gen<Character?>.element(of: Self.pool).map { $0! }.string(of: 0...8)
        var checked = 0
        await propertyCheck(count: 5_000, input: strings) { text in
            checked += 1
            if checked % 500 == 0 { await Task.yield() }
            #expect(text.trimmingSpaces == text.trimmingCharacters(in: .whitespaces), "\(text.unicodeScalars.map(\.value))")
            #expect(text.trimmingSpacesAndNewlines == text.trimmingCharacters(in: .whitespacesAndNewlines), "\(text.unicodeScalars.map(\.value))")
            let slice = text.dropFirst()
            #expect(slice.trimmingSpaces == slice.trimmingCharacters(in: .whitespaces))
        }
    }
}
