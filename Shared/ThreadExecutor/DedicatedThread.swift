import Foundation

/// A thread of its own that runs submitted jobs one after another.
///
/// Blocking C calls (libpq queries, librdkafka timed polls, flushes and closes) run here, never on a NIO event
/// loop or the Swift cooperative pool (which has only as many threads as cores). Whatever a job touches that is
/// not thread-safe (a `PGconn`, say) is owned by this thread: jobs run strictly in order, never concurrently.
public final class DedicatedThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false
    private var finished = false
    /// The thread is in `condition.wait()`: only then does a submitter need to wake it (a futex call each side).
    private var idle = false
    /// The thread's name, shown in debuggers and `top -H`.
    public let name: String

    /// Starts the thread.
    public init(name: String) {
        self.name = name
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping {
                idle = true
                condition.wait()
                idle = false
            }
            if jobs.isEmpty && stopping {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job() }
        }
    }

    /// Queues `job` without waiting for it. Returns false when the thread is shutting down.
    @discardableResult
    public func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            return false
        }
        jobs.append(job)
        // A busy thread finds the job when its batch is done; an idle one is woken after the lock is released, so
        // it does not wake only to block on the mutex the submitter still holds. `idle` stays true until the thread
        // runs again, so a second submit before then wakes it again (harmlessly) rather than not at all.
        let wake = idle
        condition.unlock()
        if wake { condition.signal() }
        return true
    }

    /// Runs `body` on this thread and returns its result to the awaiting task.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = submit {
                continuation.resume(with: Result { try body() })
            }
            if !accepted { continuation.resume(throwing: DedicatedThreadStopped(name: name)) }
        }
    }

    /// Lets queued jobs finish, then ends the thread. Blocks the caller until it has ended, so call it from a
    /// thread that may block (or accept a brief wait during shutdown).
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    /// Like ``shutdown()``, but waits without blocking the caller's thread.
    public func shutdownGracefully() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let helper = Thread { [self] in
                self.shutdown()
                continuation.resume()
            }
            helper.start()
        }
    }
}

/// Thrown by ``DedicatedThread/run(_:)`` after the thread was shut down.
public struct DedicatedThreadStopped: Error, CustomStringConvertible {
    /// The stopped thread's name.
    public let name: String
    public var description: String { "thread \(name) has been shut down" }
}
