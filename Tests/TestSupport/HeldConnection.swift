import Postgres
import ThreadExecutor

/// A PostgreSQL connection on a thread of its own (libpq blocks; never on the cooperative pool), so a test can hold
/// a transaction open and race another writer against its uncommitted rows.
public final class HeldConnection: @unchecked Sendable {
    private let thread = DedicatedThread(name: "held-connection")
    /// Used only on `thread`; opened by the first call.
    private var connection: PostgresConnection?

    public init() {}

    public func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await thread.run {
            if self.connection == nil {
                self.connection = try PostgresConnection(connectionString: TestEnvironment.postgresURL, logger: TestEnvironment.logger())
            }
            return try body(self.connection!)
        }
    }

    public func begin() async throws { try await run { try $0.executeScript("BEGIN") } }

    /// Commits and closes.
    public func commit() async throws {
        try await run { try $0.executeScript("COMMIT") }
        await close()
    }

    /// Returns once another backend waits on this connection's locks.
    public func waitUntilAnotherWaits() async throws {
        let pid = try await run { try $0.query("SELECT pg_backend_pid()").first!.decode(Int.self) }
        let waiting: PostgresQuery = "SELECT count(*) FROM pg_stat_activity WHERE \(pid) = ANY(pg_blocking_pids(pid))"
        let observer = HeldConnection()
        defer { Task { await observer.close() } }
        try await waitUntil(timeout: .seconds(10), "no other writer ever waited on the held connection") {
            let count = try await observer.run { connection -> Int in try connection.query(waiting).first!.decode(Int.self) }
            return count == 1
        }
    }

    public func close() async {
        _ = try? await thread.run { self.connection?.close(); self.connection = nil }
        await thread.shutdownGracefully()
    }
}
