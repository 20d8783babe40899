import Foundation
import PostgresNIO
import StrataCore
import StrataStore
import StrataTestSupport
import Testing

@Suite("The append pipeline")
struct CatalogWriterTests {
    /// While the log's lock is held from outside, the pipeline's first batch waits; everything submitted
    /// meanwhile forms the next batch. One command in it is refused: the others must still commit, in
    /// one transaction (they share its `recorded_at`), and the refused one must append nothing.
    @Test func aRefusedCommandDoesNotSpoilTheBatchItArrivedIn() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(client: database.client, logger: database.logger)
            // Refused by the decider: there is no such dataset to publish.
            let refused = UUID()
            let results = try await database.holdingTheAppendLock(for: .milliseconds(500)) {
                try await withThrowingTaskGroup(of: (String, Result<StoredResponse, any Error>).self) { group in
                    group.addTask { ("first", await Result(catching: { try await writer.submit(create("first")) })) }
                    try await Task.sleep(for: .milliseconds(200))
                    for index in 0..<6 {
                        group.addTask {
                            (
                                "batch-\(index)",
                                await Result(catching: { try await writer.submit(create("batch-\(index)")) })
                            )
                        }
                    }
                    group.addTask {
                        let request = CatalogWriter.Request(
                            target: .dataset(refused, .publish(version: nil, changeNote: nil)),
                            metadata: EventMetadata(actor: "test"), occurredAt: Date(), respond: respondWithDocument)
                        return ("refused", await Result(catching: { try await writer.submit(request) }))
                    }
                    var results: [String: Result<StoredResponse, any Error>] = [:]
                    for try await (name, result) in group { results[name] = result }
                    return results
                }
            }
            guard case .failure(let error) = results["refused"] else {
                Issue.record("the refused command succeeded")
                return
            }
            #expect(error as? DomainError == .datasetNotFound)
            let store = EventStore(client: database.client, logger: database.logger)
            #expect(try await store.readStream(refused).isEmpty)

            let events = try await store.readAll(after: 0, limit: 100)
            #expect(events.count == 14, "seven creates of two events each")
            let created = events.filter { $0.type == "DatasetCreated" && !$0.data.contains("\"first\"") }
            #expect(created.count == 6)
            #expect(Set(created.map(\.recordedAt)).count == 1, "the six creates did not commit in one transaction")
            for index in 0..<6 {
                guard case .success(let response) = results["batch-\(index)"] else {
                    Issue.record("batch-\(index) failed")
                    continue
                }
                #expect(response.status == 201)
            }
        }
    }
}

private func create(_ name: String) -> CatalogWriter.Request {
    CatalogWriter.Request(
        target: .dataset(UUIDv7.make(), .create(namespace: "ns", name: name, fields: VersionFields(), clonedFrom: nil)),
        metadata: EventMetadata(actor: "test"), occurredAt: Date(), respond: respondWithDocument
    )
}

@Sendable private func respondWithDocument(_ outcome: CatalogWriter.Outcome) -> StoredResponse {
    StoredResponse(status: 201, headers: [:], body: Documents.dataset(outcome.state))
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
