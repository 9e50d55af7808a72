import Contracts
import Foundation
import Hummingbird
import Logging
import Postgres
import Prometheus
import ServiceKit

/// marketing-intake: takes campaign leads from `marketing.campaign-leads.v1` and `POST /v1/leads`, validates,
/// normalises, dedupes exact redeliveries, attributes them, and emits `leads.captured.v1`.
public enum IntakeService {
    public static let name = "marketing-intake"
    public static let defaultHTTPPort = 8081
    public static var migrations: [PostgresMigration] { IntakeMigrations.all }

    /// The service's settings from the environment.
    public static func settings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServiceSettings {
        try ServiceSettings.fromEnvironment(service: name, defaultHTTPPort: defaultHTTPPort, environment: environment)
    }

    /// Everything the process runs, built on a prepared runtime.
    public struct Components {
        public let runtime: ServiceRuntime
        public let router: Router<ClientRequestContext>
        public let consumers: [ConsumeLoop]
        /// Lead sources the form route has authenticated (their rows are still checked on every request).
        let sources = SourceCache<[UInt8], LeadSource>()
        /// Webhook settings of sources whose deliveries verified (their row's fingerprint is checked on every delivery).
        let webhookSources = SourceCache<UUID, WebhookSettings>()

        public init(runtime: ServiceRuntime, configuration: IntakeConfiguration = IntakeConfiguration()) throws {
            self.runtime = runtime
            let settings = runtime.settings
            let cipher = try settings.makeCipher()
            let validator = LeadValidator(keyer: settings.makeKeyer(), cipher: cipher, defaultRegion: settings.phoneDefaultRegion)
            var store = LeadStore(schema: settings.schema, service: settings.serviceName, outputTopic: settings.topic(Topics.leadsCaptured.name))
            store.floodWindow = configuration.floodWindow
            let writer = LeadWriter(validator: validator, store: store, schema: settings.schema, service: settings.serviceName,
                                    deadLetterTopic: settings.topic(Topics.deadLetter(service: settings.serviceName)))
            let limits = IntakeLimits(configuration)
            let webhooks = WebhookStore(schema: settings.schema, cipher: cipher)
            let costs = CostStore(schema: settings.schema)
            let costValidator = CostValidator(currency: configuration.currency)
            let router = Router(context: ClientRequestContext.self)
            router.addStandardMiddleware()
            LeadRoutes(postgres: runtime.postgres, writer: writer, schema: settings.schema, maxBodyBytes: settings.httpMaxBodyBytes,
                       relay: runtime.relay, limits: limits, sources: sources).add(to: router)
            WebhookRoutes(postgres: runtime.postgres, writer: writer, webhooks: webhooks, maxBodyBytes: settings.httpMaxBodyBytes,
                          relay: runtime.relay, limits: limits, tolerance: configuration.webhookTolerance, sources: webhookSources).add(to: router)
            AdminRoutes(sources: SourceStore(schema: settings.schema, postgres: runtime.postgres), adminToken: settings.adminToken,
                        maxBodyBytes: settings.httpMaxBodyBytes).add(to: router)
            WebhookAdminRoutes(postgres: runtime.postgres, webhooks: webhooks, adminToken: settings.adminToken,
                               maxBodyBytes: settings.httpMaxBodyBytes).add(to: router)
            CostRoutes(postgres: runtime.postgres, store: costs, validator: costValidator, adminToken: settings.adminToken,
                       maxBodyBytes: settings.httpMaxBodyBytes, timeZone: configuration.statsTimeZone, currency: configuration.currency).add(to: router)
            OpenAPIRoute.add(to: router)
            self.router = router
            self.consumers = runtime.consumeLoops(
                topics: [Topics.campaignLeads.name, Topics.campaignCosts.name],
                handler: TopicRouter([
                    (settings.topic(Topics.campaignLeads.name), CampaignLeadHandler(validator: validator, store: store, schema: settings.schema)),
                    (settings.topic(Topics.campaignCosts.name), CampaignCostHandler(validator: costValidator, store: costs)),
                ])
            )
        }

        /// Runs until SIGTERM/SIGINT.
        public func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }, signals: Bool = true, stopper: ServiceStopper? = nil) async throws {
            try await runtime.run(consumers: consumers, application: runtime.application(router: router, onServerRunning: onServerRunning),
                                  signals: signals, stopper: stopper)
        }
    }

    /// Admin operations on lead sources without HTTP (the `sources` subcommands).
    public static func sourceAdmin(_ runtime: ServiceRuntime) -> SourceAdmin {
        SourceAdmin(store: SourceStore(schema: runtime.settings.schema, postgres: runtime.postgres))
    }
}

/// Lead-source administration, for the executable's subcommands and `make up`.
public struct SourceAdmin: Sendable {
    let store: SourceStore

    public func create(name: String, channel: String) async throws -> String {
        guard let channel = Channel(rawValue: channel) else { throw SourceAdminError(message: "unknown channel \(channel)") }
        return try Self.json(await store.create(name: name, defaultChannel: channel))
    }

    public func list() async throws -> String { try Self.json(await store.list()) }

    public func rotateKey(id: String) async throws -> String {
        guard let uuid = UUID(uuidString: id), let issued = try await store.rotateKey(id: uuid) else { throw SourceAdminError(message: "no lead source \(id)") }
        return try Self.json(issued)
    }

    public func disable(id: String) async throws {
        guard let uuid = UUID(uuidString: id), try await store.disable(id: uuid) else { throw SourceAdminError(message: "no lead source \(id)") }
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

public struct SourceAdminError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
