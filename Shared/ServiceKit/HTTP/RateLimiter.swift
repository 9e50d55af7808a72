import Foundation

/// Token buckets by key (a client IP, a lead source): `rate` requests per second on average, up to `burst` at
/// once. One process's view: with N replicas behind a balancer a client gets up to N times the rate.
public final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    public let rate: Double
    public let burst: Double
    private let maxKeys: Int
    private let buckets = LockedBox<[String: Bucket]>([:])

    /// `rate` tokens per second refill each bucket up to `burst`; at most `maxKeys` buckets are kept (full ones
    /// are forgotten first, as they equal a new bucket).
    public init(rate: Double, burst: Double, maxKeys: Int = 100_000) {
        precondition(rate > 0 && burst >= 1, "a rate limiter needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self.maxKeys = maxKeys
    }

    /// Takes one token of `key`'s bucket: nil when allowed, else how long until the next token.
    public func take(_ key: String, now: ContinuousClock.Instant = .now) -> Duration? {
        let (rate, burst, maxKeys) = (self.rate, self.burst, self.maxKeys)
        return buckets.withLock { buckets -> Duration? in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = max(0, Double((now - bucket.updated).nanoseconds) / 1e9)
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return .milliseconds(Int64(((1 - bucket.tokens) / rate * 1_000).rounded(.up)))
            }
            bucket.tokens -= 1
            buckets[key] = bucket
            if buckets.count > maxKeys {
                // Forget buckets that have refilled: they behave exactly like new ones.
                buckets = buckets.filter { _, b in b.tokens + Double((now - b.updated).nanoseconds) / 1e9 * rate < burst }
                if buckets.count > maxKeys { buckets.removeAll(keepingCapacity: true) }
            }
            return nil
        }
    }

    /// Throws a 429 problem with `Retry-After` (whole seconds, at least 1) when `key` is over its rate.
    public func check(_ key: String, what: String) throws {
        guard let wait = take(key) else { return }
        let seconds = max(1, Int((Double(wait.nanoseconds) / 1e9).rounded(.up)))
        throw Problem(.tooManyRequests, code: "rate_limited",
                      detail: "too many requests for this \(what); at most \(Self.format(rate)) per second (bursts of \(Self.format(burst))); retry in \(seconds) s",
                      headers: [.retryAfter: String(seconds)])
    }

    static func format(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(format: "%.2f", value) }
}
