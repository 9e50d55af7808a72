import Foundation
@testable import IdentityMerge
import Testing

@Suite("identity-merge decision details")
struct DecisionDetailTests {
    @Test func handWrittenJSONDecodesBackExactly() throws {
        var detail = DecisionDetail(
            linked: [.init(kind: "phone", mask: "138****5678", rule: "new")],
            dropped: [.init(kind: "email", mask: "a\"b\\c@例子.cn", rule: "limit:email")],
            merged: ["0190a1b2-0000-7000-8000-000000000001"], survivorRule: "registered", linkedBy: "phone"
        )
        detail.note = "line1\nline2\t\u{01} \"quoted\" 张三"
        let decoded = try JSONDecoder().decode(DecisionDetail.self, from: Data(detail.json.utf8))
        #expect(decoded.linked.map(\.mask) == ["138****5678"] && decoded.dropped.map(\.mask) == ["a\"b\\c@例子.cn"])
        #expect(decoded.note == detail.note && decoded.survivorRule == "registered" && decoded.linkedBy == "phone")
        #expect(decoded.merged == detail.merged)
        let empty = try JSONDecoder().decode(DecisionDetail.self, from: Data(DecisionDetail().json.utf8))
        #expect(empty.linked.isEmpty && empty.note == nil)
    }
}
