import ArgumentParser
import Foundation
import HTTPTypes
import Histogram
import HummingbirdTesting
import NIOCore
import TestSupport
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// `POST /v1/leads` latency at a fixed arrival rate, open loop: request i is due at start + i/rate and its
/// latency is measured from that due time (so a stall shows up in every request that waited behind it).
struct HTTPLatencyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "http-latency")

    @Option var rate = 500
    @Option var seconds = 30
    @Option var warmup = 3
    @Option var port = 18_182

    func run() async throws {
        let service = try BenchService(port: port)
        let key = try service.createSource(name: TestEnvironment.uniqueName("src"))
        let child = try service.start()
        defer { child.signal(SIGTERM) }
        try await service.waitReady(child)
        let pool = ClientPool(port: port)

        _ = try await load(pool: pool, key: key, count: rate * warmup, offset: 0)
        let (histogram, errors) = try await load(pool: pool, key: key, count: rate * seconds, offset: rate * warmup)
        await pool.shutdown()
        child.signal(SIGTERM)
        _ = await child.wait(timeout: .seconds(30))
        func ms(_ p: Double) -> String { String(format: "%.2f", Double(histogram.valueAtPercentile(p)) / 1_000) }
        report("POST /v1/leads at \(rate) req/s open loop, \(seconds) s (\(histogram.totalCount) requests, \(errors) errors, fsync on): p50 \(ms(50)) ms, p99 \(ms(99)) ms, p99.9 \(ms(99.9)) ms, max \(String(format: "%.2f", Double(histogram.max) / 1_000)) ms")
    }

    func load(pool: ClientPool, key: String, count: Int, offset: Int) async throws -> (Histogram<UInt64>, Int) {
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
                    let ok = await pool.post(body: body, key: key)
                    results.record(micros: UInt64(max(1, (ContinuousClock.now - due).seconds * 1_000_000)), ok: ok)
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

    func record(micros: UInt64, ok: Bool) {
        lock.withLock {
            _ = histogram.record(micros)
            if !ok { errors += 1 }
        }
    }

    func snapshot() -> (Histogram<UInt64>, Int) { lock.withLock { (histogram, errors) } }
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

    func post(body: String, key: String) async -> Bool {
        let client = acquire()
        let request = TestClient.Request("/v1/leads", method: .post, headers: [.authorization: "Bearer \(key)", .contentType: "application/json"], body: ByteBuffer(string: body))
        do {
            let response = try await client.execute(request)
            release(client)
            return response.status == .accepted
        } catch {
            return false
        }
    }

    func shutdown() async {
        for client in all { try? await client.shutdown() }
    }
}
