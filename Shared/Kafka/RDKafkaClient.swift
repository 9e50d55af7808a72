@preconcurrency import CRdKafka
import Foundation
import Synchronization
import Logging

/// State reached from librdkafka's C callbacks. It travels in the conf's `opaque` slot, retained once by the
/// owning ``RDKafkaClient`` and released after `rd_kafka_destroy`, when no callback can run any more.
final class RDKafkaContext: @unchecked Sendable {
    let logger: Logger
    private let lock = NSLock()
    private var _fatalError: KafkaError?
    private var _assignment: Set<KafkaTopicPartition> = []
    private var _paused = false
    private var _joined = false
    private var _revocations = 0
    private var _closing = false
    private var _refusedRevocationCommits = 0

    /// Whether the configured assignors rebalance incrementally (librdkafka refuses to mix eager and cooperative
    /// ones). The rebalance callback asks librdkafka first; this answers when it cannot (its group is terminating).
    let configuredCooperative: Bool

    init(logger: Logger, properties: [String: String] = [:]) {
        self.logger = logger
        self.configuredCooperative = properties["partition.assignment.strategy"]?.contains("cooperative") ?? false
    }

    /// Read before every produced record: an atomic flag, so the common case takes no lock.
    private let hasFatalError = Atomic<Bool>(false)
    var fatalError: KafkaError? { hasFatalError.load(ordering: .acquiring) ? lock.withLock { _fatalError } : nil }
    func setFatal(_ error: KafkaError) {
        lock.withLock { _fatalError = error }
        hasFatalError.store(true, ordering: .releasing)
    }

    var assignment: Set<KafkaTopicPartition> { lock.withLock { _assignment } }
    func assign(_ partitions: [KafkaTopicPartition]) {
        lock.withLock {
            _assignment.formUnion(partitions)
            _joined = true
        }
    }
    var joined: Bool { lock.withLock { _joined } }
    func revoke(_ partitions: [KafkaTopicPartition]) {
        lock.withLock {
            _assignment.subtract(partitions)
            _revocations += 1
        }
    }
    func revokeAll() {
        lock.withLock {
            _assignment.removeAll()
            _revocations += 1
        }
    }
    /// How many times partitions were taken away: a poll that sees it change drops what it fetched from them.
    var revocations: Int { lock.withLock { _revocations } }
    /// Commits before a revocation that the broker refused.
    var refusedRevocationCommits: Int { lock.withLock { _refusedRevocationCommits } }
    func revocationCommitRefused() { lock.withLock { _refusedRevocationCommits += 1 } }
    /// Set when the consumer starts closing: its last revocation does not commit (the caller did, before).
    var closing: Bool {
        get { lock.withLock { _closing } }
        set { lock.withLock { _closing = newValue } }
    }

    var paused: Bool {
        get { lock.withLock { _paused } }
        set { lock.withLock { _paused = newValue } }
    }
}

/// Owns one `rd_kafka_t`. librdkafka handles are thread-safe, hence `@unchecked Sendable`.
final class RDKafkaClient: @unchecked Sendable {
    let handle: OpaquePointer
    let context: RDKafkaContext
    private let contextPointer: UnsafeMutableRawPointer
    private let destroyed = NSLock()
    private var isDestroyed = false

    enum Kind { case producer, consumer }

    init(kind: Kind, properties: [String: String], logger: Logger,
         configure: (OpaquePointer) -> Void = { _ in }) throws {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError.configuration("rd_kafka_conf_new failed") }
        var confOwned = true
        defer { if confOwned { rd_kafka_conf_destroy(conf) } }

        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            var errstr = [CChar](repeating: 0, count: 512)
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            guard result == RD_KAFKA_CONF_OK else {
                throw KafkaError.configuration("property \(key): \(cString(errstr))")
            }
        }
        let context = RDKafkaContext(logger: logger, properties: properties)
        let pointer = Unmanaged.passRetained(context).toOpaque()
        rd_kafka_conf_set_opaque(conf, pointer)
        rd_kafka_conf_set_log_cb(conf, rdKafkaLogCallback)
        rd_kafka_conf_set_error_cb(conf, rdKafkaErrorCallback)
        configure(conf)

        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf, &errstr, errstr.count) else {
            Unmanaged<RDKafkaContext>.fromOpaque(pointer).release()
            throw KafkaError.configuration("rd_kafka_new: \(cString(errstr))")
        }
        confOwned = false  // rd_kafka_new took it
        self.handle = rk
        self.context = context
        self.contextPointer = pointer
        logger.debug("librdkafka client created", metadata: ["librdkafka": "\(RDKafkaClient.version)", "name": "\(String(cString: rd_kafka_name(rk)))"])
    }

    /// librdkafka's version string (Debian 12 ships 2.0.2).
    static var version: String { String(cString: rd_kafka_version_str()) }

    /// Destroys the handle. Blocking: call it on a dedicated thread.
    func destroy() {
        destroyed.lock()
        defer { destroyed.unlock() }
        guard !isDestroyed else { return }
        isDestroyed = true
        rd_kafka_destroy(handle)
        Unmanaged<RDKafkaContext>.fromOpaque(contextPointer).release()
    }
}

/// Maps librdkafka's syslog levels onto swift-log.
private func rdKafkaLogCallback(_ rk: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?, _ buffer: UnsafePointer<CChar>?) {
    guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
    let context = Unmanaged<RDKafkaContext>.fromOpaque(opaque).takeUnretainedValue()
    let swiftLevel: Logger.Level
    switch level {
    case 0...2: swiftLevel = .critical
    case 3: swiftLevel = .error
    case 4: swiftLevel = .warning
    case 5, 6: swiftLevel = .info
    default: swiftLevel = .debug
    }
    let facilityText = facility.map { String(cString: $0) } ?? "?"
    let text = buffer.map { String(cString: $0) } ?? ""
    context.logger.log(level: swiftLevel, "\(text)", metadata: ["librdkafka.facility": "\(facilityText)"])
}

/// Logs client-level errors and remembers fatal ones, after which the client refuses work.
private func rdKafkaErrorCallback(_ rk: OpaquePointer?, _ code: Int32, _ reason: UnsafePointer<CChar>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let opaque else { return }
    let context = Unmanaged<RDKafkaContext>.fromOpaque(opaque).takeUnretainedValue()
    let err = rd_kafka_resp_err_t(rawValue: code)
    let text = reason.map { String(cString: $0) } ?? ""
    if err == RD_KAFKA_RESP_ERR__FATAL, let rk {
        var buffer = [CChar](repeating: 0, count: 512)
        let original = rd_kafka_fatal_error(rk, &buffer, buffer.count)
        let error = KafkaError(code: original, reason: cString(buffer), isRetriable: false, isFatal: true)
        context.setFatal(error)
        context.logger.critical("fatal Kafka client error", metadata: ["error": "\(error)"])
    } else if err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT {
        context.logger.warning("Kafka connection problem", metadata: ["code": "\(String(cString: rd_kafka_err2name(err)))", "reason": "\(text)"])
    } else {
        context.logger.error("Kafka client error", metadata: ["code": "\(String(cString: rd_kafka_err2name(err)))", "reason": "\(text)"])
    }
}

/// Text of a NUL-terminated C buffer.
func cString(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
