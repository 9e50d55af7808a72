import ArgumentParser
import Foundation
import HTTPTypes
import Histogram
import HummingbirdTesting
import NIOCore
import ServiceKit
import TestSupport
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// `POST /v1/leads` (or, with `--webhook`, a signed Standard Webhooks delivery to `POST /v1/webhooks/{source}`)
/// latency at a fixed arrival rate, open loop: request i is due at start + i/rate and its latency is measured
/// from that due time (so a stall shows up in every request that waited behind it).
struct HTTPLatencyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "http-latency")

    @Option var rate = 500
    @Option var seconds = 30
    @Option var warmup = 3
    @Option var port = 18_182
    @Flag(help: "Measure signed webhook deliveries (signature check and replay record included) instead of form posts.") var webhook = false
    @Flag(help: "Measure GET /health/live instead (no database, no Kafka): the floor this client, the HTTP stack and the machine put under every request.") var control = false
    @Option(help: "Write each measured request's due time and latency (ms since start, ms) to this CSV file, to see whether slow requests cluster in time.") var trace: String?

    /// The service's request-duration histogram as Prometheus names it (dots become underscores).
    static let serverMetric = ServiceMetrics.httpRequestDuration.replacingOccurrences(of: ".", with: "_")

    static let secret = "whsec_" + Data(repeating: 42, count: 32).base64EncodedString()

    func run() async throws {
        // One bench client is one address: lift the per-IP and per-source limits, which would answer 429.
        let service = try BenchService(port: port, extra: ["FUNNEL_INTAKE_IP_RATE": "1000000", "FUNNEL_INTAKE_SOURCE_RATE": "1000000"])
        let name = TestEnvironment.uniqueName("src")
        let key = try service.createSource(name: name)
        let child = try service.start()
        defer { child.signal(SIGTERM) }
        try await service.waitReady(child)
        let pool = ClientPool(port: port)
        var target = Target.form(key: key)
        if webhook {
            let sourceID = try await pool.sourceID(named: name)
            guard await pool.send(.put, "/v1/admin/sources/\(sourceID)/webhook", body: #"{"secrets": ["\#(Self.secret)"]}"#,
                                      headers: [.authorization: "Bearer bench-admin-token", .contentType: "application/json"]) == .ok else {
                throw ChildProcessError(description: "could not configure the webhook")
            }
            target = .webhook(sourceID: sourceID, key: WebhookSignature.key(fromSecret: Self.secret)!)
        }
        if control { target = .control }

        _ = try await load(pool: pool, target: target, count: rate * warmup, offset: 0)
        // The service's own view of the same requests (its request-duration histogram over the measured window): what
        // the client measured beyond it was spent queued for a core, on the wire or in this load generator.
        let route = control ? "\"/health/live\"" : webhook ? "/v1/webhooks/" : "\"/v1/leads\""
        let serverBefore = try await ScrapedHistogram.scrape(port: port, metric: Self.serverMetric, matching: [route])
        let (histogram, errors, samples) = try await load(pool: pool, target: target, count: rate * seconds, offset: rate * warmup)
        let server = try await ScrapedHistogram.scrape(port: port, metric: Self.serverMetric, matching: [route]).since(serverBefore)
        if let trace {
            let lines = samples.sorted { $0.0 < $1.0 }.map { String(format: "%.3f,%.3f", Double($0.0) / 1_000, Double($0.1) / 1_000) }
            try (["due_ms,latency_ms"] + lines).joined(separator: "\n").write(toFile: trace, atomically: true, encoding: .utf8)
        }
        await pool.shutdown()
        child.signal(SIGTERM)
        _ = await child.wait(timeout: .seconds(30))
        func ms(_ p: Double) -> String { String(format: "%.2f", Double(histogram.valueAtPercentile(p)) / 1_000) }
        let what = control ? "GET /health/live (control: no database, no Kafka)"
            : webhook ? "POST /v1/webhooks/{source} (Standard Webhooks, HMAC-SHA256 verified, replay recorded)" : "POST /v1/leads"
        report("\(what) at \(rate) req/s open loop, \(seconds) s (\(histogram.totalCount) requests, \(errors) errors, fsync on): p50 \(ms(50)) ms, p99 \(ms(99)) ms, p99.9 \(ms(99.9)) ms, max \(String(format: "%.2f", Double(histogram.max) / 1_000)) ms; in the service (router to response written, \(Int(server.count)) requests, interpolated within buckets): p50 \(String(format: "%.2f", server.percentile(0.5))) ms, p99 \(String(format: "%.2f", server.percentile(0.99))) ms")
    }

    enum Target: Sendable {
        case form(key: String)
        case webhook(sourceID: String, key: [UInt8])
        case control
    }

    func load(pool: ClientPool, target: Target, count: Int, offset: Int) async throws -> (Histogram<UInt64>, Int, [(UInt64, UInt64)]) {
        let interval = Duration.nanoseconds(1_000_000_000 / rate)
        let start = ContinuousClock.now
        let results = LockedResults()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<count {
                let due = start + interval * i
                try? await Task.sleep(until: due, clock: .continuous)
                let n = offset + i
                group.addTask {
                    let body = #"{"phone":"+86 137\#(String(format: "%08d", n))","name":"学员","platformLeadId":"h-\#(n)","utm":{"source":"baidu"}}"#
                    let ok: Bool
                    switch target {
                    case .form(let key):
                        ok = await pool.send(.post, "/v1/leads", body: body, headers: [.authorization: "Bearer \(key)", .contentType: "application/json"]) == .accepted
                    case .control:
                        ok = await pool.send(.get, "/health/live", headers: [:]) == .ok
                    case .webhook(let sourceID, let key):
                        let id = "bench-\(n)", timestamp = Int64(Date().timeIntervalSince1970)
                        ok = await pool.send(.post, "/v1/webhooks/\(sourceID)", body: body, headers: [
                            .contentType: "application/json", HTTPField.Name("webhook-id")!: id, HTTPField.Name("webhook-timestamp")!: String(timestamp),
                            HTTPField.Name("webhook-signature")!: WebhookSignature.sign(id: id, timestamp: timestamp, body: Array(body.utf8), key: key),
                        ]) == .accepted
                    }
                    results.record(due: UInt64((due - start).seconds * 1_000_000), micros: UInt64(max(1, (ContinuousClock.now - due).seconds * 1_000_000)), ok: ok)
                }
            }
        }
        return results.snapshot()
    }
}

