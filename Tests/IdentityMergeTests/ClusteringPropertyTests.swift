import Foundation
@testable import IdentityMerge
import Kafka
import PropertyBased
import ServiceKit
import Testing
import TestSupport

/// Properties of the graph on the real PostgreSQL: for conflict-free inputs (no two people share an
/// identifier, no customer exceeds a limit) the clustering is the connected components of the identifiers
/// records carry together, whatever the order and however the records are batched.
@Suite("identity-merge clustering properties")
struct ClusteringPropertyTests {
    /// A random scenario derived from a seed: people with identifiers, and records each carrying some of one
    /// person's identifiers.
    struct Scenario {
        enum Record {
            case lead(phone: String?, email: String?, wechat: String?, at: Date)
            case registration(user: String, phone: String?, email: String?, at: Date)
        }
        var records: [Record] = []

        init(seed: Int) {
            var rng = SplitMix(seed: UInt64(seed))
            let base = Date(timeIntervalSince1970: 1_780_000_000)
            let people = Int.random(in: 2...5, using: &rng)
            var serial = Int.random(in: 0...5_000_000, using: &rng)
            for person in 0..<people {
                func phone() -> String {
                    serial += 7
                    return "1391" + String(format: "%07d", serial % 10_000_000)
                }
                let user: String? = Bool.random(using: &rng) ? "u-\(seed)-\(person)" : nil
                let phones = (0..<Int.random(in: 1...3, using: &rng)).map { _ in phone() }
                let emails = (0..<Int.random(in: 0...2, using: &rng)).map { "p\(person)-\($0)-\(seed)@example.com" }
                let wechat: String? = Bool.random(using: &rng) ? "wx_\(seed)_\(person)" : nil
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let at = base + Double(Int.random(in: 0...86_400, using: &rng))
                    let p = Bool.random(using: &rng) ? phones.randomElement(using: &rng) : nil
                    let e = Bool.random(using: &rng) ? emails.randomElement(using: &rng) : nil
                    if let user, Int.random(in: 0...3, using: &rng) == 0 {
                        records.append(.registration(user: user, phone: p, email: e, at: at))
                    } else {
                        let w = Bool.random(using: &rng) ? wechat : nil
                        records.append(.lead(phone: p ?? phones[0], email: e, wechat: w, at: at))
                    }
                }
            }
            records.shuffle(using: &rng)
        }

        func messages(_ graph: RecordBuilder) -> [KafkaConsumedMessage] {
            records.map {
                switch $0 {
                case .lead(let phone, let email, let wechat, let at): graph.lead(phone: phone, email: email, wechat: wechat, at: at)
                case .registration(let user, let phone, let email, let at): graph.registration(user: user, phone: phone, email: email, at: at)
                }
            }
        }

        /// Union-find over the identifiers each record carries.
        func expectedClustering(_ graph: RecordBuilder) -> Set<Set<String>> {
            var parent: [String: String] = [:]
            func find(_ x: String) -> String {
                var x = x
                while let p = parent[x], p != x { x = p }
                return x
            }
            func ident(_ kind: String, _ value: String) -> String { "\(kind):\(graph.keyer.key(kind: kind, normalized: value))" }
            for record in records {
                var idents: [String] = []
                switch record {
                case .lead(let phone, let email, let wechat, _):
                    if let phone { idents.append(ident("phone", "+86" + phone)) }
                    if let email { idents.append(ident("email", email)) }
                    if let wechat { idents.append(ident("wechat", wechat)) }
                case .registration(let user, let phone, let email, _):
                    idents.append("user_id:\(user)")
                    if let phone { idents.append(ident("phone", "+86" + phone)) }
                    if let email { idents.append(ident("email", email)) }
                }
                for id in idents where parent[id] == nil { parent[id] = id }
                for id in idents.dropFirst() { parent[find(id)] = find(idents[0]) }
            }
            var groups: [String: Set<String>] = [:]
            for id in parent.keys { groups[find(id), default: []].insert(id) }
            return Set(groups.values)
        }
    }

    @Test func everyOrderOfTheSameRecordsEndsInTheSameClustering() async throws {
        await propertyCheck(count: 12, input: Gen.int(in: 1...1_000_000_000)) { seed in
            let scenario = Scenario(seed: seed)
            var reversed = scenario
            reversed.records.reverse()
            var shuffled = scenario
            var rng = SplitMix(seed: UInt64(seed) &+ 1)
            shuffled.records.shuffle(using: &rng)
            var results: [Set<Set<String>>] = []
            for variant in [scenario, reversed, shuffled] {
                let graph = try await GraphFixture()
                try await graph.feedEach(variant.messages(graph.records))
                results.append(try await graph.clustering())
                if results.count == 1 { #expect(results[0] == variant.expectedClustering(graph.records), "seed \(seed)") }
                await graph.close()
            }
            #expect(results[0] == results[1] && results[1] == results[2], "seed \(seed)")
        }
    }

    @Test func oneBatchOrOneRecordAtATimeBuildTheSameGraph() async throws {
        await propertyCheck(count: 12, input: Gen.int(in: 1...1_000_000_000)) { seed in
            let scenario = Scenario(seed: seed)
            let single = try await GraphFixture()
            let batched = try await GraphFixture()
            try await single.feedEach(scenario.messages(single.records))
            try await batched.feed(scenario.messages(batched.records))
            #expect(try await single.clustering() == batched.clustering(), "seed \(seed)")
            #expect(try await single.activeCustomers() == batched.activeCustomers(), "seed \(seed)")
            await single.close()
            await batched.close()
        }
    }
}

/// A small deterministic generator, so a failing seed reproduces its scenario.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
