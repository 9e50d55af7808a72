@preconcurrency import CLibPQ
import FastText
import Foundation
import Logging

/// One libpq connection. Not thread-safe and not `Sendable`: it is owned by one thread at a time (the pool
/// gives each connection a thread of its own), and all its calls block, so never call it from a NIO event loop
/// or the cooperative pool.
public final class PostgresConnection {
    private var conn: OpaquePointer?
    private let logger: Logger
    /// How many statements one pipeline round trip carries at most (keeps socket buffers from filling).
    public var pipelineChunkSize = 256
    /// Inside ``transaction(_:)`` before its first statement: BEGIN is sent with that statement.
    private var pendingBegin = false
    /// How the pending transaction's statements are planned (set with its BEGIN).
    private var planning = StatementPlanning.automatic
    /// Statements sent together with the transaction's COMMIT (``sendWithCommit(_:)``).
    private var commitTail: [PostgresQuery] = []
    /// Statements sent ahead of the transaction's next statement (``sendWithNext(_:)``).
    private var head: [PostgresQuery] = []
    /// Inside ``transaction(_:)`` after ``pipelineAndCommit(_:file:line:)``: the transaction is over.
    private var committed = false
    /// Inside ``transaction(_:)``.
    private var inTransaction = false

    /// Inside ``transaction(_:)``: runs `query` just before the next statement the transaction sends (or its
    /// COMMIT), in the same round trip. Its rows are not returned; if it fails, that next call throws its error
    /// (the statements after it are not run) and the transaction rolls back.
    public func sendWithNext(_ query: PostgresQuery) {
        head.append(query)
    }

    /// Inside ``transaction(_:)``: runs `query` just before COMMIT, in the same round trip. Its rows are not
    /// returned; if it fails, the transaction rolls back and ``transaction(_:)`` throws.
    public func sendWithCommit(_ query: PostgresQuery) {
        commitTail.append(query)
    }
    /// Inside ``transaction(_:)``: runs `queries`, then the statements queued by ``sendWithCommit(_:)`` and COMMIT,
    /// all in one round trip, and returns the rows of `queries`. It ends the transaction: the body may send nothing
    /// after it (a later statement throws). If a statement fails, nothing is committed and the transaction rolls back.
    public func pipelineAndCommit(_ queries: [PostgresQuery], file: String = #fileID, line: Int = #line) throws -> [PostgresRows] {
        try requireOpenTransaction(file: file, line: line)
        let tail = commitTail
        commitTail = []
        let results = try pipeline(queries + tail + ["COMMIT"], file: file, line: line)
        committed = true
        return Array(results.prefix(queries.count))
    }

    /// Server-side prepared statements of this connection, by SQL text and parameter types: a statement is
    /// parsed and planned once per connection, not on every execution.
    private var prepared: [PreparedKey: String] = [:]
    /// The most statements kept prepared per connection (oldest kept; beyond it, statements run unprepared).
    public var maxPreparedStatements = 256

    struct PreparedKey: Hashable {
        let sql: String
        let oids: [UInt32]
    }

