import Contracts
import Foundation
import HTTPTypes
import Kafka
@testable import MarketingIntake
import Postgres
import ServiceKit
import Testing
import TestSupport

@Suite("marketing-intake abuse limits")
struct AbuseLimitTests {
    @Test func aClientIPOverItsRateGets429WithRetryAfter() async throws {
        var configuration = IntakeConfiguration()
        // One token per 100 s (a burst of 1): a slow, loaded machine cannot refill it mid-test. RateLimiterTests
        // check rates and bursts against an injected clock.
        configuration.ipRate = 0.01
        configuration.clientIPHeader = HTTPField.Name("X-Forwarded-For")
        let intake = try await IntakeHarness.start(configuration: configuration)
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource()
        func post(_ i: Int, ip: String) async throws -> (HTTPResponse.Status, [String: Any], HTTPFields) {
            try await intake.request(.post, "/v1/leads", body: #"{"phone": "+86 137 0000 00\#(String(format: "%02d", i))"}"#,
                                     headers: [.authorization: "Bearer \(source.key)", HTTPField.Name("X-Forwarded-For")!: "\(ip), 10.0.0.1"])
        }
        var statuses: [HTTPResponse.Status] = []
        for i in 0..<2 { statuses.append(try await post(i, ip: "203.0.113.7").0) }
        #expect(statuses == [.accepted, .tooManyRequests])
        let (limited, json, headers) = try await post(9, ip: "203.0.113.7")
        #expect(limited == .tooManyRequests && json["code"] as? String == "rate_limited")
        #expect(headers[.retryAfter].flatMap(Int.init).map { $0 >= 1 } == true)
        // Another client is not affected.
        #expect(try await post(10, ip: "198.51.100.2").0 == .accepted)
    }

    @Test func aSourceOverItsRateGets429OnEveryLeadRoute() async throws {
        var configuration = IntakeConfiguration()
        configuration.sourceRate = 0.01  // a burst of 1, refilled in 100 s
        configuration.ipRate = 1_000
        let intake = try await IntakeHarness.start(configuration: configuration)
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource()
        let other = try await intake.createSource()
        var statuses: [HTTPResponse.Status] = []
        for i in 0..<2 { statuses.append(try await intake.postLead(#"{"phone": "+86 137 0000 01\#(i)0"}"#, key: source.key).0) }
        #expect(statuses == [.accepted, .tooManyRequests])
        #expect(try await intake.postLead(#"{"phone": "+86 137 0000 0199"}"#, key: other.key).0 == .accepted)
        // The webhook route of the exhausted source is limited too, before any work.
        let (webhook, json, headers) = try await intake.request(.post, "/v1/webhooks/\(source.id)", body: "{}")
        #expect(webhook == .tooManyRequests && json["code"] as? String == "rate_limited" && headers[.retryAfter] != nil)
    }

    @Test func theSamePhoneFloodedIsOneLeadPlusCountedDuplicates() async throws {
        var configuration = IntakeHarness.roomyConfiguration
        // Long enough that a starved CI machine still handles the flood and the topic record inside the window.
        configuration.floodWindow = .seconds(20)
        let intake = try await IntakeHarness.start(configuration: configuration)
        defer { Task { await intake.stop() } }
        try await intake.waitReady()
        let source = try await intake.createSource()
        let other = try await intake.createSource()
        // 20 posts of one number at once, from two sources: exactly one lead.
        let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
            for i in 0..<20 {
                group.addTask {
                    let (status, json) = try await intake.postLead(#"{"phone": "138 1111 2222", "name": "flood \#(i)"}"#, key: i % 2 == 0 ? source.key : other.key)
                    return (status, json["lead_id"] as? String)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses.filter { $0.0 == .accepted }.count == 1)
        #expect(statuses.filter { $0.0 == .ok }.count == 19)
        #expect(Set(statuses.compactMap(\.1)).count == 1, "every duplicate names the one lead")
        let schema = intake.settings.schema
        let (leads, flooded) = try await intake.runtime.postgres.query(
            "SELECT count(*), coalesce(sum(flood_duplicates), 0)::bigint FROM \(identifier: schema).leads").first!.decode(Int.self, Int.self)
        #expect(leads == 1 && flooded == 19)
        // From the topic the same number is also a duplicate within the window.
        try await intake.pushToTopic([(Array(#"{"source": "\#(source.name)", "phone": "+86 138 1111 2222"}"#.utf8),
                                       [KafkaHeader(key: "content-type", text: "application/json")])])
        let deadline = ContinuousClock.now + .seconds(15)
        var counted = 0
        while counted < 20, ContinuousClock.now < deadline {
            counted = try await intake.runtime.postgres.query("SELECT sum(flood_duplicates)::bigint FROM \(identifier: schema).leads").first!.decode(Int.self)
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(counted == 20)
        #expect(try await intake.readOutput(atLeast: 1, settle: .seconds(1)).count == 1)
        // After the window the number is a new lead again.
        let first = try await intake.runtime.postgres.query("SELECT min(received_at) FROM \(identifier: schema).leads").first!.decode(Date.self)
        try await Task.sleep(for: .milliseconds(Int64(max(0, first.addingTimeInterval(20.2).timeIntervalSinceNow) * 1_000)))
        #expect(try await intake.postLead(#"{"phone": "138 1111 2222"}"#, key: source.key).0 == .accepted)
        let after = try await intake.runtime.postgres.query("SELECT count(*), sum(flood_duplicates)::bigint FROM \(identifier: schema).leads").first!.decode(Int.self, Int.self)
        #expect(after == (2, 20))
    }
}
