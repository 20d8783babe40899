import EmbeddedPostgres
import Foundation
import PostgresNIO
import StrataCore
import StrataStore
import StrataTestSupport
import Testing

@Suite("Export and import of the log")
struct LogArchiveTests {
    /// Through the real binary: `strata export > file`, `strata import < file` into a fresh catalog.
    /// The copy must hold the same events (positions, ids, versions, timestamps) and build projections
    /// whose every table has the same checksum as the original's.
    @Test func anExportImportedIntoAFreshCatalogReproducesItExactly() async throws {
        try await withTestDatabase { original in
            let writer = CatalogWriter(pool: original.pool, logger: original.logger)
            _ = try await RandomWorkload(writer: writer).run(commands: 600)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("strata-\(UUID()).ndjson").path
            defer { try? FileManager.default.removeItem(atPath: file) }
            let exported = try shell("\(StrataBinary.path) export --database-url '\(original.url)' > \(file)")
            #expect(exported.status == 0, "\(exported.output)")

            try await withTestDatabase { copy in
                let imported = try shell("\(StrataBinary.path) import --database-url '\(copy.url)' < \(file)")
                #expect(imported.status == 0, "\(imported.output)")
                #expect(try await export(original) == export(copy))
                for table in try ProjectionCatalog.bundled().definitions.map(\.name) {
                    #expect(try await checksum(table, original) == checksum(table, copy), "\(table) differs")
                }
                // New appends continue after the imported positions.
                let next = try await EventStore(client: copy.client, logger: copy.logger)
                    .append([sampleEvent()], to: UUID(), expectedVersion: .noStream)
                #expect(
                    next.positions.first ?? 0
                        > (try await EventStore(client: original.client, logger: original.logger).lastPosition()))
            }
        }
    }

    @Test func importRefusesANonEmptyCatalogAndImportsNothingFromAMalformedFile() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 1).run(commands: 20)
            let lines = try await export(database)

            await #expect(throws: ImportError.self) {
                try await LogArchive(client: database.client, logger: database.logger).importLog(lines)
            }
            try await withTestDatabase { empty in
                let archive = LogArchive(client: empty.client, logger: empty.logger)
                var broken = lines
                broken[broken.count / 2] = #"{"position": "#
                let error = await #expect(throws: ImportError.self) { try await archive.importLog(broken) }
                #expect("\(error!)".contains("line \(lines.count / 2 + 1): not an exported event: it is not JSON"))
                // What is wrong is said as a person fixing the file needs it, not as the decoder's debug text.
                var untyped = lines
                untyped[1] = #"{"position": 2}"#
                let missing = await #expect(throws: ImportError.self) { try await archive.importLog(untyped) }
                #expect("\(missing!)".contains("line 2: not an exported event: '"), "\(missing!)")
                #expect("\(missing!)".contains("' is missing") && !"\(missing!)".contains("CodingKeys"), "\(missing!)")
                var gap = lines
                gap.remove(at: 1)  // the first stream's version 2 is missing
                await #expect(throws: ImportError.self) { try await archive.importLog(gap) }
                // Well-formed lines, but a stream the catalog could never have written: its first draft
                // is version 5.
                func object(_ line: String) throws -> [String: Any] {
                    try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                }
                let draft = try #require(
                    try lines.firstIndex { try object($0)["type"] as? String == "DatasetVersionDrafted" })
                var line = try object(lines[draft])
                var data = try #require(line["data"] as? [String: Any])
                var version = try #require(data["version"] as? [String: Any])
                #expect(version["version"] as? Int == 1)
                version["version"] = 5
                data["version"] = version
                line["data"] = data
                var skipping = lines
                skipping[draft] = String(decoding: try JSONSerialization.data(withJSONObject: line), as: UTF8.self)
                let refused = await #expect(throws: ImportError.self) { try await archive.importLog(skipping) }
                #expect("\(refused!)".contains("line \(draft + 1): it drafts version 5"), "\(refused!)")
                let position = try await EventStore(client: empty.client, logger: empty.logger).lastPosition()
                #expect(position == 0)
            }
        }
    }
}

private func shell(_ command: String) throws -> ProcessRunner.Result {
    try ProcessRunner.run(["/bin/sh", "-c", command])
}

private func export(_ database: TestDatabase) async throws -> [String] {
    var lines: [String] = []
    _ = try await LogArchive(client: database.client, logger: database.logger).export { lines.append($0) }
    return lines
}

private func checksum(_ table: String, _ database: TestDatabase) async throws -> String {
    try await database.client.query(
        "SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM \(unescaped: table) t",
        logger: database.logger
    ).collect().first?.decode(String.self) ?? ""
}
