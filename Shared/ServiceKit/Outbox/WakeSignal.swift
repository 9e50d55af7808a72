import Foundation

/// A coalescing wake-up: `signal()` any number of times; one `wait(timeout:)` returns early, then it re-arms.
///
/// Waits share their timers: a wait whose timeout falls after an armed timer's deadline is woken by that timer
/// (early, which the relay treats like any wake-up), so a relay waking on every commit starts a few timers a second
/// instead of one sleeping task per wait.
public final class WakeSignal: @unchecked Sendable {
    /// Why a wait returned.
    public enum Wake: Sendable, Equatable {
        /// A `signal()` came before or during the wait.
        case signalled
        /// A timer fired: the wait's own, or an earlier-armed one whose deadline came first.
        case timer
    }

    private let lock = NSLock()
    private var pending = false
    private var waiter: CheckedContinuation<Wake, Never>?
    /// The deadline of the latest timer started, while it has not fired.
    private var timerDeadline: ContinuousClock.Instant?

    public init() {}

    public func signal() {
        let toResume: CheckedContinuation<Wake, Never>? = lock.withLock {
            if let waiter {
                self.waiter = nil
                return waiter
            }
            pending = true
            return nil
        }
        toResume?.resume(returning: .signalled)
    }

    /// Returns after a signal, or after `timeout` at the latest, saying which.
    @discardableResult
    public func wait(timeout: Duration) async -> Wake {
        await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
            let deadline = ContinuousClock.now + timeout
            let (resumeNow, startTimer): (Bool, Bool) = lock.withLock {
                if pending {
                    pending = false
                    return (true, false)
                }
                waiter = continuation
                if let armed = timerDeadline, armed <= deadline { return (false, false) }
                timerDeadline = deadline
                return (false, true)
            }
            if resumeNow {
                continuation.resume(returning: .signalled)
                return
            }
            if startTimer {
                Task {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    self.timerFired(deadline)
                }
            }
        }
    }

    private func timerFired(_ deadline: ContinuousClock.Instant) {
        let expired: CheckedContinuation<Wake, Never>? = lock.withLock {
            if timerDeadline == deadline { timerDeadline = nil }
            let waiter = self.waiter
            self.waiter = nil
            return waiter
        }
        expired?.resume(returning: .timer)
    }

    /// The deadline of the timer armed now, if any (for tests: which timer a wait relies on).
    var armedTimerDeadline: ContinuousClock.Instant? {
        lock.withLock { timerDeadline }
    }
}
