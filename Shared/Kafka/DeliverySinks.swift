@preconcurrency import CRdKafka
import Foundation
import Synchronization

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

/// Gathers a batch's delivery reports and resumes the waiting task when the last one arrives. Each record's
/// outcome is written once, by the thread that learns it, into a flat block (no lock, no allocation per record);
/// the atomic countdown orders those writes before the final read. Failures are rare and kept aside.
final class BatchCollector: DeliverySink, @unchecked Sendable {
    typealias Results = [Result<KafkaDeliveryReport, KafkaError>]

    private struct Landed {
        var partition: Int32
        var offset: Int64
    }

    private let messages: [KafkaOutgoingMessage]
    private let landed: UnsafeMutablePointer<Landed>
    private let remaining: Atomic<Int>
    private let failures = Mutex<[Int: KafkaError]>([:])
    private let continuation = Mutex<CheckedContinuation<Results, any Error>?>(nil)

    init(messages: [KafkaOutgoingMessage]) {
        self.messages = messages
        landed = .allocate(capacity: messages.count)
        landed.initialize(repeating: Landed(partition: -1, offset: -1), count: messages.count)
        remaining = Atomic(messages.count)
        super.init(count: messages.count)
    }

    deinit {
        landed.deinitialize(count: messages.count)
        landed.deallocate()
    }

    func start(_ continuation: CheckedContinuation<Results, any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    override func record(index: Int, outcome: DeliveryOutcome) -> Bool {
        switch outcome {
        case .delivered(let partition, let offset): landed[index] = Landed(partition: partition, offset: offset)
        case .failed(let error): failures.withLock { $0[index] = error }
        }
        guard remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return false }
        let failed = failures.withLock { $0 }
        var all: Results = []
        all.reserveCapacity(messages.count)
        for index in messages.indices {
            if let error = failed[index] { all.append(.failure(error)); continue }
            let report = landed[index]
            all.append(.success(KafkaDeliveryReport(topic: messages[index].topic, partition: report.partition, offset: report.offset)))
        }
        let waiting = continuation.withLock { value in
            defer { value = nil }
            return value
        }
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
