import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import ServiceKit

/// Cross-origin access to the visitor API (`/v1/chat/…`) for pages on the sites' allowed origins only. A preflight
/// carries no site, so it is answered for an origin that any enabled site allows; each request then checks its own
/// site's list (403 `origin_not_allowed`). Answers are cached for a few seconds per origin.
struct CORSMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext
    let postgres: PostgresClient
    let sites: SiteStore
    private let cache = LockedBox<[String: (allowed: Bool, at: ContinuousClock.Instant)]>([:])

    init(postgres: PostgresClient, sites: SiteStore) {
        self.postgres = postgres
        self.sites = sites
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/v1/chat/"), let origin = request.headers[.origin] else { return try await next(request, context) }
        let allowed = try await isAllowed(origin)
        if request.method == .options {
            guard allowed else { throw Problem(.forbidden, code: "origin_not_allowed", detail: "this origin is not on any site's allow-list") }
            return Response(status: .noContent, headers: [
                .accessControlAllowOrigin: origin, .accessControlAllowMethods: "GET, POST",
                .accessControlAllowHeaders: "Authorization, Content-Type", .accessControlMaxAge: "600", .vary: "Origin",
            ])
        }
        do {
            var response = try await next(request, context)
            if allowed { Self.decorate(&response.headers, origin: origin) }
            return response
        } catch let problem as Problem where allowed {
            // Let the widget read the problem body too.
            var decorated = problem
            Self.decorate(&decorated.headers, origin: origin)
            throw decorated
        }
    }

    static func decorate(_ headers: inout HTTPFields, origin: String) {
        headers[.accessControlAllowOrigin] = origin
        headers[.vary] = "Origin"
        headers[.accessControlExposeHeaders] = "Retry-After"
    }

    private func isAllowed(_ origin: String) async throws -> Bool {
        let now = ContinuousClock.now
        if let hit = cache.withLock({ $0[origin] }), now - hit.at < .seconds(5) { return hit.allowed }
        guard origin.count <= 200, !origin.contains("\u{0}") else { return false }
        let (sites, origin) = (self.sites, origin)
        let allowed = try await postgres.withConnection { try sites.anyAllows(origin: origin, in: $0) }
        cache.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[origin] = (allowed, now)
        }
        return allowed
    }
}
