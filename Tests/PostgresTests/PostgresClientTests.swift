import Foundation
import Postgres
import Testing
import TestSupport

@Suite("Postgres client against the test PostgreSQL")
struct PostgresClientTests {
    let client = TestEnvironment.postgres()

    /// A fresh schema with one table for the test.
    func schema() async throws -> String {
        let schema = TestEnvironment.uniqueName("pgtest")
        try await client.withConnection { conn in
            try conn.query("CREATE SCHEMA \(identifier: schema)")
            try conn.query("CREATE TABLE \(identifier: schema).items (id bigint PRIMARY KEY, name text, at timestamptz, data bytea, flag boolean, uid uuid, doc jsonb)")
        }
        return schema
    }

    @Test func valuesRoundTripThroughBoundParameters() async throws {
        let s = try await schema()
        let bytes = (0...255).map { UInt8($0) }
        let at = Date(timeIntervalSince1970: 1_764_000_000.123456)
        let uid = UUID()
        let name = "O'Brien \"quoted\" 中文 ☎ \\ back"
        try await client.query("INSERT INTO \(identifier: s).items VALUES (\(Int64(1)), \(name), \(at), \(bytes), \(true), \(uid), \(PostgresJSON(text: #"{"a": [1, 2]}"#)))")
        let row = try await client.query("SELECT id, name, at, data, flag, uid, doc FROM \(identifier: s).items").first!
        let (id, gotName, gotAt, gotBytes, flag, gotUID, doc) = try row.decode(Int64.self, String.self, Date.self, [UInt8].self, Bool.self, UUID.self, PostgresJSON.self)
        #expect(id == 1 && gotName == name && gotBytes == bytes && flag && gotUID == uid)
        #expect(abs(gotAt.timeIntervalSince(at)) < 0.000_001)
        #expect(doc.text == #"{"a": [1, 2]}"#)
        let nullName: String? = nil
        try await client.query("INSERT INTO \(identifier: s).items (id, name) VALUES (\(Int64(2)), \(nullName))")
        let optional = try await client.query("SELECT name FROM \(identifier: s).items WHERE id = \(Int64(2))").first!.decode(String?.self)
        #expect(optional == nil)
        // Text that is not bytea's hex form is refused, not half-decoded.
        for text in [#"\xzz"#, #"\x0"#, "00ff", #"\x0g"#] {
            let row = try await client.query("SELECT \(text)::text AS data").first!
            #expect(throws: PostgresDecodingError.self) { try row.decode([UInt8].self) }
        }
        #expect(try await client.query("SELECT '\\x'::bytea").first!.decode([UInt8].self) == [])
    }

