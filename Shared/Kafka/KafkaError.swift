@preconcurrency import CRdKafka

/// The one error type of the Kafka client: librdkafka's error codes and our own, with where it was raised.
public struct KafkaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// librdkafka's `rd_kafka_resp_err_t` value (negative values are client-side, positive ones the broker's).
    public let code: Int32
    /// librdkafka's name for the code (e.g. `_QUEUE_FULL`, `UNKNOWN_TOPIC_OR_PART`).
    public let name: String
    /// A human-readable reason. Never contains message payloads.
    public let reason: String
    /// True when retrying the same operation may succeed.
    public let isRetriable: Bool
    /// True when the client instance is unusable and must be recreated.
    public let isFatal: Bool
    /// Source location that raised the error.
    public let file: String
    public let line: Int

    public static func == (lhs: KafkaError, rhs: KafkaError) -> Bool { lhs.code == rhs.code && lhs.reason == rhs.reason }

    init(code: rd_kafka_resp_err_t, reason: String? = nil, isRetriable: Bool? = nil, isFatal: Bool = false,
         file: String = #fileID, line: Int = #line) {
        self.code = code.rawValue
        self.name = String(cString: rd_kafka_err2name(code))
        self.reason = reason ?? String(cString: rd_kafka_err2str(code))
        self.isRetriable = isRetriable ?? KafkaError.retriableCodes.contains(code)
        self.isFatal = isFatal || code == RD_KAFKA_RESP_ERR__FATAL
        self.file = file
        self.line = line
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer, file: String = #fileID, line: Int = #line) {
        self.init(
            code: rd_kafka_error_code(error),
            reason: String(cString: rd_kafka_error_string(error)),
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0,
            file: file, line: line
        )
        rd_kafka_error_destroy(error)
    }

    /// A configuration property was rejected.
    static func configuration(_ reason: String, file: String = #fileID, line: Int = #line) -> KafkaError {
        KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG, reason: reason, isRetriable: false, file: file, line: line)
    }

    /// The client was shut down.
    static func closed(file: String = #fileID, line: Int = #line) -> KafkaError {
        KafkaError(code: RD_KAFKA_RESP_ERR__DESTROY, reason: "the client has been shut down", isRetriable: false, file: file, line: line)
    }

    /// True for the local queue being full: back-pressure, not failure.
    public var isQueueFull: Bool { code == RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue }

    public var description: String {
        "KafkaError(\(name) \(code): \(reason)\(isFatal ? ", fatal" : "")\(isRetriable ? ", retriable" : "") at \(file):\(line))"
    }

    private static let retriableCodes: Set<rd_kafka_resp_err_t> = [
        RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TIMED_OUT,
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
        RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
    ]
}
