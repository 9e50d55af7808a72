import Contracts
import Foundation
@testable import IdentityMerge
import ServiceKit
import Testing
import TestSupport

/// The identity rules one by one, on the real PostgreSQL (the handler fed directly; the broker path is
/// covered by the end-to-end suite).
@Suite("identity-merge resolution rules")
struct ResolutionRuleTests {
    let t0 = Date(timeIntervalSince1970: 1_780_000_000)

    @Test func samePhoneInAnyFormatJoinsTheCustomerItsFirstLeadCreated() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        let first = try await graph.feed([graph.lead(phone: "+86 138 1234 5678", at: t0)])
        let second = try await graph.feed([graph.lead(phone: "0086-13812345678", at: t0 + 60)])
        let a = try #require(first[0].events.first?.resolved)
        let b = try #require(second[0].events.first?.resolved)
        #expect(a.newCustomer && !b.newCustomer)
        #expect(first[0].events[0].customerID == second[0].events[0].customerID)
        #expect(try await graph.activeCustomers() == 1)
        let profile = try await graph.store.profile(try #require(await graph.customer(phone: "13812345678")))
        guard case .found(let found) = profile else { Issue.record("no profile"); return }
        #expect(found.leads.count == 2 && found.phoneMasked == "138****5678" && found.firstChannel == "sem")
    }

