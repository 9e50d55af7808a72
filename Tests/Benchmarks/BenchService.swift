import Foundation
import TestSupport

/// A service process (the release build) on the bench stack, with its own schema and topic prefix.
struct BenchService {
    let prefix: String
    let environment: [String: String]
    let binary: String
    let port: Int

    static let intakeTopics = [("marketing.campaign-leads.v1", 32), ("leads.captured.v1", 32), ("dlq.marketing-intake.v1", 2)]

    init(service: String = "marketing-intake", port: Int, extra: [String: String] = [:], topics: [(String, Int)] = intakeTopics) throws {
        prefix = TestEnvironment.uniqueName("bench") + "."
        binary = TestEnvironment.binDirectory + "/" + service
        self.port = port
        environment = [
            "FUNNEL_POSTGRES_URL": TestEnvironment.postgresURL, "FUNNEL_KAFKA_BOOTSTRAP": TestEnvironment.bootstrap,
            "FUNNEL_SCHEMA": TestEnvironment.uniqueName("bench"), "FUNNEL_TOPIC_PREFIX": prefix,
            "FUNNEL_CONSUMER_GROUP": TestEnvironment.uniqueName("bench"), "FUNNEL_HTTP_PORT": String(port),
            "FUNNEL_LOG_LEVEL": "warning", "FUNNEL_ADMIN_TOKEN": "bench-admin-token",
        ].merging(extra) { $1 }
        for (topic, partitions) in topics {
            try BrokerControl().send("create-topic \(prefix)\(topic) \(partitions)")
        }
    }

    /// Creates a lead source with the executable's subcommand; returns its key.
    func createSource(name: String) throws -> String {
        let child = try ChildProcess(executable: binary, arguments: ["sources", "create", "--name", name, "--channel", "sem"], environment: environment)
        while child.status == nil { usleep(5_000) }
        let output = child.output
        guard child.status == 0, let match = output.range(of: #""api_key" : "([^"]+)""#, options: .regularExpression) else {
            throw ChildProcessError(description: "sources create failed: \(output)")
        }
        return String(output[match].split(separator: "\"").last!)
    }

    func start(extra: [String: String] = [:]) throws -> ChildProcess {
        try ChildProcess(executable: binary, arguments: ["serve"], environment: environment.merging(extra) { $1 })
    }

    /// Runs a subcommand to completion (for example `migrate`).
    func runToCompletion(_ arguments: [String]) throws {
        let child = try ChildProcess(executable: binary, arguments: arguments, environment: environment)
        while child.status == nil { usleep(5_000) }
        guard child.status == 0 else { throw ChildProcessError(description: "\(arguments.joined(separator: " ")) failed: \(child.output)") }
    }

    /// Waits until `/health/ready` answers 200.
    func waitReady(_ child: ChildProcess) async throws {
        let url = URL(string: "http://127.0.0.1:\(port)/health/ready")!
        try await waitUntil(timeout: .seconds(60), every: .milliseconds(200), "service not ready: \(child.output)") {
            if child.status != nil { throw ChildProcessError(description: "service exited: \(child.output)") }
            guard let (_, response) = try? await URLSession.shared.data(from: url) else { return false }
            return (response as? HTTPURLResponse)?.statusCode == 200
        }
    }
}

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