    @Test func arraysOfEveryElementTypeRoundTripWithNullsAndEdgeValues() async throws {
        // Each array is bound in binary; the server writes each element back as text, compared with its own text form.
        func texts<E: PostgresArrayElement>(_ array: [E?]) async throws -> [String?] {
            let query: PostgresQuery = "SELECT v::text FROM unnest(\(PostgresArray(array))) WITH ORDINALITY AS t(v, n) ORDER BY n"
            return try await client.query(query).map { try $0.decode(String?.self) }
        }
        let strings: [String?] = ["", "a\"b", "c\\d", "{e,f}", "NULL", nil, "中文 ☎ 😀", " spaced ", String(repeating: "x", count: 10_000)]
        #expect(try await texts(strings) == strings)
        #expect(try await texts([Int64.min, -1, 0, nil, Int64.max]) == ["-9223372036854775808", "-1", "0", nil, "9223372036854775807"])
        #expect(try await texts([true, nil, false]) == ["true", nil, "false"])
        #expect(try await texts([1.5, -0.25, nil, .infinity]) == ["1.5", "-0.25", nil, "Infinity"])
        let uid = UUID(uuidString: "0190a8e2-7c4b-7def-8123-456789abcdef")!
        #expect(try await texts([uid, nil]) == ["0190a8e2-7c4b-7def-8123-456789abcdef", nil])
        // Before and after PostgreSQL's epoch (2000-01-01), to the microsecond, in UTC.
        let dates: [Date?] = [Date(timeIntervalSince1970: 946_684_800), Date(timeIntervalSince1970: 1_764_000_000.123456),
                              Date(timeIntervalSince1970: 0.000_001), nil, Date(timeIntervalSince1970: -86_400.5)]
        let dateTexts = try await client.withConnection { conn in
            try conn.executeScript("SET TIME ZONE 'UTC'")
            return try conn.query("SELECT v::text FROM unnest(\(PostgresArray(dates))) WITH ORDINALITY AS t(v, n) ORDER BY n").map { try $0.decode(String?.self) }
        }
        #expect(dateTexts == ["2000-01-01 00:00:00+00", "2025-11-24 16:00:00.123456+00", "1970-01-01 00:00:00.000001+00", nil,
                              "1969-12-30 23:59:59.5+00"] as [String?])
        // Empty arrays, an array of only nulls, and element types the statement casts.
        #expect(try await client.query("SELECT cardinality(\(PostgresArray<Int64>([]))), cardinality(\(PostgresArray<String>([nil, nil])))").first!
            .decode(Int.self, Int.self) == (0, 2))
        #expect(try await client.query("SELECT sum(v) FROM unnest(\(PostgresArray<Int64>([1, 2, 3]))::int[]) AS v").first!.decode(Int.self) == 6)
        // A NUL cannot be in PostgreSQL text: the server refuses it rather than storing a cut string.
        await #expect(throws: PostgresError.self) { try await client.query("SELECT \(PostgresArray<String>(["a\u{0}b"])))") }
    }

    @Test func binaryResultsCarryBytesTextAndInt8Exactly() async throws {
        let s = try await schema()
        let bytes = (0...255).map { UInt8($0) } + [0, 0]
        let name = "中文 ☎ O'Brien"
        let empty: [UInt8] = []
        try await client.query("INSERT INTO \(identifier: s).items (id, name, data) VALUES (\(Int64(-5)), \(name), \(bytes)), (\(Int64(1) << 40), NULL, \(empty))")
        let rows = try await client.withConnection { conn in
            try conn.queryBinary("SELECT id, name, data, 7::int4 AS small FROM \(identifier: s).items WHERE id > \(Int64(-10)) ORDER BY id")
        }
        #expect(rows.count == 2 && rows.columns == ["id", "name", "data", "small"])
        #expect(try rows[0].int64(at: 0) == -5 && rows[0].text(at: 1) == name && rows[0].bytes(at: 2) == bytes)
        #expect(try rows[1].int64(at: 0) == 1 << 40 && rows[1].bytes(at: 1) == nil && rows[1].bytes(at: 2) == [])
        // A NULL read as text, an int4 read as int8 and a column past the row's end name the column and are refused.
        #expect(throws: PostgresDecodingError.self) { try rows[1].text(at: 1) }
        #expect(throws: PostgresDecodingError.self) { try rows[0].int64(at: 3) }
        #expect(throws: PostgresDecodingError.self) { try rows[0].bytes(at: 4) }
        // Server errors are thrown as from query(_:), and the connection stays usable.
        let after = try await client.withConnection { conn throws -> Int64 in
            #expect(throws: PostgresError.self) { try conn.queryBinary("SELECT id FROM \(identifier: s).missing") }
            return try conn.queryBinary("SELECT 1::int8 AS one")[0].int64(at: 0)
        }
        #expect(after == 1)
    }

    @Test func injectionAttemptsStayData() async throws {
        let s = try await schema()
        let attack = "x'); DROP TABLE items; --"
        try await client.query("INSERT INTO \(identifier: s).items (id, name) VALUES (\(Int64(1)), \(attack))")
        let names = try await client.query("SELECT name FROM \(identifier: s).items WHERE name = \(attack)").decode(String.self)
        #expect(names == [attack])
        // An identifier with quotes is quoted, not executed.
        let weird = #"odd"; DROP SCHEMA x; --"#
        try await client.query("CREATE SCHEMA \(identifier: weird)")
        let exists = try await client.query("SELECT count(*) FROM pg_namespace WHERE nspname = \(weird)").first!.decode(Int.self)
        #expect(exists == 1)
        try await client.query("DROP SCHEMA \(identifier: weird)")
        let arrays = try await client.query("SELECT count(*) FROM unnest(\(PostgresArray<String>(["a\"b", "c\\d", nil, "{e}"]))::text[]) AS v WHERE v IN ('a\"b', 'c\\d', '{e}')").first!.decode(Int.self)
        #expect(arrays == 3)
    }

    @Test func decodingErrorNamesColumnIndexAndTypeButNotTheValue() async throws {
        let row = try await client.query("SELECT 'secret-value'::text AS phone, 1 AS n").first!
        do {
            _ = try row.decode(Int.self, Int.self)
            Issue.record("decoding text as Int must fail")
        } catch let error as PostgresDecodingError {
            #expect(error.column == "phone" && error.index == 0 && error.type == "Int")
            #expect(!error.description.contains("secret-value"))
        }
        #expect(throws: PostgresDecodingError.self) { _ = try row.decode(column: "missing", as: Int.self) }
        #expect(throws: PostgresDecodingError.self) { _ = try row.decode(Int.self, Int.self, Int.self) }
    }

    @Test func serverErrorsCarrySQLStateWithoutBoundValues() async throws {
        let s = try await schema()
        try await client.query("INSERT INTO \(identifier: s).items (id, name) VALUES (\(Int64(7)), \("a"))")
        do {
            try await client.query("INSERT INTO \(identifier: s).items (id, name) VALUES (\(Int64(7)), \("13800138000"))")
            Issue.record("duplicate key must fail")
        } catch let error as PostgresError {
            #expect(error.isUniqueViolation && error.sqlState == "23505")
            #expect(error.constraint == "items_pkey")
            // The server's detail would read "Key (id)=(7) already exists".
            #expect(!error.description.contains("=(7)") && !error.description.contains("13800138000"))
        }
        do {
            try await client.query("SELECT \("not-a-number")::int")
            Issue.record("bad cast must fail")
        } catch let error as PostgresError {
            #expect(error.sqlState == "22P02" && !error.description.contains("not-a-number"))
        }
        await #expect(throws: PostgresError.self) { try await client.query("SELEC 1") }
    }

    @Test func transactionsCommitOrRollBackWhole() async throws {
        let s = try await schema()
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await client.withTransaction { tx in
                try tx.query("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(1)))")
                throw Boom()
            }
        }
        try await client.withTransaction { tx in
            try tx.query("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(2)))")
            try tx.query("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(3)))")
        }
        let ids = try await client.query("SELECT id FROM \(identifier: s).items ORDER BY id").decode(Int64.self)
        #expect(ids == [2, 3])
        // The connection is clean for the next user after a failed transaction.
        let one = try await client.query("SELECT 1").first!.decode(Int.self)
        #expect(one == 1)
    }

    @Test func statementsSentWithTheNextOneRunFirstAndTheirFailureRollsBackTheTransaction() async throws {
        let s = try await schema()
        // Rides with the next statement: its effect is visible to that statement.
        let seen = try await client.withTransaction { tx -> Int in
            tx.sendWithNext("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(1)))")
            return try tx.query("SELECT count(*) FROM \(identifier: s).items").first!.decode(Int.self)
        }
        #expect(seen == 1)
        // With nothing after it, it rides with the COMMIT.
        try await client.withTransaction { tx in tx.sendWithNext("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(2)))") }
        // Its failure is the next call's error (a unique violation naming the constraint), and nothing of the transaction stays.
        await #expect {
            try await client.withTransaction { tx in
                tx.sendWithNext("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(3)))")
                tx.sendWithNext("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(1)))")
                _ = try tx.pipeline(["INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(4)))"])
            }
        } throws: { ($0 as? PostgresError)?.isUniqueViolation == true && ($0 as? PostgresError)?.constraint == "items_pkey" }
        let ids = try await client.query("SELECT id FROM \(identifier: s).items ORDER BY id").decode(Int64.self)
        #expect(ids == [1, 2])
    }

    @Test func pipelineRunsManyStatementsAndFailsWhole() async throws {
        let s = try await schema()
        let inserts: [PostgresQuery] = (1...1_000).map { "INSERT INTO \(identifier: s).items (id, name) VALUES (\(Int64($0)), \("n\($0)")) RETURNING id" }
        let results = try await client.withTransaction { try $0.pipeline(inserts) }
        #expect(results.count == 1_000)
        #expect(try results[999].first!.decode(Int64.self) == 1_000)

        var statements: [PostgresQuery] = (2_001...2_010).map { "INSERT INTO \(identifier: s).items (id) VALUES (\(Int64($0)))" }
        statements.insert("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(1)))", at: 5)  // duplicate
        let failing = statements
        await #expect(throws: PostgresError.self) {
            try await client.withTransaction { try $0.pipeline(failing) }
        }
        let count = try await client.query("SELECT count(*) FROM \(identifier: s).items").first!.decode(Int.self)
        #expect(count == 1_000)
    }

    @Test func poolServesManyConcurrentCallersWithFewConnections() async throws {
        let small = TestEnvironment.postgres(maxConnections: 3)
        let pids = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<60 {
                group.addTask { try await small.query("SELECT pg_backend_pid() FROM pg_sleep(0.01)").first!.decode(Int.self) }
            }
            var all: [Int] = []
            for try await pid in group { all.append(pid) }
            return all
        }
        #expect(pids.count == 60)
        #expect(Set(pids).count <= 3)
        await small.shutdown()
        await #expect(throws: PostgresError.self) { try await small.query("SELECT 1") }
    }

    @Test func repeatedStatementsArePreparedOncePerConnection() async throws {
        let single = TestEnvironment.postgres(maxConnections: 1)
        for i in 0..<50 {
            #expect(try await single.query("SELECT \(i)::int + 1").first!.decode(Int.self) == i + 1)
        }
        let prepared = try await single.query("SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int + 1'").first!.decode(Int.self)
        #expect(prepared == 1)
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await single.withTransaction { tx in
                try tx.query("SELECT \(1)::int + 1")
                throw Boom()
            }
        }
        // Still prepared after the rollback; pipelines reuse it too.
        #expect(try await single.query("SELECT \(5)::int + 1").first!.decode(Int.self) == 6)
        let piped = try await single.withConnection { try $0.pipeline(["SELECT \(7)::int + 1", "SELECT \(8)::int + 1"]) }
        let values: [Int] = try piped.map { rows -> Int in try rows.first!.decode(Int.self) }
        #expect(values == [8, 9])
        await single.shutdown()
    }

    @Test func reusedPlanningPlansAStatementOnceAndOnlyInItsTransaction() async throws {
        let s = try await schema()
        let single = TestEnvironment.postgres(maxConnections: 1)
        @Sendable func insert(_ i: Int, in tx: PostgresConnection) throws {
            try tx.query("INSERT INTO \(identifier: s).items (id, name) SELECT * FROM unnest(\(PostgresArray([Int64(i)]))::bigint[], \(PostgresArray(["n\(i)"]))::text[])")
        }
        @Sendable func plans() async throws -> (generic: Int, custom: Int) {
            try await single.query("""
                SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO %' || \(s) || '%unnest%'
                """).first!.decode(Int.self, Int.self)
        }
        // PostgreSQL's default plans a statement's first five executions for their values (and then decides).
        for i in 0..<3 { try await single.withTransaction { try insert(i, in: $0) } }
        #expect(try await plans() == (0, 3))
        // Reused: the generic plan from the first execution on; the SET LOCAL ends with the transaction.
        for i in 3..<23 { try await single.withTransaction(planning: .reused) { try insert(i, in: $0) } }
        #expect(try await plans() == (20, 3))
        try await single.withTransaction { try insert(23, in: $0) }
        #expect(try await plans() == (20, 4))
        // Also when the transaction's first statement is a script, and when it sends nothing at all.
        try await single.withTransaction(planning: .reused) { tx in
            try tx.executeScript("SELECT 1")
            try insert(24, in: tx)
        }
        #expect(try await plans() == (21, 4))
        try await single.withTransaction(planning: .reused) { _ in }
        #expect(try await single.query("SHOW plan_cache_mode").first!.decode(String.self) == "auto")
        #expect(try await single.query("SELECT count(*) FROM \(identifier: s).items").first!.decode(Int.self) == 25)
        await single.shutdown()
    }

    @Test func pipelineAndCommitEndsTheTransactionInTheSameRoundTrip() async throws {
        let s = try await schema()
        let single = TestEnvironment.postgres(maxConnections: 1)
        let client = self.client
        @Sendable func ids() async throws -> [Int64] { try await client.query("SELECT id FROM \(identifier: s).items ORDER BY id").decode(Int64.self) }
        // Its rows come back, the statements queued for the COMMIT run, and everything is committed.
        let rows = try await single.withTransaction { tx -> [Int64] in
            try tx.query("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(1)))")
            tx.sendWithCommit("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(3)))")
            let results = try tx.pipelineAndCommit(["INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(2))) RETURNING id * 10"])
            #expect(!tx.isInTransaction)
            return try results[0].decode(Int64.self)
        }
        #expect(rows == [20])
        #expect(try await ids() == [1, 2, 3])

        // Nothing may run in the transaction after it: the mistake is an error, not a statement outside the transaction.
        await #expect {
            try await single.withTransaction { tx in
                _ = try tx.pipelineAndCommit(["INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(4)))"])
                try tx.query("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(5)))")
            }
        } throws: { ($0 as? PostgresError)?.kind == .protocolViolation }
        #expect(try await ids() == [1, 2, 3, 4])

        // A failing statement commits nothing: not the transaction's earlier statements, not the queued ones.
        await #expect {
            try await single.withTransaction { tx in
                try tx.query("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(6)))")
                tx.sendWithCommit("INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(7)))")
                _ = try tx.pipelineAndCommit(["INSERT INTO \(identifier: s).items (id) VALUES (\(Int64(1)))"])
            }
        } throws: { ($0 as? PostgresError)?.isUniqueViolation == true }
        #expect(try await ids() == [1, 2, 3, 4])
        // The connection is clean afterwards, and outside a transaction the call is refused.
        #expect(try await single.query("SELECT 1").first!.decode(Int.self) == 1)
        await #expect {
            try await single.withConnection { _ = try $0.pipelineAndCommit(["SELECT 1"]) }
        } throws: { ($0 as? PostgresError)?.kind == .protocolViolation }
        await single.shutdown()
    }

    @Test func connectionFailureIsAConnectionError() async throws {
        let bad = PostgresClient(configuration: PostgresConfiguration(connectionString: "postgresql://funnel@127.0.0.1:1/none?connect_timeout=2"), logger: TestEnvironment.logger())
        do {
            try await bad.query("SELECT 1")
            Issue.record("must fail")
        } catch let error as PostgresError {
            #expect(error.kind == .connection)
        }
        await bad.shutdown()
    }
}

