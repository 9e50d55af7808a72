import FastText
import Foundation

/// A type that can be read from a column's text representation.
public protocol PostgresDecodable {
    /// Decodes from the column's text (nil is SQL NULL). Throw a plain reason; the row adds the column's name.
    static func decode(postgresText: String?) throws(PostgresDecodingReason) -> Self
}

/// Why a value did not decode. Carries no value.
public struct PostgresDecodingReason: Error, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    static let null = PostgresDecodingReason("unexpected NULL")
    static let format = PostgresDecodingReason("text is not in the expected format")
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> Wrapped? {
        guard let postgresText else { return nil }
        return try Wrapped.decode(postgresText: postgresText)
    }
}

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(.text(self)) }
    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> String {
        guard let postgresText else { throw .null }
        return postgresText
    }
}

extension Substring: PostgresEncodable {
    public var postgresBind: PostgresBind { PostgresBind(.text(String(self))) }
}

extension Int: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(.text(String(self)), oid: 20) }
    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> Int {
        guard let postgresText else { throw .null }
        guard let value = Int(postgresText) else { throw .format }
        return value
    }
}

extension Int64: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(.text(String(self)), oid: 20) }
    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> Int64 {
        guard let postgresText else { throw .null }
        guard let value = Int64(postgresText) else { throw .format }
        return value
    }
}

extension Int32: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(.text(String(self)), oid: 23) }
    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> Int32 {
        guard let postgresText else { throw .null }
        guard let value = Int32(postgresText) else { throw .format }
        return value
    }
}

extension Double: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(.text(String(self)), oid: 701) }
    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> Double {
        guard let postgresText else { throw .null }
        guard let value = Double(postgresText) else { throw .format }
        return value
    }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(.text(self ? "t" : "f"), oid: 16) }
    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> Bool {
        switch postgresText {
        case "t": return true
        case "f": return false
        case nil: throw .null
        default: throw .format
        }
    }
}

extension UUID: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(.text(lowercasedText), oid: 2950) }
    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> UUID {
        guard let postgresText else { throw .null }
        guard let value = UUID(canonicalText: postgresText) else { throw .format }
        return value
    }
}

/// bytea, sent in binary and read from PostgreSQL's hex text form (`\x…`).
extension Array: PostgresEncodable, PostgresDecodable where Element == UInt8 {
    public var postgresBind: PostgresBind { PostgresBind(.bytes(self), oid: 17) }
    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> [UInt8] {
        guard let postgresText else { throw .null }
        var text = postgresText
        // Outbox payloads are read as hex text: decode straight from the string's UTF-8, no intermediate array.
        let decoded = text.withUTF8 { utf8 -> [UInt8]? in
            guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else { return nil }
            let count = (utf8.count - 2) / 2
            var valid = true
            let out = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                var i = 2
                for o in 0..<count {
                    let hi = Hex.value(utf8[i]), lo = Hex.value(utf8[i + 1])
                    if hi | lo > 0x0F { valid = false; break }
                    buffer[o] = hi << 4 | lo
                    i += 2
                }
                initialized = valid ? count : 0
            }
            return valid ? out : nil
        }
        guard let decoded else { throw .format }
        return decoded
    }
}

/// timestamptz. Connections run with `TimeZone=UTC` and `DateStyle=ISO`, so text is `YYYY-MM-DD HH:MM:SS[.ffffff]+00`.
extension Date: PostgresEncodable, PostgresDecodable {
    /// The time as PostgreSQL stores it: whole microseconds since 1970 (rounded), the same for a bound value,
    /// an array element and a caller comparing with stored times.
    @inlinable
    public var postgresMicroseconds: Int64 { Int64((timeIntervalSince1970 * 1_000_000).rounded()) }

    public var postgresBind: PostgresBind {
        PostgresBind(.text(PostgresTimestamp.format(microsecondsSinceEpoch: postgresMicroseconds)), oid: 1184)
    }

    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> Date {
        guard let postgresText else { throw .null }
        guard let micros = PostgresTimestamp.parse(postgresText) else { throw .format }
        return Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }
}

