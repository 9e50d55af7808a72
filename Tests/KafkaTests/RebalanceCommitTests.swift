import Foundation
import Kafka
import Testing
import TestSupport

/// What a member has marked done on partitions it gives up in a rebalance is committed before they go, so
/// the member that gets them starts after that work instead of doing it again.
@Suite("Kafka consumer rebalance commits")
struct RebalanceCommitTests {
    /// A holds all four partitions and works through them slowly, storing offsets after each batch as the consume
    /// loop does; then B joins and takes two. Background commits are made rare (60 s), so A's progress on the moved
    /// partitions reaches B only through a commit made as they are revoked: ours in the rebalance callback, or
    /// librdkafka's own for unassigned partitions. The test guards the outcome (B starts after what A stored), not
    /// which of the two commits got it there: with ours, the poll's filter or both removed it passed too (3 runs each,
    /// 0 records again, 2026-12-04).
    @Test func partitionsMovedToAJoiningMemberStartAfterWhatTheOldOwnerStored() async throws {
        // The dev broker has a race of its own: when the leader's SyncGroup reaches it before the other member's, it
        // answers that one "invalid request", the member rejoins, and the broker refuses every commit for the 5 s of
        // the join, the commit on revocation included (A then says so). Real brokers do not. A run where that
        // happened shows nothing about this commit, so the hand-over is repeated until one shows it.
        for _ in 1...4 {
            let run = try await handOver()
            #expect(run.everyRecordConsumed && run.bTookOver)
            if run.refusedRevocationCommits == 0 {
                #expect(run.consumedAgain == 0, "B consumed records A had stored (A read \(run.readByA), B \(run.readByB))")
                return
            }
        }
        withKnownIssue("the dev broker refused the commit on revocation in every run (its SyncGroup race)", isIntermittent: true) {
            Issue.record("no run exercised a commit on revocation that the broker accepted")
        }
    }

    struct HandOver {
        var everyRecordConsumed: Bool
        var bTookOver: Bool
        var consumedAgain: Int
        var readByA: Int
        var readByB: Int
        var refusedRevocationCommits: Int
    }

    func handOver() async throws -> HandOver {
        let topic = try TestEnvironment.makeTopic("moved", partitions: 4)
        let group = TestEnvironment.uniqueName("g")
        let total = 4_000
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: TestEnvironment.kafkaClient("producer")),
                                         logger: TestEnvironment.logger())
        _ = try await producer.sendBatch((0..<total).map { i in
            KafkaOutgoingMessage(topic: topic, key: Array("k-\(i)".utf8), value: Array("\(i)".utf8))
        })
        await producer.shutdown()

        var configuration = KafkaConsumerConfiguration(client: TestEnvironment.kafkaClient("consumer"), groupID: group)
        configuration.commitInterval = .seconds(60)
        let a = try KafkaConsumer(configuration: configuration, topics: [topic], logger: TestEnvironment.logger("a"))
        let seenByA = Seen()
        let bJoined = Flag()
        let deadline = ContinuousClock.now + .seconds(90)
        // A: small batches, slowly until B has its partitions, each batch stored before the next poll.
        let aTask = Task {
            while ContinuousClock.now < deadline, !Task.isCancelled {
                let batch = try await a.poll(maxMessages: 20, timeout: .milliseconds(100))
                seenByA.add(batch)
                try a.storeOffsets(for: batch)
                if !bJoined.value { try await Task.sleep(for: .milliseconds(100)) }
            }
        }
        while seenByA.count < 200, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }

        let b = try KafkaConsumer(configuration: configuration, topics: [topic], logger: TestEnvironment.logger("b"))
        let seenByB = Seen()
        while seenByA.union(seenByB).count < total, ContinuousClock.now < deadline {
            let batch = try await b.poll(maxMessages: 500, timeout: .milliseconds(100))
            if !b.assignment.isEmpty { bJoined.set() }
            seenByB.add(batch)
            try b.storeOffsets(for: batch)
        }
        aTask.cancel()
        _ = try? await aTask.value
        let refused = a.refusedRevocationCommits
        await a.close()
        await b.close()
        return HandOver(everyRecordConsumed: seenByA.union(seenByB).count == total, bTookOver: seenByB.count > 0,
                        consumedAgain: seenByA.records.intersection(seenByB.records).count,
                        readByA: seenByA.count, readByB: seenByB.count, refusedRevocationCommits: refused)
    }
}

/// (partition, offset) pairs consumed, shared between the test's two consumers.
private final class Seen: @unchecked Sendable {
    struct Record: Hashable { let partition: Int32; let offset: Int64 }
    private let lock = NSLock()
    private var set: Set<Record> = []
    var records: Set<Record> { lock.withLock { set } }
    var count: Int { lock.withLock { set.count } }
    func add(_ batch: [KafkaConsumedMessage]) {
        lock.withLock { for m in batch { set.insert(Record(partition: m.partition, offset: m.offset)) } }
    }
    func union(_ other: Seen) -> Set<Record> { records.union(other.records) }
}

private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}
