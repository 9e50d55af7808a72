import Contracts
import FastText
import Foundation
import Kafka
import Postgres

/// A record waiting in the outbox: written in the same transaction as the business change, published later.
public struct OutboxRecord: Sendable {
    public var topic: String
    public var key: [UInt8]?
    public var headers: [KafkaHeader]
    public var payload: [UInt8]

    public init(topic: String, key: [UInt8]?, headers: [KafkaHeader], payload: [UInt8]) {
        self.topic = topic
        self.key = key
        self.headers = headers
        self.payload = payload
    }

    public init(_ event: CloudEvent) {
        self.init(topic: event.topic, key: Array(event.key.utf8), headers: event.headers, payload: event.payload)
    }
}

/// Builds the statements that put records into a schema's outbox (pipeline them inside the transaction).
public struct Outbox: Sendable {
    public let schema: String

    public init(schema: String) { self.schema = schema }

    public func insert(_ record: OutboxRecord) -> PostgresQuery {
        "INSERT INTO \(identifier: schema).outbox (topic, key, headers, payload) VALUES (\(record.topic), \(record.key), \(HeaderCodec.encode(record.headers)), \(record.payload))"
    }

    public func insert(_ event: CloudEvent) -> PostgresQuery { insert(OutboxRecord(event)) }

    /// One statement for many records, kept in order (their ids follow the array). Keys, headers and payloads
    /// travel as three binary blobs cut apart by offset (``PostgresByteSlices``): no hex or escaping to parse, so a
    /// batch of thousands of events costs one parse/bind/execute and little else.
    public func insert(_ records: [OutboxRecord]) -> PostgresQuery {
        let keys = PostgresByteSlices(records.map(\.key))
        let headers = PostgresByteSlices(records.map { HeaderCodec.encode($0.headers) })
        let payloads = PostgresByteSlices(records.map(\.payload))
        return """
        INSERT INTO \(identifier: schema).outbox (topic, key, headers, payload)
        SELECT t, CASE WHEN kl < 0 THEN NULL ELSE substring(\(keys.blob)::bytea from ko::int for kl::int) END,
               substring(\(headers.blob)::bytea from ho::int for hl::int), substring(\(payloads.blob)::bytea from po::int for pl::int)
        FROM unnest(\(PostgresArray(records.map { Optional($0.topic) }))::text[], \(keys.offsets)::int8[], \(keys.lengths)::int8[],
                    \(headers.offsets)::int8[], \(headers.lengths)::int8[], \(payloads.offsets)::int8[], \(payloads.lengths)::int8[])
             WITH ORDINALITY AS r(t, ko, kl, ho, hl, po, pl, n)
        ORDER BY n
        """
    }
}

/// Kafka headers in one bytea column, exactly (binary values included): per header, u16 key length, key,
/// i32 value length (-1 for null), value; big-endian.
public enum HeaderCodec {
    public static func encode(_ headers: [KafkaHeader]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headers.reduce(0) { $0 + 6 + $1.key.utf8.count + ($1.value?.count ?? 0) })
        for header in headers {
            let key = header.key.utf8.prefix(Int(UInt16.max))
            out.append(UInt8(key.count >> 8))
            out.append(UInt8(key.count & 0xFF))
            out.append(contentsOf: key)
            let n = header.value.map { UInt32($0.count) } ?? UInt32.max
            out.append(UInt8(n >> 24))
            out.append(UInt8(n >> 16 & 0xFF))
            out.append(UInt8(n >> 8 & 0xFF))
            out.append(UInt8(n & 0xFF))
            if let value = header.value { out.append(contentsOf: value) }
        }
        return out
    }

    public static func decode(_ bytes: [UInt8]) -> [KafkaHeader] {
        var headers: [KafkaHeader] = []
        var i = 0
        while i + 2 <= bytes.count {
            let keyLength = Int(bytes[i]) << 8 | Int(bytes[i + 1])
            i += 2
            guard i + keyLength + 4 <= bytes.count else { break }
            let key = String(decoding: bytes[i..<(i + keyLength)], as: UTF8.self)
            i += keyLength
            let raw = UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
            i += 4
            if raw == UInt32.max {
                headers.append(KafkaHeader(key: key, value: nil))
            } else {
                let n = Int(raw)
                guard i + n <= bytes.count else { break }
                headers.append(KafkaHeader(key: key, value: Array(bytes[i..<(i + n)])))
                i += n
            }
        }
        return headers
    }
}
