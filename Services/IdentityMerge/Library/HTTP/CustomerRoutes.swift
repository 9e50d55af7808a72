import FastText
import Foundation
import Hummingbird
import ServiceKit

/// The operator API (Bearer operator token, `FUNNEL_ADMIN_TOKEN`, until HR-backed user tokens exist):
/// profiles, lookup by phone/email/user id, history, unmerge and erasure.
struct CustomerRoutes: Sendable {
    let store: CustomerStore
    let adminToken: String
    let maxBodyBytes: Int

    struct UnmergeRequest: Decodable {
        struct Item: Decodable {
            let kind: String
            let value: String
        }
        let identifiers: [Item]
        let reason: String?
        let requestedBy: String?
        enum CodingKeys: String, CodingKey { case identifiers, reason, requestedBy = "requested_by" }
    }

    func add(to router: Router<BasicRequestContext>) {
        let group = router.group("/v1/customers")
        group.get { request, _ in
            try request.requireAdmin(token: adminToken)
            return try await lookup(request)
        }
        group.get("/:id") { request, context in
            try request.requireAdmin(token: adminToken)
            let id = try Self.id(context)
            switch try await store.profile(id) {
            case .found(let profile): return jsonResponse(.ok, profile)
            case .mergedInto(let survivor): return Self.redirect(to: "/v1/customers/\(survivor.lowercasedText)")
            case .erased: throw Self.erased
            case .notFound: throw Self.notFound
            }
        }
        group.get("/:id/history") { request, context in
            try request.requireAdmin(token: adminToken)
            let id = try Self.id(context)
            switch try await store.standing(id) {
            case .mergedInto(let survivor): return Self.redirect(to: "/v1/customers/\(survivor.lowercasedText)/history")
            case .notFound: throw Self.notFound
            case .active, .erased: break
            }
            return jsonResponse(.ok, HistoryPage(customerID: id.lowercasedText, decisions: try await store.history(id)))
        }
        group.post("/:id/unmerge") { request, context in
            try request.requireAdmin(token: adminToken)
            let id = try Self.id(context)
            var request = request
            let body = try await request.collectBody(limit: maxBodyBytes)
            let input: UnmergeRequest
            do { input = try JSONDecoder().decode(UnmergeRequest.self, from: Data(buffer: body)) } catch {
                throw Problem(.badRequest, code: "malformed_json",
                              detail: "expected {\"identifiers\": [{\"kind\": \"phone\", \"value\": \"…\"}], \"reason\": \"…\"}")
            }
            var items: [(kind: IdentifierKind, value: String)] = []
            var errors: [Problem.FieldError] = []
            for (index, item) in input.identifiers.enumerated() {
                guard let kind = IdentifierKind(rawValue: item.kind) else {
                    errors.append(.init(field: "identifiers[\(index)].kind", code: "unknown_kind",
                                        detail: "one of \(IdentifierKind.allCases.map(\.rawValue).joined(separator: ", "))"))
                    continue
                }
                items.append((kind, item.value))
            }
            if input.identifiers.isEmpty {
                errors.append(.init(field: "identifiers", code: "required", detail: "name at least one identifier to split off"))
            }
            let reason = (input.reason ?? "").trimmingSpacesAndNewlines
            if reason.isEmpty || reason.count > 500 {
                errors.append(.init(field: "reason", code: "required", detail: "say why, in at most 500 characters"))
            }
            guard errors.isEmpty else { throw Problem(.unprocessableContent, code: "invalid_unmerge", detail: "the unmerge request is not valid", errors: errors) }
            do {
                let result = try await store.unmerge(id, identifiers: items, reason: reason, by: input.requestedBy ?? "operator")
                return jsonResponse(.created, result)
            } catch let failure as CustomerAdminFailure {
                throw Self.problem(failure)
            }
        }
        group.delete("/:id") { request, context in
            try request.requireAdmin(token: adminToken)
            let id = try Self.id(context)
            do {
                return jsonResponse(.ok, try await store.erase(id, by: request.headers[.init("X-Requested-By")!] ?? "operator"))
            } catch let failure as CustomerAdminFailure {
                throw Self.problem(failure)
            }
        }
    }

    func lookup(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let pairs: [(IdentifierKind, String)] = [(.phone, "phone"), (.userID, "user_id"), (.email, "email")].compactMap { kind, name in
            query.get(name).map { (kind, $0) }
        }
        guard pairs.count == 1, let (kind, value) = pairs.first else {
            throw Problem(.badRequest, code: "one_lookup_key", detail: "give exactly one of phone, user_id or email")
        }
        guard IdentityNormalizer.normalize(kind: kind, value, defaultRegion: store.defaultRegion) != nil else {
            throw Problem(.unprocessableContent, code: "invalid_\(kind.rawValue)", detail: "\(kind.rawValue): not a valid value")
        }
        guard let id = try await store.find(kind: kind, value: value) else {
            throw Problem(.notFound, code: "customer_not_found", detail: "no customer holds this \(kind.rawValue)")
        }
        guard case .found(let profile) = try await store.profile(id) else { throw Self.notFound }
        return jsonResponse(.ok, profile)
    }

    struct HistoryPage: Encodable {
        let customerID: String
        let decisions: [HistoryEntry]
        enum CodingKeys: String, CodingKey { case customerID = "customer_id", decisions }
    }

    static let notFound = Problem(.notFound, code: "customer_not_found", detail: "no customer with this id")
    static let erased = Problem(.gone, code: "customer_erased", detail: "this customer was erased")

    static func redirect(to path: String) -> Response {
        Response(status: .permanentRedirect, headers: [.location: path])
    }

    static func problem(_ failure: CustomerAdminFailure) -> Problem {
        switch failure.kind {
        case .notFound: return Problem(.notFound, code: failure.code, detail: failure.detail)
        case .erased: return Problem(.gone, code: failure.code, detail: failure.detail)
        case .merged: return Problem(.conflict, code: failure.code, detail: failure.detail)
        case .invalid: return Problem(.unprocessableContent, code: failure.code, detail: failure.detail)
        }
    }

    static func id(_ context: BasicRequestContext) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw Problem(.badRequest, code: "invalid_id", detail: "the customer id must be a UUID")
        }
        return id
    }
}
