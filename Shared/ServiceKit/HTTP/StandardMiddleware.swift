import Hummingbird

extension Router {
    /// The middleware every service's routes run behind, outermost first: request metrics (Hummingbird's
    /// `MetricsMiddleware`: requests, errors and durations by route template, method and status, so a route's latency
    /// can be watched in production as the benchmarks watch it) and problem+json errors.
    ///
    /// Call it before adding routes: a router's middleware applies to the routes added after it.
    public func addStandardMiddleware() {
        add(middleware: MetricsMiddleware())
        add(middleware: ProblemMiddleware())
    }
}