/// A JSON document bound as `jsonb` text.
public struct PostgresJSON: PostgresEncodable, PostgresDecodable, Sendable, Hashable {
    public var text: String
    public init(text: String) { self.text = text }
    public init(encoding value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        self.text = String(decoding: try encoder.encode(value), as: UTF8.self)
    }
    public var postgresBind: PostgresBind { PostgresBind(.text(text), oid: 3802) }
    public static func decode(postgresText: String?) throws(PostgresDecodingReason) -> PostgresJSON {
        guard let postgresText else { throw .null }
        return PostgresJSON(text: postgresText)
    }
    /// Decodes the document.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

/// Arrays bound as PostgreSQL arrays (`text[]`, `bigint[]`, …), for `= ANY(...)` and `unnest(...)`.
public struct PostgresArray<Element: PostgresArrayElement>: PostgresEncodable {
    public var elements: [Element?]
    @inlinable public init(_ elements: [Element?]) { self.elements = elements }
    /// The array in PostgreSQL's binary format (`array_recv`): batches bind arrays of thousands of elements, and
    /// as a text literal each element was formatted here and parsed again by the server (`array_in` with
    /// `timestamptz_in`, `uuid_in`, …: a tenth of the intake's batch statements). Inlinable, so it is specialised
    /// for its element.
    @inlinable
    public var postgresBind: PostgresBind {
        var out: [UInt8] = []
        out.reserveCapacity(20 + elements.count * (4 + Element.binarySizeHint))
        let hasNull = elements.contains { $0 == nil }
        PostgresBinary.append(Int32(elements.isEmpty ? 0 : 1), to: &out)  // dimensions
        PostgresBinary.append(Int32(hasNull ? 1 : 0), to: &out)
        PostgresBinary.append(Element.elementOID, to: &out)
        if !elements.isEmpty {
            PostgresBinary.append(Int32(elements.count), to: &out)
            PostgresBinary.append(Int32(1), to: &out)  // lower bound
        }
        for element in elements {
            guard let element else {
                PostgresBinary.append(Int32(-1), to: &out)
                continue
            }
            element.appendPostgresBinary(to: &out)
        }
        return PostgresBind(.bytes(out), oid: Element.arrayOID)
    }
}

/// Big-endian integers as PostgreSQL's binary formats write them.
public enum PostgresBinary {
    @inlinable
    public static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }
}

/// An element type of ``PostgresArray``: its type, its array type, and its binary form.
public protocol PostgresArrayElement: Sendable {
    static var elementOID: UInt32 { get }
    static var arrayOID: UInt32 { get }
    /// About how many bytes one element takes (to reserve the array's buffer).
    static var binarySizeHint: Int { get }
    /// Appends the element's length (Int32) and its bytes in the type's binary format.
    func appendPostgresBinary(to out: inout [UInt8])
}

