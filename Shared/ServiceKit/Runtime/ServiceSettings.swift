import FastText
import Foundation
import Kafka
import Logging

/// A setting could not be read. Names the variable, never a secret's value.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let variable: String
    public let reason: String
    public var description: String { "\(variable): \(reason)" }
    public init(variable: String, reason: String) {
        self.variable = variable
        self.reason = reason
    }
}

/// The settings every service shares, read from `FUNNEL_*` environment variables. Defaults run the embedded
/// stack (`make up`): local PostgreSQL on 55432, devbroker on 9092.
public struct ServiceSettings: Sendable {
    public enum LogFormat: String, Sendable { case plain, json }

    /// The service's name: consumer group, `ce_source`, DLQ topic `dlq.<name>.v1`.
    public var serviceName: String
    /// Its PostgreSQL schema.
    public var schema: String
    public var postgresURL: String
    public var postgresPoolSize: Int
    public var kafkaBootstrap: String
    /// Extra librdkafka properties (SASL/TLS in production).
    public var kafkaProperties: [String: String]
    public var consumerGroup: String
    public var consumerBatchSize: Int
    public var consumerMaxRetries: Int
    /// Consume loops per process: group members of their own, each with its partitions and transactions.
    public var consumerConcurrency: Int = 2
    /// Delivered outbox rows deleted between two vacuums of the outbox by its relay (0: autovacuum only).
    public var outboxVacuumEvery: Int = 10_000
    public var httpHost: String
    public var httpPort: Int
    public var httpMaxBodyBytes: Int
    public var logFormat: LogFormat
    public var logLevel: Logger.Level
    /// HMAC pepper of identity keys.
    public var piiPepper: [UInt8]
    /// AES-256-GCM keyring (`id:base64key`) and the active key id.
    public var piiKeys: [String: [UInt8]]
    public var piiActiveKeyID: String
    /// Bearer token of admin endpoints (operator tokens come with HR-backed JWTs later).
    public var adminToken: String
    /// Region for numbers written without a country code.
    public var phoneDefaultRegion: String
    /// HS256 secret of employees' bearer JWTs (``EmployeeTokenVerifier``).
    public var jwtSecret: [UInt8] = Array("funnel-development-jwt-secret-not-for-production".utf8)
    /// True when development defaults are in use for secrets (logged loudly at start).
    public var usesDevelopmentSecrets: Bool
    /// Prepended to every topic the service reads or writes (isolated test runs, shared staging brokers).
    public var topicPrefix: String = ""

    /// The full name of a suite topic under ``topicPrefix``.
    public func topic(_ name: String) -> String { topicPrefix + name }

    /// The documented variables: name, default, meaning (the README's configuration table is this list).
    public static let documentation: [(name: String, defaultValue: String, meaning: String)] = [
        ("FUNNEL_POSTGRES_URL", "postgresql://funnel@127.0.0.1:55432/funnel", "libpq connection string or URI"),
        ("FUNNEL_POSTGRES_POOL_SIZE", "8", "connections (each on its own thread)"),
        ("FUNNEL_SCHEMA", "service name with _ (e.g. marketing_intake)", "the service's own PostgreSQL schema"),
        ("FUNNEL_KAFKA_BOOTSTRAP", "127.0.0.1:9092", "bootstrap.servers"),
        ("FUNNEL_KAFKA_PROPERTIES", "(none)", "extra librdkafka properties, key=value comma-separated (SASL/TLS)"),
        ("FUNNEL_CONSUMER_GROUP", "service name", "Kafka consumer group"),
        ("FUNNEL_CONSUMER_BATCH_SIZE", "1000", "records per batch transaction"),
        ("FUNNEL_CONSUMER_MAX_RETRIES", "5", "retries (backoff with jitter) before a record goes to dlq.<service>.v1"),
        ("FUNNEL_CONSUMER_CONCURRENCY", "2", "consume loops per process (each a group member with its own partitions)"),
        ("FUNNEL_OUTBOX_VACUUM_EVERY", "10000", "delivered outbox rows between two vacuums of the outbox by its relay (0: autovacuum only)"),
        ("FUNNEL_HTTP_HOST", "127.0.0.1", "HTTP listen address"),
        ("FUNNEL_HTTP_PORT", "per service (marketing-intake 8081)", "HTTP port"),
        ("FUNNEL_HTTP_MAX_BODY_BYTES", "65536", "largest accepted request body (413 above)"),
        ("FUNNEL_LOG_FORMAT", "plain", "plain or json (one JSON object per line)"),
        ("FUNNEL_LOG_LEVEL", "info", "trace, debug, info, notice, warning, error, critical"),
        ("FUNNEL_PII_PEPPER", "development pepper (warns)", "secret for HMAC identity keys: text, or base64:… for bytes; at least 16 bytes"),
        ("FUNNEL_PII_KEYS", "development key dev1 (warns)", "AES-256 keyring: id:base64(32 bytes), comma-separated"),
        ("FUNNEL_PII_ACTIVE_KEY", "first key of FUNNEL_PII_KEYS", "key id new values are encrypted with"),
        ("FUNNEL_ADMIN_TOKEN", "dev-admin-token (warns)", "bearer token of /v1/admin endpoints"),
        ("FUNNEL_JWT_SECRET", "development secret (warns)", "HS256 secret of employees' bearer JWTs: text or base64:…, at least 32 bytes"),
        ("FUNNEL_PHONE_DEFAULT_REGION", "CN", "region for numbers without a country code"),
        ("FUNNEL_TOPIC_PREFIX", "(none)", "prefix of every topic read or written (isolated runs on a shared broker)"),
    ]

