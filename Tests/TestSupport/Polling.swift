/// Asks `isDone` every `interval` until it says yes; after `timeout` throws a ``ChildProcessError`` with
/// `failure` (evaluated then, so it can carry a process's output). `isDone` may throw to give up early.
public func waitUntil(timeout: Duration, every interval: Duration = .milliseconds(100), _ failure: @autoclosure () -> String,
                      _ isDone: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await isDone() { return }
        try await Task.sleep(for: interval)
    }
    throw ChildProcessError(description: failure())
}
