import Hummingbird
import ServiceKit

/// `GET /widget.js` (the embeddable widget) and `GET /openapi.json` (the API document).
enum WidgetRoutes {
    static func add(to router: Router<ChatRequestContext>) {
        router.get("/widget.js") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/javascript; charset=utf-8", .cacheControl: "public, max-age=300",
                                            .init("X-Content-Type-Options")!: "nosniff"],
                     body: .init(byteBuffer: ByteBuffer(string: WidgetScript.source)))
        }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: ChatOpenAPI.document)))
        }
    }
}
