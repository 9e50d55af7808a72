import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceKit

/// The `identity-merge` executable's commands.
public struct IdentityCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "identity-merge",
        abstract: "Funnel's identity resolution: leads, registrations and tags in; one customer per person out on identity.customers.v1.",
        discussion: "Configured by FUNNEL_* environment variables; `identity-merge config` lists them.",
        subcommands: [Serve.self, Migrate.self, Config.self],
        defaultSubcommand: Serve.self
    )

    public init() {}

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the service (HTTP, consumers, outbox relay) until SIGTERM.")

        func run() async throws {
            let settings = try IdentityService.settings()
            ServiceLogging.bootstrap(format: settings.logFormat, level: settings.logLevel)
            let registry = PrometheusCollectorRegistry()
            ServiceMetrics.bootstrap(registry)
            let logger = Logger(label: IdentityService.name)
            let runtime = try await ServiceRuntime.prepare(settings: settings, migrations: IdentityService.migrations, registry: registry, logger: logger)
            let components = try await IdentityService.Components(runtime: runtime)
            try await components.run { port in
                logger.info("identity-merge listening", metadata: ["port": "\(port)", "schema": "\(settings.schema)"])
            }
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the schema's migrations and exit.")

        func run() async throws {
            let settings = try IdentityService.settings()
            ServiceLogging.bootstrap(format: settings.logFormat, level: settings.logLevel)
            let runtime = try await ServiceRuntime.prepare(settings: settings, migrations: IdentityService.migrations,
                                                           registry: PrometheusCollectorRegistry(), logger: Logger(label: IdentityService.name))
            await runtime.producer.shutdown()
            await runtime.postgres.shutdown()
            print("migrations applied to schema \(settings.schema)")
        }
    }

    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the FUNNEL_* settings with their defaults.")
        func run() {
            for item in ServiceSettings.documentation { print("\(item.name)\t\(item.defaultValue)\t\(item.meaning)") }
        }
    }
}
