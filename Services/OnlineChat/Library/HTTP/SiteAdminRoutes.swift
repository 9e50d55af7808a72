import FastText
import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import ServiceKit

/// `/v1/admin/sites` (admin token): create, list, read and replace chat sites — their allowed origins, default
/// language and bot flow. A flow is validated on write (422 naming every problem); each change bumps its version.
struct SiteAdminRoutes: Sendable {
    let postgres: PostgresClient
    let sites: SiteStore
    let adminToken: String
    let maxBodyBytes: Int

    struct SiteInput: Decodable {
        var id: String?
        var name: String?
        var allowedOrigins: [String]?
        var locale: String?
        var botFlow: BotFlow?
        var disabled: Bool?
        enum CodingKeys: String, CodingKey { case id, name, allowedOrigins = "allowed_origins", locale, botFlow = "bot_flow", disabled }
    }

    struct Listing: Encodable { let sites: [ChatSite] }

    func add(to router: Router<ChatRequestContext>) {
        router.post("/v1/admin/sites") { request, _ in try await self.create(request) }
        router.get("/v1/admin/sites") { request, _ in
            try request.requireAdmin(token: self.adminToken)
            let sites = self.sites
            return jsonResponse(.ok, Listing(sites: try await self.postgres.withConnection { try sites.list(in: $0) }))
        }
        router.get("/v1/admin/sites/:id") { request, context in
            try request.requireAdmin(token: self.adminToken)
            let (sites, id) = (self.sites, context.parameters.get("id") ?? "")
            guard ChatSite.isValidID(id), let site = try await self.postgres.withConnection({ try sites.load(id, in: $0) }) else {
                throw Problem(.notFound, code: "unknown_site", detail: "no chat site \(id)")
            }
            return jsonResponse(.ok, site)
        }
        router.put("/v1/admin/sites/:id") { request, context in try await self.replace(request, id: context.parameters.get("id") ?? "") }
    }

    func create(_ request: Request) async throws -> Response {
        try request.requireAdmin(token: adminToken)
        var request = request
        let input = try ChatJSON.decode(SiteInput.self, from: try await request.collectBody(limit: maxBodyBytes))
        let site = try validate(input, id: input.id)
        let sites = self.sites
        guard try await postgres.withConnection({ try sites.insert(site, in: $0) }) else {
            throw Problem(.conflict, code: "duplicate_site", detail: "a site with id \(site.id) exists")
        }
        return jsonResponse(.created, site)
    }

    func replace(_ request: Request, id: String) async throws -> Response {
        try request.requireAdmin(token: adminToken)
        guard ChatSite.isValidID(id) else { throw Problem(.notFound, code: "unknown_site", detail: "no chat site \(id)") }
        var request = request
        let input = try ChatJSON.decode(SiteInput.self, from: try await request.collectBody(limit: maxBodyBytes))
        if let given = input.id, given != id { throw Problem(.unprocessableContent, code: "id_mismatch", detail: "the body's id differs from the path's") }
        let site = try validate(input, id: id)
        let sites = self.sites
        guard let updated = try await postgres.withConnection({ try sites.update(site, in: $0) }) else {
            throw Problem(.notFound, code: "unknown_site", detail: "no chat site \(id)")
        }
        return jsonResponse(.ok, updated)
    }

    /// The site an input describes, or a 422 naming every problem.
    func validate(_ input: SiteInput, id: String?) throws -> ChatSite {
        var errors: [Problem.FieldError] = []
        let id = id ?? ""
        if !ChatSite.isValidID(id) { errors.append(.init(field: "id", code: "invalid_site_id", detail: "1 to 64 of a-z, 0-9, - and _")) }
        let name = (input.name ?? "").trimmingSpacesAndNewlines
        if name.isEmpty || name.count > 100 || name.contains("\u{0}") { errors.append(.init(field: "name", code: "invalid_name", detail: "1 to 100 characters")) }
        let origins = input.allowedOrigins ?? []
        if origins.isEmpty || origins.count > 50 {
            errors.append(.init(field: "allowed_origins", code: "invalid_origins", detail: "1 to 50 origins such as https://www.example.com"))
        }
        for (i, origin) in origins.enumerated() where !ChatSite.isValidOrigin(origin) {
            errors.append(.init(field: "allowed_origins[\(i)]", code: "invalid_origin", detail: "scheme://host[:port] with no path, or *"))
        }
        var locale = ChatLocale.zh
        if let text = input.locale {
            if let l = ChatLocale(rawValue: text) { locale = l } else { errors.append(.init(field: "locale", code: "invalid_locale", detail: "zh or en")) }
        }
        let flow = input.botFlow ?? .standard
        errors += flow.violations().map { .init(field: $0.field, code: "invalid_bot_flow", detail: $0.detail) }
        guard errors.isEmpty else {
            throw Problem(.unprocessableContent, code: errors[0].code, title: "Invalid site", detail: "\(errors[0].field): \(errors[0].detail)", errors: errors)
        }
        return ChatSite(id: id, name: name, allowedOrigins: origins, locale: locale, botFlow: flow, flowVersion: 1, disabled: input.disabled ?? false)
    }
}
