import Foundation
import HTTPTypes
import NIOCore
import Testing
import TestSupport
import HummingbirdTesting
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Request metrics, shown on the real executable (the process bootstraps Prometheus; in-process harnesses do not):
/// every route's requests, errors and durations by route template, method and status on `/metrics`.
@Suite("marketing-intake request metrics")
struct RequestMetricsTests {
    @Test func formPostsAndTheirRejectionsAppearOnMetricsByRouteAndStatus() async throws {
        let intake = try IntakeExecutable("rm", partitions: 2)
        let key = try await intake.createSource(named: TestEnvironment.uniqueName("src"))
        let service = try intake.serve()
        defer { service.signal(SIGKILL) }
        let listening = try await IntakeExecutable.port(of: service)

        func send(_ method: HTTPRequest.Method, _ path: String, body: String? = nil) async throws -> (HTTPResponse.Status, String) {
            let response = try await TestClient.withClient(host: "127.0.0.1", port: listening) { client in
                try await client.execute(.init(path, method: method, headers: body == nil ? [:] : [.authorization: "Bearer \(key)", .contentType: "application/json"],
                                               body: body.map { ByteBuffer(string: $0) }))
            }
            return (response.status, response.body.map { String(buffer: $0) } ?? "")
        }
        #expect(try await send(.post, "/v1/leads", body: #"{"phone": "13800138000", "platformLeadId": "m-1"}"#).0 == .accepted)
        #expect(try await send(.post, "/v1/leads", body: #"{"phone": "13800138001", "platformLeadId": "m-2"}"#).0 == .accepted)
        #expect(try await send(.post, "/v1/leads", body: #"{"phone": "1380013800", "platformLeadId": "m-3"}"#).0 == .unprocessableContent)

        let (status, metrics) = try await send(.get, "/metrics")
        #expect(status == .ok)
        let lines = metrics.split(separator: "\n")
        func value(_ prefix: String, _ parts: [String]) -> Double? {
            lines.first { $0.hasPrefix(prefix) && parts.allSatisfy($0.contains) }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        let accepted = [#"http_route="/v1/leads""#, #"http_request_method="POST""#, #"http_response_status_code="202""#]
        #expect(value("http_server_request_duration_count", accepted) == 2, "\(metrics)")
        #expect(value("http_server_request_duration_bucket", accepted + [#"le="+Inf""#]) == 2)
        // The fine buckets of the latency targets, not only Prometheus's default 5 ms steps.
        #expect(lines.contains { $0.hasPrefix("http_server_request_duration_bucket") && $0.contains(#"le="0.00025""#) })
        #expect(value("hb_requests", accepted) == 2)
        #expect(value("hb_request_errors", [#"http_route="/v1/leads""#, #"error_type="422""#]) == 1)
        service.signal(SIGTERM)
        #expect(await service.wait() == 0)
    }
}