extension String: PostgresArrayElement {
    public static var elementOID: UInt32 { 25 }
    public static var arrayOID: UInt32 { 1009 }
    public static var binarySizeHint: Int { 24 }
    @inlinable
    public func appendPostgresBinary(to out: inout [UInt8]) {
        var text = self
        text.withUTF8 { bytes in
            PostgresBinary.append(Int32(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        }
    }
}

extension Int64: PostgresArrayElement {
    public static var elementOID: UInt32 { 20 }
    public static var arrayOID: UInt32 { 1016 }
    public static var binarySizeHint: Int { 8 }
    @inlinable
    public func appendPostgresBinary(to out: inout [UInt8]) {
        PostgresBinary.append(Int32(8), to: &out)
        PostgresBinary.append(self, to: &out)
    }
}

extension Double: PostgresArrayElement {
    public static var elementOID: UInt32 { 701 }
    public static var arrayOID: UInt32 { 1022 }
    public static var binarySizeHint: Int { 8 }
    @inlinable
    public func appendPostgresBinary(to out: inout [UInt8]) {
        PostgresBinary.append(Int32(8), to: &out)
        PostgresBinary.append(bitPattern, to: &out)
    }
}

extension UUID: PostgresArrayElement {
    public static var elementOID: UInt32 { 2950 }
    public static var arrayOID: UInt32 { 2951 }
    public static var binarySizeHint: Int { 16 }
    @inlinable
    public func appendPostgresBinary(to out: inout [UInt8]) {
        PostgresBinary.append(Int32(16), to: &out)
        withUnsafeBytes(of: uuid) { out.append(contentsOf: $0) }
    }
}

extension Bool: PostgresArrayElement {
    public static var elementOID: UInt32 { 16 }
    public static var arrayOID: UInt32 { 1000 }
    public static var binarySizeHint: Int { 1 }
    @inlinable
    public func appendPostgresBinary(to out: inout [UInt8]) {
        PostgresBinary.append(Int32(1), to: &out)
        out.append(self ? 1 : 0)
    }
}

extension Date: PostgresArrayElement {
    public static var elementOID: UInt32 { 1184 }
    public static var arrayOID: UInt32 { 1185 }
    public static var binarySizeHint: Int { 8 }
    /// timestamptz: microseconds since 2000-01-01 00:00:00 UTC.
    @inlinable
    public func appendPostgresBinary(to out: inout [UInt8]) {
        PostgresBinary.append(Int32(8), to: &out)
        PostgresBinary.append(postgresMicroseconds - 946_684_800_000_000, to: &out)
    }
}

/// Formats and parses timestamptz text in UTC without Foundation's formatters (fast, locale-free).
enum PostgresTimestamp {
    static func format(microsecondsSinceEpoch micros: Int64) -> String {
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 { fraction += 1_000_000; seconds -= 1 }
        var days = seconds / 86_400
        var secOfDay = seconds % 86_400
        if secOfDay < 0 { secOfDay += 86_400; days -= 1 }
        let (y, m, d) = civil(fromDays: days)
        guard (0...9999).contains(y) else {
            func pad(_ v: Int64, _ width: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, width - s.count)) + s }
            return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2)) \(pad(secOfDay / 3600, 2)):\(pad(secOfDay / 60 % 60, 2)):\(pad(secOfDay % 60, 2)).\(pad(fraction, 6))+00"
        }
        // yyyy-mm-dd hh:mm:ss.ffffff+00 written digit by digit: batches format thousands of timestamps.
        return String(unsafeUninitializedCapacity: 29) { out in
            var o = 0
            func put(_ value: Int64, _ width: Int) {
                var v = value
                var i = width - 1
                while i >= 0 {
                    out[o + i] = UInt8(ascii: "0") + UInt8(v % 10)
                    v /= 10
                    i -= 1
                }
                o += width
            }
            func sep(_ c: Unicode.Scalar) { out[o] = UInt8(ascii: c); o += 1 }
            put(y, 4); sep("-"); put(m, 2); sep("-"); put(d, 2); sep(" ")
            put(secOfDay / 3600, 2); sep(":"); put(secOfDay / 60 % 60, 2); sep(":"); put(secOfDay % 60, 2); sep(".")
            put(fraction, 6); sep("+"); put(0, 2)
            return o
        }
    }

    static func parse(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        func num(_ from: Int, _ len: Int) -> Int64? {
            guard from + len <= u.count else { return nil }
            var v: Int64 = 0
            for i in from..<(from + len) {
                guard u[i] >= 48 && u[i] <= 57 else { return nil }
                v = v * 10 + Int64(u[i] - 48)
            }
            return v
        }
        guard u.count >= 19, let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2),
              let mi = num(14, 2), let s = num(17, 2) else { return nil }
        var i = 19
        var micros: Int64 = 0
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < u.count, u[i] >= 48, u[i] <= 57 {
                if digits < 6 { micros = micros * 10 + Int64(u[i] - 48); digits += 1 }
                i += 1
            }
            while digits < 6 { micros *= 10; digits += 1 }
        }
        var offsetSeconds: Int64 = 0
        if i < u.count, u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") {
            let sign: Int64 = u[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = num(i + 1, 2) else { return nil }
            var om: Int64 = 0
            if i + 3 < u.count, u[i + 3] == UInt8(ascii: ":"), let m = num(i + 4, 2) { om = m }
            offsetSeconds = sign * (oh * 3600 + om * 60)
        }
        let days = daysFromCivil(y, mo, d)
        return ((days * 86_400 + h * 3600 + mi * 60 + s) - offsetSeconds) * 1_000_000 + micros
    }

    // Howard Hinnant's civil-date algorithms.
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp + (mp < 10 ? 3 : -9)
        return (m <= 2 ? y + 1 : y, m, d)
    }
}

/// Many byte strings bound as one binary `bytea` parameter plus offset and length arrays, to be cut apart in
/// SQL with `substring(blob from offset for length)` (offsets are 1-based; a null item has length -1).
///
/// A batch of thousands of payloads or JSON documents bound as a `bytea[]` or `text[]` literal is parsed
/// (unescaped, de-hexed) element by element by the server; the binary blob is not parsed at all.
public struct PostgresByteSlices: Sendable {
    public let blob: PostgresBytes
    public let offsets: PostgresArray<Int64>
    public let lengths: PostgresArray<Int64>

    public init(_ items: [[UInt8]?]) {
        var blob: [UInt8] = []
        blob.reserveCapacity(items.reduce(0) { $0 + ($1?.count ?? 0) })
        var offsets: [Int64?] = []
        var lengths: [Int64?] = []
        offsets.reserveCapacity(items.count)
        lengths.reserveCapacity(items.count)
        for item in items {
            offsets.append(Int64(blob.count + 1))
            if let item {
                lengths.append(Int64(item.count))
                blob.append(contentsOf: item)
            } else {
                lengths.append(-1)
            }
        }
        self.blob = PostgresBytes(blob)
        self.offsets = PostgresArray(offsets)
        self.lengths = PostgresArray(lengths)
    }

    public init(strings: [String?]) {
        self.init(strings.map { $0.map { Array($0.utf8) } })
    }
}

/// Bytes bound in binary format as `bytea` (no hex or escape text on the wire).
public struct PostgresBytes: PostgresEncodable, Sendable {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var postgresBind: PostgresBind { PostgresBind(.bytes(bytes), oid: 17) }
}
