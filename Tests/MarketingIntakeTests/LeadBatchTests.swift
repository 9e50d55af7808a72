import Contracts
import Foundation
@testable import MarketingIntake
import Postgres
import PropertyBased
import ServiceKit
import Testing
import TestSupport

/// ``LeadStore`` decides a whole batch in memory and writes it with one insert: these check, on the real
/// PostgreSQL, that a batch ends exactly as its leads written one at a time would (flood window, redeliveries,
/// counts, events and their order), each rule by hand, and a concurrent writer of the same platform lead id.
@Suite("marketing-intake batch lead writes")
struct LeadBatchTests {
    /// A schema with intake's tables, three sources and a store with a 10 s flood window.
    struct Fixture: Sendable {
        let client: PostgresClient
        let schema: String
        let sources: [LeadSource]
        let store: LeadStore

        static func make(floodWindow: Duration = .seconds(10)) async throws -> Fixture {
            let client = TestEnvironment.postgres(maxConnections: 3)
            let schema = TestEnvironment.uniqueName("mib")
            try await PostgresMigrator(schema: schema, migrations: IntakeService.migrations).migrate(client, logger: TestEnvironment.logger())
            let sourceStore = SourceStore(schema: schema, postgres: client)
            var sources: [LeadSource] = []
            for name in ["ads", "landing", "partner"] { sources.append(try await sourceStore.create(name: name, defaultChannel: .feed).source) }
            var store = LeadStore(schema: schema, service: "marketing-intake", outputTopic: "t.leads.captured.v1")
            store.floodWindow = floodWindow
            return Fixture(client: client, schema: schema, sources: sources, store: store)
        }

        func write(_ leads: [ValidatedLead]) async throws -> [LeadWriteResult] {
            let store = self.store
            return try await client.withTransaction { try store.write(leads, in: $0) }
        }

        /// Every lead with its counts (by id), and the events queued, in outbox order.
        func state() async throws -> (leads: [String], events: [String]) {
            let leads = try await client.query("SELECT lead_id, flood_duplicates, redeliveries FROM \(identifier: schema).leads ORDER BY lead_id")
                .map { row in let (id, floods, redeliveries) = try row.decode(UUID.self, Int.self, Int.self); return "\(id.lowercasedText) f\(floods) r\(redeliveries)" }
            let events = try await client.query("SELECT encode(key, 'escape'), md5(headers), md5(payload) FROM \(identifier: schema).outbox ORDER BY id")
                .map { row in let (key, headers, payload) = try row.decode(String.self, String.self, String.self); return "\(key) \(headers) \(payload)" }
            return (leads, events)
        }

        func reset() async throws {
            try await client.withConnection { [schema] in try $0.executeScript("TRUNCATE \(PostgresQuery.quoteIdentifier(schema)).leads, \(PostgresQuery.quoteIdentifier(schema)).outbox") }
        }
    }

    static let validator = LeadValidator(keyer: IdentityKeyer(pepper: Array("batch-test-pepper".utf8)),
                                         cipher: try! PIICipher(keys: ["k1": Array(repeating: 7, count: 32)], activeKeyID: "k1"), defaultRegion: "CN")

    /// A lead as marketing would send it, validated as received at `at`.
    static func lead(phone: Int?, email: Int? = nil, platformLeadID: String?, source: LeadSource, at: Date) throws -> ValidatedLead {
        var input = Funnel_Marketing_V1_CampaignLead()
        if let phone { input.phone = "+86 138 0013 800\(phone)" }
        if let email { input.email = "student\(email)@example.com" }
        input.platformLeadID = platformLeadID ?? ""
        input.name = "学员"
        var validator = validator
        validator.now = { at }
        return try validator.validate(input, source: source, receivedVia: "topic").get()
    }

    /// A lead from one number: 4 phones or an email, 3 sources, 3 platform lead ids or none, and 0–6 s after the
    /// lead before it (so some repeats fall outside the 10 s window).
    static func lead(code: Int, sources: [LeadSource], at: Date) throws -> ValidatedLead {
        let contact = code % 5, source = code / 5 % 3, platform = code / 15 % 4
        return try lead(phone: contact < 4 ? contact : nil, email: contact == 4 ? 1 : nil, platformLeadID: platform < 3 ? "p\(platform)" : nil,
                        source: sources[source], at: at)
    }

