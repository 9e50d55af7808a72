import Foundation
@testable import ServiceKit
import Testing

/// The checks read why a wait ended, never how long it took against an upper bound: a wait that should have been
/// woken by a signal or by its own short timer gets an hour-long timeout here, so a lost wake-up hangs the test until
/// the suite's time limit fails it, however slow the machine is (the limit is far above the seconds a starved CI
/// machine takes, and far below the hour).
@Suite("WakeSignal: the outbox relay's coalescing wake-up", .timeLimit(.minutes(5)))
struct WakeSignalTests {
    static let never = Duration.seconds(3_600)

    @Test func aSignalBeforeTheWaitIsKeptAndManySignalsWakeOnce() async {
        let wake = WakeSignal()
        for _ in 0..<100 { wake.signal() }
        #expect(await wake.wait(timeout: Self.never) == .signalled, "the pending signal returns the wait")
        // The hundred signals were one: the next wait only ends at its timeout.
        let second = ContinuousClock.now
        #expect(await wake.wait(timeout: .milliseconds(200)) == .timer)
        #expect(ContinuousClock.now - second >= .milliseconds(200))
    }

    /// An hour-long wait (arming its timer) that another task ends with a signal 50 ms in; returns why it ended.
    static func waitEndedBySignal(_ wake: WakeSignal) async -> WakeSignal.Wake {
        async let waited = wake.wait(timeout: never)
        try? await Task.sleep(for: .milliseconds(50))
        wake.signal()
        return await waited
    }

    @Test func aSignalFromAnotherTaskEndsTheWait() async {
        #expect(await Self.waitEndedBySignal(WakeSignal()) == .signalled)
    }

    @Test func aShortWaitIsNotHeldByALongerTimerAlreadyArmed() async {
        let wake = WakeSignal()
        // The hour-long timer of a wait ended by a signal stays armed.
        #expect(await Self.waitEndedBySignal(wake) == .signalled)
        #expect(wake.armedTimerDeadline.map { $0 > ContinuousClock.now + .seconds(3_000) } == true, "the hour-long timer is armed")
        // A 100 ms wait arms its own timer and ends by it, not by the armed hour-long one.
        let started = ContinuousClock.now
        #expect(await wake.wait(timeout: .milliseconds(100)) == .timer)
        #expect(ContinuousClock.now - started >= .milliseconds(100))
    }

    @Test func waitsInARowShareOneTimerAndEachStillEnds() async {
        let wake = WakeSignal()
        // Many short waits ended by signals (or, on a starved machine, by a timer an earlier wait armed: a signal
        // that comes after is then kept for the next wait). Every wait must end; one that relied on a timer that
        // never fires would hang until the time limit.
        var signalled = 0
        for _ in 0..<30 {
            async let waited = wake.wait(timeout: .milliseconds(300))
            wake.signal()
            if await waited == .signalled { signalled += 1 }
        }
        #expect(signalled > 0)
        // Left to its timeout, a wait ends by a timer (once any signal kept from the loop is taken).
        var last = await wake.wait(timeout: .milliseconds(300))
        if last == .signalled { last = await wake.wait(timeout: .milliseconds(300)) }
        #expect(last == .timer)
    }
}
