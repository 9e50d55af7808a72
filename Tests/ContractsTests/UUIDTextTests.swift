import FastText
import Foundation
import PropertyBased
import Testing

/// PostgreSQL's uuid columns are read with a hand-written parser; on the canonical form it must give what Foundation's
/// `UUID(uuidString:)` gives, and it refuses everything else (Foundation's `sscanf` lets a few malformed texts through).
@Suite("UUID text")
struct UUIDTextTests {
    @Test func canonicalTextParsesAsFoundationParsesIt() async {
        await propertyCheck(count: 3_000, input: Gen.uint64(), Gen.uint64()) { high, low in
            let id = UUID(uuid: withUnsafeBytes(of: (high, low)) { $0.load(as: uuid_t.self) })
            #expect(UUID(canonicalText: id.lowercasedText) == id)
            #expect(UUID(canonicalText: id.uuidString) == id, "upper case, as Foundation writes it")
            #expect(UUID(uuidString: id.lowercasedText) == id)
        }
    }

    @Test(arguments: [
        "", "0", "01a23d6b-11a5-7844-b3d4-d60e982ea84", "01a23d6b-11a5-7844-b3d4-d60e982ea8411", "01a23d6b11a5-7844-b3d4-d60e982ea8411",
        "01a23d6b-11a5-7844-b3d4_d60e982ea841", "01a23d6g-11a5-7844-b3d4-d60e982ea841", "{01a23d6b-11a5-7844-b3d4-d60e982ea841}",
        "01a23d6b-11a5-7844-b3d4-d60e982ea84 ", "01a23d6b-11a5-7844-b3d4-d60e982ea8é", "01a23d6b-11a5-7844-b3d4-d60e982ea8\u{0}1",
    ])
    func malformedTextIsRefusedAsFoundationRefusesIt(text: String) {
        #expect(UUID(canonicalText: text) == nil)
        #expect(UUID(uuidString: text) == nil)
    }

    /// `sscanf`'s `%2hhx` skips leading spaces and reads a sign, so Foundation takes these; they are not UUIDs.
    @Test(arguments: [" 1a23d6b-11a5-7844-b3d4-d60e982ea841", "01a23d6b--1a5-7844-b3d4-d60e982ea841"])
    func textFoundationWronglyAcceptsIsRefused(text: String) {
        #expect(UUID(canonicalText: text) == nil)
    }

    @Test func mixedCaseParses() {
        let text = "01A23d6B-11a5-7844-B3D4-d60e982ea841"
        #expect(UUID(canonicalText: text) == UUID(uuidString: text) && UUID(canonicalText: text) != nil)
    }
}
