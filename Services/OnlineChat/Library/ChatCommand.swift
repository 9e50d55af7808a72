import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceKit

/// The `online-chat` executable's commands.
public struct ChatCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "online-chat",
        abstract: "Funnel's web chat: the embeddable widget, visitor conversations with a bot flow and operators, leads out on leads.captured.v1.",
        discussion: "Configured by FUNNEL_* environment variables; `online-chat config` lists them.",
        subcommands: [Serve.self, Migrate.self, Sites.self, Config.self],
        defaultSubcommand: Serve.self
    )

    public init() {}

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the service (HTTP, WebSockets, outbox relay) until SIGTERM.")

        func run() async throws {
            let settings = try ChatService.settings()
            let configuration = try ChatConfiguration.fromEnvironment()
            ServiceLogging.bootstrap(format: settings.logFormat, level: settings.logLevel)
            let registry = PrometheusCollectorRegistry()
            ServiceMetrics.bootstrap(registry)
            let logger = Logger(label: ChatService.name)
            let runtime = try await ServiceRuntime.prepare(settings: settings, migrations: ChatService.migrations, registry: registry, logger: logger)
            let components = try await ChatService.Components(runtime: runtime, configuration: configuration)
            try await components.run { port in
                logger.info("online-chat listening", metadata: ["port": "\(port)", "schema": "\(settings.schema)"])
            }
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the schema's migrations and exit.")

        func run() async throws {
            let runtime = try await prepare()
            await runtime.producer.shutdown(timeout: .seconds(1))
            await runtime.postgres.shutdown()
            print("migrations applied to schema \(runtime.settings.schema)")
        }
    }

    struct Sites: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Manage chat sites.", subcommands: [Create.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create (or update) a site with the standard bot flow.")
            @Option(help: "Site id (a-z, 0-9, -, _), used in the widget's data-site.") var id: String
            @Option(help: "Display name.") var name: String
            @Option(help: "Allowed page origin, e.g. https://www.example.com (repeat for several).") var origin: [String]

            func run() async throws {
                let runtime = try await prepare()
                let outcome: Result<String, any Error>
                do { outcome = .success(try await ChatService.createSite(runtime, id: id, name: name, origins: origin)) } catch { outcome = .failure(error) }
                await runtime.producer.shutdown(timeout: .seconds(1))
                await runtime.postgres.shutdown()
                print(try outcome.get())
            }
        }
    }

    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the FUNNEL_* settings with their defaults.")
        func run() {
            for item in ServiceSettings.documentation + ChatConfiguration.documentation { print("\(item.name)\t\(item.defaultValue)\t\(item.meaning)") }
        }
    }
}

private func prepare() async throws -> ServiceRuntime {
    let settings = try ChatService.settings()
    var logger = Logger(label: ChatService.name)
    logger.logLevel = .warning
    return try await ServiceRuntime.prepare(settings: settings, migrations: ChatService.migrations, registry: PrometheusCollectorRegistry(), logger: logger)
}
