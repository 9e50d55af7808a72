import Contracts
import Foundation
import HTTPTypes
@testable import MarketingIntake
import ServiceKit
import Testing
import TestSupport

@Suite("marketing-intake webhooks")
struct WebhookTests {
    static let secretA = "whsec_" + Data(repeating: 7, count: 32).base64EncodedString()
    static let secretB = "whsec_" + Data((0..<32).map { UInt8($0) }).base64EncodedString()

    /// A Standard Webhooks request: its headers signed with `secret` (or given `signature`) at `timestamp`.
    static func signed(_ body: String, secret: String, id: String = UUID().uuidString, timestamp: Int64 = Int64(Date().timeIntervalSince1970),
                       signature: String? = nil) -> HTTPFields {
        let key = WebhookSignature.key(fromSecret: secret)!
        return [HTTPField.Name("webhook-id")!: id, HTTPField.Name("webhook-timestamp")!: String(timestamp),
                HTTPField.Name("webhook-signature")!: signature ?? WebhookSignature.sign(id: id, timestamp: timestamp, body: Array(body.utf8), key: key)]
    }

    func configure(_ intake: IntakeHarness, source: String, _ settings: String) async throws -> [String: Any] {
        let (status, json, _) = try await intake.request(.put, "/v1/admin/sources/\(source)/webhook", body: settings, headers: intake.admin)
        #expect(status == .ok, "\(json)")
        return json
    }

    @Test func standardWebhookVerificationMatrix() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource(channel: "feed")
        let path = "/v1/webhooks/\(source.id)"
        let body = #"{"phone": "+86 139 0000 0001", "platform_lead_id": "w-1", "campaign_id": "c-1"}"#

