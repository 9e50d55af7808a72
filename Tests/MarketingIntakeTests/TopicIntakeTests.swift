import Contracts
import Foundation
import Kafka
@testable import MarketingIntake
import ServiceKit
import SwiftProtobuf
import Testing
import TestSupport

@Suite("marketing-intake from the topic")
struct TopicIntakeTests {
    func json(_ text: String) -> (value: [UInt8], headers: [KafkaHeader]) {
        (Array(text.utf8), [KafkaHeader(key: "content-type", text: "application/json")])
    }

    @Test func jsonAndProtobufLeadsAreEmittedAndBadOnesDeadLetteredWithReasons() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource(channel: "feed")
        var proto = Funnel_Marketing_V1_CampaignLead()
        proto.source = source.name
        proto.phone = "0086-13912345678"
        proto.platformLeadID = "pb-1"
        let protoPayload: [UInt8] = try proto.serializedBytes()
        try await intake.pushToTopic([
            json(#"{"source": "\#(source.name)", "phone": "+86 138 0013 8000", "platformLeadId": "j-1", "channel": "sem"}"#),
            (protoPayload, [KafkaHeader(key: "content-type", text: "application/protobuf")]),
            (Array(#"{"source": "\#(source.name)", "wechat": "wx_abc", "platform_lead_id": "bare-json"}"#.utf8), []),  // no content-type
            json(#"{"source": "\#(source.name)", "phone": "12345"}"#),           // invalid phone
            json(#"{"source": "no-such-source", "phone": "13800138000"}"#),       // unknown source
            json(#"{"source": "\#(source.name)", "phone": "13800138000", "channel": "radio"}"#),  // unknown channel
            json(#"{"source": "\#(source.name)""#),                              // malformed JSON
            ([0xFF, 0x01, 0x02], [KafkaHeader(key: "content-type", text: "application/protobuf")]),  // malformed protobuf
            json(#"{"source": "\#(source.name)"}"#),                               // no contact
            ([1], [KafkaHeader(key: "content-type", text: "text/csv")]),          // unsupported content type
        ])
        let events = try await intake.readOutput(atLeast: 3)
        #expect(Set(events.map(\.platformLeadID)) == ["j-1", "pb-1", "bare-json"])
        #expect(events.first { $0.platformLeadID == "pb-1" }?.attribution.channel == "feed", "the source's default channel")
        #expect(events.allSatisfy { $0.receivedVia == "topic" })

        let dead = try await intake.readDeadLetters(atLeast: 7)
        let codes = dead.compactMap { $0.header("dlq_error_code") }.sorted()
        #expect(codes == ["invalid_phone", "malformed_json", "malformed_protobuf", "missing_contact", "unknown_channel", "unknown_source", "unsupported_content_type"])
        for record in dead {
            #expect(record.header("dlq_original_topic") == intake.prefix + "marketing.campaign-leads.v1")
            #expect(record.header("dlq_original_offset") != nil && record.header("dlq_original_partition") != nil)
            #expect(record.header("dlq_error_reason")?.isEmpty == false)
            #expect(record.header("dlq_service") == "marketing-intake")
            #expect(!(record.header("dlq_error_reason") ?? "").contains("13800138000"))
        }
        // The original payload is kept for replay.
        #expect(dead.contains { $0.value == [0xFF, 0x01, 0x02] })
    }

    @Test func redeliveredRecordsAndRepeatedPlatformIDsAreEmittedOnce() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource()
        let withID: (String, String) -> (value: [UInt8], headers: [KafkaHeader]) = { ceID, body in
            (Array(body.utf8), [KafkaHeader(key: "content-type", text: "application/json"), KafkaHeader(key: "ce_id", text: ceID)])
        }
        try await intake.pushToTopic([
            withID("evt-1", #"{"source": "\#(source.name)", "phone": "13800138001", "platformLeadId": "a"}"#),
            withID("evt-1", #"{"source": "\#(source.name)", "phone": "13800138001", "platformLeadId": "a"}"#),  // same record again
            withID("evt-2", #"{"source": "\#(source.name)", "phone": "13800138001", "platformLeadId": "a"}"#),  // platform retried
            withID("evt-3", #"{"source": "\#(source.name)", "phone": "13800138002", "platformLeadId": "b"}"#),
        ])
        let events = try await intake.readOutput(atLeast: 2, settle: .seconds(2))
        #expect(events.map(\.platformLeadID).sorted() == ["a", "b"])
    }
}
