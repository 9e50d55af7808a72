/// Rows in PostgreSQL's binary format (``PostgresConnection/queryBinary(_:file:line:)``): each cell is the value's
/// bytes as the server sends them (bytea as itself, text as UTF-8, int8 as 8 big-endian bytes), nil for NULL.
public struct PostgresBinaryRows: Sendable, RandomAccessCollection {
    /// Column names, in order.
    public let columns: [String]
    let cells: [[[UInt8]?]]

    public var startIndex: Int { 0 }
    public var endIndex: Int { cells.count }
    public subscript(index: Int) -> PostgresBinaryRow { PostgresBinaryRow(columns: columns, cells: cells[index]) }
}

/// One row of ``PostgresBinaryRows``; read its columns by position.
public struct PostgresBinaryRow: Sendable {
    public let columns: [String]
    let cells: [[UInt8]?]

    /// The column's bytes, nil for NULL.
    public func bytes(at index: Int) throws -> [UInt8]? {
        guard index < cells.count else { throw failure(index, type: "bytes", reason: "row has only \(cells.count) columns") }
        return cells[index]
    }

    /// A non-null text column.
    public func text(at index: Int) throws -> String {
        guard let bytes = try bytes(at: index) else { throw failure(index, type: "String", reason: "unexpected NULL") }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A non-null int8 column.
    public func int64(at index: Int) throws -> Int64 {
        guard let bytes = try bytes(at: index) else { throw failure(index, type: "Int64", reason: "unexpected NULL") }
        guard bytes.count == 8 else { throw failure(index, type: "Int64", reason: "\(bytes.count) bytes, not the 8 of an int8") }
        return bytes.reduce(0) { $0 << 8 | Int64($1) }
    }

    func failure(_ index: Int, type: String, reason: String) -> PostgresDecodingError {
        PostgresDecodingError(column: index < columns.count ? columns[index] : "#\(index)", index: index, type: type, reason: reason)
    }
}