    @Test func aBatchEndsExactlyAsItsLeadsWrittenOneByOne() async throws {
        let batched = try await Fixture.make(), single = try await Fixture.make()
        // Both schemas must see the same source ids for their leads to be the same.
        try await single.client.withConnection { [single, batched] connection in
            for (theirs, ours) in zip(batched.sources, single.sources) {
                try connection.query("UPDATE \(identifier: single.schema).lead_sources SET id = \(theirs.id) WHERE id = \(ours.id)")
            }
        }
        let codes = Gen.int(in: 0...(5 * 3 * 4 * 7 - 1)).array(of: 1...24)
        // propertyCheck drops an error thrown by its body (it only counts recorded issues): record them.
        await propertyCheck(count: 60, input: codes, Gen.int(in: 0...6)) { codes, split in
            do {
                try await Self.compare(codes: codes, split: split, batched: batched, single: single)
            } catch {
                Issue.record(error, "codes \(codes), split \(split)")
            }
        }
    }

    /// Writes the leads of `codes`: the first `split` one at a time into both schemas, the rest as one batch into
    /// `batched` and one at a time into `single`; results, counts and events must be the same.
    static func compare(codes: [Int], split: Int, batched: Fixture, single: Fixture) async throws {
        try await batched.reset()
        try await single.reset()
        var at = Date(timeIntervalSince1970: 1_790_000_000)
        var leads: [ValidatedLead] = []
        for code in codes {
            at += Double(code / 60 % 7)
            leads.append(try lead(code: code, sources: batched.sources, at: at))
        }
        let stored = Array(leads.prefix(split)), batch = Array(leads.dropFirst(split))
        for lead in stored {
            #expect(try await batched.write([lead]) == (try await single.write([lead])))
        }
        var oneByOne: [LeadWriteResult] = []
        for lead in batch { oneByOne += try await single.write([lead]) }
        let together = try await batched.write(batch)
        #expect(together == oneByOne, "codes \(codes), split \(split)")
        let (a, b) = (try await batched.state(), try await single.state())
        #expect(a.leads == b.leads, "codes \(codes), split \(split)")
        #expect(a.events == b.events, "codes \(codes), split \(split)")
        #expect(a.events.count == a.leads.count)
    }

    @Test func eachRuleOfABatchByHand() async throws {
        let fixture = try await Fixture.make()
        let (ads, landing) = (fixture.sources[0], fixture.sources[1])
        let t0 = Date(timeIntervalSince1970: 1_790_000_000)
        let first = try Self.lead(phone: 1, platformLeadID: "a-1", source: ads, at: t0)
        let batch = [
            first,
            // Another platform lead with the same phone 5 s later: a flood duplicate of the first.
            try Self.lead(phone: 1, platformLeadID: "a-2", source: ads, at: t0 + 5),
            // The first redelivered: its own lead is no flood candidate, so it is a redelivery.
            try Self.lead(phone: 1, platformLeadID: "a-1", source: ads, at: t0 + 6),
            // The same platform lead id from another source is another lead, but its phone floods.
            try Self.lead(phone: 1, platformLeadID: "a-1", source: landing, at: t0 + 7),
            // 11 s after the first: outside the window, a new lead.
            try Self.lead(phone: 1, platformLeadID: "a-3", source: ads, at: t0 + 11),
            // Email only, no platform id, twice: emails have no flood window, so both are leads.
            try Self.lead(phone: nil, email: 1, platformLeadID: nil, source: ads, at: t0 + 12),
            try Self.lead(phone: nil, email: 1, platformLeadID: nil, source: ads, at: t0 + 12),
            // A redelivery of the email-only lead with an id, after it was inserted in this batch.
            try Self.lead(phone: nil, email: 2, platformLeadID: "e-1", source: landing, at: t0 + 13),
            try Self.lead(phone: nil, email: 2, platformLeadID: "e-1", source: landing, at: t0 + 14),
        ]
        let ids = batch.map { UUID(uuidString: $0.event.leadID)! }
        let results = try await fixture.write(batch)
        #expect(results == [
            LeadWriteResult(leadID: ids[0], inserted: true), LeadWriteResult(leadID: ids[0], inserted: false),
            LeadWriteResult(leadID: ids[0], inserted: false), LeadWriteResult(leadID: ids[0], inserted: false),
            LeadWriteResult(leadID: ids[4], inserted: true), LeadWriteResult(leadID: ids[5], inserted: true),
            LeadWriteResult(leadID: ids[6], inserted: true), LeadWriteResult(leadID: ids[7], inserted: true),
            LeadWriteResult(leadID: ids[7], inserted: false),
        ])
        let state = try await fixture.state()
        #expect(Set(state.leads) == [
            "\(ids[0].lowercasedText) f2 r1", "\(ids[4].lowercasedText) f0 r0", "\(ids[5].lowercasedText) f0 r0",
            "\(ids[6].lowercasedText) f0 r0", "\(ids[7].lowercasedText) f0 r1",
        ])
        #expect(state.events.count == 5)

        // A later batch counts on stored leads: a-1 again floods onto a-3 (the one lead of its phone still inside the
        // window, and not itself), e-1 again is a second redelivery, and a new phone is a new lead.
        let later = try await fixture.write([
            try Self.lead(phone: 1, platformLeadID: "a-1", source: ads, at: t0 + 15),
            try Self.lead(phone: nil, email: 2, platformLeadID: "e-1", source: landing, at: t0 + 15),
            try Self.lead(phone: 2, platformLeadID: "a-9", source: ads, at: t0 + 15),
        ])
        #expect(later.map(\.leadID) == [ids[4], ids[7], later[2].leadID] && later.map(\.inserted) == [false, false, true])
        let after = try await fixture.state()
        #expect(after.leads.contains("\(ids[4].lowercasedText) f1 r0") && after.leads.contains("\(ids[7].lowercasedText) f0 r2"))
        #expect(after.events.count == 6)
    }

    /// Leads carry no foreign key to their source (a check per row cost more than the rest of a lead's write): the
    /// schema refuses deleting a source instead, with or without leads, so no lead's source can disappear.
    @Test func aLeadSourceCannotBeDeleted() async throws {
        let f = try await Fixture.make()
        let at = Date()
        _ = try await f.write([try Self.lead(phone: 1, platformLeadID: "p1", source: f.sources[0], at: at)])
        for source in f.sources {
            do {
                try await f.client.query("DELETE FROM \(identifier: f.schema).lead_sources WHERE id = \(source.id)")
                Issue.record("deleting a lead source must be refused")
            } catch let error as PostgresError {
                #expect(error.sqlState == "23001")
            }
        }
        let count = try await f.client.query("SELECT count(*) FROM \(identifier: f.schema).lead_sources").first!.decode(Int.self)
        #expect(count == f.sources.count)
    }

    @Test func aConcurrentWriterOfTheSamePlatformLeadWinsAndTheOtherCountsARedelivery() async throws {
        let fixture = try await Fixture.make()
        let (mine, theirs, holder, first) = try await Self.holdingFirstOfTwo("race-1", fixture: fixture)
        #expect(first == [LeadWriteResult(leadID: UUID(uuidString: mine.event.leadID)!, inserted: true)])
        // The second insert waits on the first's uncommitted row, then takes the redelivery path once it commits.
        let second = Task { try await fixture.write([theirs]) }
        try await holder.waitUntilAnotherWaits()
        try await holder.commit()
        #expect(try await second.value == [LeadWriteResult(leadID: UUID(uuidString: mine.event.leadID)!, inserted: false)])
        let state = try await fixture.state()
        #expect(state.leads == ["\(mine.event.leadID) f0 r1"])
        #expect(state.events.count == 1)
    }
}

