@preconcurrency import CRdKafka
import Foundation
import Logging
import ThreadExecutor

/// A group consumer over librdkafka. Messages come in batches; offsets are stored only when the caller says a
/// batch is done (``storeOffsets(for:)``) and committed in the background, before partitions are given up in a
/// rebalance, and on close, so a crash replays at most the unfinished work and a rebalance none. Assignment is cooperative-sticky; rebalances are handled in the poll itself, so
/// close never hangs on them. All blocking calls run on the consumer's own thread.
public final class KafkaConsumer: Sendable {
    private let client: RDKafkaClient
    private let thread: DedicatedThread
    private let logger: Logger
    private let closed = OnceFlag()

    /// Creates the consumer and subscribes it to `topics`.
    public init(configuration: KafkaConsumerConfiguration, topics: [String], logger: Logger) throws {
        var logger = logger
        logger[metadataKey: "kafka.group"] = "\(configuration.groupID)"
        self.logger = logger
        self.client = try RDKafkaClient(kind: .consumer, properties: configuration.librdkafkaProperties, logger: logger) { conf in
            rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
        }
        self.thread = DedicatedThread(name: "kafka-consumer-\(configuration.groupID)")
        rd_kafka_poll_set_consumer(client.handle)
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, -1) }
        let code = rd_kafka_subscribe(client.handle, list)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            client.destroy()
            thread.shutdown()
            throw KafkaError(code: code)
        }
        logger.info("Kafka consumer subscribed", metadata: ["topics": "\(topics.joined(separator: ","))", "librdkafka": "\(RDKafkaClient.version)"])
    }

    /// Waits up to `timeout` for the first message, then takes whatever else is already fetched, up to
    /// `maxMessages`. Returns an empty batch on timeout. Consumer errors that are not about one message (for
    /// example an unknown topic) are logged, not thrown; a fatal client error is thrown.
    public func poll(maxMessages: Int = 1_000, timeout: Duration = .milliseconds(100)) async throws -> [KafkaConsumedMessage] {
        if closed.value { throw KafkaError.closed() }
        if let fatal = client.context.fatalError { throw fatal }
        let client = self.client
        let logger = self.logger
        let firstWait = Int32(clamping: timeout.milliseconds)
        return try await thread.run {
            let revocations = client.context.revocations
            var batch: [KafkaConsumedMessage] = []
            batch.reserveCapacity(min(maxMessages, 1_024))
            var wait = firstWait
            while batch.count < maxMessages {
                guard let message = rd_kafka_consumer_poll(client.handle, wait) else { break }
                wait = 0
                defer { rd_kafka_message_destroy(message) }
                let err = message.pointee.err
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    let error = KafkaError(code: err, reason: rd_kafka_message_errstr(message).map { String(cString: $0) })
                    logger.warning("consumer error", metadata: ["error": "\(error)"])
                    continue
                }
                batch.append(copyMessage(message))
            }
            // Partitions taken away during this poll belong to their next owner, which starts at what this member
            // committed: records already fetched from them here are not handed out, or both would process them.
            if client.context.revocations != revocations {
                let assigned = client.context.assignment
                batch.removeAll { !assigned.contains($0.topicPartition) }
            }
            return batch
        }
    }

    /// Marks `messages` done: for each partition, the next offset to read becomes the highest offset + 1.
    /// Offsets of partitions no longer assigned are skipped (their new owner re-reads them; consumers dedupe).
    public func storeOffsets(for messages: [KafkaConsumedMessage]) throws {
        var highest: [KafkaTopicPartition: Int64] = [:]
        for message in messages {
            highest[message.topicPartition] = max(highest[message.topicPartition] ?? -1, message.offset)
        }
        try storeOffsets(highest.mapValues { $0 + 1 })
    }

    /// Stores explicit next offsets per partition.
    public func storeOffsets(_ nextOffsets: [KafkaTopicPartition: Int64]) throws {
        if nextOffsets.isEmpty { return }
        let assigned = client.context.assignment
        let list = rd_kafka_topic_partition_list_new(Int32(nextOffsets.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        var added = 0
        for (tp, offset) in nextOffsets where assigned.contains(tp) {
            let element = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!
            element.pointee.offset = offset
            added += 1
        }
        if added == 0 { return }
        let code = rd_kafka_offsets_store(client.handle, list)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR__STATE {
            throw KafkaError(code: code)
        }
    }

    /// Commits the stored offsets now and waits for the broker's answer.
    public func commit() async throws {
        let client = self.client
        let code = try await thread.run { rd_kafka_commit(client.handle, nil, 0) }
        if code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR__NO_OFFSET { throw KafkaError(code: code) }
    }

    /// True once the group has given this member an assignment (possibly empty, with more members than partitions).
    public var hasJoinedGroup: Bool { client.context.joined }

    /// Records behind the high watermark per assigned partition, from librdkafka's cached watermarks
    /// (no broker round trip).
    public func lag() -> [KafkaTopicPartition: Int64] {
        var result: [KafkaTopicPartition: Int64] = [:]
        let assigned = client.context.assignment
        guard !assigned.isEmpty else { return result }
        let list = rd_kafka_topic_partition_list_new(Int32(assigned.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for tp in assigned { rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition) }
        guard rd_kafka_position(client.handle, list) == RD_KAFKA_RESP_ERR_NO_ERROR else { return result }
        for i in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[i]
            var low: Int64 = 0
            var high: Int64 = 0
            guard rd_kafka_get_watermark_offsets(client.handle, element.topic, element.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  high >= 0 else { continue }
            let position = element.offset >= 0 ? element.offset : low
            result[KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)] = max(0, high - position)
        }
        return result
    }

    /// The end (high watermark: the offset the next record will get) of each of `partitions`, assigned or not,
    /// asked of the partition leaders: one ListOffsets request per broker, not one per partition. For watching a
    /// topic fill without fetching it (a benchmark's finish line, a backlog on another group's topic).
    public func endOffsets(_ partitions: [KafkaTopicPartition], timeout: Duration = .seconds(5)) async throws -> [KafkaTopicPartition: Int64] {
        if partitions.isEmpty { return [:] }
        if closed.value { throw KafkaError.closed() }
        let client = self.client
        let wait = Int32(clamping: timeout.milliseconds)
        return try await thread.run {
            let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            // As a ListOffsets timestamp, -1 (RD_KAFKA_OFFSET_END) asks for the latest offset.
            for tp in partitions { rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!.pointee.offset = -1 }
            let code = rd_kafka_offsets_for_times(client.handle, list, wait)
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: code) }
            var result: [KafkaTopicPartition: Int64] = [:]
            for i in 0..<Int(list.pointee.cnt) {
                let element = list.pointee.elems[i]
                guard element.err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: element.err) }
                result[KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)] = element.offset
            }
            return result
        }
    }

    /// How many times the commit made before giving up partitions failed (the next owner then re-reads from the
    /// last commit that did succeed). Against the dev broker this happens when another member's rejoin comes first:
    /// it refuses every commit while a group is joining.
    public var refusedRevocationCommits: Int { client.context.refusedRevocationCommits }

    /// The partitions this member holds now.
    public var assignment: Set<KafkaTopicPartition> { client.context.assignment }

    /// Stops fetching from every assigned partition (and any assigned later) until ``resume()``: back-pressure.
    public func pause() async throws {
        client.context.paused = true
        try await setPaused(true)
    }

    /// Resumes fetching after ``pause()``.
    public func resume() async throws {
        client.context.paused = false
        try await setPaused(false)
    }

    /// True between ``pause()`` and ``resume()``.
    public var isPaused: Bool { client.context.paused }

    private func setPaused(_ paused: Bool) async throws {
        let client = self.client
        let code: rd_kafka_resp_err_t = try await thread.run {
            let handle = client.handle
            var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            let got = rd_kafka_assignment(handle, &list)
            guard got == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return got }
            defer { rd_kafka_topic_partition_list_destroy(list) }
            return paused ? rd_kafka_pause_partitions(handle, list) : rd_kafka_resume_partitions(handle, list)
        }
        if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: code) }
    }

    /// Leaves the group (committing stored offsets), then destroys the client. Safe to call twice.
    ///
    /// librdkafka 2.0.2 (Debian's) aborts the process when a cooperative-sticky consumer is destroyed between
    /// its JoinGroup and its first SyncGroup (librdkafka #4312, fixed in 2.2.1): the assignor's state is
    /// still NULL and `rd_kafka_destroy` asserts on it. So a consumer still joining gets a short grace to
    /// finish the join; if it still has not, it leaves the group but its handle is not destroyed (a few
    /// threads and sockets stay until the process exits) rather than crash the process.
    public func close(joinGrace: Duration = .seconds(3)) async {
        guard closed.setIfUnset() else { return }
        let client = self.client
        let logger = self.logger
        client.context.closing = true
        _ = try? await thread.run {
            let deadline = ContinuousClock.now + joinGrace
            while !client.context.joined && ContinuousClock.now < deadline {
                // Serves the rebalance callback; records fetched here are dropped unstored, so they are redelivered.
                if let message = rd_kafka_consumer_poll(client.handle, 100) { rd_kafka_message_destroy(message) }
            }
            let error = rd_kafka_consumer_close(client.handle)
            if error != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.warning("consumer close reported an error", metadata: ["error": "\(KafkaError(code: error))"])
            }
            client.context.revokeAll()
            if client.context.joined {
                client.destroy()
            } else {
                logger.warning("consumer closed before its first assignment; its handle is left to process exit (librdkafka 2.0.2 #4312)")
            }
        }
        await thread.shutdownGracefully()
        logger.info("Kafka consumer closed")
    }
}

