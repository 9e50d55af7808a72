@preconcurrency import CRdKafka
import Foundation
import Logging
import ThreadExecutor

/// A Kafka producer over librdkafka: idempotent by default, keys and headers, delivery reports, awaited sends,
/// batches, and local queue overflow treated as back-pressure. Delivery reports are served on a thread of the
/// producer's own; nothing here blocks the cooperative pool.
public final class KafkaProducer: Sendable {
    private let client: RDKafkaClient
    private let pollThread: PollLoop
    private let logger: Logger

    /// Creates the producer and starts its delivery-report thread.
    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws {
        self.logger = logger
        self.client = try RDKafkaClient(kind: .producer, properties: configuration.librdkafkaProperties, logger: logger) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
        }
        let client = self.client
        self.pollThread = PollLoop(name: "kafka-producer-poll") { _ = rd_kafka_poll(client.handle, 50) }
        logger.info("Kafka producer started", metadata: ["librdkafka": "\(RDKafkaClient.version)"])
    }

    /// Queues one record; `onDelivery` is called once on the producer's thread with the outcome.
    /// Throws a ``KafkaError`` with ``KafkaError/isQueueFull`` when the local queue is full: back off and retry.
    public func produce(_ message: KafkaOutgoingMessage,
                        onDelivery: (@Sendable (Result<KafkaDeliveryReport, KafkaError>) -> Void)? = nil) throws {
        let sink = ClosureSink(topic: message.topic, body: onDelivery)
        let retained = Unmanaged.passRetained(sink)
        do { try enqueue(message, slot: sink.slot(0)) } catch {
            retained.release()
            throw error
        }
    }

    /// Produces one record and waits for its delivery report.
    public func send(_ message: KafkaOutgoingMessage) async throws -> KafkaDeliveryReport {
        let results = try await sendBatch([message])
        return try results[0].get()
    }

    /// Produces `messages` (waiting while the local queue is full) and returns each one's outcome, in order.
    /// Throws only when the producer itself is unusable; per-record failures are in the results.
    public func sendBatch(_ messages: [KafkaOutgoingMessage]) async throws -> [Result<KafkaDeliveryReport, KafkaError>] {
        if messages.isEmpty { return [] }
        let collector = BatchCollector(messages: messages)
        // One reference for the whole batch, given back by whoever records its last outcome.
        let retained = Unmanaged.passRetained(collector)
        return try await withCheckedThrowingContinuation { continuation in
            collector.start(continuation)
            // Enqueueing never blocks, so the batch is handed to librdkafka right here; only a full queue (backpressure)
            // needs a task that waits for room and goes on from the message that did not fit.
            if let waiting = enqueue(messages, from: 0, collector: collector, retained: retained) {
                Task {
                    var next = waiting
                    while true {
                        try? await Task.sleep(for: .milliseconds(1))
                        guard let stillWaiting = enqueue(messages, from: next, collector: collector, retained: retained) else { return }
                        next = stillWaiting
                    }
                }
            }
        }
    }

    /// Enqueues `messages` from index `start` on; returns the index of the first one the full queue refused (nil
    /// when all were enqueued or failed). A message that fails otherwise records its failure at once.
    private func enqueue(_ messages: [KafkaOutgoingMessage], from start: Int, collector: BatchCollector,
                         retained: Unmanaged<BatchCollector>) -> Int? {
        for index in start..<messages.count {
            do {
                try enqueue(messages[index], slot: collector.slot(index))
            } catch let error as KafkaError where error.isQueueFull {
                return index
            } catch {
                let failure = (error as? KafkaError) ?? KafkaError.closed()
                if collector.record(index: index, outcome: .failed(failure)) { retained.release() }
            }
        }
        return nil
    }

    private func enqueue(_ message: KafkaOutgoingMessage, slot: UnsafeMutableRawPointer) throws {
        if let fatal = client.context.fatalError { throw fatal }
        var headers: OpaquePointer?
        if !message.headers.isEmpty {
            let list = rd_kafka_headers_new(message.headers.count)!
            headers = list
            for header in message.headers {
                let added: rd_kafka_resp_err_t = header.key.withCString { name in
                    if let value = header.value {
                        return value.withUnsafeBytes { rd_kafka_header_add(list, name, -1, $0.baseAddress, $0.count) }
                    }
                    return rd_kafka_header_add(list, name, -1, nil, 0)
                }
                if added != RD_KAFKA_RESP_ERR_NO_ERROR {
                    rd_kafka_headers_destroy(list)
                    throw KafkaError(code: added)
                }
            }
        }
        let opaque = slot
        let error: OpaquePointer? = message.topic.withCString { topic in
            message.value.withUnsafeBytes { value in
                withOptionalBytes(message.key) { key in
                    // On the stack: no allocation per record.
                    withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 7) { vus in
                        var count = 0
                        func add(_ body: (inout rd_kafka_vu_t) -> Void) {
                            var vu = rd_kafka_vu_t()
                            body(&vu)
                            (vus.baseAddress! + count).initialize(to: vu)
                            count += 1
                        }
                        add { $0.vtype = RD_KAFKA_VTYPE_TOPIC; $0.u.cstr = topic }
                        add { $0.vtype = RD_KAFKA_VTYPE_VALUE; $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress); $0.u.mem.size = value.count }
                        if let key { add { $0.vtype = RD_KAFKA_VTYPE_KEY; $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress); $0.u.mem.size = key.count } }
                        if let headers { add { $0.vtype = RD_KAFKA_VTYPE_HEADERS; $0.u.headers = headers } }
                        add { $0.vtype = RD_KAFKA_VTYPE_OPAQUE; $0.u.ptr = opaque }
                        add { $0.vtype = RD_KAFKA_VTYPE_MSGFLAGS; $0.u.i = RD_KAFKA_MSG_F_COPY }
                        if let partition = message.partition { add { $0.vtype = RD_KAFKA_VTYPE_PARTITION; $0.u.i32 = partition } }
                        return rd_kafka_produceva(client.handle, vus.baseAddress, count)
                    }
                }
            }
        }
        if let error {
            // Not queued: librdkafka did not take the headers nor will it report delivery.
            if let headers { rd_kafka_headers_destroy(headers) }
            throw KafkaError(consuming: error)
        }
    }

    /// Waits until every queued record is delivered or `timeout` passes (on a thread of its own).
    public func flush(timeout: Duration = .seconds(10)) async throws {
        let client = self.client
        let ms = Int32(clamping: timeout.milliseconds)
        let code = await runBlocking { rd_kafka_flush(client.handle, ms) }
        if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: code) }
    }

    /// Records waiting in the local queue or in flight.
    public var queuedCount: Int { Int(rd_kafka_outq_len(client.handle)) }

    /// Flushes what is queued (up to `timeout`), then stops the delivery thread and destroys the client.
    public func shutdown(timeout: Duration = .seconds(10)) async {
        do { try await flush(timeout: timeout) } catch {
            logger.warning("producer closed with undelivered records", metadata: ["error": "\(error)", "queued": "\(queuedCount)"])
        }
        await pollThread.stop()
        let client = self.client
        await runBlocking { client.destroy() }
    }
}

/// Calls a blocking function on a short-lived thread of its own and awaits its result.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.name = "kafka-blocking"
        thread.start()
    }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

/// A thread that calls `body` repeatedly until stopped (for `rd_kafka_poll`).
final class PollLoop: @unchecked Sendable {
    private let lock = NSCondition()
    private var running = true
    private var ended = false

    init(name: String, body: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            while self.isRunning { body() }
            self.lock.withLock {
                self.ended = true
                self.lock.broadcast()
            }
        }
        thread.name = name
        thread.start()
    }

    private var isRunning: Bool { lock.withLock { running } }

    func stop() async {
        lock.withLock { running = false }
        await runBlocking { [self] in
            self.lock.lock()
            while !self.ended { self.lock.wait() }
            self.lock.unlock()
        }
    }
}
