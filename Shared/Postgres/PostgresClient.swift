import Foundation
import Logging
import ThreadExecutor

/// Settings of a ``PostgresClient``.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection string or URI (`postgresql://user@host:port/db`).
    public var connectionString: String
    /// The most connections (and threads) the pool opens.
    public var maxConnections: Int

    public init(connectionString: String, maxConnections: Int = 4) {
        self.connectionString = connectionString
        self.maxConnections = max(1, maxConnections)
    }
}

/// A pool of libpq connections. Each connection lives on a thread of its own and every call on it runs there,
/// so blocking libpq calls never occupy a NIO event loop or the cooperative pool, and no two tasks ever share a
/// connection at once. Work is handed over as synchronous closures that receive the connection.
public final class PostgresClient: Sendable {
    private let configuration: PostgresConfiguration
    private let logger: Logger
    private let state: PoolState

    public init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.state = PoolState(limit: configuration.maxConnections)
    }

    /// Runs `body` with a pooled connection, on that connection's thread. A broken connection is replaced on
    /// the next use.
    @discardableResult
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let worker = try await checkout()
        defer { state.checkin(worker) }
        let connectionString = configuration.connectionString
        let logger = self.logger
        return try await worker.thread.run {
            try worker.use(connectionString: connectionString, logger: logger, body)
        }
    }

    /// Runs `body` inside one transaction on a pooled connection.
    @discardableResult
    public func withTransaction<T: Sendable>(planning: StatementPlanning = .automatic,
                                             _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withConnection { try $0.transaction(planning: planning, body) }
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    public func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRows {
        try await withConnection { try $0.query(query, file: file, line: line) }
    }

    /// Closes every connection and ends their threads. Later calls fail.
    public func shutdown() async {
        for worker in state.closeAll() {
            _ = try? await worker.thread.run { worker.close() }
            await worker.thread.shutdownGracefully()
        }
    }

    private func checkout() async throws -> PooledConnection {
        switch state.take() {
        case .ready(let worker): return worker
        case .create(let index): return PooledConnection(thread: DedicatedThread(name: "postgres-\(index)"))
        case .closed: throw PostgresError(kind: .pool, message: "the pool has been shut down")
        case .wait:
            return try await withCheckedThrowingContinuation { continuation in
                state.enqueueWaiter(continuation)
            }
        }
    }
}

/// A connection slot: its thread and (created lazily on that thread) its connection.
final class PooledConnection: @unchecked Sendable {
    let thread: DedicatedThread
    // Touched only on `thread`.
    private var connection: PostgresConnection?

    init(thread: DedicatedThread) {
        self.thread = thread
    }

    func use<T>(connectionString: String, logger: Logger, _ body: (PostgresConnection) throws -> T) throws -> T {
        if connection?.isHealthy != true {
            connection?.close()
            connection = nil
            connection = try PostgresConnection(connectionString: connectionString, logger: logger)
        }
        let conn = connection!
        do {
            let value = try body(conn)
            if conn.isInTransaction { try? conn.executeScript("ROLLBACK") }
            return value
        } catch {
            if conn.isHealthy && conn.isInTransaction { try? conn.executeScript("ROLLBACK") }
            throw error
        }
    }

    func close() {
        connection?.close()
        connection = nil
    }
}

/// The pool's bookkeeping, behind a lock; its methods return what to do, and the caller does it.
final class PoolState: @unchecked Sendable {
    enum Take { case ready(PooledConnection), create(Int), wait, closed }

    private let lock = NSLock()
    private let limit: Int
    private var idle: [PooledConnection] = []
    private var all: [PooledConnection] = []
    private var creating = 0
    private var waiters: [CheckedContinuation<PooledConnection, any Error>] = []
    private var closed = false

    init(limit: Int) { self.limit = limit }

    func take() -> Take {
        lock.withLock {
            if closed { return .closed }
            if let worker = idle.popLast() { return .ready(worker) }
            if all.count + creating < limit {
                creating += 1
                return .create(all.count + creating)
            }
            return .wait
        }
    }

    func enqueueWaiter(_ continuation: CheckedContinuation<PooledConnection, any Error>) {
        let resumeNow: PooledConnection?? = lock.withLock {
            if closed { return .some(nil) }
            if let worker = idle.popLast() { return .some(worker) }
            waiters.append(continuation)
            return nil
        }
        switch resumeNow {
        case .some(.some(let worker)): continuation.resume(returning: worker)
        case .some(.none): continuation.resume(throwing: PostgresError(kind: .pool, message: "the pool has been shut down"))
        case .none: break
        }
    }

    func checkin(_ worker: PooledConnection) {
        let waiter: CheckedContinuation<PooledConnection, any Error>? = lock.withLock {
            if !all.contains(where: { $0 === worker }) {
                all.append(worker)
                creating -= 1
            }
            if !waiters.isEmpty { return waiters.removeFirst() }
            idle.append(worker)
            return nil
        }
        waiter?.resume(returning: worker)
    }

    func closeAll() -> [PooledConnection] {
        let (workers, pending) = lock.withLock {
            closed = true
            let w = all
            let p = waiters
            waiters.removeAll()
            idle.removeAll()
            return (w, p)
        }
        for waiter in pending { waiter.resume(throwing: PostgresError(kind: .pool, message: "the pool has been shut down")) }
        return workers
    }
}
