import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceKit

/// The `marketing-intake` executable's commands.
public struct IntakeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "marketing-intake",
        abstract: "Funnel's lead intake: campaign leads in (topic and HTTP), validated leads out on leads.captured.v1.",
        discussion: "Configured by FUNNEL_* environment variables; `marketing-intake config` lists them.",
        subcommands: [Serve.self, Migrate.self, Sources.self, Config.self],
        defaultSubcommand: Serve.self
    )

    public init() {}

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the service (HTTP, topic consumer, outbox relay) until SIGTERM.")

        func run() async throws {
            let settings = try IntakeService.settings()
            let configuration = try IntakeConfiguration.fromEnvironment()
            ServiceLogging.bootstrap(format: settings.logFormat, level: settings.logLevel)
            let registry = PrometheusCollectorRegistry()
            ServiceMetrics.bootstrap(registry)
            let logger = Logger(label: IntakeService.name)
            let runtime = try await ServiceRuntime.prepare(settings: settings, migrations: IntakeService.migrations, registry: registry, logger: logger)
            let components = try IntakeService.Components(runtime: runtime, configuration: configuration)
            try await components.run { port in
                logger.info("marketing-intake listening", metadata: ["port": "\(port)", "schema": "\(settings.schema)"])
            }
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the schema's migrations and exit.")

        func run() async throws {
            let runtime = try await prepare()
            await runtime.postgres.shutdown()
            print("migrations applied to schema \(runtime.settings.schema)")
        }
    }

    struct Sources: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage lead sources and their API keys (a new key is printed once).",
            subcommands: [Create.self, List.self, RotateKey.self, Disable.self]
        )

        struct Create: AsyncParsableCommand {
            @Option(help: "Unique name, used by topic leads' `source` field.") var name: String
            @Option(help: "Default channel: sem, feed, seo, landing-page, chat, referral, other.") var channel = "other"
            func run() async throws { try await withAdmin { print(try await $0.create(name: name, channel: channel)) } }
        }

        struct List: AsyncParsableCommand {
            func run() async throws { try await withAdmin { print(try await $0.list()) } }
        }

        struct RotateKey: AsyncParsableCommand {
            @Argument(help: "The source's id.") var id: String
            func run() async throws { try await withAdmin { print(try await $0.rotateKey(id: id)) } }
        }

        struct Disable: AsyncParsableCommand {
            @Argument(help: "The source's id.") var id: String
            func run() async throws { try await withAdmin { try await $0.disable(id: id); print("disabled \(id)") } }
        }
    }

    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the FUNNEL_* settings with their defaults.")
        func run() {
            for item in ServiceSettings.documentation + IntakeConfiguration.documentation { print("\(item.name)\t\(item.defaultValue)\t\(item.meaning)") }
        }
    }
}

private func prepare() async throws -> ServiceRuntime {
    let settings = try IntakeService.settings()
    var logger = Logger(label: IntakeService.name)
    logger.logLevel = .warning
    return try await ServiceRuntime.prepare(settings: settings, migrations: IntakeService.migrations, registry: PrometheusCollectorRegistry(), logger: logger)
}

private func withAdmin(_ body: (SourceAdmin) async throws -> Void) async throws {
    let runtime = try await prepare()
    let outcome: Result<Void, any Error>
    do { outcome = .success(try await body(IntakeService.sourceAdmin(runtime))) } catch { outcome = .failure(error) }
    await runtime.producer.shutdown(timeout: .seconds(1))
    await runtime.postgres.shutdown()
    try outcome.get()
}
