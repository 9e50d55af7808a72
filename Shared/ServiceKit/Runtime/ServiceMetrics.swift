import Metrics
import Prometheus

/// The metrics system every service bootstraps: Prometheus, with fine buckets where latency targets are in
/// milliseconds (a default bucket of 5-10 ms cannot tell 4 ms from 9 ms).
public enum ServiceMetrics {
    /// Per consumed record: from the poll handing it over to its transaction committing.
    public static let recordLatency = "funnel_consumer_record_seconds"

    /// Buckets of ``recordLatency`` and ``httpRequestDuration``: 0.25 ms to 2.5 s.
    public static let recordLatencyBuckets: [Duration] = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 10, 12.5, 15, 20,
                                                          30, 50, 100, 250, 500, 1_000, 2_500].map { .microseconds(Int64($0 * 1_000)) }

    /// Per HTTP request: from the router taking it to its response body written (Hummingbird's `MetricsMiddleware`,
    /// exported as `http_server_request_duration`, by route, method and status; the same buckets as ``recordLatency``).
    public static let httpRequestDuration = "http.server.request.duration"

    /// Bootstraps swift-metrics with Prometheus on `registry` (once per process).
    public static func bootstrap(_ registry: PrometheusCollectorRegistry) {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[recordLatency] = recordLatencyBuckets
        factory.durationHistogramBuckets[httpRequestDuration] = recordLatencyBuckets
        MetricsSystem.bootstrap(factory)
    }
}