private func copyMessage(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaConsumedMessage {
    let m = message.pointee
    let topic = String(cString: rd_kafka_topic_name(m.rkt))
    let value: [UInt8] = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
    let key: [UInt8]? = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
    var headers: [KafkaHeader] = []
    var hdrs: OpaquePointer?
    if rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
        var index = 0
        var name: UnsafePointer<CChar>?
        var valuePointer: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(hdrs, index, &name, &valuePointer, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            let headerValue = valuePointer.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
            headers.append(KafkaHeader(key: name.map { String(cString: $0) } ?? "", value: headerValue))
            index += 1
        }
    }
    var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
    let timestamp = rd_kafka_message_timestamp(message, &timestampType)
    return KafkaConsumedMessage(
        topic: topic, partition: m.partition, offset: m.offset, key: key, value: value, headers: headers,
        timestampMilliseconds: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp
    )
}

private func partitions(of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [KafkaTopicPartition] {
    (0..<Int(list.pointee.cnt)).map { i in
        let element = list.pointee.elems[i]
        return KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)
    }
}

/// Rebalances, served inside `rd_kafka_consumer_poll` on the consumer's thread. Cooperative protocol:
/// incremental assign/unassign; eager (if a deployment overrides the strategy): full assign/unassign.
private func rebalanceCallback(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t,
                               _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let rk, let list, let opaque else { return }
    let context = Unmanaged<RDKafkaContext>.fromOpaque(opaque).takeUnretainedValue()
    // NULL when the group is already gone (a callback served while closing): the configured strategy decides then.
    let cooperative = switch rd_kafka_rebalance_protocol(rk).map({ String(cString: $0) }) {
    case "COOPERATIVE": true
    case "EAGER": false
    default: context.configuredCooperative
    }
    let changed = partitions(of: list)
    switch err {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        if cooperative {
            if let error = rd_kafka_incremental_assign(rk, list) {
                context.logger.error("incremental assign failed", metadata: ["error": "\(KafkaError(consuming: error))"])
                return
            }
        } else {
            _ = rd_kafka_assign(rk, list)
        }
        context.assign(changed)
        if context.paused { _ = rd_kafka_pause_partitions(rk, list) }
        context.logger.info("partitions assigned", metadata: ["partitions": "\(changed.map(\.description).joined(separator: ","))"])
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        commitBeforeRevoking(rk, context: context)
        if cooperative {
            if let error = rd_kafka_incremental_unassign(rk, list) {
                context.logger.error("incremental unassign failed", metadata: ["error": "\(KafkaError(consuming: error))"])
            }
            context.revoke(changed)
        } else {
            _ = rd_kafka_assign(rk, nil)
            context.revokeAll()
        }
        context.logger.info("partitions revoked", metadata: ["partitions": "\(changed.map(\.description).joined(separator: ","))"])
    default:
        context.logger.error("rebalance error", metadata: ["error": "\(KafkaError(code: err))"])
        _ = rd_kafka_assign(rk, nil)
        context.revokeAll()
    }
}

/// Commits the stored offsets while the partitions are still ours. librdkafka's own commit of revoked partitions
/// comes after they are released, when the group is often rebalancing again; a broker that refuses it then (the dev
/// broker does, and the commits of the joining phase before it too) hands the next owner records this member had
/// processed. Skipped when the assignment was lost (a commit would be refused and is meaningless) and on close (the
/// consume loop committed before leaving, and a dead broker must not stall the close).
private func commitBeforeRevoking(_ rk: OpaquePointer, context: RDKafkaContext) {
    if context.closing || rd_kafka_assignment_lost(rk) != 0 { return }
    let code = rd_kafka_commit(rk, nil, 0)
    if code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR__NO_OFFSET {
        context.revocationCommitRefused()
        context.logger.warning("could not commit before giving up partitions; their next owner may consume records again (and deduplicate)",
                               metadata: ["error": "\(KafkaError(code: code))"])
    }
}

/// A set-once flag.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool { lock.withLock { flag } }
    /// Sets the flag; returns true if this call set it.
    func setIfUnset() -> Bool {
        lock.withLock {
            if flag { return false }
            flag = true
            return true
        }
    }
}
