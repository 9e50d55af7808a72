@preconcurrency import CLibPQ
import Foundation
@preconcurrency import Glibc
import Logging

/// Receives PostgreSQL notifications (`LISTEN channel`, sent with `pg_notify`) on a connection and a thread of
/// its own, so a replica learns at once what another replica wrote. The thread waits in `poll(2)` on the
/// connection's socket: it never occupies a NIO event loop or the cooperative pool. A lost connection is
/// reopened (after a second) and ``onReconnect`` is called, because notifications sent meanwhile were missed.
public final class PostgresListener: Sendable {
    private let connectionString: String
    private let channel: String
    private let logger: Logger
    private let onNotification: @Sendable (String) -> Void
    private let onReconnect: @Sendable () -> Void
    private let stopping = LockedFlag(false)
    private let finished = LockedFlag(false)

    /// `channel` is a plain identifier (letters, digits, `_`). `onNotification` receives each payload on the
    /// listener's thread: keep it short and hand work elsewhere.
    public init(connectionString: String, channel: String, logger: Logger, onReconnect: @escaping @Sendable () -> Void = {},
                onNotification: @escaping @Sendable (String) -> Void) {
        precondition(channel.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } && !channel.isEmpty, "a channel is a plain identifier")
        self.connectionString = connectionString
        self.channel = channel
        self.logger = logger
        self.onReconnect = onReconnect
        self.onNotification = onNotification
    }

    /// Starts the thread; returns at once.
    public func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "pg-listen-\(channel)"
        thread.start()
    }

    /// Stops the thread within about half a second and closes its connection.
    public func stop() async {
        stopping.store(true)
        while !finished.load() { try? await Task.sleep(for: .milliseconds(20)) }
    }

    private func loop() {
        var first = true
        while !stopping.load() {
            guard let conn = PQconnectdb(connectionString) else {
                sleepUnlessStopping(seconds: 1)
                continue
            }
            guard PQstatus(conn) == CONNECTION_OK else {
                PQfinish(conn)
                logger.warning("notification listener could not connect; retrying", metadata: ["channel": "\(channel)"])
                sleepUnlessStopping(seconds: 1)
                continue
            }
            defer { PQfinish(conn) }
            let result = PQexec(conn, "LISTEN \(channel)")
            let ok = PQresultStatus(result) == PGRES_COMMAND_OK
            PQclear(result)
            guard ok else {
                logger.warning("LISTEN failed; retrying", metadata: ["channel": "\(channel)"])
                sleepUnlessStopping(seconds: 1)
                continue
            }
            if !first { onReconnect() }
            first = false
            listen(conn)
        }
        finished.store(true)
    }

    /// Waits for notifications until the connection breaks or ``stop()`` is called.
    private func listen(_ conn: OpaquePointer) {
        let socket = PQsocket(conn)
        while !stopping.load() {
            var pfd = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 250)
            if ready < 0 && errno != EINTR { return }
            guard ready > 0 else { continue }
            guard PQconsumeInput(conn) == 1 else {
                logger.warning("notification listener lost its connection; reconnecting", metadata: ["channel": "\(channel)"])
                return
            }
            while let notification = PQnotifies(conn) {
                let payload = String(cString: notification.pointee.extra)
                PQfreemem(notification)
                onNotification(payload)
            }
        }
    }

    private func sleepUnlessStopping(seconds: Int) {
        for _ in 0..<(seconds * 10) where !stopping.load() { usleep(100_000) }
    }
}

/// A Bool shared between threads (the listener's stop and finished flags).
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Bool
    init(_ value: Bool) { self.value = value }
    func load() -> Bool { lock.withLock { value } }
    func store(_ newValue: Bool) { lock.withLock { value = newValue } }
}
