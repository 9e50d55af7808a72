import Foundation
import Hummingbird
import Prometheus

/// `/health/live`, `/health/ready` and `/metrics`, the same on every service.
public enum OperationalRoutes {
    public static func add<Context: RequestContext>(to router: Router<Context>, health: HealthState, registry: PrometheusCollectorRegistry) {
        router.get("/health/live") { _, _ -> Response in
            jsonResponse(.ok, ["status": "live"])
        }
        router.get("/health/ready") { _, _ -> Response in
            let checks = health.checks
            let ready = checks.values.allSatisfy { $0 }
            var body: [String: String] = ["status": ready ? "ready" : "not_ready"]
            for (name, ok) in checks { body[name] = ok ? "ok" : "failing" }
            return jsonResponse(ready ? .ok : .serviceUnavailable, body)
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }
}

/// A JSON response of an `Encodable` value.
public func jsonResponse(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
