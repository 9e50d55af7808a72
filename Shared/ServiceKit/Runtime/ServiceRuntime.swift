import Foundation
import Hummingbird
import HummingbirdCore
import Kafka
import Logging
import Contracts
import Postgres
import Prometheus
import ServiceLifecycle

/// What every service process holds: its settings, the PostgreSQL pool, the producer, the outbox relay, health
/// and metrics. `run` starts them as one ServiceGroup (in order) and shuts them down in reverse on SIGTERM/SIGINT:
/// HTTP first, then consumers (finishing their batch), the relay, the producer (flushed), the pool last.
public struct ServiceRuntime: Sendable {
    public let settings: ServiceSettings
    public let logger: Logger
    public let postgres: PostgresClient
    public let producer: KafkaProducer
    public let relay: OutboxRelay
    public let health: HealthState
    public let registry: PrometheusCollectorRegistry

    /// Connects, applies `migrations` to the service's schema (waiting up to `databaseWait` for PostgreSQL to
    /// come up) and creates the producer and relay.
    public static func prepare(settings: ServiceSettings, migrations: [PostgresMigration], registry: PrometheusCollectorRegistry,
                               logger: Logger, databaseWait: Duration = .seconds(30)) async throws -> ServiceRuntime {
        if settings.usesDevelopmentSecrets {
            logger.warning("development secrets in use (FUNNEL_PII_PEPPER / FUNNEL_PII_KEYS / FUNNEL_ADMIN_TOKEN / FUNNEL_JWT_SECRET unset): never in production")
        }
        let health = HealthState()
        health.register("postgres")
        health.register("migrations")
        let postgres = PostgresClient(configuration: PostgresConfiguration(connectionString: settings.postgresURL, maxConnections: settings.postgresPoolSize), logger: logger)
        let migrator = PostgresMigrator(schema: settings.schema, migrations: migrations)
        let deadline = ContinuousClock.now + databaseWait
        while true {
            do {
                try await migrator.migrate(postgres, logger: logger)
                break
            } catch let error as PostgresError where error.kind == .connection && ContinuousClock.now < deadline {
                logger.warning("PostgreSQL not reachable yet; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
        health.set("postgres", true)
        health.set("migrations", true)
        var producerConfiguration = KafkaProducerConfiguration(client: settings.kafkaClient)
        // The relay enqueues a whole fetched batch at once, so librdkafka batches it without lingering; a linger
        // only delays each event (measured: p99 37 ms with 2 ms, 17 ms with 0 on the identity bench).
        producerConfiguration.linger = .zero
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        let relay = OutboxRelay(connectionString: settings.postgresURL, schema: settings.schema, producer: producer, logger: logger, health: health,
                                vacuumEvery: settings.outboxVacuumEvery)
        return ServiceRuntime(settings: settings, logger: logger, postgres: postgres, producer: producer, relay: relay, health: health, registry: registry)
    }

    /// `settings.consumerConcurrency` consume loops for `topics`, sharing `handler`.
    public func consumeLoops(topics: [String], handler: any BatchHandler) -> [ConsumeLoop] {
        (1...settings.consumerConcurrency).map { consumeLoop(topics: topics, handler: handler, healthCheck: "consumer-\($0)") }
    }

    /// A consume loop for `topics` (suite names; the topic prefix is applied) in the service's group, with the service's batch and retry settings.
    public func consumeLoop(topics: [String], handler: any BatchHandler, groupID: String? = nil, healthCheck: String = "consumer") -> ConsumeLoop {
        var configuration = ConsumeLoop.Configuration(
            service: settings.serviceName, schema: settings.schema, topics: topics.map(settings.topic),
            consumer: KafkaConsumerConfiguration(client: settings.kafkaClient, groupID: groupID ?? settings.consumerGroup)
        )
        configuration.batchSize = settings.consumerBatchSize
        configuration.maxRetries = settings.consumerMaxRetries
        configuration.deadLetterTopic = settings.topic(Topics.deadLetter(service: settings.serviceName))
        configuration.healthCheck = healthCheck
        return ConsumeLoop(configuration: configuration, postgres: postgres, handler: handler, relay: relay, health: health, logger: logger)
    }

    /// The HTTP application on the configured address, with problem+json errors and the operational routes.
    /// `server` chooses the protocol (HTTP/1 by default; online-chat adds the WebSocket upgrade).
    public func application<Context: RequestContext>(router: Router<Context>, server: HTTPServerBuilder = .http1(),
                                                     onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol where Context.Source == ApplicationRequestContextSource {
        OperationalRoutes.add(to: router, health: health, registry: registry)
        return Application(
            router: router,
            server: server,
            configuration: ApplicationConfiguration(address: .hostname(settings.httpHost, port: settings.httpPort), serverName: settings.serviceName),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// Runs everything until SIGTERM/SIGINT (or until a service fails), then shuts down in reverse order.
    /// `extraServices` (timers, schedulers) start after the consumers and stop before them.
    public func run(consumers: [ConsumeLoop], application: some ApplicationProtocol & Service, signals: Bool = true,
                    stopper: ServiceStopper? = nil, extraServices: [any Service] = []) async throws {
        let postgres = self.postgres
        let producer = self.producer
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: Lifetime(name: "postgres") { await postgres.shutdown() }),
            .init(service: Lifetime(name: "producer") { await producer.shutdown() }),
            .init(service: relay, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
        ]
        if !consumers.isEmpty {
            services.append(.init(service: ConsumeLoops(loops: consumers), successTerminationBehavior: .gracefullyShutdownGroup,
                                  failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        services += extraServices.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup) }
        services.append(.init(service: application, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
        var configuration = ServiceGroupConfiguration(services: services, logger: logger)
        if signals { configuration.gracefulShutdownSignals = [.sigterm, .sigint] }
        let group = ServiceGroup(configuration: configuration)
        stopper?.attach(group)
        try await group.run()
    }
}

/// Holds a resource open while the group runs and closes it on graceful shutdown.
struct Lifetime: Service {
    let name: String
    let close: @Sendable () async -> Void

    init(name: String, close: @escaping @Sendable () async -> Void) {
        self.name = name
        self.close = close
    }

    func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

/// Stops a running service group gracefully from code (tests, embedding), as SIGTERM would.
public final class ServiceStopper: Sendable {
    private let group = LockedBox<ServiceGroup?>(nil)
    private let requested = LockedBox(false)

    public init() {}

    func attach(_ serviceGroup: ServiceGroup) {
        let stopNow = group.withLock { $0 = serviceGroup; return requested.withLock { $0 } }
        if stopNow { Task { await serviceGroup.triggerGracefulShutdown() } }
    }

    public func stop() async {
        requested.withLock { $0 = true }
        if let serviceGroup = group.withLock({ $0 }) { await serviceGroup.triggerGracefulShutdown() }
    }
}
