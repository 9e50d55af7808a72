import FastText
import Foundation
import Kafka
import SwiftProtobuf

/// The CloudEvents-style Kafka headers every record carries.
public enum CloudEventHeader {
    public static let id = "ce_id"
    public static let type = "ce_type"
    public static let source = "ce_source"
    public static let time = "ce_time"
    public static let specVersion = "ce_specversion"
    public static let contentType = "content-type"
    public static let traceparent = "traceparent"
}

/// Payload encodings consumers accept.
public enum ContentType: String, Sendable {
    case protobuf = "application/protobuf"
    case json = "application/json"

    /// Reads a `content-type` header value (parameters ignored); nil for anything else.
    public init?(header: String) {
        // The exact values producers send, without splitting and lowercasing.
        switch header {
        case "application/json":
            self = .json
            return
        case "application/protobuf":
            self = .protobuf
            return
        default: break
        }
        let base = header.split(separator: ";").first.map { $0.trimmingSpaces.lowercased() } ?? ""
        switch base {
        case "application/protobuf", "application/x-protobuf", "application/vnd.google.protobuf": self = .protobuf
        case "application/json": self = .json
        default: return nil
        }
    }
}

/// An event ready to be produced: payload plus CloudEvents headers.
public struct CloudEvent: Sendable {
    public var id: String
    public var type: String
    public var source: String
    public var time: Date
    public var contentType: ContentType
    public var traceparent: String?
    public var key: String
    public var topic: String
    public var payload: [UInt8]

    /// Encodes `event` as protobuf for `topic`, with a fresh UUIDv7 id.
    public init<M: SwiftProtobuf.Message>(topic: Topic<M>, key: String, event: M, source: String,
                                          id: String = UUIDv7.generate().lowercasedText, time: Date = Date(), traceparent: String? = nil) throws {
        self.id = id
        self.type = topic.eventType
        self.source = source
        self.time = time
        self.contentType = .protobuf
        self.traceparent = traceparent
        self.key = key
        self.topic = topic.name
        self.payload = try event.serializedBytes()
    }

    public init(id: String, type: String, source: String, time: Date, contentType: ContentType, traceparent: String?,
                key: String, topic: String, payload: [UInt8]) {
        self.id = id
        self.type = type
        self.source = source
        self.time = time
        self.contentType = contentType
        self.traceparent = traceparent
        self.key = key
        self.topic = topic
        self.payload = payload
    }

    /// The Kafka headers for this event.
    public var headers: [KafkaHeader] {
        var headers = [
            KafkaHeader(key: CloudEventHeader.id, text: id),
            KafkaHeader(key: CloudEventHeader.type, text: type),
            KafkaHeader(key: CloudEventHeader.source, text: source),
            KafkaHeader(key: CloudEventHeader.time, text: RFC3339.format(time)),
            KafkaHeader(key: CloudEventHeader.specVersion, text: "1.0"),
            KafkaHeader(key: CloudEventHeader.contentType, text: contentType.rawValue),
        ]
        if let traceparent { headers.append(KafkaHeader(key: CloudEventHeader.traceparent, text: traceparent)) }
        return headers
    }
}

/// Why a consumed payload could not be read. Its description names the problem, never the payload's content.
public struct EventDecodingError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case unsupportedContentType = "unsupported_content_type"
        case malformedProtobuf = "malformed_protobuf"
        case malformedJSON = "malformed_json"
        case unexpectedEventType = "unexpected_event_type"
    }

    public let code: Code
    public let detail: String
    public var description: String { "\(code.rawValue): \(detail)" }
}

