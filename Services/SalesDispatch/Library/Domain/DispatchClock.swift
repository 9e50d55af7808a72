import Foundation
import ServiceKit

/// The time every decision is made at: the wall clock in production; tests set and move it, so protection
/// periods of days are checked without sleeping.
public final class DispatchClock: Sendable {
    private let fixed = LockedBox<Date?>(nil)

    public init(fixed: Date? = nil) { self.fixed.withLock { $0 = fixed } }

    public func now() -> Date { fixed.withLock { $0 } ?? Date() }

    /// Pins the clock at `date` (tests).
    public func set(_ date: Date) { fixed.withLock { $0 = date } }

    /// Moves a pinned clock forward (tests).
    public func advance(by interval: TimeInterval) { fixed.withLock { $0 = ($0 ?? Date()) + interval } }

    public var isPinned: Bool { fixed.withLock { $0 != nil } }
}
