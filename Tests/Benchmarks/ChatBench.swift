import ArgumentParser
import Foundation
import Histogram
import HummingbirdWSClient
import Logging
import ServiceKit
import TestSupport
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// online-chat holding many open conversations: `--sockets` visitors each start a session over HTTP and keep a
/// WebSocket open to one online-chat process; then, with all of them open, messages are sent open loop at
/// `--rate` per second to random conversations and the round trip (send → the update carrying the stored message
/// comes back on the same socket, after its transaction committed) is measured from each message's due time.
struct ChatBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "chat")

    @Option var sockets = 5_000
    @Option var rate = 500
    @Option var seconds = 30
    @Option var port = 18_184

    /// The bench's view of each socket: its writer, and the send times of its messages in flight.
    final class Sockets: @unchecked Sendable {
        private let lock = NSLock()
        private var writers: [Int: WebSocketOutboundWriter] = [:]
        private var pending: [String: ContinuousClock.Instant] = [:]
        private var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        private(set) var ready = 0
        private(set) var failed = 0
        private(set) var errors = 0

        func opened(_ index: Int, _ writer: WebSocketOutboundWriter) { lock.withLock { writers[index] = writer; ready += 1 } }
        func failedToOpen() { lock.withLock { failed += 1 } }
        func closed(_ index: Int) { lock.withLock { writers[index] = nil } }
        func writer(_ index: Int) -> WebSocketOutboundWriter? { lock.withLock { writers[index] } }
        var allWriters: [WebSocketOutboundWriter] { lock.withLock { Array(writers.values) } }
        var open: Int { lock.withLock { writers.count } }

        func sent(_ text: String, due: ContinuousClock.Instant) { lock.withLock { pending[text] = due } }
        func error() { lock.withLock { errors += 1 } }

        func received(_ text: String) {
            guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return }
            if json["type"] as? String == "error" { error(); return }
            let now = ContinuousClock.now
            for message in json["messages"] as? [[String: Any]] ?? [] where message["author"] as? String == "visitor" {
                guard let body = message["body"] as? String else { continue }
                lock.withLock {
                    if let due = pending.removeValue(forKey: body) { _ = histogram.record(UInt64(max(1, (now - due).seconds * 1_000_000))) }
                }
            }
        }

        func results() -> (Histogram<UInt64>, lost: Int) { lock.withLock { (histogram, pending.count) } }
        func resetHistogram() { lock.withLock { histogram.reset(); pending.removeAll() } }
    }

    func run() async throws {
        let service = try BenchService(service: "online-chat", port: port, extra: [
            "FUNNEL_CHAT_SESSION_RATE": "1000000", "FUNNEL_CHAT_MESSAGE_RATE": "1000000", "FUNNEL_CHAT_IP_MESSAGE_RATE": "1000000",
            "FUNNEL_HTTP_MAX_BODY_BYTES": "65536",
        ], topics: [("leads.captured.v1", 8), ("dlq.online-chat.v1", 2), ("identity.customers.v1", 4), ("hr.employees.v1", 2)])
        try service.runToCompletion(["sites", "create", "--id", "bench", "--name", "Bench", "--origin", "*"])
        let child = try service.start()
        defer { child.signal(SIGTERM) }
        try await service.waitReady(child)
        let rssBefore = Self.rssMB(child.pid)

        // Sessions over HTTP, 32 at a time.
        let pool = ClientPool(port: port)
        let started = ContinuousClock.now
        var tokens: [String] = []
        try await withThrowingTaskGroup(of: String.self) { group in
            var next = 0
            func add() {
                group.addTask {
                    guard let response = await pool.sendForBody(.post, "/v1/chat/sessions", body: #"{"site": "bench", "locale": "en"}"#,
                                                                 headers: [.contentType: "application/json"]),
                          let body = response.body, let json = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
                          let token = json["token"] as? String else { throw ChildProcessError(description: "could not start a session") }
                    return token
                }
            }
            while next < min(32, sockets) { add(); next += 1 }
            while let token = try await group.next() {
                tokens.append(token)
                if next < sockets { add(); next += 1 }
            }
        }
        await pool.shutdown()
        let sessionSeconds = (ContinuousClock.now - started).seconds

        // The sockets, opened 64 at a time; each stays open until the end.
        let state = Sockets()
        let logger = Logger(label: "bench-ws", factory: { _ in SwiftLogNoOpLogHandler() })
        let url = "ws://127.0.0.1:\(port)/v1/chat/ws?site=bench"
        let openStart = ContinuousClock.now
        let connections = Task {
            await withTaskGroup(of: Void.self) { group in
                for (index, token) in tokens.enumerated() {
                    while index - state.ready - state.failed >= 64 { try? await Task.sleep(for: .milliseconds(2)) }
                    group.addTask {
                        do {
                            try await WebSocketClient.connect(url: url, logger: logger) { inbound, outbound, _ in
                                try await outbound.write(.text(#"{"type": "hello", "token": "\#(token)", "after": 2}"#))
                                var first = true
                                for try await message in inbound.messages(maxSize: 1 << 16) {
                                    if first { state.opened(index, outbound); first = false }
                                    if case .text(let text) = message { state.received(text) }
                                }
                                state.closed(index)
                            }
                        } catch {
                            state.failedToOpen()
                        }
                    }
                }
            }
        }
        while state.ready + state.failed < sockets, ContinuousClock.now - openStart < .seconds(300) { try await Task.sleep(for: .milliseconds(50)) }
        let openSeconds = (ContinuousClock.now - openStart).seconds
        let openCount = state.open
        guard openCount == sockets else { throw ChildProcessError(description: "only \(openCount) of \(sockets) sockets opened (\(state.failed) failed)") }
        try await Task.sleep(for: .seconds(2))
        let rssOpen = Self.rssMB(child.pid)

        // Messages at a fixed rate to random conversations: a warm-up, then the measured run.
        try await drive(state, count: rate * 3, tag: "w")
        try await Task.sleep(for: .seconds(1))
        state.resetHistogram()
        try await drive(state, count: rate * seconds, tag: "m")
        try await Task.sleep(for: .seconds(2))
        let (histogram, lost) = state.results()
        let stillOpen = state.open
        let rssLoaded = Self.rssMB(child.pid)

        for writer in state.allWriters { try? await writer.close(.normalClosure, reason: nil) }
        _ = await connections.value
        child.signal(SIGTERM)
        _ = await child.wait(timeout: .seconds(30))
        func ms(_ p: Double) -> String { String(format: "%.2f", Double(histogram.valueAtPercentile(p)) / 1_000) }
        report("online-chat: \(sockets) conversations started in \(String(format: "%.1f", sessionSeconds)) s (\(format(Double(sockets) / sessionSeconds))/s), their WebSockets opened in \(String(format: "%.1f", openSeconds)) s; \(stillOpen) still open after the load; one process RSS \(rssBefore) MB idle → \(rssOpen) MB with \(sockets) open → \(rssLoaded) MB after the load")
        report("online-chat message round trip with \(sockets) open WebSockets, \(rate) msg/s open loop to random conversations, \(seconds) s (\(histogram.totalCount) messages, \(lost) lost, \(state.errors) error frames, fsync on): p50 \(ms(50)) ms, p99 \(ms(99)) ms, p99.9 \(ms(99.9)) ms, max \(String(format: "%.2f", Double(histogram.max) / 1_000)) ms")
    }

    /// Sends `count` messages open loop at `rate`, each to a random open socket.
    func drive(_ state: Sockets, count: Int, tag: String) async throws {
        let interval = Duration.nanoseconds(1_000_000_000 / rate)
        let start = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<count {
                let due = start + interval * i
                try? await Task.sleep(until: due, clock: .continuous)
                guard let writer = state.writer(Int.random(in: 0..<sockets)) else { state.error(); continue }
                let text = "\(tag)-\(i) how much is the course?"
                state.sent(text, due: due)
                group.addTask {
                    do { try await writer.write(.text(#"{"type": "message", "text": "\#(text)"}"#)) } catch { state.error() }
                }
            }
        }
    }

    /// The resident memory of a process, in MB.
    static func rssMB(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return -1 }
        return kb / 1_024
    }
}