    @Test func registrationJoinsTheLeadsCustomerAndMakesItRegistered() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        try await graph.feed([graph.lead(phone: "13812345678", at: t0)])
        let outcome = try await graph.feed([graph.registration(user: "u-1", phone: "138 1234 5678", email: "Zhang@Example.com", at: t0 + 3600)])
        let resolved = try #require(outcome[0].events.first?.resolved)
        #expect(!resolved.newCustomer && resolved.registered && resolved.lifecycle == "registered" && resolved.userID == "u-1")
        #expect(resolved.phoneMasked == "138****5678" && !resolved.phone.ciphertext.isEmpty)
        #expect(try await graph.customer(user: "u-1") == graph.customer(phone: "13812345678"))
        #expect(try await graph.store.find(kind: .email, value: "zhang@example.com") == graph.customer(phone: "13812345678"))
    }

    @Test func aRecordLinkingTwoCustomersMergesThemIntoTheRegisteredOne() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        try await graph.feed([graph.lead(phone: "13812345678", at: t0)])               // A: earlier, a lead
        try await graph.feed([graph.registration(user: "u-9", email: "li@example.com", at: t0 + 100)])  // B: registered
        let a = try #require(await graph.customer(phone: "13812345678"))
        let b = try #require(await graph.customer(user: "u-9"))
        let outcome = try await graph.feed([graph.lead(phone: "13812345678", email: "li@example.com", at: t0 + 200)])
        let merged = try #require(outcome[0].events.first { $0.merged.absorbedIds.count > 0 })
        #expect(merged.customerID == b.uuidString.lowercased(), "registered beats earliest seen")
        #expect(merged.merged.absorbedIds == [a.uuidString.lowercased()] && merged.merged.survivorRule == "registered")
        #expect(merged.merged.linkedBy == "email" || merged.merged.linkedBy == "phone")
        #expect(try await graph.activeCustomers() == 1)
        // The absorbed id stays resolvable.
        #expect(try await graph.store.profile(a).mergedSurvivor == b)
        guard case .found(let profile) = try await graph.store.profile(b) else { Issue.record("no survivor"); return }
        #expect(profile.mergedFrom == [a.uuidString.lowercased()] && profile.leads.count == 2 && profile.registered)
        #expect(profile.firstSeenAt == t0, "first seen is the earliest of both")
        let history = try await graph.decisions(b)
        #expect(history.contains { $0.action == "merged" && $0.rule?.hasPrefix("linked_by:") == true && $0.detail.survivorRule == "registered" })
    }

    @Test func withoutRegistrationTheEarliestSeenSurvivesThenTheLowerID() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        try await graph.feed([graph.lead(phone: "13812345678", at: t0 + 500)])
        try await graph.feed([graph.lead(email: "wang@example.com", at: t0)])
        let earliest = try #require(await graph.store.find(kind: .email, value: "wang@example.com"))
        let outcome = try await graph.feed([graph.lead(phone: "13812345678", email: "wang@example.com", at: t0 + 900)])
        let merged = try #require(outcome[0].events.first { $0.isMerged }?.merged)
        #expect(merged.survivorRule == "earliest_seen")
        #expect(try await graph.customer(phone: "13812345678") == earliest)

        // Same first-seen instant: the lower id survives.
        try await graph.feed([graph.lead(phone: "13912345678", at: t0)])
        try await graph.feed([graph.lead(email: "zhao@example.com", at: t0)])
        let x = try #require(await graph.customer(phone: "13912345678"))
        let y = try #require(await graph.store.find(kind: .email, value: "zhao@example.com"))
        let tie = try await graph.feed([graph.lead(phone: "13912345678", email: "zhao@example.com", at: t0 + 1)])
        #expect(tie[0].events.first { $0.isMerged }?.merged.survivorRule == "lowest_id")
        let lower = min(x.uuidString.lowercased(), y.uuidString.lowercased()).uuid
        #expect(try await graph.customer(phone: "13912345678") == lower)
    }

    @Test func twoDifferentUserIDsAreNeverOneCustomerAndTheDropIsRecorded() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        try await graph.feed([graph.registration(user: "u-1", phone: "13812345678", at: t0)])
        let outcome = try await graph.feed([graph.registration(user: "u-2", phone: "13812345678", at: t0 + 10)])
        let resolved = try #require(outcome[0].events.first?.resolved)
        #expect(resolved.newCustomer, "u-2 cannot join u-1's customer")
        #expect(resolved.dropped == ["phone:limit:user_id"])
        let u1 = try await graph.customer(user: "u-1")
        let u2 = try #require(await graph.customer(user: "u-2"))
        let phoneOwner = try await graph.customer(phone: "13812345678")
        #expect(u1 != u2 && phoneOwner == u1, "the phone stays with the first user")
        let history = try await graph.decisions(u2)
        #expect(history.first?.detail.dropped.first?.rule == "limit:user_id")
    }

    @Test func aFourthPhoneIsNotLinkedBeyondTheLimit() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        try await graph.feed([graph.registration(user: "u-7", phone: "13800000001", at: t0)])
        for (i, phone) in ["13800000002", "13800000003", "13800000004"].enumerated() {
            try await graph.feed([graph.registration(user: "u-7", phone: phone, at: t0 + Double(i + 1))])
        }
        let customer = try await graph.customer(user: "u-7")
        #expect(try await graph.customer(phone: "13800000003") == customer)
        #expect(try await graph.customer(phone: "13800000004") == nil, "limit 3 phones")
        let last = try await graph.decisions(try #require(customer)).last
        #expect(last?.detail.dropped.map(\.rule) == ["limit:phone"])
    }

    @Test(arguments: ["13800138000", "13333333333", "15999999999"])
    func blockedPhonesNeverLinkAnything(phone: String) async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        let first = try await graph.feed([graph.lead(phone: phone, at: t0)])
        let second = try await graph.feed([graph.lead(phone: phone, at: t0 + 1)])
        #expect(first[0].events.first?.resolved.newCustomer == true && second[0].events.first?.resolved.newCustomer == true)
        #expect(first[0].events[0].customerID != second[0].events[0].customerID)
        #expect(try await graph.customer(phone: phone) == nil)
        let rule = first[0].events[0].resolved.dropped.first
        #expect(rule == "phone:blocked_value" || rule == "phone:blocked_digit_run")
    }

    @Test func placeholderUserIDsDoNotLinkRegistrations() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        try await graph.feed([graph.registration(user: "null", email: "a1@example.com", at: t0)])
        try await graph.feed([graph.registration(user: "null", email: "b2@example.com", at: t0)])
        #expect(try await graph.activeCustomers() == 2)
        #expect(try await graph.customer(user: "null") == nil)
    }

    @Test func badRecordsAreRejectedWithTheirReasons() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        var noID = graph.lead(phone: "13812345678")
        noID = graph.message(GraphFixture.topics.leads, key: "", bytes: try {
            var lead = Funnel_Leads_V1_LeadCaptured()
            lead.phoneKey = "abc"
            return try lead.serializedBytes()
        }(), contentType: "application/protobuf")
        let badKey = graph.json(GraphFixture.topics.leads, key: "", #"{"leadId": "l-1", "phoneKey": "not-hex"}"#)
        let outcomes = try await graph.feed([
            graph.json(GraphFixture.topics.registrations, key: "", #"{"userId": "#),
            graph.json(GraphFixture.topics.registrations, key: "", #"{"phone": "13812345678"}"#),
            graph.json(GraphFixture.topics.registrations, key: "", #"{"userId": "has space"}"#),
            noID, badKey,
            graph.message(GraphFixture.topics.leads, key: "", bytes: [0xFF, 0x00, 0x13], contentType: "application/protobuf"),
            graph.tag(user: "nobody", tag: "vip"),
            graph.tag(tag: "vip"),
            graph.tag(customer: UUID(), tag: "vip"),
            graph.tag(user: "u", tag: ""),
            graph.registration(user: "u-ok", phone: "12345", at: t0),
        ])
        #expect(outcomes.map(\.rejection) == ["malformed_json", "missing_user_id", "invalid_user_id", "missing_lead_id", "invalid_identity_key",
                                               "malformed_protobuf", "unknown_user", "missing_subject", "unknown_customer", "invalid_tag", nil])
        // The invalid phone of an otherwise good registration is dropped, with the reason.
        #expect(outcomes.last?.events.first?.resolved.dropped == ["phone:invalid_value"])
    }
}

extension CustomerStore.Lookup {
    var mergedSurvivor: UUID? {
        guard case .mergedInto(let id) = self else { return nil }
        return id
    }
}

extension Funnel_Identity_V1_CustomerEvent {
    var isMerged: Bool {
        if case .merged? = change { return true }
        return false
    }
}

extension String {
    var uuid: UUID? { UUID(uuidString: self) }
}
