import Foundation
import Logging
import Metrics
import Postgres
import ServiceKit
import ServiceLifecycle

/// Fires per-opportunity deadlines: warnings before, recycling at the deadline (to the pool, redistributed by
/// policy). Due rows are taken by the `deadlines_due` index (`due_at <= now ORDER BY due_at LIMIT n`,
/// `FOR UPDATE SKIP LOCKED`, so replicas share the work), never by scanning opportunities. It also drains the
/// teams' queues on a slower beat, for capacity freed by a new day or working hours starting.
public final class DeadlineScheduler: Service, Sendable {
    public struct Configuration: Sendable {
        /// How often due deadlines are looked for.
        public var tick: Duration = .milliseconds(500)
        /// Deadlines taken per transaction.
        public var batchSize: Int = 2_000
        /// How often every team's queue is retried.
        public var drainEvery: Duration = .seconds(30)
        public init() {}
    }

    let configuration: Configuration
    let runner: UnitRunner
    let handler: SalesInputHandler
    let logger: Logger
    private let fired = Counter(label: "funnel_dispatch_deadlines_fired_total")

    init(configuration: Configuration, runner: UnitRunner, handler: SalesInputHandler, logger: Logger) {
        self.configuration = configuration
        self.runner = runner
        self.handler = handler
        self.logger = logger
    }

    public func run() async throws {
        var lastDrain = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await fireAllDue()
                if ContinuousClock.now - lastDrain > configuration.drainEvery {
                    try await drainAll()
                    lastDrain = .now
                }
            } catch {
                logger.error("deadline scheduler failed; retrying", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.tick)
        }
    }

    /// Fires everything due at the clock's now, including timers that firing schedules already due (a warning's
    /// deadline that has also passed), then redistributes what was recycled; returns how many fired.
    @discardableResult
    public func fireAllDue() async throws -> Int {
        var total = 0
        var freed: Set<String> = []
        while true {
            // Two transactions at a time (SKIP LOCKED gives each its own rows; firing takes no team lock), so a
            // burst of due deadlines uses both PostgreSQL and this process on two cores.
            async let first = fireDue()
            async let second = fireDue()
            let (a, b) = try await (first, second)
            total += a.fired + b.fired
            freed.formUnion(a.freedTeams.union(b.freedTeams))
            if a.fired + b.fired == 0 { break }
        }
        for team in freed.sorted() { try await drain(team) }
        return total
    }

    /// Fires up to one batch of deadlines due at the clock's now, in one transaction: warnings are emitted, and
    /// recycled opportunities go to the pool — or, to be redistributed, to their team's queue (handed out by
    /// ``drain(_:)`` right after, the previous owner excluded by the cooldown). Returns how many fired and the
    /// teams that got capacity back.
    public func fireDue() async throws -> (fired: Int, freedTeams: Set<String>) {
        let store = runner.store, limit = configuration.batchSize
        let result = try await runner.run { unit, connection -> (Int, Set<String>) in
            let due = try connection.query("""
                DELETE FROM \(identifier: store.schema).deadlines d USING (
                    SELECT opportunity_id FROM \(identifier: store.schema).deadlines WHERE due_at <= \(unit.now)
                    ORDER BY due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                ) x WHERE d.opportunity_id = x.opportunity_id
                RETURNING d.opportunity_id, d.kind, d.due_at
                """).map { row -> (UUID, DeadlineKind, Date) in
                let (id, kind, at) = try row.decode(UUID.self, String.self, Date.self)
                return (id, DeadlineKind(rawValue: kind) ?? .followUp, at)
            }
            guard !due.isEmpty else { return (0, []) }
            // Firing only frees capacity (holdings are written as deltas): the opportunities are locked, not their teams.
            try store.loadOpportunities(.ids(Array(Set(due.map(\.0)))), lock: true, into: &unit, in: connection)
            var freed: Set<String> = []
            for (id, kind, _) in due.sorted(by: { ($0.2, $0.0.uuidString) < ($1.2, $1.0.uuidString) }) {
                unit.untimed.insert(id)  // its stored timer is gone already
                switch kind {
                case .followUpWarning, .dealWarning: unit.warn(id, deadline: kind)
                case .followUp, .deal:
                    if let team = unit.opportunities[id]?.teamID { freed.insert(team) }
                    unit.recycle(id, deadline: kind)
                }
            }
            return (due.count, freed)
        }
        fired.increment(by: result.0)
        return (result.0, result.1)
    }

    /// Hands out `team`'s queue to reps with capacity, a transaction per `batchSize`, until it is empty or
    /// nobody can take more.
    public func drain(_ team: String) async throws {
        let store = runner.store, limit = configuration.batchSize
        while true {
            let (placed, left) = try await runner.run { unit, connection -> (Int, Int) in
                let queued = try store.queued(team: team, limit: limit, in: connection)
                guard !queued.isEmpty else { return (0, 0) }
                try store.lock(opportunities: queued, extraTeams: [team], into: &unit, in: connection)
                unit.drainQueue(team: team, queued: queued)
                let placed = queued.filter { unit.opportunities[$0]?.status == .assigned }.count
                return (placed, queued.count - placed)
            }
            if placed == 0 || left > 0 { return }
        }
    }

    /// Retries every team's queue.
    public func drainAll() async throws {
        let store = runner.store, handler = self.handler
        let teams = try await runner.postgres.query("SELECT DISTINCT team_id FROM \(identifier: store.schema).opportunities WHERE status = 'queued'")
            .map { try $0.decode(String.self) }
        for team in teams {
            try await runner.run { unit, connection in
                if team.isEmpty || unit.policy.teams[team] == nil && unit.policy.fallbackTeam != team && !unit.policy.routing.contains(where: { $0.team == team }) {
                    try Self.reroute(team: team, unit: &unit, store: store, in: connection)
                } else {
                    try handler.drainQueues(of: team, unit: &unit, in: connection)
                }
            }
        }
    }

    /// Opportunities queued for a team the policy no longer routes to (or before any policy) are routed again.
    static func reroute(team: String, unit: inout DispatchUnit, store: DispatchStore, in connection: PostgresConnection) throws {
        guard unit.policyVersion > 0 else { return }
        let queued = try store.queued(team: team, limit: 500, in: connection)
        guard !queued.isEmpty else { return }
        var peek = unit
        try store.loadOpportunities(.ids(queued), lock: false, into: &peek, in: connection)
        var teams: Set<String> = [team]
        for id in queued { if let o = peek.opportunities[id] { teams.insert(unit.policy.route(productLine: o.productLine, channel: o.channel, region: o.region).team) } }
        try store.lock(opportunities: queued, extraTeams: teams, into: &unit, in: connection)
        for id in queued {
            guard var o = unit.opportunities[id], o.status == .queued else { continue }
            o.teamID = unit.policy.route(productLine: o.productLine, channel: o.channel, region: o.region).team
            unit.touch(o)
            unit.dispatch(id, actor: "system")
        }
    }
}