    /// Connects (blocking) with a libpq connection string or URI, then sets UTC and ISO dates for the session.
    public init(connectionString: String, logger: Logger) throws {
        self.logger = logger
        guard let conn = PQconnectdb(connectionString) else {
            throw PostgresError(kind: .connection, message: "libpq could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn)).trimmingSpacesAndNewlines
            PQfinish(conn)
            throw PostgresError(kind: .connection, message: message)
        }
        self.conn = conn
        try executeScript("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; SET client_min_messages = WARNING")
    }

    deinit {
        if let conn { PQfinish(conn) }
    }

    /// True while the connection is usable.
    public var isHealthy: Bool {
        guard let conn else { return false }
        return PQstatus(conn) == CONNECTION_OK
    }

    /// True inside a transaction block (also when it failed and awaits ROLLBACK).
    public var isInTransaction: Bool {
        guard let conn else { return false }
        let status = PQtransactionStatus(conn)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// Closes the connection.
    public func close() {
        if let conn { PQfinish(conn) }
        conn = nil
    }

    /// Runs one statement with bound parameters and returns its rows.
    @discardableResult
    public func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) throws -> PostgresRows {
        try requireNotCommitted(file: file, line: line)
        if pendingBegin || !head.isEmpty { return try pipeline([query], file: file, line: line)[0] }
        return try consume(try execute(query, resultFormat: 0, file: file, line: line), file: file, line: line)
    }

    /// Runs one statement with bound parameters and returns its rows in PostgreSQL's binary format: a bytea column
    /// arrives as its bytes instead of hex text twice its size that both sides must convert (the outbox relay reads
    /// thousands of payloads a second).
    public func queryBinary(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) throws -> PostgresBinaryRows {
        try requireNotCommitted(file: file, line: line)
        // Statements waiting to travel with the next one (BEGIN included) go first, in their own round trip.
        if pendingBegin || !head.isEmpty { _ = try pipeline([], file: file, line: line) }
        let result = try execute(query, resultFormat: 1, file: file, line: line)
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK: break
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY: return PostgresBinaryRows(columns: [], cells: [])
        default: throw serverError(result, file: file, line: line)
        }
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var cells: [[[UInt8]?]] = []
        cells.reserveCapacity(rowCount)
        for r in 0..<Int32(rowCount) {
            var row: [[UInt8]?] = []
            row.reserveCapacity(columnCount)
            for c in 0..<Int32(columnCount) {
                if PQgetisnull(result, r, c) == 1 {
                    row.append(nil)
                } else {
                    let length = Int(PQgetlength(result, r, c))
                    let value = UnsafeRawPointer(PQgetvalue(result, r, c)!)
                    row.append([UInt8](UnsafeRawBufferPointer(start: value, count: length)))
                }
            }
            cells.append(row)
        }
        return PostgresBinaryRows(columns: columns, cells: cells)
    }

    /// Runs SQL text with no parameters; several statements may be separated by semicolons.
    /// For migrations and session settings only: never pass text built from input.
    public func executeScript(_ sql: String, file: String = #fileID, line: Int = #line) throws {
        try requireNotCommitted(file: file, line: line)
        let conn = try liveConnection()
        if !head.isEmpty { _ = try pipeline([]) }
        let text = pendingBegin ? (beginStatements + [sql]).joined(separator: "; ") : sql
        pendingBegin = false
        _ = try consume(PQexec(conn, text), file: file, line: line)
    }

    @discardableResult
    /// Sends `queries` in pipeline mode (chunks of ``pipelineChunkSize`` per round trip) and returns each
    /// one's rows, in order. The first failure is thrown after the pipeline is drained; inside a transaction
    /// it leaves the transaction failed, so the caller rolls back.
    public func pipeline(_ queries: [PostgresQuery], file: String = #fileID, line: Int = #line) throws -> [PostgresRows] {
        try requireNotCommitted(file: file, line: line)
        if !head.isEmpty {
            let sent = head
            head = []
            return Array(try pipeline(sent + queries, file: file, line: line).dropFirst(sent.count))
        }
        if pendingBegin {
            // The transaction's BEGIN travels with its first statements: one round trip fewer per transaction.
            pendingBegin = false
            let begin = beginStatements.map { PostgresQuery(unsafeSQL: $0) }
            return Array(try pipeline(begin + queries, file: file, line: line).dropFirst(begin.count))
        }
        var all: [PostgresRows] = []
        all.reserveCapacity(queries.count)
        var start = 0
        while start < queries.count {
            let end = min(start + pipelineChunkSize, queries.count)
            all += try pipelineChunk(queries[start..<end], file: file, line: line)
            start = end
        }
        return all
    }

