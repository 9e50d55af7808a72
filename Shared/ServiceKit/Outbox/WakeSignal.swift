import Foundation

/// A coalescing wake-up: `signal()` any number of times; one `wait(timeout:)` returns early, then it re-arms.
public final class WakeSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?
    private var generation = 0

    public init() {}

    public func signal() {
        let toResume: CheckedContinuation<Void, Never>? = lock.withLock {
            if let waiter {
                self.waiter = nil
                return waiter
            }
            pending = true
            return nil
        }
        toResume?.resume()
    }

    /// Returns after a signal or after `timeout`, whichever comes first.
    public func wait(timeout: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (resumeNow, ticket): (Bool, Int) = lock.withLock {
                if pending {
                    pending = false
                    return (true, 0)
                }
                generation += 1
                waiter = continuation
                return (false, generation)
            }
            if resumeNow {
                continuation.resume()
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                let expired: CheckedContinuation<Void, Never>? = self.lock.withLock {
                    guard self.generation == ticket, let waiter = self.waiter else { return nil }
                    self.waiter = nil
                    return waiter
                }
                expired?.resume()
            }
        }
    }
}
