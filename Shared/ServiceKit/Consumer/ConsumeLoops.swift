import ServiceLifecycle
import Synchronization

/// A process's consume loops run as one service, so that on graceful shutdown they all stop polling and leave
/// their groups together.
///
/// As separate services of a `ServiceGroup` they were stopped one after another, and each later loop sat through the
/// rebalance that the earlier one's leaving had started: the broker holds a rebalance until every remaining member
/// rejoins or its timer runs out (5 s with the dev broker's 6 s session timeout), and the loop's consumer can only
/// leave after that. Its partitions were held but not consumed all the while, and shutting a two-loop service down
/// took about 6 s. Each loop commits before any leaves (``LeaveBarrier``): a commit after another member's leaving
/// is refused while the group rebalances. A loop that fails cancels the others (each then closes its consumer) and
/// fails the group.
struct ConsumeLoops: Service {
    let loops: [ConsumeLoop]

    func run() async throws {
        let barrier = LeaveBarrier(parties: loops.count)
        try await withThrowingDiscardingTaskGroup { group in
            for loop in loops {
                group.addTask { try await loop.run(leavingWith: barrier) }
            }
        }
    }
}

/// Lets a process's consume loops leave their group together: each arrives once it has committed, and waits until
/// all have (or `timeout`, or cancellation: a loop that failed never arrives).
final class LeaveBarrier: Sendable {
    private let parties: Int
    private let arrived = Mutex(0)

    init(parties: Int) { self.parties = parties }

    func arriveAndWait(timeout: Duration) async {
        arrived.withLock { $0 += 1 }
        let deadline = ContinuousClock.now + timeout
        while arrived.withLock({ $0 }) < parties, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