    private func pipelineChunk(_ queries: ArraySlice<PostgresQuery>, file: String, line: Int) throws -> [PostgresRows] {
        let conn = try liveConnection()
        // Prepare what this connection has not seen yet, before entering pipeline mode.
        let names = try queries.map { try preparedName(for: $0, file: file, line: line) }
        guard PQenterPipelineMode(conn) == 1 else { throw connectionError() }
        defer { _ = PQexitPipelineMode(conn) }
        for (query, name) in zip(queries, names) {
            let sent = withParameters(query) { count, types, values, lengths, formats in
                if let name { return PQsendQueryPrepared(conn, name, count, values, lengths, formats, 0) }
                return PQsendQueryParams(conn, query.sql, count, types, values, lengths, formats, 0)
            }
            guard sent == 1 else { throw connectionError() }
        }
        guard PQpipelineSync(conn) == 1 else { throw connectionError() }

        var results: [PostgresRows] = []
        results.reserveCapacity(queries.count)
        var firstError: (any Error)?
        for _ in queries {
            // Each query yields its result, then NULL.
            var rows: PostgresRows?
            while let result = PQgetResult(conn) {
                if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
                    PQclear(result)
                    continue
                }
                do { rows = try consume(result, file: file, line: line) } catch { if firstError == nil { firstError = error } }
            }
            results.append(rows ?? PostgresRows(columns: [], cells: [], affectedRows: 0))
        }
        // The sync point.
        while let result = PQgetResult(conn) {
            let status = PQresultStatus(result)
            PQclear(result)
            if status == PGRES_PIPELINE_SYNC { break }
        }
        if let firstError { throw firstError }
        return results
    }

    /// Runs `body` inside BEGIN … COMMIT; rolls back and rethrows if it throws. `planning` applies to the
    /// transaction's statements only (a `SET LOCAL` sent with the BEGIN).
    public func transaction<T>(planning: StatementPlanning = .automatic, _ body: (PostgresConnection) throws -> T) throws -> T {
        pendingBegin = true
        self.planning = planning
        inTransaction = true
        committed = false
        commitTail = []
        head = []
        defer { inTransaction = false; committed = false }
        do {
            let value = try body(self)
            if committed {
                return value
            } else if !commitTail.isEmpty || !head.isEmpty {
                let tail = commitTail
                commitTail = []
                _ = try pipeline(tail + ["COMMIT"])
            } else if pendingBegin {
                pendingBegin = false  // nothing was sent: nothing to commit
            } else {
                try executeScript("COMMIT")
            }
            return value
        } catch {
            commitTail = []
            head = []
            let begun = !pendingBegin
            pendingBegin = false
            if committed { throw error }
            if begun && isHealthy { try? executeScript("ROLLBACK") }
            throw error
        }
    }

    // MARK: - libpq plumbing

    /// What opens the pending transaction: BEGIN, and the planning setting when it is not the default.
    private var beginStatements: [String] { ["BEGIN"] + (planning.setting.map { [$0] } ?? []) }

    private func requireNotCommitted(file: String, line: Int) throws {
        if committed {
            throw PostgresError(kind: .protocolViolation, message: "the transaction was committed by pipelineAndCommit; nothing may run in it afterwards",
                                file: file, line: line)
        }
    }

    private func requireOpenTransaction(file: String, line: Int) throws {
        try requireNotCommitted(file: file, line: line)
        if !inTransaction {
            throw PostgresError(kind: .protocolViolation, message: "pipelineAndCommit runs only inside transaction(_:)", file: file, line: line)
        }
    }

    /// The prepared statement's name for `query` on this connection, preparing it first if needed; nil for
    /// statements without parameters (nothing to gain) or once the cache is full.
    private func preparedName(for query: PostgresQuery, file: String, line: Int) throws -> String? {
        if query.binds.isEmpty { return nil }
        let key = PreparedKey(sql: query.sql, oids: query.binds.map(\.oid))
        if let name = prepared[key] { return name }
        guard prepared.count < maxPreparedStatements else { return nil }
        let conn = try liveConnection()
        let name = "funnel_\(prepared.count)"
        let result = key.oids.withUnsafeBufferPointer { oids in
            PQprepare(conn, name, query.sql, Int32(oids.count), oids.baseAddress)
        }
        _ = try consume(result, file: file, line: line)
        prepared[key] = name
        return name
    }

    private func liveConnection() throws -> OpaquePointer {
        guard let conn else { throw PostgresError(kind: .connection, message: "connection is closed") }
        if PQstatus(conn) != CONNECTION_OK {
            throw PostgresError(kind: .connection, message: "connection lost")
        }
        return conn
    }

    private func connectionError(file: String = #fileID, line: Int = #line) -> PostgresError {
        let message = conn.map { String(cString: PQerrorMessage($0)).trimmingSpacesAndNewlines } ?? "closed"
        return PostgresError(kind: .connection, message: message, file: file, line: line)
    }

    /// Runs `query` (prepared when it can be) and returns its result, to be cleared by the caller; `resultFormat`
    /// 0 asks for text, 1 for binary.
    private func execute(_ query: PostgresQuery, resultFormat: Int32, file: String, line: Int) throws -> OpaquePointer {
        let conn = try liveConnection()
        let name = try preparedName(for: query, file: file, line: line)
        let result = withParameters(query) { count, types, values, lengths, formats in
            if let name { return PQexecPrepared(conn, name, count, values, lengths, formats, resultFormat) }
            return PQexecParams(conn, query.sql, count, types, values, lengths, formats, resultFormat)
        }
        guard let result else { throw connectionError(file: file, line: line) }
        return result
    }

    private func withParameters<R>(_ query: PostgresQuery,
                                   _ body: (Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R) -> R {
        let binds = query.binds
        if binds.isEmpty { return body(0, nil, nil, nil, nil) }
        var types = [Oid](repeating: 0, count: binds.count)
        var lengths = [Int32](repeating: 0, count: binds.count)
        var formats = [Int32](repeating: 0, count: binds.count)
        var storage = [UnsafeMutablePointer<CChar>?](repeating: nil, count: binds.count)
        defer { for pointer in storage { pointer?.deallocate() } }
        for (i, bind) in binds.enumerated() {
            types[i] = bind.oid
            switch bind.value {
            case .null:
                break
            case .text(let text):
                let utf8 = text.utf8
                let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count + 1)
                utf8.withContiguousStorageIfAvailable { src in
                    src.withMemoryRebound(to: CChar.self) { buffer.update(from: $0.baseAddress!, count: src.count) }
                } ?? { _ = UnsafeMutableBufferPointer(start: buffer, count: utf8.count).initialize(from: utf8.map { CChar(bitPattern: $0) }) }()
                buffer[utf8.count] = 0
                storage[i] = buffer
                lengths[i] = Int32(utf8.count)
            case .bytes(let bytes):
                let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
                bytes.withUnsafeBytes { src in
                    if let base = src.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: src.count) }
                }
                storage[i] = buffer
                lengths[i] = Int32(bytes.count)
                formats[i] = 1
            }
        }
        let values = storage.map { UnsafePointer($0) }
        return values.withUnsafeBufferPointer { valuesBuffer in
            body(Int32(binds.count), types, valuesBuffer.baseAddress, lengths, formats)
        }
    }

    private func consume(_ result: OpaquePointer?, file: String, line: Int) throws -> PostgresRows {
        guard let result else { throw connectionError(file: file, line: line) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY, PGRES_PIPELINE_SYNC:
            return PostgresRows(columns: [], cells: [], affectedRows: Self.affectedRows(result))
        case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
            let rowCount = Int(PQntuples(result))
            let columnCount = Int(PQnfields(result))
            let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
            var cells: [[String?]] = []
            cells.reserveCapacity(rowCount)
            for r in 0..<rowCount {
                var row: [String?] = []
                row.reserveCapacity(columnCount)
                for c in 0..<columnCount {
                    if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                        row.append(nil)
                    } else {
                        row.append(String(cString: PQgetvalue(result, Int32(r), Int32(c))))
                    }
                }
                cells.append(row)
            }
            return PostgresRows(columns: columns, cells: cells, affectedRows: rowCount)
        default:
            throw serverError(result, file: file, line: line)
        }
    }

    /// The error a failed result carries: SQLSTATE, constraint, table and column (never bound values).
    private func serverError(_ result: OpaquePointer, file: String, line: Int) -> PostgresError {
        func field(_ code: Int32) -> String? {
            PQresultErrorField(result, code).map { String(cString: $0) }
        }
        let sqlState = field(Int32(UInt8(ascii: "C")))
        let message = field(Int32(UInt8(ascii: "M"))) ?? String(cString: PQresultErrorMessage(result))
        return PostgresError(
            kind: sqlState == nil ? .connection : .server, sqlState: sqlState, message: message,
            constraint: field(Int32(UInt8(ascii: "n"))), table: field(Int32(UInt8(ascii: "t"))),
            column: field(Int32(UInt8(ascii: "c"))), file: file, line: line
        )
    }

    private static func affectedRows(_ result: OpaquePointer) -> Int {
        guard let text = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }
}
