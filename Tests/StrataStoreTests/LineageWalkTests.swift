import Foundation
import StrataCore
import StrataTestSupport
import Testing

@testable import StrataStore

/// A lineage walk's answer is bounded: by the edges it shows, and by the records it reads to find them
/// (a run reported again is one edge, but each report is a record).
@Suite("Lineage walk bounds")
struct LineageWalkTests {
    @Test func aWalkStopsBeforeTheLevelThatPassesItsEdgesOrItsRecords() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            func submit(_ target: CatalogCommand) async throws {
                _ = try await writer.submit(
                    CatalogWriter.Request(
                        target: target, metadata: EventMetadata(actor: "test"), occurredAt: Timestamp.truncated(Date()),
                        respond: { _ in StoredResponse(status: 200, headers: [:], body: "") }))
            }
            let (source, copy, other) = (UUIDv7.make(), UUIDv7.make(), UUIDv7.make())
            for (id, name) in [(source, "source"), (copy, "copy"), (other, "other")] {
                try await submit(
                    .dataset(id, .create(namespace: "ns", name: name, fields: VersionFields(), clonedFrom: nil)))
            }
            func record(_ output: UUID) async throws {
                try await submit(
                    .lineage(
                        job: .init(namespace: "airflow", name: "copy"), runID: "run-1",
                        inputs: [.init(datasetID: source, version: nil)],
                        outputs: [.init(datasetID: output, version: nil)]
                    ))
            }
            // The same fact reported four times, then a fact of its own.
            for _ in 0..<4 { try await record(copy) }
            let reader = CatalogReader(pool: database.pool, logger: database.logger)
            func walk(mostEdges: Int) async throws -> LineageGraph {
                try await reader.read { snapshot in
                    try await snapshot.lineage(
                        of: source, version: nil, direction: .downstream, depth: 3, mostEdges: mostEdges)
                }.0
            }

            let whole = try await walk(mostEdges: 1)
            #expect(!whole.isTruncated && whole.depth == 3, "one edge from four records, four times one allowed")
            #expect(whole.edges.count == 1 && whole.nodes.map(\.datasetID).sorted() == [source, copy].sorted())

            try await record(copy)
            let tooManyRecords = try await walk(mostEdges: 1)
            #expect(tooManyRecords.isTruncated && tooManyRecords.depth == 0, "five records of one edge")
            #expect(tooManyRecords.edges.isEmpty && tooManyRecords.nodes.map(\.datasetID) == [source])
            #expect(try await walk(mostEdges: 2).isTruncated == false)

            try await record(other)
            let tooManyEdges = try await walk(mostEdges: 1)
            #expect(tooManyEdges.isTruncated && tooManyEdges.depth == 0, "two edges, one allowed")
            let enough = try await walk(mostEdges: 2)
            #expect(!enough.isTruncated && enough.edges.count == 2 && enough.nodes.count == 3)
        }
    }
}
