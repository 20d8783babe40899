import Foundation
import PostgresNIO
import StrataCore

/// Rebuilding projections from the log while the catalog keeps serving, and verifying that the live
/// projections are what the log says.
public struct ProjectionMaintenance: Sendable {
    public let client: PostgresClient
    public let catalog: ProjectionCatalog
    public let logger: Logger
    /// Events read and replayed per round trip. (Against 20,000, in three series of alternating replays
    /// of 1M events: medians 2–5% faster, the replay's peak memory 224 → 261 MB.)
    public var batchSize = 40_000

    public init(client: PostgresClient, catalog: ProjectionCatalog, logger: Logger) {
        self.client = client
        self.catalog = catalog
        self.logger = logger
    }

    /// How far a rebuild or verification has come.
    public struct Progress: Sendable {
        public var eventsDone: Int64
        public var eventsTotal: Int64
        public var elapsed: Duration

        public var eventsPerSecond: Double {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return seconds > 0 ? Double(eventsDone) / seconds : 0
        }
    }

    public struct RebuildReport: Sendable {
        public var projections: [String]
        public var events: Int64
        public var position: Int64
        public var elapsed: Duration
        /// Where the bulk load's time went; the stages overlap, so they add up to more than it took.
        public var stages: BulkLoad.Stages
    }

    /// Rebuilds the named projections (all by default) into a fresh schema and swaps them in.
    ///
    /// 1. The log up to its current head is replayed in memory and bulk-loaded with COPY: two
    ///    connections read spans of the log ahead of the replay, and three load the rows, each in a
    ///    transaction of its own that also creates its share of the tables (so PostgreSQL can skip the
    ///    WAL for them when `wal_level` is `minimal`), with their indexes built once at the end; nothing
    ///    holds a lock the catalog needs, and writers keep appending (and projecting inline into the
    ///    live tables).
    /// 2. The events appended meanwhile are applied to the new tables with the inline projector, until
    ///    the gap is small (``eventsLeftForTheSwap``).
    /// 3. One short transaction takes the log's append lock, applies the last few events, moves the old
    ///    tables out and the new ones in, and records the definition's hash. The old tables are dropped
    ///    once it has committed.
    ///
    /// A crash before step 3 commits leaves the live tables untouched; the next rebuild drops the
    /// half-built schema and starts again.
    ///
    /// Rebuilds run one at a time, across processes: a second waits for the first (they share the
    /// scratch schema) and then rebuilds from the log as it is by then.
    @discardableResult
    public func rebuild(
        _ names: [String]? = nil,
        progress: @escaping @Sendable (Progress) -> Void = { _ in }
    ) async throws -> RebuildReport {
        let definitions = try select(names)
        // A connection lost under a COPY leaves it waiting forever inside PostgresNIO ("copyFrom leaked
        // its continuation"): a PostgreSQL restart would hang the rebuild, and its caller with it. The
        // rebuild fails instead as soon as one of its connections closes.
        return try await withConnectionWatch(client: client, logger: logger) { watch in
            try await client.withConnection { lockHolder in
                try await watch.using(lockHolder) {
                    try await lockHolder.perform("SELECT pg_advisory_lock(\(Self.rebuildLock))", logger: logger)
                    do {
                        let report = try await rebuildHoldingTheLock(definitions, watch: watch, progress: progress)
                        try await lockHolder.perform(
                            "SELECT pg_advisory_unlock(\(Self.rebuildLock))", logger: logger)
                        return report
                    } catch {
                        // Still holding the lock, so the half-built tables are this rebuild's own. (After a
                        // crash they stay until the next rebuild drops them.)
                        try? await lockHolder.perform(
                            "DROP SCHEMA IF EXISTS \(unescaped: Self.rebuildSchema) CASCADE", logger: logger)
                        try? await lockHolder.perform(
                            "SELECT pg_advisory_unlock(\(Self.rebuildLock))", logger: logger)
                        throw error
                    }
                }
            }
        }
    }

