import Contracts
import Foundation
import HTTPTypes
@testable import MarketingIntake
import ServiceKit
import Testing
import TestSupport

@Suite("marketing-intake over HTTP")
struct HTTPIntakeTests {
    @Test func validLeadIsAcceptedAndEmittedWithoutRawContacts() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource(channel: "landing-page")
        let (status, json) = try await intake.postLead("""
            {"phone": "138-0013-8000", "name": "张三", "email": "Zhang.San@Example.com", "platform_lead_id": "form-1",
             "campaignId": "cmp-9", "utm": {"source": "baidu", "campaign": "spring"}, "landing_url": "https://example.com/java",
             "course_interest": "java", "note": "call after 6pm"}
            """, key: source.key)
        #expect(status == .accepted)
        let leadID = try #require(json["lead_id"] as? String)
        #expect(json["status"] as? String == "accepted")

        let events = try await intake.readOutput(atLeast: 1)
        #expect(events.count == 1)
        let event = try #require(events.first)
        #expect(event.leadID == leadID)
        #expect(event.attribution.channel == "landing-page")
        #expect(event.attribution.campaignID == "cmp-9" && event.attribution.utm.source == "baidu")
        #expect(event.phoneMasked == "138****8000")
        #expect(event.phoneInfo.type == "mobile" && event.phoneInfo.regionCode == "CN" && event.phoneInfo.geo == "北京市")
        #expect(event.emailMasked == "z***@example.com")
        #expect(event.nameMasked == "张*")
        #expect(event.receivedVia == "http" && event.sourceName == source.name)
        let keyer = intake.settings.makeKeyer()
        #expect(event.phoneKey == keyer.key(kind: "phone", normalized: "+8613800138000"))
        let cipher = try intake.settings.makeCipher()
        #expect(try cipher.decrypt(event.phone, field: "phone") == "+8613800138000")
        #expect(try cipher.decrypt(event.name, field: "name") == "张三")
        // No raw contact anywhere in the record.
        let raw = try event.serializedBytes() as [UInt8]
        for secret in ["13800138000", "zhang.san", "张三", "6pm"] {
            #expect(!String(decoding: raw, as: UTF8.self).contains(secret))
        }
    }

    @Test func exactRedeliveryIsAcceptedOnceAndEmittedOnce() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource()
        let body = #"{"phone": "+86 139 1234 5678", "platform_lead_id": "ad-777"}"#
        let (first, firstJSON) = try await intake.postLead(body, key: source.key)
        let (second, secondJSON) = try await intake.postLead(body, key: source.key)
        #expect(first == .accepted && second == .ok)
        #expect(secondJSON["status"] as? String == "duplicate")
        #expect(firstJSON["lead_id"] as? String == secondJSON["lead_id"] as? String)
        // A lead without a platform id is new (the same phone within the flood window would be a flood duplicate).
        let (third, _) = try await intake.postLead(#"{"phone": "+86 139 1234 5679"}"#, key: source.key)
        #expect(third == .accepted)
        let events = try await intake.readOutput(atLeast: 2, settle: .seconds(1))
        #expect(events.count == 2)
        let redeliveries = try await intake.runtime.postgres.query("SELECT redeliveries FROM \(identifier: intake.settings.schema).leads WHERE platform_lead_id = 'ad-777'").first!.decode(Int.self)
        #expect(redeliveries == 1)
    }

    @Test(arguments: [
        (#"{"name": "no contact"}"#, "missing_contact"),
        (#"{"phone": "1380013800"}"#, "invalid_phone"),
        (#"{"phone": "23800138000"}"#, "invalid_phone"),
        (#"{"phone": "not a phone"}"#, "invalid_phone"),
        (#"{"phone": "13800138000", "channel": "tv"}"#, "unknown_channel"),
        (#"{"phone": "13800138000", "name": "\#(String(repeating: "x", count: 101))"}"#, "field_too_long"),
        (#"{"email": "not-an-email"}"#, "invalid_email"),
        (#"{"phone": "13800138000", "landing_url": "javascript:alert(1)"}"#, "invalid_url"),
        (#"{"phone": "13800138000", "occurred_at": "2999-01-01T00:00:00Z"}"#, "invalid_occurred_at"),
        (#"{"phone": "13800138000", "campaign_id": "c\u0000"}"#, "invalid_character"),
    ])
    func invalidLeadIsA422ProblemWithTheReason(body: String, code: String) async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource()
        let (status, json, headers) = try await intake.request(.post, "/v1/leads", body: body, headers: [.authorization: "Bearer \(source.key)"])
        #expect(status == .unprocessableContent)
        #expect(headers[.contentType] == "application/problem+json")
        #expect(json["code"] as? String == code)
        #expect(json["status"] as? Int == 422)
        #expect((json["errors"] as? [[String: Any]])?.first?["code"] as? String == code)
        #expect(!(json["detail"] as? String ?? "").contains("13800138000"))
    }

    /// Limits count characters, not bytes: 100 Chinese characters (300 bytes) are a valid name, 101 are not.
    @Test func lengthLimitsCountCharacters() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource()
        let (ok, _) = try await intake.postLead(#"{"phone": "13900139001", "name": "\#(String(repeating: "学", count: 100))"}"#, key: source.key)
        #expect(ok == .accepted)
        let (long, json) = try await intake.postLead(#"{"phone": "13900139002", "name": "\#(String(repeating: "学", count: 101))"}"#, key: source.key)
        #expect(long == .unprocessableContent && json["code"] as? String == "field_too_long")
    }

    @Test func malformedJSONAuthAndSizeErrorsAreProblems() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource()
        let (malformed, m) = try await intake.postLead(#"{"phone": 12"#, key: source.key)
        #expect(malformed == .badRequest && m["code"] as? String == "malformed_json")
        let (wrongType, w) = try await intake.postLead(#"{"phone": ["13800138000"]}"#, key: source.key)
        #expect(wrongType == .badRequest && w["code"] as? String == "malformed_json")
        let (missing, mk, missingHeaders) = try await intake.request(.post, "/v1/leads", body: #"{"phone": "13800138000"}"#)
        #expect(missing == .unauthorized && mk["code"] as? String == "missing_api_key" && missingHeaders[.wwwAuthenticate] == "Bearer")
        let (wrong, wk) = try await intake.postLead(#"{"phone": "13800138000"}"#, key: "fnl_AAAAAAAA_" + String(repeating: "b", count: 32))
        #expect(wrong == .unauthorized && wk["code"] as? String == "invalid_api_key")
        let (garbage, _) = try await intake.postLead(#"{"phone": "13800138000"}"#, key: "'; DROP TABLE leads; --")
        #expect(garbage == .unauthorized)
        let big = #"{"note": ""# + String(repeating: "x", count: 5_000) + #""}"#
        let (tooLarge, t) = try await intake.postLead(big, key: source.key)
        #expect(tooLarge == .contentTooLarge && t["code"] as? String == "body_too_large")
        let (form, f, _) = try await intake.request(.post, "/v1/leads", body: "phone=1", headers: [.authorization: "Bearer \(source.key)", .contentType: "application/x-www-form-urlencoded"])
        #expect(form == .unsupportedMediaType && f["code"] as? String == "unsupported_media_type")
        let (plain, _, _) = try await intake.request(.post, "/v1/leads", body: #"{"phone": "13800138000"}"#, headers: [.authorization: "Bearer \(source.key)", .contentType: "text/plain"])
        #expect(plain == .accepted)
        let (notFound, nf, _) = try await intake.request(.get, "/v1/nothing")
        #expect(notFound == .notFound && nf["code"] as? String == "not_found")
    }

    @Test func adminManagesSourcesAndKeysTakeEffectAtOnce() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let (noAuth, _, _) = try await intake.request(.post, "/v1/admin/sources", body: #"{"name": "x"}"#)
        #expect(noAuth == .unauthorized)
        let (badToken, _, _) = try await intake.request(.get, "/v1/admin/sources", headers: [.authorization: "Bearer wrong-token-123"])
        #expect(badToken == .unauthorized)
        let source = try await intake.createSource()
        let admin: HTTPFields = [.authorization: "Bearer \(IntakeHarness.adminToken)"]
        let (duplicate, d, _) = try await intake.request(.post, "/v1/admin/sources", body: #"{"name": "\#(source.name)"}"#, headers: admin)
        #expect(duplicate == .conflict && d["code"] as? String == "duplicate_name")
        let (badChannel, _, _) = try await intake.request(.post, "/v1/admin/sources", body: #"{"name": "n2", "default_channel": "tv"}"#, headers: admin)
        #expect(badChannel == .unprocessableContent)
        let (listed, list, _) = try await intake.request(.get, "/v1/admin/sources", headers: admin)
        #expect(listed == .ok && (list["sources"] as? [[String: Any]])?.count == 1)
        #expect((list["sources"] as? [[String: Any]])?.first?["api_key"] == nil, "keys are shown only once")

        let (rotated, r, _) = try await intake.request(.post, "/v1/admin/sources/\(source.id)/rotate-key", headers: admin)
        let newKey = try #require(r["api_key"] as? String)
        #expect(rotated == .ok)
        #expect(try await intake.postLead(#"{"phone": "13800138000"}"#, key: source.key).0 == .unauthorized)
        #expect(try await intake.postLead(#"{"phone": "13800138000"}"#, key: newKey).0 == .accepted)
        let (disabled, _, _) = try await intake.request(.delete, "/v1/admin/sources/\(source.id)", headers: admin)
        #expect(disabled == .noContent)
        #expect(try await intake.postLead(#"{"phone": "13800138000"}"#, key: newKey).0 == .unauthorized)
        let (unknown, _, _) = try await intake.request(.delete, "/v1/admin/sources/\(UUID())", headers: admin)
        #expect(unknown == .notFound)
    }

    @Test func aRememberedKeyIsCheckedAgainstItsSourceRowOnEveryRequest() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let source = try await intake.createSource(channel: "landing-page")
        let other = try await intake.createSource(channel: "seo")
        #expect(try await intake.postLead(#"{"phone": "13800138001"}"#, key: source.key).0 == .accepted)
        #expect(try await intake.postLead(#"{"phone": "13800138002"}"#, key: other.key).0 == .accepted)
        #expect(intake.sources.count == 2, "both keys authenticated and remembered")
        // Remembered: the source's row check travels with the lead's first statements.
        #expect(try await intake.postLead(#"{"phone": "13800138003"}"#, key: source.key).0 == .accepted)

        // The row changes behind the process's back (another replica's admin call, or an operator): the default
        // channel of the next lead is the row's, not the remembered one.
        let schema = intake.settings.schema
        try await intake.runtime.postgres.query("UPDATE \(identifier: schema).lead_sources SET default_channel = 'referral' WHERE id = \(UUID(uuidString: source.id)!)")
        let (changed, changedJSON) = try await intake.postLead(#"{"phone": "13800138004"}"#, key: source.key)
        #expect(changed == .accepted)
        let events = try await intake.readOutput(atLeast: 4)
        let channels = Dictionary(events.map { ($0.leadID, $0.attribution.channel) }, uniquingKeysWith: { a, _ in a })
        #expect(channels[try #require(changedJSON["lead_id"] as? String)] == "referral")
        #expect(events.filter { $0.attribution.channel == "landing-page" }.count == 2)

        // A rotated key is refused at once, though it was remembered.
        let (rotated, r, _) = try await intake.request(.post, "/v1/admin/sources/\(source.id)/rotate-key", headers: intake.admin)
        #expect(rotated == .ok)
        let newKey = try #require(r["api_key"] as? String)
        let (old, oldJSON) = try await intake.postLead(#"{"phone": "13800138005"}"#, key: source.key)
        #expect(old == .unauthorized && oldJSON["code"] as? String == "invalid_api_key")
        #expect(try await intake.postLead(#"{"phone": "13800138005"}"#, key: newKey).0 == .accepted)

        // Disabled: refused at once, and an invalid lead is answered 401 too, not 422 (its source is checked first).
        #expect(try await intake.postLead(#"{"phone": "13800138006"}"#, key: other.key).0 == .accepted)
        let (disabled, _, _) = try await intake.request(.delete, "/v1/admin/sources/\(other.id)", headers: intake.admin)
        #expect(disabled == .noContent)
        let (invalid, invalidJSON) = try await intake.postLead(#"{"name": "no contact"}"#, key: other.key)
        #expect(invalid == .unauthorized && invalidJSON["code"] as? String == "invalid_api_key")
        #expect(try await intake.postLead(#"{"phone": "13800138007"}"#, key: other.key).0 == .unauthorized)
        // While enabled, the same invalid lead is a 422 on the remembered path.
        let (unprocessable, u) = try await intake.postLead(#"{"name": "no contact"}"#, key: newKey)
        #expect(unprocessable == .unprocessableContent && u["code"] as? String == "missing_contact")
    }

    @Test func theSourceCacheStartsOverWhenFull() {
        let cache = SourceCache<[UInt8], LeadSource>(capacity: 2)
        func source(_ n: Int) -> LeadSource {
            LeadSource(id: UUID(), name: "s\(n)", defaultChannel: .sem, keyPrefix: "p\(n)", createdAt: Date(), disabled: false)
        }
        cache.remember(source(1), for: [1])
        cache.remember(source(2), for: [2])
        cache.remember(source(2), for: [2])
        #expect(cache.count == 2, "remembering a known key again takes no room")
        cache.remember(source(3), for: [3])
        #expect(cache.count == 1 && cache[[3]]?.name == "s3" && cache[[1]] == nil)
        cache.forget([3])
        #expect(cache[[3]] == nil && cache.count == 0)
    }

    @Test func healthAndMetricsAnswer() async throws {
        let intake = try await IntakeHarness.start()
        defer { Task { await intake.stop() } }
        let (live, _, _) = try await intake.request(.get, "/health/live")
        #expect(live == .ok)
        var ready: HTTPResponse.Status = .serviceUnavailable
        let deadline = ContinuousClock.now + .seconds(30)
        while ready != .ok, ContinuousClock.now < deadline {
            ready = try await intake.request(.get, "/health/ready").0
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(ready == .ok)
        let (metrics, _, headers) = try await intake.request(.get, "/metrics")
        #expect(metrics == .ok && headers[.contentType]?.hasPrefix("text/plain") == true)
    }
}
