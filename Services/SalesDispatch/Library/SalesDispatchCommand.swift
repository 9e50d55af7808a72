import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceKit

/// The `sales-dispatch` executable's commands.
public struct SalesDispatchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sales-dispatch",
        abstract: "Funnel's sales dispatch: opportunities assigned on the event, recycled by per-opportunity timers, claimed from the pool, moved by hand with an audit.",
        discussion: "Configured by FUNNEL_* environment variables; `sales-dispatch config` lists them.",
        subcommands: [Serve.self, Migrate.self, Config.self, Token.self],
        defaultSubcommand: Serve.self
    )

    public init() {}

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the service (HTTP, consumers, outbox relay) until SIGTERM.")

        func run() async throws {
            let settings = try SalesDispatchService.settings()
            ServiceLogging.bootstrap(format: settings.logFormat, level: settings.logLevel)
            let registry = PrometheusCollectorRegistry()
            ServiceMetrics.bootstrap(registry)
            let logger = Logger(label: SalesDispatchService.name)
            let runtime = try await ServiceRuntime.prepare(settings: settings, migrations: SalesDispatchService.migrations, registry: registry, logger: logger)
            let components = try await SalesDispatchService.Components(runtime: runtime, scheduler: try SalesDispatchService.schedulerConfiguration())
            try await components.run { port in
                logger.info("sales-dispatch listening", metadata: ["port": "\(port)", "schema": "\(settings.schema)"])
            }
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the schema's migrations and exit.")

        func run() async throws {
            let settings = try SalesDispatchService.settings()
            ServiceLogging.bootstrap(format: settings.logFormat, level: settings.logLevel)
            let runtime = try await ServiceRuntime.prepare(settings: settings, migrations: SalesDispatchService.migrations,
                                                           registry: PrometheusCollectorRegistry(), logger: Logger(label: SalesDispatchService.name))
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

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an employee bearer JWT signed with FUNNEL_JWT_SECRET (development and operations; people get theirs from SSO).")
        @Option(help: "employee id (the token's sub)") var employee: String
        @Option(help: "rep, lead or admin") var role: String = "rep"
        @Option(help: "hours until it expires") var hours: Double = 8

        func run() async throws {
            guard let parsed = EmployeeRole(rawValue: role) else { throw ValidationError("--role must be rep, lead or admin") }
            guard hours > 0, hours <= 24 * 30 else { throw ValidationError("--hours must be in (0, 720]") }
            let settings = try SalesDispatchService.settings()
            let verifier = await EmployeeTokenVerifier(secret: settings.jwtSecret)
            print(try await verifier.sign(EmployeeClaims(employeeID: employee, role: parsed, expires: Date() + hours * 3_600, issued: Date())))
        }
    }
}
