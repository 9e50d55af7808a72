import Contracts
import Foundation
import Hummingbird
import Logging
import Postgres
import ServiceKit

/// sales-dispatch: owns opportunities and the rules that move them — real-time assignment, the public pool,
/// per-opportunity recycle timers, claims, manual override with data permissions, an explained decision for
/// each move, ownership history for credit, and policy simulation. Emits `sales.opportunities.v1`.
public enum SalesDispatchService {
    public static let name = "sales-dispatch"
    public static let defaultHTTPPort = 8084
    public static var migrations: [PostgresMigration] { SalesMigrations.all }

    public static func settings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServiceSettings {
        try ServiceSettings.fromEnvironment(service: name, defaultHTTPPort: defaultHTTPPort, environment: environment)
    }

    /// The deadline scheduler's settings: `FUNNEL_DISPATCH_TICK_MS` (how often due deadlines are looked for, default
    /// 500), `FUNNEL_DISPATCH_DEADLINE_BATCH` (deadlines per transaction, default 2000), `FUNNEL_DISPATCH_DRAIN_SECONDS`
    /// (how often every queue is retried, default 30).
    public static func schedulerConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DeadlineScheduler.Configuration {
        var configuration = DeadlineScheduler.Configuration()
        func int(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text), range.contains(value) else {
                throw ConfigurationError(variable: name, reason: "must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        if let ms = try int("FUNNEL_DISPATCH_TICK_MS", 10...60_000) { configuration.tick = .milliseconds(ms) }
        if let n = try int("FUNNEL_DISPATCH_DEADLINE_BATCH", 1...100_000) { configuration.batchSize = n }
        if let s = try int("FUNNEL_DISPATCH_DRAIN_SECONDS", 1...86_400) { configuration.drainEvery = .seconds(s) }
        return configuration
    }

    /// Everything the process runs, built on a prepared runtime.
    public struct Components {
        public let runtime: ServiceRuntime
        public let router: Router<BasicRequestContext>
        public let consumers: [ConsumeLoop]
        public let scheduler: DeadlineScheduler
        public let clock: DispatchClock
        public let verifier: EmployeeTokenVerifier

        public init(runtime: ServiceRuntime, clock: DispatchClock = DispatchClock(), scheduler schedulerConfiguration: DeadlineScheduler.Configuration = .init()) async throws {
            self.runtime = runtime
            self.clock = clock
            let settings = runtime.settings
            let schema = settings.schema
            let newID: @Sendable (Date) -> UUID = { UUIDv7.generate(at: $0) }
            let policies = PolicyStore(schema: schema)
            let store = DispatchStore(schema: schema)
            let org = OrgStore(schema: schema)
            let events = OpportunityEvents(service: settings.serviceName, topic: settings.topic(Topics.opportunities.name))
            let handler = SalesInputHandler(
                topics: SalesTopics(customers: settings.topic(Topics.customers.name), employees: settings.topic(Topics.employees.name),
                                    calls: settings.topic(Topics.calls.name), conversions: settings.topic(Topics.conversions.name)),
                policies: policies, store: store, org: org, events: events, clock: clock, newID: newID
            )
            let runner = UnitRunner(postgres: runtime.postgres, policies: policies, store: store, events: events, clock: clock, relay: runtime.relay, newID: newID)
            verifier = await EmployeeTokenVerifier(secret: settings.jwtSecret)
            let access = Access(verifier: verifier, org: org, postgres: runtime.postgres)
            let router = Router(context: BasicRequestContext.self)
            router.addStandardMiddleware()
            OrgRoutes(access: access, runner: runner, org: org, policies: policies, handler: handler, maxBodyBytes: settings.httpMaxBodyBytes).add(to: router)
            OpportunityRoutes(access: access, runner: runner, store: store, maxBodyBytes: settings.httpMaxBodyBytes).add(to: router)
            SimulationRoutes(access: access, postgres: runtime.postgres, simulator: PolicySimulator(schema: schema), maxBodyBytes: settings.httpMaxBodyBytes).add(to: router)
            self.router = router
            self.scheduler = DeadlineScheduler(configuration: schedulerConfiguration, runner: runner, handler: handler, logger: runtime.logger)
            self.consumers = runtime.consumeLoops(
                topics: [Topics.customers.name, Topics.employees.name, Topics.calls.name, Topics.conversions.name], handler: handler
            )
        }

        /// Runs until SIGTERM/SIGINT.
        public func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }, signals: Bool = true, stopper: ServiceStopper? = nil) async throws {
            try await runtime.run(consumers: consumers, application: runtime.application(router: router, onServerRunning: onServerRunning),
                                  signals: signals, stopper: stopper, extraServices: [scheduler])
        }
    }
}
