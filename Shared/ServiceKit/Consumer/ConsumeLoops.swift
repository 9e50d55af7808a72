import ServiceLifecycle

/// A process's consume loops run as one service, so that on graceful shutdown they all stop polling and leave
/// their groups together.
///
/// As separate services of a `ServiceGroup` they were stopped one after another, and each later loop sat through the
/// rebalance that the earlier one's leaving had started: the broker holds a rebalance until every remaining member
/// rejoins or its timer runs out (5 s with the dev broker's 6 s session timeout), and the loop's consumer can only
/// leave after that. Its partitions were held but not consumed all the while, and shutting a two-loop service down
/// took about 6 s. A loop that fails cancels the others (each then closes its consumer) and fails the group.
struct ConsumeLoops: Service {
    let loops: [ConsumeLoop]

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for loop in loops {
                group.addTask { try await loop.run() }
            }
        }
    }
}
