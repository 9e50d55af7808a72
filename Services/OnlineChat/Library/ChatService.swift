import Contracts
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import Postgres
import Prometheus
import ServiceKit

/// online-chat: serves the embeddable chat widget, holds visitor conversations over WebSocket (HTTP long polling
/// as the fallback), runs each site's pre-chat bot flow, lets operators take over, and turns a conversation that
/// yields a phone into `leads.captured.v1` once per conversation and phone; an erased customer's conversations are
/// scrubbed (`identity.customers.v1`); a leaver's operator token is refused (`hr.employees.v1`).
public enum ChatService {
    public static let name = "online-chat"
    public static let defaultHTTPPort = 8082
    public static var migrations: [PostgresMigration] { ChatMigrations.all }

    /// The service's settings from the environment.
    public static func settings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServiceSettings {
        try ServiceSettings.fromEnvironment(service: name, defaultHTTPPort: defaultHTTPPort, environment: environment)
    }

    /// Everything the process runs, built on a prepared runtime.
    public struct Components {
        public let runtime: ServiceRuntime
        public let router: Router<ChatRequestContext>
        let hub: ConversationHub
        let listener: PostgresListener
        let consumers: [ConsumeLoop]

        public init(runtime: ServiceRuntime, configuration: ChatConfiguration = ChatConfiguration()) async throws {
            self.runtime = runtime
            let settings = runtime.settings
            let sites = SiteStore(schema: settings.schema)
            let instanceID = UUIDv7.generate().lowercasedText
            let leads = ChatLeadBuilder(keyer: settings.makeKeyer(), cipher: try settings.makeCipher(), service: settings.serviceName,
                                        outputTopic: settings.topic(Topics.leadsCaptured.name))
            let store = ConversationStore(schema: settings.schema, sites: sites, leads: leads, defaultRegion: settings.phoneDefaultRegion,
                                          notifyChannel: "chat_" + settings.schema, instanceID: instanceID)
            let postgres = runtime.postgres
            let hub = ConversationHub(logger: runtime.logger) { id, after in
                try await postgres.withConnection { try store.update(id, after: after, in: $0) }
            }
            self.hub = hub
            self.listener = PostgresListener(connectionString: settings.postgresURL, channel: "chat_" + settings.schema, logger: runtime.logger,
                                             onReconnect: { Task { await hub.refreshAll() } },
                                             onNotification: { hub.notification($0, selfInstance: instanceID) })
            let limits = ChatLimits(configuration)
            let router = Router(context: ChatRequestContext.self)
            router.addStandardMiddleware()
            router.add(middleware: CORSMiddleware(postgres: postgres, sites: sites))
            router.add(middleware: ChatRefusalMiddleware())
            VisitorRoutes(postgres: postgres, store: store, hub: hub, relay: runtime.relay, limits: limits, maxBodyBytes: settings.httpMaxBodyBytes,
                          longPollSeconds: configuration.longPollSeconds).add(to: router)
            ChatWebSocket(postgres: postgres, store: store, hub: hub, relay: runtime.relay, limits: limits).add(to: router)
            let auth = OperatorAuth(adminToken: settings.adminToken, verifier: await EmployeeTokenVerifier(secret: settings.jwtSecret),
                                    postgres: postgres, schema: settings.schema)
            OperatorRoutes(postgres: postgres, store: store, hub: hub, auth: auth, maxBodyBytes: settings.httpMaxBodyBytes,
                           maxMessageCharacters: configuration.maxMessageCharacters).add(to: router)
            SiteAdminRoutes(postgres: postgres, sites: sites, adminToken: settings.adminToken, maxBodyBytes: settings.httpMaxBodyBytes).add(to: router)
            WidgetRoutes.add(to: router)
            self.router = router
            self.consumers = runtime.consumeLoops(
                topics: [Topics.customers.name, Topics.employees.name],
                handler: TopicRouter([
                    (settings.topic(Topics.customers.name), CustomerEventHandler(schema: settings.schema)),
                    (settings.topic(Topics.employees.name), EmployeeEventHandler(schema: settings.schema)),
                ]))
        }

        /// Runs until SIGTERM/SIGINT.
        public func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }, signals: Bool = true, stopper: ServiceStopper? = nil) async throws {
            listener.start()
            let application = runtime.application(
                router: router,
                server: .http1WebSocketUpgrade(webSocketRouter: router, configuration: .init(ws: .init(maxFrameSize: 16_384, autoPing: .enabled(timePeriod: .seconds(30))))),
                onServerRunning: onServerRunning)
            do {
                try await runtime.run(consumers: consumers, application: application, signals: signals, stopper: stopper)
            } catch {
                await listener.stop()
                throw error
            }
            await listener.stop()
        }
    }

    /// Site administration without HTTP (the `sites` subcommands and `make up`).
    public static func createSite(_ runtime: ServiceRuntime, id: String, name: String, origins: [String]) async throws -> String {
        let routes = SiteAdminRoutes(postgres: runtime.postgres, sites: SiteStore(schema: runtime.settings.schema), adminToken: "", maxBodyBytes: 0)
        let site = try routes.validate(.init(id: id, name: name, allowedOrigins: origins), id: id)
        let sites = SiteStore(schema: runtime.settings.schema)
        let created = try await runtime.postgres.withConnection { conn -> ChatSite in
            if try sites.insert(site, in: conn) { return site }
            return try sites.update(site, in: conn) ?? site
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(created), as: UTF8.self)
    }
}