        // Not configured yet: refused, and nothing emitted.
        let (unconfigured, u, _) = try await intake.request(.post, path, body: body, headers: Self.signed(body, secret: Self.secretA))
        #expect(unconfigured == .unauthorized && u["code"] as? String == "webhook_not_configured")
        let settings = try await configure(intake, source: source.id, #"{"secrets": ["\#(Self.secretA)"]}"#)
        #expect(settings["secrets"] as? Int == 1 && !"\(settings)".contains(Self.secretA), "secrets are never shown")

        // Valid: accepted once.
        let headers = Self.signed(body, secret: Self.secretA, id: "msg-1")
        let (valid, v, _) = try await intake.request(.post, path, body: body, headers: headers)
        #expect(valid == .accepted && v["status"] as? String == "accepted")
        #expect(intake.webhookSources.count == 1, "the verified settings are remembered; every case below re-checks the row")
        // The same delivery again: a replay (found by the delivery record sent with the remembered settings' row check).
        let (replay, r, _) = try await intake.request(.post, path, body: body, headers: headers)
        #expect(replay == .unauthorized && r["code"] as? String == "webhook_replayed")
        // Wrong secret, tampered body, stale or future timestamp, missing headers, garbage signature.
        let other = #"{"phone": "+86 139 0000 0002"}"#
        let cases: [(HTTPFields, String, String)] = [
            (Self.signed(other, secret: Self.secretB), other, "invalid_signature"),
            (Self.signed(other, secret: Self.secretA), other.replacingOccurrences(of: "0002", with: "0003"), "invalid_signature"),
            (Self.signed(other, secret: Self.secretA, timestamp: Int64(Date().timeIntervalSince1970) - 301), other, "stale_timestamp"),
            (Self.signed(other, secret: Self.secretA, timestamp: Int64(Date().timeIntervalSince1970) + 600), other, "stale_timestamp"),
            ([:], other, "missing_signature"),
            (Self.signed(other, secret: Self.secretA, signature: "v1,bm90IGEgc2lnbmF0dXJl v2,xyz"), other, "invalid_signature"),
            (Self.signed(other, secret: Self.secretA).replacing(HTTPField.Name("webhook-timestamp")!, with: "yesterday"), other, "invalid_timestamp"),
        ]
        for (headers, sent, code) in cases {
            let (status, json, responseHeaders) = try await intake.request(.post, path, body: sent, headers: headers)
            #expect(status == .unauthorized && json["code"] as? String == code, "\(code): \(status) \(json)")
            #expect(responseHeaders[.contentType] == "application/problem+json")
        }
        // Unknown and malformed source ids.
        let (unknown, uk, _) = try await intake.request(.post, "/v1/webhooks/\(UUID())", body: body, headers: Self.signed(body, secret: Self.secretA))
        #expect(unknown == .unauthorized && uk["code"] as? String == "invalid_source")
        let (badID, b, _) = try await intake.request(.post, "/v1/webhooks/not-a-uuid", body: body, headers: Self.signed(body, secret: Self.secretA))
        #expect(badID == .badRequest && b["code"] as? String == "invalid_id")

        // Rotation: both secrets verify while both are configured; the removed one stops at once, though the
        // remembered settings still hold it (the row's fingerprint no longer matches them).
        _ = try await configure(intake, source: source.id, #"{"secrets": ["\#(Self.secretB)", "\#(Self.secretA)"]}"#)
        for (i, secret) in [Self.secretA, Self.secretB].enumerated() {
            let lead = #"{"phone": "+86 139 0000 001\#(i)"}"#
            #expect(try await intake.request(.post, path, body: lead, headers: Self.signed(lead, secret: secret)).0 == .accepted)
        }
        _ = try await configure(intake, source: source.id, #"{"secrets": ["\#(Self.secretB)"]}"#)
        let late = #"{"phone": "+86 139 0000 0020"}"#
        #expect(try await intake.request(.post, path, body: late, headers: Self.signed(late, secret: Self.secretA)).1["code"] as? String == "invalid_signature")
        // Several signatures in one header: any match is enough (the sender mid-rotation).
        let both = Self.signed(late, secret: Self.secretA)[HTTPField.Name("webhook-signature")!]! + " "
            + Self.signed(late, secret: Self.secretB, id: "x")[HTTPField.Name("webhook-signature")!]!
        var multi = Self.signed(late, secret: Self.secretB, id: "x")
        multi[HTTPField.Name("webhook-signature")!] = both
        #expect(try await intake.request(.post, path, body: late, headers: multi).0 == .accepted)

        // A disabled source is refused.
        _ = try await intake.request(.delete, "/v1/admin/sources/\(source.id)", headers: intake.admin)
        let after = #"{"phone": "+86 139 0000 0030"}"#
        #expect(try await intake.request(.post, path, body: after, headers: Self.signed(after, secret: Self.secretB)).1["code"] as? String == "invalid_source")

        // Exactly the accepted leads were emitted, as webhook leads of the source.
        let events = try await intake.readOutput(atLeast: 4, settle: .seconds(1))
        #expect(events.count == 4)
        #expect(events.allSatisfy { $0.receivedVia == "webhook" && $0.sourceName == source.name && $0.attribution.channel == "feed" })
    }

    @Test func platformJSONIsMappedByTheSourcesFieldMappingAndBadRecordsAreDeadLettered() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource(channel: "feed")
        // A ByteDance-style push: several clues, ids as 19-digit numbers, China-time timestamps.
        _ = try await configure(intake, source: source.id, """
            {"secrets": ["\(Self.secretA)"], "field_mapping": {"records": "data.clues",
             "fields": {"platform_lead_id": "clue_id", "phone": "telephone", "name": "name", "campaign_id": "ad.campaign_id",
                        "ad_id": "ad.id", "occurred_at": "create_time", "course_interest": "form.answers.0.value", "click_id": "clickid"},
             "constants": {"channel": "feed"}}}
            """)
        let body = """
            {"data": {"clues": [
              {"clue_id": 7412345678901234567, "telephone": "13912340001", "name": "李四", "ad": {"campaign_id": 1700001, "id": 88},
               "create_time": "2026-11-30 09:15:00", "form": {"answers": [{"value": "python"}]}, "clickid": "B.abc"},
              {"clue_id": 7412345678901234568, "telephone": "not-a-number", "name": "王五", "ad": {"campaign_id": 1700001}},
              {"clue_id": 7412345678901234569, "telephone": "13912340003", "name": null, "ad": {"campaign_id": 1700002}}
            ]}}
            """
        let (status, json, _) = try await intake.request(.post, "/v1/webhooks/\(source.id)", body: body, headers: Self.signed(body, secret: Self.secretA))
        #expect(status == .ok)
        let results = try #require(json["results"] as? [[String: Any]])
        #expect(results.map { $0["status"] as? String } == ["accepted", "rejected", "accepted"])
        #expect(results[1]["code"] as? String == "invalid_phone")

        let events = try await intake.readOutput(atLeast: 2, settle: .seconds(1))
        #expect(events.count == 2)
        let first = try #require(events.first { $0.platformLeadID == "7412345678901234567" }, "19-digit ids survive")
        #expect(first.attribution.campaignID == "1700001" && first.attribution.adID == "88" && first.attribution.clickID == "B.abc")
        #expect(first.courseInterest == "python" && first.attribution.channel == "feed")
        #expect(first.occurredAt.date == ISO8601DateFormatter().date(from: "2026-11-30T01:15:00Z"))
        // The rejected clue is kept on the dead-letter topic with its reason and the source.
        let dead = try await intake.readDeadLetters(atLeast: 1)
        #expect(dead.count == 1)
        #expect(dead[0].header("dlq_error_code") == "invalid_phone")
        let kept = try Funnel_Marketing_V1_CampaignLead(jsonUTF8Bytes: dead[0].value)
        #expect(kept.platformLeadID == "7412345678901234568" && kept.source == source.name)

        // A delivery whose records path is missing, or that is not JSON.
        for (bad, code) in [(#"{"data": {}}"#, "missing_records"), (#"{"data": "#, "malformed_json")] {
            let (s, j, _) = try await intake.request(.post, "/v1/webhooks/\(source.id)", body: bad, headers: Self.signed(bad, secret: Self.secretA))
            #expect(j["code"] as? String == code && (s == .unprocessableContent || s == .badRequest), "\(code)")
        }
    }

    @Test func invalidWebhookSettingsAre422NamingEachField() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource()
        let (status, json, _) = try await intake.request(.put, "/v1/admin/sources/\(source.id)/webhook", body: """
            {"secrets": ["plain-text", "whsec_AAAA"], "google_key": "short",
             "field_mapping": {"fields": {"telephone": "phone", "name": "a..b"}, "constants": {"colour": "red"}}}
            """, headers: intake.admin)
        #expect(status == .unprocessableContent)
        let fields = Set((json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String })
        #expect(fields == ["secrets[0]", "secrets[1]", "google_key", "field_mapping.fields.telephone", "field_mapping.fields.name",
                           "field_mapping.constants.colour"])
        let (noAuth, _, _) = try await intake.request(.put, "/v1/admin/sources/\(source.id)/webhook", body: "{}")
        #expect(noAuth == .unauthorized)
        let (unknown, _, _) = try await intake.request(.put, "/v1/admin/sources/\(UUID())/webhook", body: #"{"generate_secret": true}"#, headers: intake.admin)
        #expect(unknown == .notFound)
        // A generated secret is shown once and then verifies.
        let generated = try await configure(intake, source: source.id, #"{"generate_secret": true}"#)
        let secret = try #require(generated["new_secret"] as? String)
        let (shown, view, _) = try await intake.request(.get, "/v1/admin/sources/\(source.id)/webhook", headers: intake.admin)
        #expect(shown == .ok && view["new_secret"] == nil && view["secrets"] as? Int == 1)
        let body = #"{"email": "a@example.com"}"#
        #expect(try await intake.request(.post, "/v1/webhooks/\(source.id)", body: body, headers: Self.signed(body, secret: secret)).0 == .accepted)
    }

    @Test func googleAdsLeadFormsAreVerifiedByTheirKeyAndMapped() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource(channel: "sem")
        let path = "/v1/webhooks/google-ads/\(source.id)"
        func delivery(key: String, leadID: String = "TeSter-123-ABCDEFGHIJKLMNOPQRSTUVWXYZ", phone: String = "+8613912345678", test: Bool = false) -> String {
            """
            {"lead_id": "\(leadID)", "api_version": "1.0", "form_id": 40000000000, "campaign_id": 12345678901, "adgroup_id": 987,
             "creative_id": 555, "gcl_id": "EAIaIQobChMI", "google_key": "\(key)", "is_test": \(test),
             "user_column_data": [{"column_name": "Full Name", "string_value": "Wei Zhang", "column_id": "FULL_NAME"},
                                  {"column_name": "User Phone", "string_value": "\(phone)", "column_id": "PHONE_NUMBER"},
                                  {"column_name": "User Email", "string_value": "wei@example.com", "column_id": "EMAIL"},
                                  {"column_name": "Which course?", "string_value": "Data analysis", "column_id": "COURSE"},
                                  {"column_name": "Best time to call", "string_value": "evenings", "column_id": "q2"}]}
            """
        }
        let (unconfigured, u, _) = try await intake.request(.post, path, body: delivery(key: "form-key-123"))
        #expect(unconfigured == .unauthorized && u["code"] as? String == "webhook_not_configured")
        _ = try await configure(intake, source: source.id, #"{"google_key": "form-key-123", "field_mapping": {"fields": {"course_interest": "COURSE"}}}"#)

        let (valid, v, _) = try await intake.request(.post, path, body: delivery(key: "form-key-123"))
        #expect(valid == .accepted, "\(v)")
        let (again, a, _) = try await intake.request(.post, path, body: delivery(key: "form-key-123"))
        #expect(again == .ok && a["status"] as? String == "duplicate", "Google retries the same lead_id")
        let (wrong, w, _) = try await intake.request(.post, path, body: delivery(key: "another-key", leadID: "L2"))
        #expect(wrong == .unauthorized && w["code"] as? String == "invalid_google_key")
        let (missing, m, _) = try await intake.request(.post, path, body: delivery(key: "", leadID: "L3"))
        #expect(missing == .unauthorized && m["code"] as? String == "invalid_google_key")
        let (noLead, n, _) = try await intake.request(.post, path, body: #"{"google_key": "form-key-123"}"#)
        #expect(noLead == .unprocessableContent && n["code"] as? String == "missing_lead_id")
        let (malformed, mf, _) = try await intake.request(.post, path, body: #"{"lead_id": "#)
        #expect(malformed == .badRequest && mf["code"] as? String == "malformed_json")
        let (badPhone, bp, _) = try await intake.request(.post, path, body: delivery(key: "form-key-123", leadID: "L4", phone: "12"))
        #expect(badPhone == .unprocessableContent && bp["code"] as? String == "invalid_phone")
        #expect(try await intake.request(.post, path, body: delivery(key: "form-key-123", leadID: "L5", phone: "+8613912345699", test: true)).0 == .accepted)

        let events = try await intake.readOutput(atLeast: 2, settle: .seconds(1))
        #expect(events.count == 2)
        let event = try #require(events.first { $0.platformLeadID == "TeSter-123-ABCDEFGHIJKLMNOPQRSTUVWXYZ" })
        let cipher = try intake.settings.makeCipher()
        #expect(try cipher.decrypt(event.name, field: "name") == "Wei Zhang")
        #expect(try cipher.decrypt(event.phone, field: "phone") == "+8613912345678")
        #expect(try cipher.decrypt(event.email, field: "email") == "wei@example.com")
        #expect(event.attribution.campaignID == "12345678901" && event.attribution.adGroupID == "987" && event.attribution.adID == "555")
        #expect(event.attribution.clickID == "EAIaIQobChMI" && event.courseInterest == "Data analysis" && event.attribution.channel == "sem")
        let note = try cipher.decrypt(event.note, field: "note")
        #expect(note.contains("Best time to call: evenings") && note.contains("form: 40000000000"))
        #expect(events.first { $0.platformLeadID == "L5" }?.isTest == true)
    }
}

extension HTTPFields {
    func replacing(_ name: HTTPField.Name, with value: String) -> HTTPFields {
        var copy = self
        copy[name] = value
        return copy
    }
}
