import Foundation

/// What `/health/ready` reports: PostgreSQL reachable, migrations applied, consumers in their group.
public final class HealthState: Sendable {
    private let state = LockedBox<[String: Bool]>([:])

    public init() {}

    /// Declares a readiness check, false until set.
    public func register(_ name: String) { state.withLock { $0[name] = $0[name] ?? false } }
    public func set(_ name: String, _ ok: Bool) { state.withLock { $0[name] = ok } }
    public var checks: [String: Bool] { state.withLock { $0 } }
    public var isReady: Bool { checks.values.allSatisfy { $0 } }
}

/// A value behind a lock.
public final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
