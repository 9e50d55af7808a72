import Foundation
import HTTPTypes
import ServiceKit

/// online-chat's own settings (besides the shared ``ServiceSettings``), from `FUNNEL_CHAT_*`.
public struct ChatConfiguration: Sendable {
    /// New conversations per second per client IP; bursts of 10×.
    public var sessionRate: Double = 1
    /// Visitor messages per second per conversation; bursts of 5×.
    public var messageRate: Double = 2
    /// Visitor messages per second per client IP (all its conversations); bursts of 3×.
    public var ipMessageRate: Double = 20
    /// The longest visitor message, in characters (422 above).
    public var maxMessageCharacters = 1_000
    /// The longest a long poll waits for news.
    public var longPollSeconds = 25
    /// Header holding the client's address behind a trusted proxy (`X-Forwarded-For`); none: the peer.
    public var clientIPHeader: HTTPField.Name?

    public init() {}

    /// The documented variables: name, default, meaning.
    public static let documentation: [(name: String, defaultValue: String, meaning: String)] = [
        ("FUNNEL_CHAT_SESSION_RATE", "1", "new conversations/s per client IP (bursts of 10×); 429 with Retry-After above"),
        ("FUNNEL_CHAT_MESSAGE_RATE", "2", "visitor messages/s per conversation (bursts of 5×)"),
        ("FUNNEL_CHAT_IP_MESSAGE_RATE", "20", "visitor messages/s per client IP (bursts of 3×)"),
        ("FUNNEL_CHAT_MAX_MESSAGE_CHARACTERS", "1000", "longest visitor or operator message (422 above)"),
        ("FUNNEL_CHAT_LONG_POLL_SECONDS", "25", "longest wait of GET /v1/chat/messages"),
        ("FUNNEL_CHAT_CLIENT_IP_HEADER", "(none: the TCP peer)", "header with the client IP behind a trusted proxy, e.g. X-Forwarded-For"),
    ]

    /// Reads the settings from `environment`; a bad value names its variable.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ChatConfiguration {
        let env = EnvironmentValues(environment)
        func number(_ name: String, _ range: ClosedRange<Double>) throws -> Double? { try env.number(name, in: range) }
        var c = ChatConfiguration()
        if let v = try number("FUNNEL_CHAT_SESSION_RATE", 0.01...1_000_000) { c.sessionRate = v }
        if let v = try number("FUNNEL_CHAT_MESSAGE_RATE", 0.01...1_000_000) { c.messageRate = v }
        if let v = try number("FUNNEL_CHAT_IP_MESSAGE_RATE", 0.01...1_000_000) { c.ipMessageRate = v }
        if let v = try number("FUNNEL_CHAT_MAX_MESSAGE_CHARACTERS", 1...100_000) { c.maxMessageCharacters = Int(v) }
        if let v = try number("FUNNEL_CHAT_LONG_POLL_SECONDS", 0...120) { c.longPollSeconds = Int(v) }
        if let name = try env.headerName("FUNNEL_CHAT_CLIENT_IP_HEADER") { c.clientIPHeader = name }
        return c
    }
}

/// The rate limits of the visitor routes.
struct ChatLimits: Sendable {
    let sessionsPerIP: RateLimiter
    let messagesPerConversation: RateLimiter
    let messagesPerIP: RateLimiter
    let maxMessageCharacters: Int
    let clientIPHeader: HTTPField.Name?

    init(_ c: ChatConfiguration) {
        sessionsPerIP = RateLimiter(rate: c.sessionRate, burst: max(1, c.sessionRate * 10))
        messagesPerConversation = RateLimiter(rate: c.messageRate, burst: max(1, c.messageRate * 5))
        messagesPerIP = RateLimiter(rate: c.ipMessageRate, burst: max(1, c.ipMessageRate * 3))
        maxMessageCharacters = c.maxMessageCharacters
        clientIPHeader = c.clientIPHeader
    }
}
