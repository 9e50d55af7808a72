import Hummingbird
import ServiceKit

/// `GET /openapi.json`: the OpenAPI 3.1 document of marketing-intake's HTTP API (``IntakeOpenAPI/document``).
enum OpenAPIRoute {
    static func add(to router: Router<ClientRequestContext>) {
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: IntakeOpenAPI.document)))
        }
    }
}