    /// The session-level advisory lock a rebuild holds from start to swap.
    static let rebuildLock: Int64 = 6_004_514_643_731_631_687
    /// Where a rebuild builds the new tables.
    static let rebuildSchema = "strata_rebuild"
    /// At most about this many events are left for the swap to apply, while it holds the log's append
    /// lock and writers wait: each takes a few statements.
    static let eventsLeftForTheSwap: Int64 = 500
    /// Where a swap moves the tables it replaces, until they are dropped.
    static let replacedSchema = "strata_replaced"
    /// How many connections load a rebuild's tables, each in a transaction of its own.
    static let loaders = 3
    /// The most connections a rebuild holds at once: the lock holder, two readers of the log, the loaders.
    public static let connectionsAtOnce = 1 + 2 + loaders

    private func rebuildHoldingTheLock(
        _ definitions: [ProjectionCatalog.Definition],
        watch: ConnectionWatch,
        progress: @Sendable (Progress) -> Void
    ) async throws -> RebuildReport {
        let tables = Set(definitions.map(\.name))
        let started = ContinuousClock.now
        let schema = Self.rebuildSchema
        var replay = ParallelReplay(tables: tables)
        let load = BulkLoad(schema: schema, definitions: definitions, batchSize: batchSize, logger: logger)

        // Two connections read the log and three load the tables, so that PostgreSQL's side of both can
        // run on every core of a small machine while the replay runs there too. With a third, the
        // version table gets a loader of its own, and the index builds at the end spread over both cores
        // (two series of alternating replays of 1M events: medians 3.8 s and 4.1 s, against 4.1 s and 4.3 s
        // with two loaders).
        let stages = try await client.withConnections(2 + Self.loaders) { connections in
            try await watch.using(connections) {
                let (reader, secondReader) = (connections[0], connections[1])
                try await reader.perform("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE", logger: logger)
                // The tables a swap replaced, if the process stopped before it dropped them.
                try await reader.perform(
                    "DROP SCHEMA IF EXISTS \(unescaped: Self.replacedSchema) CASCADE", logger: logger)
                let weights = try await loadingCosts(of: definitions, on: reader)
                let head = try await lastPosition(on: reader)
                return try await load.run(
                    &replay, upTo: head, reading: reader, alsoReading: [secondReader],
                    loading: Array(connections.dropFirst(2)), weights: weights
                ) { done in
                    progress(Progress(eventsDone: done, eventsTotal: head, elapsed: ContinuousClock.now - started))
                }
            }
        }
        try await client.withConnection { connection in
            try await watch.using(connection) {
                // Catch up without the lock while the gap is large.
                while try await lastPosition(on: connection) - replay.position > Self.eventsLeftForTheSwap {
                    try await inSchema(schema, on: connection) {
                        try await catchUp(&replay, on: connection)
                    }
                }
            }
        }
        let finalPosition = try await client.transaction(logger: logger) { connection in
            try await watch.using(connection) {
                _ = try await EventLogWriter.begin(on: connection, logger: logger)
                try await connection.perform("SET LOCAL search_path TO \(unescaped: schema), public", logger: logger)
                try await catchUp(&replay, on: connection)
                try await connection.perform("SET LOCAL search_path TO public", logger: logger)
                try await lockLiveTables(definitions.map(\.name), on: connection)
                try await connection.perform("CREATE SCHEMA \(unescaped: Self.replacedSchema)", logger: logger)
                for definition in definitions {
                    try await connection.perform(
                        "ALTER TABLE IF EXISTS public.\(unescaped: definition.name) SET SCHEMA \(unescaped: Self.replacedSchema)",
                        logger: logger)
                    try await connection.perform(
                        "ALTER TABLE \(unescaped: schema).\(unescaped: definition.name) SET SCHEMA public",
                        logger: logger)
                    try await connection.perform(
                        """
                        INSERT INTO projections (name, definition_hash, applied_position, rebuilt_at)
                        VALUES (\(definition.name), \(definition.hash), \(replay.position), now())
                        ON CONFLICT (name) DO UPDATE SET definition_hash = excluded.definition_hash,
                            applied_position = excluded.applied_position, rebuilt_at = excluded.rebuilt_at
                        """,
                        logger: logger
                    )
                }
                try await connection.perform("DROP SCHEMA \(unescaped: schema) CASCADE", logger: logger)
                return replay.position
            }
        }
        // Not in the swap: dropping the old tables deletes their files as it commits (94 ms for the
        // tables of a million events), and the swap holds the log's append lock, so writers would wait.
        try await client.perform("DROP SCHEMA \(unescaped: Self.replacedSchema) CASCADE", logger: logger)
        let elapsed = ContinuousClock.now - started
        logger.info(
            "projections rebuilt",
            metadata: ["projections": "\(tables.sorted())", "position": "\(finalPosition)", "elapsed": "\(elapsed)"])
        return RebuildReport(
            projections: definitions.map(\.name), events: finalPosition, position: finalPosition, elapsed: elapsed,
            stages: stages)
    }

