import Foundation
import HTTPTypes
import ServiceKit

/// marketing-intake's own settings (besides the shared ``ServiceSettings``), from `FUNNEL_INTAKE_*`.
public struct IntakeConfiguration: Sendable {
    /// Requests per second per client IP on `POST /v1/leads` (landing pages); bursts of 3×.
    public var ipRate: Double = 10
    /// Requests per second per lead source on every lead route; bursts of 2×.
    public var sourceRate: Double = 200
    /// Header holding the client's address behind a trusted proxy (`X-Forwarded-For`); none: the peer.
    public var clientIPHeader: HTTPField.Name?
    /// The same phone again within this window is one lead plus a counted duplicate.
    public var floodWindow: Duration = .seconds(60)
    /// The time zone whose days the stats and the costs use.
    public var statsTimeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai")!
    /// The currency of all spend (ISO 4217).
    public var currency = "CNY"
    /// How far a webhook's timestamp may be from the clock.
    public var webhookTolerance: TimeInterval = 300

    public init() {}

    /// The documented variables: name, default, meaning.
    public static let documentation: [(name: String, defaultValue: String, meaning: String)] = [
        ("FUNNEL_INTAKE_IP_RATE", "10", "requests/s per client IP on POST /v1/leads (bursts of 3×); 429 with Retry-After above"),
        ("FUNNEL_INTAKE_SOURCE_RATE", "200", "requests/s per lead source on POST /v1/leads and the webhooks (bursts of 2×)"),
        ("FUNNEL_INTAKE_CLIENT_IP_HEADER", "(none: the TCP peer)", "header with the client IP behind a trusted proxy, e.g. X-Forwarded-For"),
        ("FUNNEL_INTAKE_FLOOD_WINDOW_SECONDS", "60", "the same phone again within this window is one lead plus a counted duplicate"),
        ("FUNNEL_INTAKE_STATS_TIME_ZONE", "Asia/Shanghai", "time zone of the days in costs and GET /v1/stats/leads"),
        ("FUNNEL_INTAKE_CURRENCY", "CNY", "currency of campaign spend (ISO 4217); other currencies are refused"),
        ("FUNNEL_INTAKE_WEBHOOK_TOLERANCE_SECONDS", "300", "largest accepted distance of webhook-timestamp from the clock"),
    ]

    /// Reads the settings from `environment`; a bad value names its variable.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> IntakeConfiguration {
        let env = EnvironmentValues(environment)
        func value(_ name: String) -> String? { env.text(name) }
        func number(_ name: String, _ range: ClosedRange<Double>) throws -> Double? { try env.number(name, in: range) }
        var c = IntakeConfiguration()
        if let v = try number("FUNNEL_INTAKE_IP_RATE", 0.01...1_000_000) { c.ipRate = v }
        if let v = try number("FUNNEL_INTAKE_SOURCE_RATE", 0.01...1_000_000) { c.sourceRate = v }
        if let name = try env.headerName("FUNNEL_INTAKE_CLIENT_IP_HEADER") { c.clientIPHeader = name }
        if let v = try number("FUNNEL_INTAKE_FLOOD_WINDOW_SECONDS", 0...86_400) { c.floodWindow = .milliseconds(Int64(v * 1_000)) }
        if let v = value("FUNNEL_INTAKE_STATS_TIME_ZONE") {
            guard let zone = TimeZone(identifier: v) else { throw ConfigurationError(variable: "FUNNEL_INTAKE_STATS_TIME_ZONE", reason: "unknown time zone") }
            c.statsTimeZone = zone
        }
        if let v = value("FUNNEL_INTAKE_CURRENCY") {
            guard v.range(of: "^[A-Z]{3}$", options: .regularExpression) != nil else {
                throw ConfigurationError(variable: "FUNNEL_INTAKE_CURRENCY", reason: "must be an ISO 4217 code such as CNY")
            }
            c.currency = v
        }
        if let v = try number("FUNNEL_INTAKE_WEBHOOK_TOLERANCE_SECONDS", 1...86_400) { c.webhookTolerance = v }
        return c
    }
}
