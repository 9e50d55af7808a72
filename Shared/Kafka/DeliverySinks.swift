@preconcurrency import CRdKafka
import Foundation

/// What became of one produced record.
enum DeliveryOutcome {
    case delivered(partition: Int32, offset: Int64)
    case failed(KafkaError)
}

/// Where a record's delivery report goes. Each record's opaque points at a slot (sink, index) in a block the sink
/// allocates once for all its records, so producing a record allocates nothing of ours; the sink is retained once
/// and released by whoever records its last outcome.
class DeliverySink: @unchecked Sendable {
    struct Slot {
        let sink: UnsafeMutableRawPointer
        let index: Int
    }

    private let slots: UnsafeMutablePointer<Slot>
    private let count: Int

    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        let me = Unmanaged.passUnretained(self).toOpaque()
        for i in 0..<count { (slots + i).initialize(to: Slot(sink: me, index: i)) }
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    /// The opaque for record `index`.
    func slot(_ index: Int) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(slots + index) }

    /// Records an outcome; returns true when it was the sink's last one.
    func record(index: Int, outcome: DeliveryOutcome) -> Bool { fatalError("subclasses record outcomes") }
}

/// One record's outcome to a closure (`produce(_:onDelivery:)`).
final class ClosureSink: DeliverySink, @unchecked Sendable {
    private let topic: String
    private let body: (@Sendable (Result<KafkaDeliveryReport, KafkaError>) -> Void)?

    init(topic: String, body: (@Sendable (Result<KafkaDeliveryReport, KafkaError>) -> Void)?) {
        self.topic = topic
        self.body = body
        super.init(count: 1)
    }

    override func record(index: Int, outcome: DeliveryOutcome) -> Bool {
        guard let body else { return true }
        switch outcome {
        case .delivered(let partition, let offset): body(.success(KafkaDeliveryReport(topic: topic, partition: partition, offset: offset)))
        case .failed(let error): body(.failure(error))
        }
        return true
    }
}

/// Gathers a batch's delivery reports and resumes the waiting task when the last one arrives.
final class BatchCollector: DeliverySink, @unchecked Sendable {
    private let lock = NSLock()
    private let topics: [String]
    private var results: [Result<KafkaDeliveryReport, KafkaError>?]
    private var remaining: Int
    private var continuation: CheckedContinuation<[Result<KafkaDeliveryReport, KafkaError>], any Error>?

    init(topics: [String]) {
        self.topics = topics
        results = Array(repeating: nil, count: topics.count)
        remaining = topics.count
        super.init(count: topics.count)
    }

    func start(_ continuation: CheckedContinuation<[Result<KafkaDeliveryReport, KafkaError>], any Error>) {
        lock.withLock { self.continuation = continuation }
    }

    override func record(index: Int, outcome: DeliveryOutcome) -> Bool {
        let result: Result<KafkaDeliveryReport, KafkaError>
        switch outcome {
        case .delivered(let partition, let offset): result = .success(KafkaDeliveryReport(topic: topics[index], partition: partition, offset: offset))
        case .failed(let error): result = .failure(error)
        }
        let finished: (CheckedContinuation<[Result<KafkaDeliveryReport, KafkaError>], any Error>?, [Result<KafkaDeliveryReport, KafkaError>])? = lock.withLock {
            results[index] = result
            remaining -= 1
            guard remaining == 0 else { return nil }
            let waiting = continuation
            continuation = nil
            return (waiting, results.map { $0! })
        }
        guard let (waiting, all) = finished else { return false }
        waiting?.resume(returning: all)
        return true
    }
}

/// librdkafka's delivery-report callback, on the producer's poll thread.
func deliveryReportCallback(_ rk: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let message, let slotPointer = message.pointee._private else { return }
    let slot = slotPointer.assumingMemoryBound(to: DeliverySink.Slot.self).pointee
    let sink = Unmanaged<DeliverySink>.fromOpaque(slot.sink)
    let outcome: DeliveryOutcome = message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR
        ? .delivered(partition: message.pointee.partition, offset: message.pointee.offset)
        : .failed(KafkaError(code: message.pointee.err))
    if sink.takeUnretainedValue().record(index: slot.index, outcome: outcome) { sink.release() }
}
