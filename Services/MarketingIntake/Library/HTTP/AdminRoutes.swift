import Foundation
import Hummingbird
import ServiceKit

/// `/v1/admin/sources`: create a lead source (its key is shown once), list, rotate a key, disable.
/// Bearer admin token (`FUNNEL_ADMIN_TOKEN`).
struct AdminRoutes: Sendable {
    let sources: SourceStore
    let adminToken: String
    let maxBodyBytes: Int

    struct CreateSource: Decodable {
        let name: String
        let defaultChannel: String?
        enum CodingKeys: String, CodingKey { case name, defaultChannel = "default_channel" }
    }

    func add(to router: Router<ClientRequestContext>) {
        let group = router.group("/v1/admin/sources")
        group.post { request, _ in try await self.create(request) }
        group.get { request, _ in
            try request.requireAdmin(token: adminToken)
            return jsonResponse(.ok, ["sources": try await sources.list()])
        }
        group.post("/:id/rotate-key") { request, context in
            try request.requireAdmin(token: adminToken)
            guard let issued = try await sources.rotateKey(id: try Self.id(context)) else { throw Self.notFound }
            return jsonResponse(.ok, issued)
        }
        group.delete("/:id") { request, context in
            try request.requireAdmin(token: adminToken)
            guard try await sources.disable(id: try Self.id(context)) else { throw Self.notFound }
            return Response(status: .noContent)
        }
    }

    func create(_ request: Request) async throws -> Response {
        try request.requireAdmin(token: adminToken)
        var request = request
        let body = try await request.collectBody(limit: maxBodyBytes)
        let input: CreateSource
        do { input = try JSONDecoder().decode(CreateSource.self, from: Data(buffer: body)) } catch {
            throw Problem(.badRequest, code: "malformed_json", detail: "expected {\"name\": \"…\", \"default_channel\": \"…\"}")
        }
        let channelText = input.defaultChannel ?? Channel.other.rawValue
        guard let channel = Channel(rawValue: channelText) else {
            throw Problem(.unprocessableContent, code: "unknown_channel", detail: "default_channel must be one of \(Channel.allCases.map(\.rawValue).joined(separator: ", "))",
                          errors: [.init(field: "default_channel", code: "unknown_channel", detail: "unknown channel")])
        }
        do {
            return jsonResponse(.created, try await sources.create(name: input.name, defaultChannel: channel))
        } catch let failure as SourceStore.Failure {
            throw Problem(failure.code == "duplicate_name" ? .conflict : .unprocessableContent, code: failure.code, detail: failure.description)
        }
    }

    static let notFound = Problem(.notFound, code: "source_not_found", detail: "no lead source with this id")

    static func id(_ context: ClientRequestContext) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw Problem(.badRequest, code: "invalid_id", detail: "the source id must be a UUID")
        }
        return id
    }
}