    /// Reads the settings of `service` from `environment` (the process's by default).
    public static func fromEnvironment(service: String, defaultHTTPPort: Int,
                                       environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServiceSettings {
        func value(_ name: String) -> String? {
            guard let v = environment[name]?.trimmingSpaces, !v.isEmpty else { return nil }
            return v
        }
        func int(_ name: String, _ fallback: Int, range: ClosedRange<Int>) throws -> Int {
            guard let text = value(name) else { return fallback }
            guard let v = Int(text), range.contains(v) else {
                throw ConfigurationError(variable: name, reason: "must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        var devSecrets = false
        let pepper: [UInt8]
        if let text = value("FUNNEL_PII_PEPPER") {
            if text.hasPrefix("base64:") {
                guard let decoded = Data(base64Encoded: String(text.dropFirst(7))) else {
                    throw ConfigurationError(variable: "FUNNEL_PII_PEPPER", reason: "base64: prefix but the rest is not base64")
                }
                pepper = Array(decoded)
            } else {
                pepper = Array(text.utf8)
            }
            guard pepper.count >= 16 else { throw ConfigurationError(variable: "FUNNEL_PII_PEPPER", reason: "must be at least 16 bytes") }
        } else {
            pepper = Array("funnel-development-pepper-not-for-production".utf8)
            devSecrets = true
        }
        var keys: [String: [UInt8]] = [:]
        var firstKey: String?
        if let text = value("FUNNEL_PII_KEYS") {
            for item in text.split(separator: ",") {
                let parts = item.split(separator: ":", maxSplits: 1).map { $0.trimmingSpaces }
                guard parts.count == 2, !parts[0].isEmpty, let key = Data(base64Encoded: parts[1]), key.count == 32 else {
                    throw ConfigurationError(variable: "FUNNEL_PII_KEYS", reason: "each item must be id:base64 of 32 bytes")
                }
                keys[parts[0]] = Array(key)
                if firstKey == nil { firstKey = parts[0] }
            }
        } else {
            keys["dev1"] = Array(SHA256Digest.hash(Array("funnel-development-pii-key".utf8)))
            firstKey = "dev1"
            devSecrets = true
        }
        let active = value("FUNNEL_PII_ACTIVE_KEY") ?? firstKey!
        guard keys[active] != nil else { throw ConfigurationError(variable: "FUNNEL_PII_ACTIVE_KEY", reason: "no key with that id in FUNNEL_PII_KEYS") }
        let adminToken = value("FUNNEL_ADMIN_TOKEN") ?? "dev-admin-token"
        if value("FUNNEL_ADMIN_TOKEN") == nil { devSecrets = true }
        guard adminToken.count >= 12 else { throw ConfigurationError(variable: "FUNNEL_ADMIN_TOKEN", reason: "must be at least 12 characters") }

        let format = value("FUNNEL_LOG_FORMAT") ?? "plain"
        guard let logFormat = LogFormat(rawValue: format) else { throw ConfigurationError(variable: "FUNNEL_LOG_FORMAT", reason: "must be plain or json") }
        let level = value("FUNNEL_LOG_LEVEL") ?? "info"
        guard let logLevel = Logger.Level(rawValue: level) else { throw ConfigurationError(variable: "FUNNEL_LOG_LEVEL", reason: "unknown level") }
        let kafkaProperties: [String: String]
        do { kafkaProperties = try KafkaClientConfiguration.parseProperties(value("FUNNEL_KAFKA_PROPERTIES") ?? "") } catch {
            throw ConfigurationError(variable: "FUNNEL_KAFKA_PROPERTIES", reason: "expected key=value items separated by commas")
        }
        let schema = value("FUNNEL_SCHEMA") ?? service.replacingOccurrences(of: "-", with: "_")
        guard schema.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
            throw ConfigurationError(variable: "FUNNEL_SCHEMA", reason: "must be a lower-case identifier")
        }
        let prefix = value("FUNNEL_TOPIC_PREFIX") ?? ""
        guard prefix.range(of: "^[A-Za-z0-9._-]{0,100}$", options: .regularExpression) != nil else {
            throw ConfigurationError(variable: "FUNNEL_TOPIC_PREFIX", reason: "letters, digits, '.', '_' and '-' only")
        }
        var settings = ServiceSettings(
            serviceName: service, schema: schema,
            postgresURL: value("FUNNEL_POSTGRES_URL") ?? "postgresql://funnel@127.0.0.1:55432/funnel",
            postgresPoolSize: try int("FUNNEL_POSTGRES_POOL_SIZE", 8, range: 1...256),
            kafkaBootstrap: value("FUNNEL_KAFKA_BOOTSTRAP") ?? "127.0.0.1:9092",
            kafkaProperties: kafkaProperties,
            consumerGroup: value("FUNNEL_CONSUMER_GROUP") ?? service,
            consumerBatchSize: try int("FUNNEL_CONSUMER_BATCH_SIZE", 1_000, range: 1...100_000),
            consumerMaxRetries: try int("FUNNEL_CONSUMER_MAX_RETRIES", 5, range: 0...100),
            httpHost: value("FUNNEL_HTTP_HOST") ?? "127.0.0.1",
            httpPort: try int("FUNNEL_HTTP_PORT", defaultHTTPPort, range: 0...65535),
            httpMaxBodyBytes: try int("FUNNEL_HTTP_MAX_BODY_BYTES", 65_536, range: 1_024...(64 << 20)),
            logFormat: logFormat, logLevel: logLevel,
            piiPepper: pepper, piiKeys: keys, piiActiveKeyID: active, adminToken: adminToken,
            phoneDefaultRegion: value("FUNNEL_PHONE_DEFAULT_REGION") ?? "CN",
            usesDevelopmentSecrets: devSecrets
        )
        settings.topicPrefix = prefix
        if let text = value("FUNNEL_JWT_SECRET") {
            let secret: [UInt8]
            if text.hasPrefix("base64:") {
                guard let decoded = Data(base64Encoded: String(text.dropFirst(7))) else {
                    throw ConfigurationError(variable: "FUNNEL_JWT_SECRET", reason: "base64: prefix but the rest is not base64")
                }
                secret = Array(decoded)
            } else {
                secret = Array(text.utf8)
            }
            guard secret.count >= 32 else { throw ConfigurationError(variable: "FUNNEL_JWT_SECRET", reason: "must be at least 32 bytes") }
            settings.jwtSecret = secret
        } else {
            settings.usesDevelopmentSecrets = true
        }
        settings.consumerConcurrency = try int("FUNNEL_CONSUMER_CONCURRENCY", 2, range: 1...64)
        settings.outboxVacuumEvery = try int("FUNNEL_OUTBOX_VACUUM_EVERY", 10_000, range: 0...100_000_000)
        return settings
    }

    /// Kafka client settings with this service's identity and pass-through properties.
    public var kafkaClient: KafkaClientConfiguration {
        KafkaClientConfiguration(bootstrapServers: kafkaBootstrap, clientID: serviceName, properties: kafkaProperties)
    }

    /// The identity keyer and PII cipher these settings configure.
    public func makeKeyer() -> IdentityKeyer { IdentityKeyer(pepper: piiPepper) }
    public func makeCipher() throws -> PIICipher { try PIICipher(keys: piiKeys, activeKeyID: piiActiveKeyID) }
}