    /// How long the swap waits for a table that a read holds before it lets go of all it took; well
    /// below PostgreSQL's `deadlock_timeout` (1 s), so that the swap gives way before a deadlock is
    /// broken by ending one side.
    static let swapLockWait = "100ms"
    /// How many times the swap tries to take the live tables before it gives up with a 503.
    static let swapLockAttempts = 100

    /// Takes every live table the swap replaces, and the registry of projections, all of them or none.
    ///
    /// Taken one by one, as the swap's `ALTER`s took them, a read that held a later table and then
    /// asked for an earlier one (a search reads the words, then the states) waited for the swap while the
    /// swap waited for it, and PostgreSQL ended one of them as a deadlock: a search answered 500. Reads
    /// take tables in their own queries' order, so no order of the swap's suits them all. So the swap
    /// waits for a table only briefly, and on a timeout lets go of every table it took, which lets the
    /// read go on; then it tries again, after a pause of a read's length.
    private func lockLiveTables(_ names: [String], on connection: PostgresConnection) async throws {
        let live = try await connection.rows(
            """
            SELECT name FROM unnest(\(names)) AS name
            WHERE to_regclass('public.' || quote_ident(name)) IS NOT NULL ORDER BY name
            """,
            logger: logger
        ).map { try $0.decode(String.self) }
        guard !live.isEmpty else { return }
        // The registry first: a read locks it before it takes its snapshot (see `CatalogReader`), so a
        // swap that waits for a read holds nothing else meanwhile.
        let tables = (["public.projections"] + live.map { "public.\($0)" }).joined(separator: ", ")
        for attempt in 1... {
            try await connection.perform("SAVEPOINT swap_locks", logger: logger)
            try await connection.perform("SET LOCAL lock_timeout = '\(unescaped: Self.swapLockWait)'", logger: logger)
            do {
                try await connection.perform("LOCK TABLE \(unescaped: tables) IN ACCESS EXCLUSIVE MODE", logger: logger)
                // Released, the savepoint keeps its locks and its setting, which the rest of the swap must not.
                try await connection.perform("RELEASE SAVEPOINT swap_locks", logger: logger)
                try await connection.perform("SET LOCAL lock_timeout TO DEFAULT", logger: logger)
                return
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55P03" {
                // Rolled back to, the savepoint lets go of the tables taken, and of the setting.
                try await connection.perform("ROLLBACK TO SAVEPOINT swap_locks", logger: logger)
                guard attempt < Self.swapLockAttempts else { throw DatabaseUnavailable(.timedOut) }
                try await Task.sleep(for: .milliseconds(Int.random(in: 20...100)))
            }
        }
    }

    /// What loading each projection's table again will roughly cost, judged by its live table, by which
    /// a rebuild shares the tables out between its loading connections (with no live tables yet, all
    /// cost the same). COPY and the index builds pay per row about as much as per 256 bytes (measured
    /// on 1M events: 1.1 s for the narrow state rows, 1.2 s for half as many version rows four times
    /// as wide), so the estimate counts both.
    private func loadingCosts(of definitions: [ProjectionCatalog.Definition], on connection: PostgresConnection)
        async throws -> [String: Int64]
    {
        let names = definitions.map(\.name)
        let rows = try await connection.rows(
            """
            SELECT name, coalesce(pg_total_relation_size(c.oid) + 256 * greatest(c.reltuples, 0)::bigint, 0)
            FROM unnest(\(names)) AS name
            LEFT JOIN pg_class c ON c.oid = to_regclass('public.' || quote_ident(name))
            """,
            logger: logger
        )
        var costs: [String: Int64] = [:]
        for row in rows {
            let (name, cost) = try row.decode((String, Int64).self)
            costs[name] = cost
        }
        return costs
    }