final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    private var errors = 0
    /// (due, latency) in microseconds, for `--trace`.
    private var samples: [(UInt64, UInt64)] = []

    func record(due: UInt64, micros: UInt64, ok: Bool) {
        lock.withLock {
            _ = histogram.record(micros)
            samples.append((due, micros))
            if !ok { errors += 1 }
        }
    }

    func snapshot() -> (Histogram<UInt64>, Int, [(UInt64, UInt64)]) { lock.withLock { (histogram, errors, samples) } }
}

/// Keep-alive connections, each serving one request at a time; more are opened when all are busy.
actor ClientPool {
    let port: Int
    private var idle: [TestClient] = []
    private var all: [TestClient] = []

    init(port: Int) { self.port = port }

    private func acquire() -> TestClient {
        if let client = idle.popLast() { return client }
        let client = TestClient(host: "127.0.0.1", port: port)
        client.connect()
        all.append(client)
        return client
    }

    private func release(_ client: TestClient) { idle.append(client) }

    /// Sends one request; nil when it failed on the wire.
    func send(_ method: HTTPRequest.Method, _ path: String, body: String? = nil, headers: HTTPFields) async -> HTTPResponse.Status? {
        await sendForBody(method, path, body: body, headers: headers)?.status
    }

    func sendForBody(_ method: HTTPRequest.Method, _ path: String, body: String? = nil, headers: HTTPFields) async -> TestClient.Response? {
        let client = acquire()
        let request = TestClient.Request(path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        do {
            let response = try await client.execute(request)
            release(client)
            return response
        } catch {
            return nil
        }
    }

    /// The id of the lead source `name`, from the admin API.
    func sourceID(named name: String) async throws -> String {
        guard let response = await sendForBody(.get, "/v1/admin/sources", headers: [.authorization: "Bearer bench-admin-token"]), let body = response.body,
              let json = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
              let sources = json["sources"] as? [[String: Any]], let id = sources.first(where: { $0["name"] as? String == name })?["id"] as? String else {
            throw ChildProcessError(description: "no lead source \(name)")
        }
        return id
    }

    func shutdown() async {
        for client in all { try? await client.shutdown() }
    }
}