@Suite("Migrations")
struct MigrationTests {
    let client = TestEnvironment.postgres(maxConnections: 8)
    let migrations = [
        PostgresMigration(version: 1, name: "create things", sql: "CREATE TABLE things (id bigint PRIMARY KEY); CREATE INDEX things_idx ON things (id);"),
        PostgresMigration(version: 2, name: "add name", sql: "ALTER TABLE things ADD COLUMN name text;"),
    ]

    @Test func appliesInOrderOnceAndIntoItsOwnSchema() async throws {
        let schema = TestEnvironment.uniqueName("mig")
        let migrator = PostgresMigrator(schema: schema, migrations: migrations.reversed())
        #expect(try await migrator.migrate(client, logger: TestEnvironment.logger()) == [1, 2])
        #expect(try await migrator.migrate(client, logger: TestEnvironment.logger()) == [])
        #expect(try await migrator.isCurrent(client))
        try await client.query("INSERT INTO \(identifier: schema).things (id, name) VALUES (\(Int64(1)), \("x"))")
    }

    @Test func changedAppliedMigrationIsRefused() async throws {
        let schema = TestEnvironment.uniqueName("mig")
        try await PostgresMigrator(schema: schema, migrations: migrations).migrate(client, logger: TestEnvironment.logger())
        var changed = migrations
        changed[1] = PostgresMigration(version: 2, name: "add name", sql: "ALTER TABLE things ADD COLUMN name varchar(10);")
        await #expect(throws: PostgresError.self) {
            try await PostgresMigrator(schema: schema, migrations: changed).migrate(client, logger: TestEnvironment.logger())
        }
    }

    @Test func failingMigrationLeavesNothingHalfApplied() async throws {
        let schema = TestEnvironment.uniqueName("mig")
        let broken = migrations + [PostgresMigration(version: 3, name: "broken", sql: "CREATE TABLE t3 (id int); SELECT no_such_function();")]
        await #expect(throws: PostgresError.self) {
            try await PostgresMigrator(schema: schema, migrations: broken).migrate(client, logger: TestEnvironment.logger())
        }
        let t3 = try await client.query("SELECT to_regclass(\(schema + ".t3")) IS NULL").first!.decode(Bool.self)
        #expect(t3)
        #expect(try await !PostgresMigrator(schema: schema, migrations: broken).isCurrent(client))
    }

    @Test func replicasStartingTogetherApplyEachMigrationOnce() async throws {
        let schema = TestEnvironment.uniqueName("mig")
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let own = TestEnvironment.postgres(maxConnections: 1)
                    defer { Task { await own.shutdown() } }
                    return try await PostgresMigrator(schema: schema, migrations: migrations).migrate(own, logger: TestEnvironment.logger())
                }
            }
            var all: [Int] = []
            for try await versions in group { all += versions }
            return all
        }
        #expect(applied.sorted() == [1, 2])
    }
}
