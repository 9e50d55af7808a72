import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Kafka
@testable import MarketingIntake
import ServiceKit
import Testing
import TestSupport

@Suite("marketing-intake costs and cost per lead")
struct CostStatsTests {
    /// Two days of leads and spend, with test leads, a redelivery and a flood repeat, in Asia/Shanghai days.
    func seed(_ intake: IntakeHarness) async throws -> (id: String, name: String, key: String) {
        let source = try await intake.createSource(channel: "sem")
        // 2026-11-30 in Shanghai: 3 real leads of c1 (one redelivered, one repeated phone), 1 test lead of c1, 1 lead of c2 on feed.
        // 00:30 Shanghai on 2026-12-01 is still 2026-11-30 in UTC: it must count on 12-01.
        let leads: [(String, HTTPResponse.Status)] = [
            (#"{"phone": "139 0000 1001", "campaign_id": "c1", "platform_lead_id": "a", "occurred_at": "2026-11-30T09:00:00+08:00"}"#, .accepted),
            (#"{"phone": "139 0000 1001", "campaign_id": "c1", "platform_lead_id": "a", "occurred_at": "2026-11-30T09:00:00+08:00"}"#, .ok),
            (#"{"phone": "139 0000 1002", "campaign_id": "c1", "occurred_at": "2026-11-30T10:00:00+08:00"}"#, .accepted),
            (#"{"phone": "139 0000 1002", "campaign_id": "c1", "occurred_at": "2026-11-30T10:00:30+08:00"}"#, .ok),
            (#"{"phone": "139 0000 1003", "campaign_id": "c1", "occurred_at": "2026-11-30T23:59:00+08:00"}"#, .accepted),
            (#"{"phone": "139 0000 1004", "campaign_id": "c1", "is_test": true, "occurred_at": "2026-11-30T11:00:00+08:00"}"#, .accepted),
            (#"{"phone": "139 0000 1005", "campaign_id": "c2", "channel": "feed", "occurred_at": "2026-11-30T12:00:00+08:00"}"#, .accepted),
            (#"{"phone": "139 0000 1006", "campaign_id": "c1", "occurred_at": "2026-12-01T00:30:00+08:00"}"#, .accepted),
            (#"{"phone": "139 0000 1007", "occurred_at": "2026-12-01T08:00:00+08:00"}"#, .accepted),
        ]
        for (body, expected) in leads {
            let (status, json) = try await intake.postLead(body, key: source.key)
            #expect(status == expected, "\(body): \(json)")
        }
        let (stored, json, _) = try await intake.request(.post, "/v1/costs", body: """
            {"costs": [{"channel": "sem", "campaign_id": "c1", "day": "2026-11-30", "spend_minor": 90000},
                       {"channel": "sem", "campaign_id": "c1", "day": "2026-11-30", "spend_minor": 100000, "currency": "CNY"},
                       {"channel": "feed", "campaign_id": "c2", "day": "2026-11-30", "spend_minor": 5000, "clicks": 40, "impressions": 1000},
                       {"channel": "sem", "campaign_id": "c3", "day": "2026-11-30", "spend_minor": 7000},
                       {"channel": "sem", "campaign_id": "c1", "day": "2026-12-01", "spend_minor": 3001}]}
            """, headers: intake.admin)
        #expect(stored == .ok && json["stored"] as? Int == 4, "the last of a repeated channel/campaign/day wins")
        return source
    }

    func stats(_ intake: IntakeHarness, _ query: String) async throws -> [[String: Any]] {
        let (status, json, _) = try await intake.request(.get, "/v1/stats/leads?\(query)", headers: intake.admin)
        #expect(status == .ok, "\(json)")
        return json["rows"] as? [[String: Any]] ?? []
    }

    @Test func costPerLeadMatchesHandComputedFigures() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        _ = try await seed(intake)
        let rows = try await stats(intake, "from=2026-11-30&to=2026-12-01")
        func row(_ day: String, _ channel: String, _ campaign: String) -> [String: Any]? {
            rows.first { $0["day"] as? String == day && $0["channel"] as? String == channel && $0["campaign_id"] as? String == campaign }
        }
        // c1 on 11-30: 3 leads (a, 1002, 1003), 1 test lead, 2 duplicates (a's redelivery, 1002's repeat); 100000 / 3 = 33333.33 → 33333.
        let c1 = try #require(row("2026-11-30", "sem", "c1"))
        #expect(c1["leads"] as? Int == 3 && c1["test_leads"] as? Int == 1 && c1["duplicates"] as? Int == 2)
        #expect(c1["spend_minor"] as? Int == 100_000 && c1["cost_per_lead_minor"] as? Int == 33_333)
        let c2 = try #require(row("2026-11-30", "feed", "c2"))
        #expect(c2["leads"] as? Int == 1 && c2["spend_minor"] as? Int == 5_000 && c2["cost_per_lead_minor"] as? Int == 5_000)
        let c3 = try #require(row("2026-11-30", "sem", "c3"), "spend without leads is still shown")
        #expect(c3["leads"] as? Int == 0 && c3["spend_minor"] as? Int == 7_000 && c3["cost_per_lead_minor"] is NSNull)
        let dec1 = try #require(row("2026-12-01", "sem", "c1"))
        #expect(dec1["leads"] as? Int == 1 && dec1["spend_minor"] as? Int == 3_001 && dec1["cost_per_lead_minor"] as? Int == 3_001)
        let noCampaign = try #require(row("2026-12-01", "sem", ""))
        #expect(noCampaign["leads"] as? Int == 1 && noCampaign["spend_minor"] as? Int == 0)
        #expect(rows.count == 5)

        // By channel only: sem = 5 leads, 110001 spend → 22000.2 → 22000; feed = 1 lead, 5000.
        let byChannel = try await stats(intake, "from=2026-11-30&to=2026-12-01&group_by=channel")
        #expect(byChannel.count == 2)
        let sem = try #require(byChannel.first { $0["channel"] as? String == "sem" })
        #expect(sem["leads"] as? Int == 5 && sem["spend_minor"] as? Int == 110_001 && sem["cost_per_lead_minor"] as? Int == 22_000 && sem["day"] == nil)
        // One day, one campaign filter.
        let one = try await stats(intake, "from=2026-12-01&to=2026-12-01&group_by=day&campaign_id=c1")
        #expect(one.count == 1 && one.first?["leads"] as? Int == 1 && one.first?["spend_minor"] as? Int == 3_001)

        // CSV, with a header row.
        let response = try await TestClient.withClient(host: "127.0.0.1", port: intake.port) { client in
            try await client.execute(.init("/v1/stats/leads?from=2026-11-30&to=2026-11-30&group_by=campaign&format=csv", method: .get, headers: intake.admin))
        }
        #expect(response.status == .ok && response.headers[.contentType]?.hasPrefix("text/csv") == true)
        let lines = String(buffer: response.body!).split(whereSeparator: \.isNewline).map(String.init)
        #expect(lines == ["campaign_id,leads,test_leads,duplicates,spend_minor,cost_per_lead_minor,currency",
                          "c1,3,1,2,100000,33333,CNY", "c2,1,0,0,5000,5000,CNY", "c3,0,0,0,7000,,CNY"])
    }

    @Test func badCostsAndBadQueriesAreProblemsAndStoreNothing() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let (status, json, _) = try await intake.request(.post, "/v1/costs", body: """
            {"costs": [{"channel": "sem", "campaign_id": "ok", "day": "2026-11-30", "spend_minor": 1},
                       {"channel": "tv", "campaign_id": "x", "day": "2026-02-30", "spend_minor": -5, "currency": "USD"},
                       {"channel": "sem", "day": "2026-11-30", "spend_minor": 1},
                       {"channel": "sem", "campaign_id": "y", "day": "30/11/2026", "spend_minor": "lots"},
                       {"channel": "sem", "campaign_id": "nul\\u0000", "day": "2026-11-30", "spend_minor": 1}]}
            """, headers: intake.admin)
        #expect(status == .unprocessableContent)
        let errors = (json["errors"] as? [[String: Any]] ?? []).map { "\($0["field"] as? String ?? "") \($0["code"] as? String ?? "")" }
        #expect(Set(errors) == ["costs[1].channel unknown_channel", "costs[1].day invalid_day", "costs[1].spend_minor negative_spend",
                                "costs[1].currency unsupported_currency", "costs[2].campaign_id missing_campaign_id", "costs[3] malformed_cost",
                                "costs[4].campaign_id invalid_character"])
        #expect(try await stats(intake, "from=2026-11-30&to=2026-11-30").isEmpty, "nothing stored from a refused batch")
        let (malformed, m, _) = try await intake.request(.post, "/v1/costs", body: "[1, 2", headers: intake.admin)
        #expect(malformed == .badRequest && m["code"] as? String == "malformed_json")
        let (noAuth, _, _) = try await intake.request(.post, "/v1/costs", body: "{}")
        #expect(noAuth == .unauthorized)
        for (query, field) in [("to=2026-11-30", "from"), ("from=2026-11-30&to=null", "to"), ("from=2026-13-01&to=2026-13-02", "from"), ("from=2026-11-30&to=2026-11-01", "to"), ("from=2026-01-01&to=2027-06-01", "to"),
                               ("from=2026-11-30&to=2026-11-30&group_by=week", "group_by"), ("from=2026-11-30&to=2026-11-30&format=xml", "format"),
                               ("from=2026-11-30&to=2026-11-30&channel=tv", "channel")] {
            let (s, j, _) = try await intake.request(.get, "/v1/stats/leads?\(query)", headers: intake.admin)
            #expect(s == .unprocessableContent && (j["errors"] as? [[String: Any]])?.first?["field"] as? String == field, "\(query)")
        }
        #expect(try await intake.request(.get, "/v1/stats/leads?from=2026-11-30&to=2026-11-30").0 == .unauthorized)
        // A NUL in a query parameter is the client's error, not the server's (found by schemathesis).
        let (nul, n, _) = try await intake.request(.get, "/v1/stats/leads?from=2026-11-30&to=2026-11-30&campaign_id=a%00b", headers: intake.admin)
        #expect(nul == .unprocessableContent && (n["errors"] as? [[String: Any]])?.first?["code"] as? String == "invalid_character")
    }

    @Test func costsFromTheTopicAreStoredAndBadOnesDeadLettered() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        var proto = Funnel_Marketing_V1_CampaignCost()
        proto.channel = "feed"
        proto.campaignID = "t2"
        proto.day = "2026-11-29"
        proto.spendMinor = 4_200
        let json = [KafkaHeader(key: "content-type", text: "application/json")]
        try await intake.pushToTopic([
            (Array(#"{"channel": "sem", "campaign_id": "t1", "day": "2026-11-29", "spend_minor": "12345"}"#.utf8), json),
            (try proto.serializedBytes(), [KafkaHeader(key: "content-type", text: "application/protobuf")]),
            (Array(#"{"channel": "sem", "campaign_id": "t3", "day": "2026-11-31", "spend_minor": 1}"#.utf8), json),
            (Array(#"{"channel": "sem""#.utf8), json),
        ], topic: "marketing.campaign-costs.v1")
        let dead = try await intake.readDeadLetters(atLeast: 2)
        #expect(Set(dead.compactMap { $0.header("dlq_error_code") }) == ["invalid_day", "malformed_json"])
        #expect(dead.allSatisfy { $0.header("dlq_original_topic") == intake.prefix + "marketing.campaign-costs.v1" })
        let rows = try await stats(intake, "from=2026-11-29&to=2026-11-29&group_by=campaign")
        #expect(rows.map { "\($0["campaign_id"] as? String ?? "") \($0["spend_minor"] as? Int ?? -1)" } == ["t1 12345", "t2 4200"])
    }
}
