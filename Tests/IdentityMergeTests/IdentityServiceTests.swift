import Contracts
import Foundation
import HTTPTypes
@testable import IdentityMerge
import Kafka
import Postgres
import ServiceKit
import Testing
import TestSupport

/// identity-merge as it runs: records through the dev broker, events out on identity.customers.v1, dead
/// letters with reasons, and the operator API over HTTP.
@Suite("identity-merge service")
struct IdentityServiceTests {
    let t0 = Date(timeIntervalSince1970: 1_780_000_000)

    @Test func recordsFromTheTopicsBecomeCustomerEventsAndBadOnesDeadLetters() async throws {
        let service = try await IdentityHarness.start()
        defer { Task { await service.stop() } }
        let r = service.records
        try await service.push([r.lead(phone: "13812345678", id: "l-1", at: t0, name: "张三")])
        let created = try await service.readCustomerEvents(atLeast: 1)
        try await service.push([
            r.registration(user: "u-42", email: "zhang@example.com", at: t0 + 5),
            r.json(r.topics.registrations, key: "bad", #"{"userId": "#),
            r.json(r.topics.tags, key: "t", #"{"userId": "nobody", "tag": "vip", "source": "bi"}"#),
        ])
        _ = try await service.readCustomerEvents(atLeast: 2)
        try await service.push([r.lead(phone: "13812345678", email: "zhang@example.com", id: "l-2", at: t0 + 10)])
        let events = try await service.readCustomerEvents(atLeast: 4)
        let first = try #require(created.first)
        #expect(first.resolved.newCustomer && first.resolved.subjectID == "l-1" && first.resolved.phoneMasked == "138****5678")
        #expect(first.resolved.nameMasked == "张*" && first.resolved.channel == "sem" && first.resolved.courseInterest == "python")
        let merged = try #require(events.first { $0.isMerged })
        let registered = try #require(events.first { $0.resolved.subjectKind == "registration" })
        #expect(merged.customerID == registered.customerID, "the registered customer survives")
        #expect(merged.merged.absorbedIds == [first.customerID])
        // PII is never in the clear on the topic.
        let raw = try await service.read(service.prefix + "identity.customers.v1", atLeast: 4, settle: .zero)
        #expect(raw.allSatisfy { !String(decoding: $0.value, as: UTF8.self).contains("13812345678") && !String(decoding: $0.value, as: UTF8.self).contains("zhang@") })
        #expect(raw.allSatisfy { $0.header("ce_type") == "funnel.identity.customer.v1" && $0.key.map { String(decoding: $0, as: UTF8.self) } != nil })

        let dead = try await service.read(service.prefix + "dlq.identity-merge.v1", atLeast: 2)
        #expect(Set(dead.compactMap { $0.header("dlq_error_code") }) == ["malformed_json", "unknown_user"])

        // The operator API.
        let survivor = merged.customerID
        let (status, profile, _) = try await service.request(.get, "/v1/customers/\(survivor)")
        #expect(status == .ok && profile["registered"] as? Bool == true && profile["display_name"] as? String == "张三")
        #expect((profile["leads"] as? [[String: Any]])?.count == 2 && (profile["merged_from"] as? [String]) == [first.customerID])
        let (redirect, _, headers) = try await service.request(.get, "/v1/customers/\(first.customerID)")
        #expect(redirect == .permanentRedirect && headers[.location] == "/v1/customers/\(survivor)")
        let (found, byPhone, _) = try await service.request(.get, "/v1/customers?phone=%2B86%20138%201234%205678")
        #expect(found == .ok && byPhone["id"] as? String == survivor)
        let (_, byUser, _) = try await service.request(.get, "/v1/customers?user_id=u-42")
        #expect(byUser["id"] as? String == survivor)
        let (historyStatus, history, _) = try await service.request(.get, "/v1/customers/\(survivor)/history")
        let actions = (history["decisions"] as? [[String: Any]])?.compactMap { $0["action"] as? String } ?? []
        #expect(historyStatus == .ok && actions.contains("merged") && actions.contains("created"))
    }

    @Test func operatorAPIRefusesBadRequestsWithProblems() async throws {
        let service = try await IdentityHarness.start(concurrency: 1)
        defer { Task { await service.stop() } }
        let (noToken, problem, headers) = try await service.request(.get, "/v1/customers/\(UUID())", token: nil)
        #expect(noToken == .unauthorized && problem["code"] as? String == "missing_credentials")
        #expect(headers[.contentType] == "application/problem+json")
        #expect(try await service.request(.get, "/v1/customers/\(UUID())", token: "wrong-token-123456").0 == .unauthorized)
        #expect(try await service.request(.get, "/v1/customers/not-a-uuid").1["code"] as? String == "invalid_id")
        #expect(try await service.request(.get, "/v1/customers/\(UUID())").0 == .notFound)
        #expect(try await service.request(.get, "/v1/customers?phone=12").1["code"] as? String == "invalid_phone")
        #expect(try await service.request(.get, "/v1/customers?phone=13812345678&user_id=x").0 == .badRequest)
        #expect(try await service.request(.get, "/v1/customers?phone=13812345678").0 == .notFound)
        let (badJSON, _, _) = try await service.request(.post, "/v1/customers/\(UUID())/unmerge", body: "{")
        #expect(badJSON == .badRequest)
        let (invalid, details, _) = try await service.request(.post, "/v1/customers/\(UUID())/unmerge", body: #"{"identifiers": [{"kind": "shoe", "value": "x"}]}"#)
        #expect(invalid == .unprocessableContent)
        #expect(Set((details["errors"] as? [[String: Any]])?.compactMap { $0["field"] as? String } ?? []) == ["identifiers[0].kind", "reason"])
        #expect(try await service.request(.delete, "/v1/customers/\(UUID())").0 == .notFound)

        // Rules: shown, validated on write, versioned.
        let (rulesStatus, rules, _) = try await service.request(.get, "/v1/identity-rules")
        #expect(rulesStatus == .ok && rules["version"] as? Int == 1)
        #expect(((rules["rules"] as? [String: Any])?["priority"] as? [String])?.first == "user_id")
        let (rejected, why, _) = try await service.request(.put, "/v1/identity-rules", body: """
            {"priority": ["phone", "user_id"], "limits": {"user_id": 2, "phone": 0}, "blocked_values": {}, "blocked_phone_digit_run": 2}
            """)
        #expect(rejected == .unprocessableContent)
        let codes = Set((why["errors"] as? [[String: Any]])?.compactMap { $0["code"] as? String } ?? [])
        #expect(codes.isSuperset(of: ["invalid_priority", "invalid_limit", "missing_limit", "invalid_run"]))
        var next = IdentityRules.standard
        next.limits["phone"] = 2
        let body = String(decoding: try JSONEncoder().encode(next), as: UTF8.self)
        let (published, version, _) = try await service.request(.put, "/v1/identity-rules", body: body)
        #expect(published == .created && version["version"] as? Int == 2)
        #expect(try await service.request(.get, "/v1/identity-rules?version=1").1["version"] as? Int == 1)
        #expect(try await service.request(.get, "/v1/identity-rules?version=9").0 == .notFound)
    }

    @Test func unmergeAndErasureOverHTTPEmitTheirEvents() async throws {
        let service = try await IdentityHarness.start(concurrency: 1)
        defer { Task { await service.stop() } }
        let r = service.records
        try await service.push([r.lead(phone: "13812345678", email: "shared@example.com", at: t0)])
        _ = try await service.readCustomerEvents(atLeast: 1)
        try await service.push([r.lead(phone: "13987654321", email: "shared@example.com", at: t0 + 1)])
        let resolved = try await service.readCustomerEvents(atLeast: 2)
        let customer = try #require(resolved.last?.customerID)
        let (status, split, _) = try await service.request(.post, "/v1/customers/\(customer)/unmerge",
                                                           body: #"{"identifiers": [{"kind": "phone", "value": "13987654321"}], "reason": "siblings"}"#)
        #expect(status == .created)
        let newID = try #require(split["new_customer_id"] as? String)
        let (erased, _, _) = try await service.request(.delete, "/v1/customers/\(newID)")
        #expect(erased == .ok)
        #expect(try await service.request(.get, "/v1/customers/\(newID)").0 == .gone)
        #expect(try await service.request(.delete, "/v1/customers/\(newID)").0 == .gone)
        let events = try await service.readCustomerEvents(atLeast: 4)
        #expect(events.contains { if case .unmerged(let u)? = $0.change { return u.newCustomerID == newID && $0.customerID == customer }; return false })
        #expect(events.contains { if case .erased? = $0.change { return $0.customerID == newID }; return false })
    }

    @Test func twoReplicasInOneGroupNeverCreateTwoCustomersForOnePhone() async throws {
        let first = try await IdentityHarness.start()
        let second = try await IdentityHarness.start(sharing: first)
        defer { Task { await first.stop(); await second.stop() } }
        try await first.waitUntilReady()
        try await second.waitUntilReady()
        let r = first.records
        let people = 60
        var messages: [KafkaConsumedMessage] = []
        for i in 0..<people {
            let phone = "1397" + String(format: "%07d", 1_000 + i)
            // Leads are keyed by phone key, registrations by user id: they land on different partitions, so
            // both replicas see the same phone at once.
            messages.append(r.registration(user: "user-\(i)", phone: phone, at: t0 + Double(i)))
            for j in 0..<3 { messages.append(r.lead(phone: phone, at: t0 + Double(i * 10 + j))) }
        }
        messages.shuffle()
        try await first.push(messages)
        let events = try await first.readCustomerEvents(atLeast: messages.count, settle: .seconds(1))
        #expect(events.filter { $0.resolved.subjectKind != "" }.count == messages.count)
        let postgres = first.runtime.postgres
        let active = try await postgres.query("SELECT count(*)::int FROM \(identifier: first.schema).customers WHERE status = 'active'").first!.decode(Int.self)
        let phones = try await postgres.query("SELECT count(DISTINCT customer_id)::int FROM \(identifier: first.schema).identifiers WHERE kind = 'phone'").first!.decode(Int.self)
        #expect(active == people && phones == people)
    }

    @Test func replayingTheTopicsFromTheStartRebuildsTheSameGraph() async throws {
        let original = try await IdentityHarness.start(concurrency: 1)
        defer { Task { await original.stop() } }
        let r = original.records
        let scenario = ClusteringPropertyTests.Scenario(seed: 20_261_125)
        var messages = scenario.messages(r)
        messages += [r.registration(user: "u-replay", phone: "13712345678", email: "replay@example.com", at: t0),
                     r.lead(phone: "13712345678", wechat: "wx_replay_1", at: t0 + 5)]
        try await original.push(messages)
        _ = try await original.readCustomerEvents(atLeast: messages.count, settle: .seconds(1))
        let replica = try await IdentityHarness.start(readingTopicsOf: original, concurrency: 1)
        defer { Task { await replica.stop() } }
        let deadline = ContinuousClock.now + .seconds(60)
        var rebuilt = Set<Set<String>>()
        let expected = try await original.clustering()
        while ContinuousClock.now < deadline {
            rebuilt = try await replica.clustering()
            if rebuilt == expected { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(!expected.isEmpty && rebuilt == expected)
    }
}