extension LeadBatchTests {
    /// Two leads with one platform lead id and no phone (no flood lock serialises their writers, so the second's read
    /// cannot see the first's uncommitted lead), and a transaction holding the first written but not committed.
    static func holdingFirstOfTwo(_ platformLeadID: String, fixture: Fixture) async throws
        -> (mine: ValidatedLead, theirs: ValidatedLead, holder: HeldConnection, first: [LeadWriteResult]) {
        let now = Date()
        let mine = try lead(phone: nil, email: 3, platformLeadID: platformLeadID, source: fixture.sources[2], at: now)
        let theirs = try lead(phone: nil, email: 4, platformLeadID: platformLeadID, source: fixture.sources[2], at: now + 0.001)
        let holder = HeldConnection()
        try await holder.begin()
        let store = fixture.store
        let first = try await holder.run { try store.write([mine], in: $0) }
        return (mine, theirs, holder, first)
    }

    /// The consume loop's write has no ON CONFLICT: meeting a concurrent writer's lead fails its COMMIT with a unique
    /// violation (nothing of it is kept), and the transaction run again counts a redelivery, as the loop does.
    @Test func theConsumeLoopsWriteFailsOnAConcurrentWritersLeadAndItsRerunCountsARedelivery() async throws {
        let fixture = try await Fixture.make()
        let store = fixture.store
        let (mine, theirs, holder, _) = try await Self.holdingFirstOfTwo("race-2", fixture: fixture)
        let second = Task { try await fixture.client.withTransaction { try store.writeWithCommit([theirs], in: $0) } }
        try await holder.waitUntilAnotherWaits()
        try await holder.commit()
        let failure = await #expect(throws: PostgresError.self) { try await second.value }
        #expect(failure?.isUniqueViolation == true)
        #expect(failure?.constraint == "leads_source_platform_lead")
        #expect(try await fixture.state().events.count == 1, "the failed write queued nothing")
        try await fixture.client.withTransaction { try store.writeWithCommit([theirs], in: $0) }
        let state = try await fixture.state()
        #expect(state.leads == ["\(mine.event.leadID) f0 r1"])
        #expect(state.events.count == 1)
    }
}