/// Decodes consumed records: protobuf or protobuf's JSON mapping, chosen by `content-type`.
public enum EventDecoder {
    /// Decodes `message` as `M`. Without a `content-type` header, a payload starting with `{` is taken as JSON
    /// and anything else as protobuf (marketing's tools often send bare JSON).
    public static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, from message: KafkaConsumedMessage) throws -> M {
        let contentType: ContentType
        if let header = message.header(CloudEventHeader.contentType) {
            guard let parsed = ContentType(header: header) else {
                throw EventDecodingError(code: .unsupportedContentType, detail: "content-type \(header.prefix(64)) is neither application/protobuf nor application/json")
            }
            contentType = parsed
        } else {
            contentType = message.value.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) == UInt8(ascii: "{") ? .json : .protobuf
        }
        return try decode(type, payload: message.value, contentType: contentType)
    }

    /// Decodes a payload of a known encoding.
    public static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, payload: [UInt8], contentType: ContentType) throws -> M {
        switch contentType {
        case .protobuf:
            do { return try M(serializedBytes: payload) } catch {
                throw EventDecodingError(code: .malformedProtobuf, detail: "payload is not a valid \(M.protoMessageName) (\(payload.count) bytes)")
            }
        case .json:
            var options = JSONDecodingOptions()
            options.ignoreUnknownFields = true
            do { return try M(jsonUTF8Bytes: payload, options: options) } catch {
                throw EventDecodingError(code: .malformedJSON, detail: "payload is not valid JSON for \(M.protoMessageName): \(jsonReason(error))")
            }
        }
    }

    private static func jsonReason(_ error: any Error) -> String {
        guard let error = error as? JSONDecodingError else { return "unreadable" }
        switch error {
        case .truncated: return "truncated input"
        case .malformedString, .malformedNumber, .malformedBool: return "a field has a value of the wrong type"
        case .unrecognizedEnumValue: return "unknown enum value"
        case .schemaMismatch: return "a field has a value of the wrong type"
        default: return "not well-formed"
        }
    }
}

/// RFC 3339 timestamps in UTC with milliseconds.
public enum RFC3339 {
    /// `2026-11-25T04:13:28.123Z`: UTC, milliseconds (truncated), as Foundation's ISO 8601 style writes it. Written by
    /// hand for years 1900-9999 (Foundation's format style costs several microseconds, and every event's `ce_time` is
    /// one); Foundation writes the others (before 1582 it counts in the Julian calendar).
    public static func format(_ date: Date) -> String {
        let millis = (date.timeIntervalSince1970 * 1_000).rounded(.down)
        guard millis >= -2_208_988_800_000, millis < 253_402_300_800_000 else { return foundationFormat(date) }
        let total = Int64(millis)
        let (days, msOfDay) = total.quotientAndRemainder(dividingBy: 86_400_000)
        let (day, ms) = msOfDay < 0 ? (days - 1, msOfDay + 86_400_000) : (days, msOfDay)
        let (year, month, dayOfMonth) = civil(fromDays: day)
        let seconds = ms / 1_000
        return String(unsafeUninitializedCapacity: 24) { out in
            func put(_ value: Int64, _ width: Int, at offset: Int) {
                var value = value
                for index in stride(from: offset + width - 1, through: offset, by: -1) {
                    out[index] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            put(year, 4, at: 0); out[4] = UInt8(ascii: "-"); put(month, 2, at: 5); out[7] = UInt8(ascii: "-"); put(dayOfMonth, 2, at: 8)
            out[10] = UInt8(ascii: "T"); put(seconds / 3_600, 2, at: 11); out[13] = UInt8(ascii: ":"); put(seconds / 60 % 60, 2, at: 14)
            out[16] = UInt8(ascii: ":"); put(seconds % 60, 2, at: 17); out[19] = UInt8(ascii: "."); put(ms % 1_000, 3, at: 20)
            out[23] = UInt8(ascii: "Z")
            return 24
        }
    }

    /// Foundation's own rendering of ``format(_:)``, for dates outside years 1900-9999.
    static func foundationFormat(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    /// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`).
    public static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Parses `2026-11-25T04:13:28Z`, with or without fractional seconds and with any offset.
    public static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)) { return date }
        if let date = try? Date(text, strategy: .iso8601) { return date }
        let withColon = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        return try? Date(text, strategy: withColon)
    }
}
