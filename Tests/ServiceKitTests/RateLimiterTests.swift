import Foundation
import ServiceKit
import Testing

/// Token buckets against an injected clock: bursts, refills, keys apart, and forgetting full buckets.
@Suite struct RateLimiterTests {
    let start = ContinuousClock.now

    @Test func aBurstIsAllowedThenTheRateRefillsIt() {
        let limiter = RateLimiter(rate: 2, burst: 6)
        for i in 0..<6 { #expect(limiter.take("ip", now: start) == nil, "request \(i) of the burst") }
        #expect(limiter.take("ip", now: start) == .milliseconds(500), "the next token is half a second away")
        #expect(limiter.take("ip", now: start + .milliseconds(499)) != nil)
        #expect(limiter.take("ip", now: start + .milliseconds(1_000)) == nil, "two tokens back by 1 s (the try at 0.499 s took none)")
        #expect(limiter.take("ip", now: start + .milliseconds(1_000)) == nil)
        #expect(limiter.take("ip", now: start + .milliseconds(1_000)) != nil)
    }

    @Test func refillsNeverExceedTheBurst() {
        let limiter = RateLimiter(rate: 10, burst: 3)
        for _ in 0..<3 { #expect(limiter.take("k", now: start) == nil) }
        let later = start + .seconds(3_600)
        for _ in 0..<3 { #expect(limiter.take("k", now: later) == nil) }
        #expect(limiter.take("k", now: later) != nil, "an hour idle still gives only the burst")
    }

    @Test func keysHaveTheirOwnBuckets() {
        let limiter = RateLimiter(rate: 1, burst: 1)
        #expect(limiter.take("a", now: start) == nil)
        #expect(limiter.take("a", now: start) != nil)
        #expect(limiter.take("b", now: start) == nil)
    }

    @Test func fullBucketsAreForgottenWhenTooManyKeysAreKept() {
        let limiter = RateLimiter(rate: 1, burst: 1, maxKeys: 10)
        #expect(limiter.take("busy", now: start) == nil)
        for i in 0..<20 { _ = limiter.take("k\(i)", now: start + .seconds(5)) }
        #expect(limiter.take("busy", now: start + .seconds(5)) == nil, "refilled, whether kept or forgotten")
        #expect(limiter.take("busy", now: start + .seconds(5)) != nil, "and limited again right after")
    }

    @Test func checkThrowsA429WithRetryAfterInWholeSeconds() throws {
        let limiter = RateLimiter(rate: 0.25, burst: 1)
        try limiter.check("x", what: "client address")
        do {
            try limiter.check("x", what: "client address")
            Issue.record("the second request should be limited")
        } catch let problem as Problem {
            #expect(problem.status == .tooManyRequests && problem.code == "rate_limited")
            #expect(problem.headers[.retryAfter] == "4")
        }
    }
}