    /// Applies the events after the replay's position as the append pipeline does, to whatever tables
    /// `search_path` resolves first: the replay goes on from the rows it left open in them.
    private func catchUp(_ replay: inout ParallelReplay, on connection: PostgresConnection) async throws {
        let events = try await ReplayEvent.read(
            after: replay.position, upTo: Int64.max, limit: batchSize, on: connection, logger: logger)
        var rows = try await replay.apply(events)
        // The rows the events left open go in too, open; the next catch-up ends them in the table.
        rows.append(await replay.closeOut())
        try await rows.write(on: connection, logger: logger)
    }

    /// The outcome of comparing rebuilt projections with the live ones.
    public struct VerifyReport: Sendable {
        public struct TableCheck: Sendable {
            public var table: String
            public var liveRows: Int
            public var rebuiltRows: Int
            public var matches: Bool
            /// The first row (in key order) present on one side only, as PostgreSQL prints a row.
            public var firstDifference: String?
        }

        public var position: Int64
        public var tables: [TableCheck]
        public var isClean: Bool { tables.allSatisfy(\.matches) }
    }

    /// Rebuilds every projection into a scratch schema, inside one snapshot of the log and the live
    /// tables, and compares each table: row count and an ordered checksum, and on a mismatch the first
    /// row that differs. The scratch schema is rolled back; nothing changes.
    ///
    /// A verify waits for a rebuild under way, and a rebuild waits for the verifies under way: a swap
    /// between the verify's snapshot and its reading of the live tables would show it the rebuilt ones,
    /// whose rows were loaded frozen (seen by every snapshot, however old) and caught up by the swap (seen
    /// by none from before it), and it would report a clean catalog drifted. The lock is taken before
    /// the snapshot, which the transaction's first statement takes.
    public func verify(progress: @Sendable (Progress) -> Void = { _ in }) async throws -> VerifyReport {
        try await client.withConnection { connection in
            try await connection.perform("SELECT pg_advisory_lock_shared(\(Self.rebuildLock))", logger: logger)
            do {
                let report = try await verify(on: connection, progress: progress)
                try await connection.perform("SELECT pg_advisory_unlock_shared(\(Self.rebuildLock))", logger: logger)
                return report
            } catch {
                try? await connection.perform(
                    "SELECT pg_advisory_unlock_shared(\(Self.rebuildLock))", logger: logger)
                throw error
            }
        }
    }

    private func verify(on connection: PostgresConnection, progress: @Sendable (Progress) -> Void) async throws
        -> VerifyReport
    {
        let definitions = catalog.definitions
        let started = ContinuousClock.now
        let schema = "strata_verify"
        let load = BulkLoad(schema: schema, definitions: definitions, batchSize: batchSize, logger: logger)
        try await connection.perform("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ", logger: logger)
        do {
            let head = try await lastPosition(on: connection)
            var replay = ParallelReplay(tables: Set(definitions.map(\.name)))
            // One connection reads and loads: the log and the live tables are seen in one snapshot.
            try await load.run(&replay, upTo: head, reading: connection, loading: []) { done in
                progress(Progress(eventsDone: done, eventsTotal: head, elapsed: ContinuousClock.now - started))
            }
            var checks: [VerifyReport.TableCheck] = []
            for definition in definitions {
                checks.append(try await compare(definition.name, live: "public", rebuilt: schema, on: connection))
            }
            try await connection.perform("ROLLBACK", logger: logger)
            return VerifyReport(position: head, tables: checks)
        } catch {
            try? await connection.perform("ROLLBACK", logger: logger)
            throw error
        }
    }

    private func compare(_ table: String, live: String, rebuilt: String, on connection: PostgresConnection)
        async throws -> VerifyReport.TableCheck
    {
        let key = try await primaryKey(of: table, in: live, on: connection).joined(separator: ", ")
        func summary(_ schema: String) async throws -> (Int, String) {
            let row = try await connection.rows(
                """
                SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY \(unescaped: key))), '')
                FROM \(unescaped: schema).\(unescaped: table) t
                """,
                logger: logger
            ).first
            return try row?.decode((Int, String).self) ?? (0, "")
        }
        let (liveRows, liveSum) = try await summary(live)
        let (rebuiltRows, rebuiltSum) = try await summary(rebuilt)
        var difference: String?
        if liveRows != rebuiltRows || liveSum != rebuiltSum {
            difference = try await connection.rows(
                """
                SELECT side || ' ' || row_text FROM (
                    (SELECT 'live only:' AS side, t::text AS row_text, \(unescaped: key) FROM \(unescaped: live).\(unescaped: table) t
                     EXCEPT SELECT 'live only:', t::text, \(unescaped: key) FROM \(unescaped: rebuilt).\(unescaped: table) t)
                    UNION ALL
                    (SELECT 'log says:', t::text, \(unescaped: key) FROM \(unescaped: rebuilt).\(unescaped: table) t
                     EXCEPT SELECT 'log says:', t::text, \(unescaped: key) FROM \(unescaped: live).\(unescaped: table) t)
                ) differences ORDER BY \(unescaped: key), side LIMIT 1
                """,
                logger: logger
            ).first?.decode(String.self)
        }
        return .init(
            table: table, liveRows: liveRows, rebuiltRows: rebuiltRows,
            matches: liveRows == rebuiltRows && liveSum == rebuiltSum, firstDifference: difference
        )
    }

