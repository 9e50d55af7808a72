import Foundation
import ServiceKit
import Testing

@Suite("WakeSignal: the outbox relay's coalescing wake-up")
struct WakeSignalTests {
    @Test func aSignalBeforeTheWaitIsKeptAndManySignalsWakeOnce() async {
        let wake = WakeSignal()
        for _ in 0..<100 { wake.signal() }
        let started = ContinuousClock.now
        await wake.wait(timeout: .seconds(30))
        #expect(ContinuousClock.now - started < .seconds(10), "the pending signal returns the wait at once")
        // The hundred signals were one: the next wait only ends at its timeout.
        let second = ContinuousClock.now
        await wake.wait(timeout: .milliseconds(200))
        #expect(ContinuousClock.now - second >= .milliseconds(200))
    }

    @Test func aSignalFromAnotherTaskEndsTheWait() async {
        let wake = WakeSignal()
        let started = ContinuousClock.now
        async let waited: Void = wake.wait(timeout: .seconds(30))
        try? await Task.sleep(for: .milliseconds(50))
        wake.signal()
        await waited
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func aShortWaitIsNotHeldByALongerTimerAlreadyArmed() async {
        let wake = WakeSignal()
        // Arms a 20 s timer, then ends that wait with a signal: the timer stays armed.
        async let first: Void = wake.wait(timeout: .seconds(20))
        try? await Task.sleep(for: .milliseconds(50))
        wake.signal()
        await first
        // A 100 ms wait must end near its own deadline, not at the armed timer's.
        let started = ContinuousClock.now
        await wake.wait(timeout: .milliseconds(100))
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(100))
        #expect(waited < .seconds(10))
    }

    @Test func waitsInARowShareOneTimerAndEachStillEnds() async {
        let wake = WakeSignal()
        // Many short waits ended by signals, then one left to its timeout: it ends by its deadline (an armed timer
        // from an earlier wait may end it sooner, never later).
        for _ in 0..<200 {
            async let waited: Void = wake.wait(timeout: .milliseconds(300))
            wake.signal()
            await waited
        }
        let started = ContinuousClock.now
        await wake.wait(timeout: .milliseconds(300))
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}
