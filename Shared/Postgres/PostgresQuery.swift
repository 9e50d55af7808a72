import Foundation

/// One bound parameter: text (the server infers or casts the type) or bytes in the binary format of its `oid`.
public struct PostgresBind: Sendable, Hashable {
    public enum Value: Sendable, Hashable {
        case null
        case text(String)
        case bytes([UInt8])
    }

    public var value: Value
    /// The parameter's type OID, or 0 to let the server infer it from the statement.
    public var oid: UInt32

    public init(_ value: Value, oid: UInt32 = 0) {
        self.value = value
        self.oid = oid
    }
}

/// A value that can be bound as a query parameter.
public protocol PostgresEncodable: Sendable {
    var postgresBind: PostgresBind { get }
}

/// A SQL statement whose interpolated values always become bound parameters (`$1`, `$2`, …), never SQL text.
///
/// ```swift
/// let rows = try conn.query("SELECT id FROM \(identifier: schema).leads WHERE phone_key = \(key)")
/// ```
/// Identifiers (schema, table names from configuration) are interpolated with `identifier:` and quoted.
/// Only ``init(unsafeSQL:binds:)`` takes SQL text as is.
public struct PostgresQuery: ExpressibleByStringInterpolation, Sendable, CustomStringConvertible {
    public private(set) var sql: String
    public private(set) var binds: [PostgresBind]

    /// Takes SQL text as is. Never build `sql` from untrusted input.
    public init(unsafeSQL sql: String, binds: [PostgresBind] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    /// The SQL text only; bound values are never printed.
    public var description: String { sql }

    /// Inlinable, so a caller's binds are specialised for their types in the caller's module (unspecialised, each
    /// value went through runtime metadata lookups: a sixth of marketing-intake's CPU on the topic).
    public struct StringInterpolation: StringInterpolationProtocol {
        @usableFromInline var sql = ""
        @usableFromInline var binds: [PostgresBind] = []

        @inlinable
        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        @inlinable
        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Binds `value` as the next parameter.
        @inlinable
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value.postgresBind)
            sql += "$\(binds.count)"
        }

        /// Binds `value`, or SQL NULL when it is nil.
        @inlinable
        public mutating func appendInterpolation<T: PostgresEncodable>(_ value: T?) {
            binds.append(value?.postgresBind ?? PostgresBind(.null))
            sql += "$\(binds.count)"
        }

        /// Inserts SQL text fixed at compile time (a shared column list); never a runtime value.
        public mutating func appendInterpolation(sql: StaticString) {
            sql.withUTF8Buffer { self.sql += String(decoding: $0, as: UTF8.self) }
        }

        /// Inserts a quoted identifier (schema, table or column name), doubling embedded quotes.
        public mutating func appendInterpolation(identifier: String) {
            sql += PostgresQuery.quoteIdentifier(identifier)
        }
    }

    /// `"name"` with embedded quotes doubled and NUL removed.
    public static func quoteIdentifier(_ name: String) -> String {
        // Every statement quotes its schema: skip Foundation's replacing when there is nothing to replace.
        if !name.utf8.contains(where: { $0 == 0 || $0 == UInt8(ascii: "\"") }) { return "\"" + name + "\"" }
        return "\"" + name.replacingOccurrences(of: "\u{0}", with: "").replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
