import Hummingbird
import ServiceKit

/// `GET /widget.js` (the embeddable widget), `GET /demo?site=` (a page embedding it, for trying a site out) and
/// `GET /openapi.json` (the API document).
enum WidgetRoutes {
    static func add(to router: Router<ChatRequestContext>) {
        router.get("/demo") { request, _ in
            guard let site = request.uri.queryParameters.get("site").map({ String($0) }), ChatSite.isValidID(site) else {
                throw Problem(.unprocessableContent, code: "invalid_site", detail: "site: a site id (1 to 64 of a-z, 0-9, - and _) is required")
            }
            // The id is checked to be [a-z0-9_-], so it is safe inside the attribute.
            let html = """
                <!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
                <title>Funnel chat demo</title></head><body style="font-family: system-ui, sans-serif; margin: 2rem">
                <h1>Funnel chat demo</h1><p>Site <code>\(site)</code>. Open the bubble at the bottom right.</p>
                <script src="/widget.js" data-site="\(site)"></script></body></html>
                """
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
        }
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
