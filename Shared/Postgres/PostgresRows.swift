/// The rows a statement returned, copied out of libpq (text format).
public struct PostgresRows: Sendable, Sequence {
    /// Column names, in order.
    public let columns: [String]
    let cells: [[String?]]
    /// Rows affected, for INSERT/UPDATE/DELETE (0 otherwise).
    public let affectedRows: Int

    public var count: Int { cells.count }
    public var isEmpty: Bool { cells.isEmpty }
    public var first: PostgresRow? { cells.first.map { PostgresRow(columns: columns, cells: $0) } }

    public func makeIterator() -> AnyIterator<PostgresRow> {
        var index = 0
        return AnyIterator {
            guard index < cells.count else { return nil }
            defer { index += 1 }
            return PostgresRow(columns: columns, cells: cells[index])
        }
    }

    /// Decodes every row as a tuple of the given types.
    public func decode<each T: PostgresDecodable>(_ types: repeat (each T).Type, file: String = #fileID, line: Int = #line) throws -> [(repeat each T)] {
        try map { try $0.decode(repeat each types, file: file, line: line) }
    }
}

/// One row. Decode columns positionally into a tuple, or by name.
public struct PostgresRow: Sendable {
    public let columns: [String]
    @usableFromInline let cells: [String?]

    /// Decodes the row's columns, in order, as `types`. A mismatch names the column, index and type.
    /// Inlinable, like the column decoding it calls, so a caller's decoders are specialised for its types.
    @inlinable
    public func decode<each T: PostgresDecodable>(_ types: repeat (each T).Type, file: String = #fileID, line: Int = #line) throws -> (repeat each T) {
        var index = 0
        func next<U: PostgresDecodable>(_ type: U.Type) throws -> U {
            defer { index += 1 }
            return try decodeColumn(index, as: type, file: file, line: line)
        }
        return (repeat try next(each types))
    }

    /// Decodes the column at `index` (wide rows, where a tuple of every column would be unwieldy).
    @inlinable
    public func decode<T: PostgresDecodable>(_ type: T.Type, at index: Int, file: String = #fileID, line: Int = #line) throws -> T {
        try decodeColumn(index, as: type, file: file, line: line)
    }

    /// Decodes the column named `name`.
    public func decode<T: PostgresDecodable>(column name: String, as type: T.Type, file: String = #fileID, line: Int = #line) throws -> T {
        guard let index = columns.firstIndex(of: name) else {
            throw PostgresDecodingError(column: name, index: -1, type: "\(T.self)", reason: "no such column", file: file, line: line)
        }
        return try decodeColumn(index, as: type, file: file, line: line)
    }

    @inlinable
    func decodeColumn<T: PostgresDecodable>(_ index: Int, as type: T.Type, file: String, line: Int) throws -> T {
        guard index < cells.count else {
            throw failure(index, type: "\(T.self)", reason: "row has only \(cells.count) columns", file: file, line: line)
        }
        do {
            return try T.decode(postgresText: cells[index])
        } catch {
            throw failure(index, type: "\(T.self)", reason: error.reason, file: file, line: line)
        }
    }

    @usableFromInline
    func failure(_ index: Int, type: String, reason: String, file: String, line: Int) -> PostgresDecodingError {
        PostgresDecodingError(column: index < columns.count ? columns[index] : "#\(index)", index: index, type: type, reason: reason, file: file, line: line)
    }
}
