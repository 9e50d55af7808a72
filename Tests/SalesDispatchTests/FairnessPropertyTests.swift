import Foundation
import PropertyBased
import Postgres
@testable import SalesDispatch
import Testing

/// Fairness of the three strategies over 10,000 assignments, for random teams (size, weights, caps, releases).
@Suite struct FairnessPropertyTests {
    static let start = Date(timeIntervalSince1970: 1_793_584_800)

    /// Runs `count` assignments through the engine, calling `between` after each (it may release holdings).
    static func run(_ policy: TeamPolicy, reps: [RepState], count: Int, check: ([String: RepState], String, [String: Int]) -> Void,
                    between: (inout [String: RepState], inout SplitMix) -> Void = { _, _ in }, seed: Int) async -> [String: Int] {
        var team = TeamState(id: "t")
        var states = Dictionary(uniqueKeysWithValues: reps.map { ($0.id, $0) })
        var counts: [String: Int] = [:]
        var rng = SplitMix(seed: UInt64(seed))
        for i in 0..<count {
            let now = start + Double(i)  // all within one day
            let choice = DispatchEngine.choose(team: team, reps: Array(states.values), policy: policy, productLine: "python", now: now)
            guard let picked = choice.picked else { Issue.record("nobody eligible at \(i)"); break }
            check(states, picked, counts)
            DispatchEngine.apply(pick: picked, reps: &states, team: &team, policy: policy, now: now)
            counts[picked, default: 0] += 1
            between(&states, &rng)
            // Yields now and then: two cooperative threads, and the suite's other tests wait on them.
            if i % 500 == 499 { await Task.yield() }
        }
        return counts
    }

    static let uncapped = TeamPolicy(dailyNewCap: 1_000_000, maxHolding: 1_000_000)

    @Test func roundRobinNeverDiffersByMoreThanOneAmongEquallyEligibleReps() async {
        await propertyCheck(count: 20, input: Gen.int(in: 2...12)) { size in
            let reps = (0..<size).map { RepState(id: "r\($0)", teamID: "t", weight: $0 + 1) }
            _ = await Self.run(Self.uncapped, reps: reps, count: 10_000, check: { _, _, counts in
                let values = reps.map { counts[$0.id] ?? 0 }
                #expect(values.max()! - values.min()! <= 1)
            }, seed: size)
        }
    }

    @Test func weightedStaysWithinTwoPercentOfTheWeights() async {
        await propertyCheck(count: 20, input: Gen.int(in: 1...1_000_000)) { seed in
            var rng = SplitMix(seed: UInt64(seed))
            let size = Int.random(in: 2...10, using: &rng)
            let reps = (0..<size).map { RepState(id: "r\($0)", teamID: "t", weight: Int.random(in: 1...10, using: &rng)) }
            var policy = Self.uncapped
            policy.strategy = .weighted
            let counts = await Self.run(policy, reps: reps, count: 10_000, check: { _, _, _ in }, seed: seed)
            let total = Double(reps.map(\.weight).reduce(0, +))
            for rep in reps {
                let share = Double(counts[rep.id] ?? 0) / 10_000
                #expect(abs(share - Double(rep.weight) / total) <= 0.02, "rep \(rep.id) weight \(rep.weight)/\(total): share \(share)")
            }
        }
    }

    @Test func leastLoadedNeverPicksARepAboveTheMinimumLoadPlusOne() async {
        await propertyCheck(count: 20, input: Gen.int(in: 1...1_000_000)) { seed in
            var rng = SplitMix(seed: UInt64(seed))
            let size = Int.random(in: 2...10, using: &rng)
            // Reps start unequal, and holdings are released at random between assignments.
            let reps = (0..<size).map { RepState(id: "r\($0)", teamID: "t", holding: Int.random(in: 0...30, using: &rng)) }
            var policy = Self.uncapped
            policy.strategy = .leastLoaded
            _ = await Self.run(policy, reps: reps, count: 10_000, check: { states, picked, _ in
                let minimum = states.values.map(\.holding).min()!
                #expect(states[picked]!.holding <= minimum + 1)
            }, between: { states, rng in
                if Int.random(in: 0...2, using: &rng) == 0, let id = states.keys.sorted().randomElement(using: &rng), states[id]!.holding > 0 {
                    states[id]!.holding -= 1
                }
            }, seed: seed)
        }
    }

    @Test func capsAreNeverExceededWhateverTheStrategy() async {
        await propertyCheck(count: 15, input: Gen.int(in: 1...1_000_000)) { seed in
            var rng = SplitMix(seed: UInt64(seed))
            let strategy = DispatchStrategy.allCases.randomElement(using: &rng)!
            let reps = (0..<Int.random(in: 2...6, using: &rng)).map {
                RepState(id: "r\($0)", teamID: "t", weight: Int.random(in: 1...4, using: &rng), dailyNewCap: Int.random(in: 5...50, using: &rng),
                         maxHolding: Int.random(in: 5...40, using: &rng))
            }
            let policy = TeamPolicy(strategy: strategy, dailyNewCap: 30, maxHolding: 35)
            var team = TeamState(id: "t")
            var states = Dictionary(uniqueKeysWithValues: reps.map { ($0.id, $0) })
            for i in 0..<2_000 {
                let now = Self.start + Double(i * 60)
                if let picked = DispatchEngine.choose(team: team, reps: Array(states.values), policy: policy, productLine: "x", now: now).picked {
                    DispatchEngine.apply(pick: picked, reps: &states, team: &team, policy: policy, now: now)
                }
                if Bool.random(using: &rng), let id = states.keys.sorted().randomElement(using: &rng), states[id]!.holding > 0 { states[id]!.holding -= 1 }
                for rep in states.values {
                    #expect(rep.newToday <= rep.dailyCap(policy) && rep.holding <= rep.holdingCap(policy))
                }
                if i % 500 == 499 { await Task.yield() }
            }
        }
    }

    /// The same through PostgreSQL: the rotation state survives batches and transactions.
    @Test func roundRobinThroughTheDatabaseOver10000Assignments() async throws {
        let f = try await DispatchFixture()
        try await f.team("t")
        for i in 0..<7 { try await f.rep("r\(i)", team: "t") }
        try await f.publish(.single("t", TeamPolicy(dailyNewCap: 100_000, maxHolding: 100_000)))
        for _ in 0..<20 {
            _ = try await f.process((0..<500).map { _ in DispatchFixture.lead(customer: UUID()) })
        }
        let counts = try await f.postgres.query("SELECT holding FROM \(identifier: f.schema).reps").map { try $0.decode(Int.self) }
        #expect(counts.reduce(0, +) == 10_000)
        #expect(counts.max()! - counts.min()! <= 1)
        await f.close()
    }
}

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
