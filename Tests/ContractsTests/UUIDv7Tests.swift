import Contracts
import FastText
import Foundation
import Testing

@Suite("UUIDv7 and its text form")
struct UUIDv7Tests {
    @Test func versionVariantTimeOrderAndTextForm() {
        let early = Date(timeIntervalSince1970: 1_780_000_000)
        var previous = ""
        var seen = Set<UUID>()
        for i in 0..<1_000 {
            let id = UUIDv7.generate(at: early + Double(i) / 100)
            let text = id.lowercasedText
            #expect(text == id.uuidString.lowercased())
            #expect(Array(text)[14] == "7", "version 7")
            #expect("89ab".contains(Array(text)[19]), "RFC 9562 variant")
            #expect(text.prefix(13) >= previous.prefix(13), "sorts by time")
            previous = text
            seen.insert(id)
        }
        #expect(seen.count == 1_000, "random bits differ")
        let millis = UInt64(early.timeIntervalSince1970 * 1_000)
        #expect(UUIDv7.generate(at: early).lowercasedText.replacingOccurrences(of: "-", with: "").prefix(12) == String(millis, radix: 16).leftPadded(12))
    }

    @Test func theLowestIDOfAMillisecondBoundsEveryIDOfThatTimeAndLater() {
        for i in 0..<1_000 {
            // Mid-millisecond instants: Double seconds near 1.78e9 are exact to well under a microsecond.
            let at = Date(timeIntervalSince1970: Double(1_780_000_000_123 + i * 7) / 1_000 + 0.000_4)
            let id = UUIDv7.generate(at: at).lowercasedText
            #expect(UUIDv7.lowest(at: at).lowercasedText <= id)
            #expect(id < UUIDv7.lowest(at: at + 0.001).lowercasedText)
            #expect(UUIDv7.lowest(at: at).lowercasedText > UUIDv7.generate(at: at - 0.001).lowercasedText)
        }
    }

    @Test func eventsDecodeFromProtobufAndJSON() throws {
        var lead = Funnel_Leads_V1_LeadCaptured()
        lead.leadID = "l-1"
        lead.phoneMasked = "138****8000"
        let bytes: [UInt8] = try lead.serializedBytes()
        #expect(try EventDecoder.decode(Funnel_Leads_V1_LeadCaptured.self, payload: bytes, contentType: .protobuf) == lead)
        let json = Array(#"{"leadId": "l-1", "phone_masked": "138****8000"}"#.utf8)
        #expect(try EventDecoder.decode(Funnel_Leads_V1_LeadCaptured.self, payload: json, contentType: .json) == lead)
        #expect(throws: EventDecodingError.self) { try EventDecoder.decode(Funnel_Leads_V1_LeadCaptured.self, payload: Array("{".utf8), contentType: .json) }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
