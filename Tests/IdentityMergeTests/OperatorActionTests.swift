import Contracts
import Foundation
@testable import IdentityMerge
import Postgres
import ServiceKit
import Testing
import TestSupport

/// Unmerge, erasure and tags on the real PostgreSQL.
@Suite("identity-merge operator actions and tags")
struct OperatorActionTests {
    let t0 = Date(timeIntervalSince1970: 1_780_000_000)

    /// Two people wrongly merged through a shared email: phone A's and phone B's leads.
    func wronglyMerged(_ graph: GraphFixture) async throws -> UUID {
        try await graph.feed([graph.lead(phone: "13812345678", id: "lead-a", at: t0)])
        try await graph.feed([graph.lead(phone: "13987654321", email: "family@example.com", id: "lead-b", at: t0 + 10)])
        try await graph.feed([graph.lead(phone: "13812345678", email: "family@example.com", id: "lead-c", at: t0 + 20)])
        let merged = try #require(await graph.customer(phone: "13812345678"))
        #expect(try await graph.customer(phone: "13987654321") == merged)
        return merged
    }

    @Test func unmergeSplitsIdentifiersAndTheirLeadsAndKeepsThemApart() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        let merged = try await wronglyMerged(graph)
        let result = try await graph.store.unmerge(merged, identifiers: [(.phone, "139 8765 4321")], reason: "two people share an email", by: "ops-1")
        let newID = try #require(UUID(uuidString: result.newCustomerID))
        #expect(result.movedIdentifiers == ["phone"] && result.movedLeads == ["lead-b"])
        #expect(try await graph.customer(phone: "13987654321") == newID)
        #expect(try await graph.customer(phone: "13812345678") == merged)
        guard case .found(let moved) = try await graph.store.profile(newID) else { Issue.record("no new customer"); return }
        #expect(moved.phoneMasked == "139****4321" && moved.leads.map(\.leadID) == ["lead-b"])

        // A later record linking both again does not re-merge them: the decision says why.
        let again = try await graph.feed([graph.lead(phone: "13812345678", email: nil, id: "lead-d", at: t0 + 30),
                                          graph.lead(phone: "13987654321", email: "family@example.com", id: "lead-e", at: t0 + 40)])
        #expect(again.allSatisfy { !$0.events.contains { $0.isMerged } })
        #expect(again[1].events.first?.resolved.dropped == ["email:separated_by_unmerge"])
        let history = try await graph.decisions(merged)
        #expect(history.contains { $0.action == "unmerged" && $0.detail.note?.contains("ops-1") == true })
        // Its event is in the outbox, keyed by the original customer.
        let queued = try await graph.count("SELECT count(*)::int FROM \(identifier: graph.schema).outbox")
        #expect(queued == 1)
    }

    @Test func unmergeRefusesForeignEmptyOrTotalSplits() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        let merged = try await wronglyMerged(graph)
        await #expect(throws: CustomerAdminFailure.self) {
            try await graph.store.unmerge(merged, identifiers: [(.phone, "13700000000")], reason: "x", by: "ops")
        }
        await #expect(throws: CustomerAdminFailure.self) {
            try await graph.store.unmerge(merged, identifiers: [(.phone, "13812345678"), (.phone, "13987654321"), (.email, "family@example.com")],
                                          reason: "x", by: "ops")
        }
        await #expect(throws: CustomerAdminFailure.self) {
            try await graph.store.unmerge(UUID(), identifiers: [(.phone, "13812345678")], reason: "x", by: "ops")
        }
    }

    @Test func erasureRemovesPIIAndALaterLeadStartsANewCustomer() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        let merged = try await wronglyMerged(graph)
        try await graph.feed([graph.tag(customer: merged, tag: "vip")])
        let result = try await graph.store.erase(merged, by: "dpo")
        #expect(result.absorbedIDs.count == 1)
        guard case .erased = try await graph.store.profile(merged) else { Issue.record("not erased"); return }
        #expect(try await graph.customer(phone: "13812345678") == nil)
        let schema = graph.schema
        #expect(try await graph.count("SELECT count(*)::int FROM \(identifier: schema).identifiers") == 0)
        #expect(try await graph.count("SELECT count(*)::int FROM \(identifier: schema).tags") == 0)
        #expect(try await graph.count("SELECT count(*)::int FROM \(identifier: schema).customer_leads") == 0)
        #expect(try await graph.count("""
            SELECT count(*)::int FROM \(identifier: schema).customers
            WHERE display_name IS NOT NULL OR phone_masked IS NOT NULL OR name_masked IS NOT NULL
            """) == 0)
        #expect(try await graph.count("SELECT count(*)::int FROM \(identifier: schema).decisions WHERE detail::text LIKE '%****%'") == 0,
                "no masks survive in decisions")
        let outcome = try await graph.feed([graph.lead(phone: "13812345678", at: t0 + 100)])
        #expect(outcome[0].events.first?.resolved.newCustomer == true)
        #expect(try await graph.customer(phone: "13812345678") != merged)
        await #expect(throws: CustomerAdminFailure.self) { try await graph.store.erase(merged, by: "dpo") }
        // A tag for an erased customer is refused.
        #expect(try await graph.feed([graph.tag(customer: merged, tag: "vip")])[0].rejection == "customer_erased")
    }

    @Test func tagsBySurvivorAbsorbedIDOrUserIDLandOnOneCustomerAndCanBeRemoved() async throws {
        let graph = try await GraphFixture()
        defer { Task { await graph.close() } }
        try await graph.feed([graph.lead(phone: "13812345678", at: t0)])
        let leadCustomer = try #require(await graph.customer(phone: "13812345678"))
        try await graph.feed([graph.registration(user: "u-5", phone: "13812345678", at: t0 + 5)])
        try await graph.feed([graph.registration(user: "u-6", email: "x@example.com", at: t0 + 6)])
        try await graph.feed([graph.lead(phone: "13812345678", email: "y@example.com", at: t0 + 7)])
        let outcomes = try await graph.feed([
            graph.tag(user: "u-5", tag: "study-active-7d"),
            graph.tag(customer: leadCustomer, tag: "repurchase-intent", source: "big-data"),
            graph.tag(user: "u-5", tag: "study-active-7d", removed: true),
        ])
        #expect(outcomes.map(\.rejection) == [nil, nil, nil])
        #expect(outcomes[2].events.first?.tagged.removed == true)
        guard case .found(let profile) = try await graph.store.profile(leadCustomer) else { Issue.record("no profile"); return }
        #expect(profile.tags.map(\.tag) == ["repurchase-intent"])
        #expect(profile.registered && profile.lifecycle == "registered")
    }
}
