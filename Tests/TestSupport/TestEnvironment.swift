import Foundation
import Kafka
import Logging
import Postgres
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Where the test stack (`make test`) runs, and helpers that give each test its own names.
public enum TestEnvironment {
    /// The test PostgreSQL (`FUNNEL_TEST_POSTGRES_URL`).
    public static var postgresURL: String {
        ProcessInfo.processInfo.environment["FUNNEL_TEST_POSTGRES_URL"] ?? "postgresql://funnel@127.0.0.1:55433/funnel"
    }

    /// The test devbroker (`FUNNEL_TEST_KAFKA_BOOTSTRAP`).
    public static var bootstrap: String {
        ProcessInfo.processInfo.environment["FUNNEL_TEST_KAFKA_BOOTSTRAP"] ?? "127.0.0.1:19092"
    }

    /// The devbroker's control channel (`FUNNEL_TEST_BROKER_CONTROL`).
    public static var brokerControl: String {
        ProcessInfo.processInfo.environment["FUNNEL_TEST_BROKER_CONTROL"] ?? "127.0.0.1:19192"
    }

    /// Where the built executables are (`FUNNEL_TEST_BIN_DIR`), for tests that run services as processes.
    public static var binDirectory: String {
        ProcessInfo.processInfo.environment["FUNNEL_TEST_BIN_DIR"] ?? FileManager.default.currentDirectoryPath + "/.build/debug"
    }

    /// A name no other test uses: `prefix_` + 12 random lowercase characters (valid as schema, topic or group).
    public static func uniqueName(_ prefix: String) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return prefix + "_" + String((0..<12).map { _ in alphabet.randomElement()! })
    }

    /// A logger for tests: warnings and above, to stderr.
    public static func logger(_ label: String = "test") -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = ProcessInfo.processInfo.environment["FUNNEL_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }

    /// A pool on the test database.
    public static func postgres(maxConnections: Int = 4) -> PostgresClient {
        PostgresClient(configuration: PostgresConfiguration(connectionString: postgresURL, maxConnections: maxConnections), logger: logger("postgres"))
    }

    /// Kafka client settings for the test devbroker.
    public static func kafkaClient(_ id: String = "test") -> KafkaClientConfiguration {
        let extra = ProcessInfo.processInfo.environment["FUNNEL_TEST_KAFKA_PROPERTIES"].flatMap { try? KafkaClientConfiguration.parseProperties($0) } ?? [:]
        return KafkaClientConfiguration(bootstrapServers: bootstrap, clientID: id, properties: extra)
    }

    /// Creates a fresh topic with `partitions` partitions on the devbroker and returns its name.
    public static func makeTopic(_ prefix: String = "t", partitions: Int = 4) throws -> String {
        let name = uniqueName(prefix)
        try BrokerControl().send("create-topic \(name) \(partitions)")
        return name
    }
}

/// The devbroker's fault-injection channel.
public struct BrokerControl: Sendable {
    public let address: String

    public init(address: String = TestEnvironment.brokerControl) {
        self.address = address
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Sends one command and returns the answer after `ok`; throws on `error …`.
    @discardableResult
    public func send(_ command: String) throws -> String {
        let parts = address.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw Failure(description: "bad control address \(address)") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, String(parts[0]), &addr.sin_addr)
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "devbroker control channel not reachable at \(address)") }
        let line = Array((command + "\n").utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 512)
        while !answer.contains(10) {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        let text = String(decoding: answer, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("ok") else { throw Failure(description: "devbroker: \(text)") }
        return String(text.dropFirst(2)).trimmingCharacters(in: .whitespaces)
    }
}