    /// The columns of a table's primary key, which orders its rows for the checksum: every projection
    /// table has one, so the order is total and the same on both sides.
    private func primaryKey(of table: String, in schema: String, on connection: PostgresConnection) async throws
        -> [String]
    {
        let rows = try await connection.rows(
            """
            SELECT a.attname FROM pg_index x
            JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
            JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, place) ON true
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            WHERE n.nspname = \(schema) AND t.relname = \(table) AND x.indisprimary
            ORDER BY k.place
            """,
            logger: logger
        )
        var columns: [String] = []
        for row in rows { columns.append("\"\(try row.decode(String.self))\"") }
        guard !columns.isEmpty else { throw ProjectionError.noPrimaryKey(table) }
        return columns
    }

    /// The projections whose file changed since they were built: they must be rebuilt.
    public func outdated() async throws -> [String] {
        let rows = try await client.rows("SELECT name, definition_hash FROM projections", logger: logger)
        var recorded: [String: String] = [:]
        for row in rows {
            let (name, hash) = try row.decode((String, String).self)
            recorded[name] = hash
        }
        return catalog.definitions.filter { recorded[$0.name] != nil && recorded[$0.name] != $0.hash }.map(\.name)
    }

    /// What `GET /v1/admin/projections` shows.
    public struct Status: Sendable, Codable {
        public var name: String
        public var definitionHash: String
        public var currentDefinitionHash: String?
        public var appliedPosition: Int64
        public var rows: Int64
        public var rebuiltAt: Date?
    }

    public func status() async throws -> [Status] {
        let rows = try await client.rows(
            """
            SELECT p.name, p.definition_hash, p.applied_position, p.rebuilt_at,
                   coalesce((SELECT n_live_tup FROM pg_stat_user_tables
                             WHERE relid = to_regclass('public.' || p.name)), 0)
            FROM projections p ORDER BY p.name
            """,
            logger: logger
        )
        var result: [Status] = []
        for row in rows {
            let (name, hash, position, rebuiltAt, rows) = try row.decode((String, String, Int64, Date?, Int64).self)
            result.append(
                Status(
                    name: name, definitionHash: hash,
                    currentDefinitionHash: catalog.definitions.first { $0.name == name }?.hash,
                    appliedPosition: position, rows: max(rows, 0), rebuiltAt: rebuiltAt
                )
            )
        }
        return result
    }

    private func select(_ names: [String]?) throws -> [ProjectionCatalog.Definition] {
        guard let names else { return catalog.definitions }
        return try names.map { name in
            guard let definition = catalog.definitions.first(where: { $0.name == name }) else {
                throw ProjectionError.unknown(name, known: catalog.definitions.map(\.name))
            }
            return definition
        }
    }

    private func inSchema(_ schema: String, on connection: PostgresConnection, _ body: () async throws -> Void)
        async throws
    {
        try await connection.perform("BEGIN", logger: logger)
        do {
            try await connection.perform("SET LOCAL search_path TO \(unescaped: schema), public", logger: logger)
            try await body()
            try await connection.perform("COMMIT", logger: logger)
        } catch {
            try? await connection.perform("ROLLBACK", logger: logger)
            throw error
        }
    }

    private func lastPosition(on connection: PostgresConnection) async throws -> Int64 {
        try await connection.rows("SELECT coalesce(max(global_position), 0) FROM events", logger: logger).first?.decode(
            Int64.self) ?? 0
    }
}
