import Contracts
import Foundation
import Hummingbird
import Logging
import Postgres
import Prometheus
import ServiceKit

/// identity-merge: resolves every lead and registration to one customer (phone-first, in real time), merges
/// and unmerges customers by versioned rules, keeps tags, erases on request, and emits `identity.customers.v1`.
public enum IdentityService {
    public static let name = "identity-merge"
    public static let defaultHTTPPort = 8083
    public static var migrations: [PostgresMigration] { IdentityMigrations.all }

    /// The service's settings from the environment.
    public static func settings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServiceSettings {
        try ServiceSettings.fromEnvironment(service: name, defaultHTTPPort: defaultHTTPPort, environment: environment)
    }

    /// Everything the process runs, built on a prepared runtime.
    public struct Components {
        public let runtime: ServiceRuntime
        public let router: Router<BasicRequestContext>
        public let consumers: [ConsumeLoop]

        public init(runtime: ServiceRuntime) async throws {
            self.runtime = runtime
            let settings = runtime.settings
            let keyer = settings.makeKeyer()
            let cipher = try settings.makeCipher()
            let events = CustomerEvents(service: settings.serviceName, topic: settings.topic(Topics.customers.name))
            let rules = RulesStore(schema: settings.schema, keyer: keyer, defaultRegion: settings.phoneDefaultRegion)
            try await rules.ensureDefault(runtime.postgres)
            let handler = IdentityHandler(
                topics: IdentityTopics(leads: settings.topic(Topics.leadsCaptured.name), registrations: settings.topic(Topics.registrations.name),
                                       tags: settings.topic(Topics.customerTags.name), customers: settings.topic(Topics.customers.name)),
                builder: ObservationBuilder(keyer: keyer, cipher: cipher, defaultRegion: settings.phoneDefaultRegion),
                rules: rules, graphStore: GraphStore(schema: settings.schema),
                tags: TagApplier(schema: settings.schema, events: events), events: events
            )
            let router = Router(context: BasicRequestContext.self)
            router.addStandardMiddleware()
            let store = CustomerStore(schema: settings.schema, postgres: runtime.postgres, events: events, rules: rules, cipher: cipher, keyer: keyer,
                                      defaultRegion: settings.phoneDefaultRegion)
            CustomerRoutes(store: store, adminToken: settings.adminToken, maxBodyBytes: settings.httpMaxBodyBytes).add(to: router)
            RulesRoutes(rules: rules, postgres: runtime.postgres, adminToken: settings.adminToken, maxBodyBytes: settings.httpMaxBodyBytes).add(to: router)
            self.router = router
            self.consumers = runtime.consumeLoops(
                topics: [Topics.leadsCaptured.name, Topics.registrations.name, Topics.customerTags.name], handler: handler
            )
        }

        /// Runs until SIGTERM/SIGINT.
        public func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }, signals: Bool = true, stopper: ServiceStopper? = nil) async throws {
            try await runtime.run(consumers: consumers, application: runtime.application(router: router, onServerRunning: onServerRunning),
                                  signals: signals, stopper: stopper)
        }
    }
}
