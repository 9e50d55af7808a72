/// An error from PostgreSQL or from this client. Its description never contains bound values: server messages
/// of the classes that may quote data (22 data exception, 23 integrity violation) are replaced by their
/// SQLSTATE and constraint/column names.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, broadly.
    public enum Kind: Sendable, Equatable {
        case connection, server, protocolViolation, decoding, migration, pool
    }

    public let kind: Kind
    /// The five-character SQLSTATE for server errors (e.g. `23505`).
    public let sqlState: String?
    /// The server's primary message, kept only when it cannot quote bound values.
    public let safeMessage: String
    public let constraint: String?
    public let table: String?
    public let column: String?
    public let file: String
    public let line: Int

    init(kind: Kind, sqlState: String? = nil, message: String, constraint: String? = nil, table: String? = nil,
         column: String? = nil, file: String = #fileID, line: Int = #line) {
        self.kind = kind
        self.sqlState = sqlState
        self.constraint = constraint
        self.table = table
        self.column = column
        self.file = file
        self.line = line
        if let sqlState, sqlState.hasPrefix("22") || sqlState.hasPrefix("23") {
            self.safeMessage = "server rejected a value (SQLSTATE class \(sqlState.prefix(2)))"
        } else {
            self.safeMessage = message
        }
    }

    /// True for a unique-key violation (SQLSTATE 23505).
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// True when retrying the transaction may succeed (serialization failure, deadlock, connection loss).
    public var isTransient: Bool {
        kind == .connection || sqlState == "40001" || sqlState == "40P01" || (sqlState?.hasPrefix("08") ?? false)
            || sqlState == "57P01" || sqlState == "53300"
    }

    public var description: String {
        var parts = ["PostgresError(\(kind)"]
        if let sqlState { parts.append("SQLSTATE \(sqlState)") }
        parts.append(safeMessage)
        if let table { parts.append("table \(table)") }
        if let column { parts.append("column \(column)") }
        if let constraint { parts.append("constraint \(constraint)") }
        return parts.joined(separator: ", ") + " at \(file):\(line))"
    }
}

/// A column could not be decoded as the asked type. Names the column, its index and the type, never the value.
public struct PostgresDecodingError: Error, CustomStringConvertible, Sendable {
    public let column: String
    public let index: Int
    public let type: String
    public let reason: String
    public let file: String
    public let line: Int

    public init(column: String, index: Int, type: String, reason: String, file: String = #fileID, line: Int = #line) {
        self.column = column
        self.index = index
        self.type = type
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String {
        "PostgresDecodingError(column \(column) at index \(index) as \(type): \(reason) at \(file):\(line))"
    }
}
