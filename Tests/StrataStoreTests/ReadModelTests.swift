import Foundation
import StrataCore
import StrataStore
import StrataTestSupport
import Testing

/// The projections store what the log does not already say, and reads put the API documents back
/// together; what they assemble must be exactly what the dataset's own events fold to.
@Suite("Reading documents back from the projections")
struct ReadModelTests {
    @Test func everyDatasetAndVersionReadsAsItsEventsFoldToAtTheHeadAndAsOfEarlierPositions() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(client: database.client, logger: database.logger)
            let written = try await RandomWorkload(writer: writer, clients: 4).run(commands: 400)
            let reader = CatalogReader(client: database.client, logger: database.logger)
            let log = try await EventStore(client: database.client, logger: database.logger).readAll(
                after: 0, limit: 100_000)
            let head = try #require(log.last?.position)
            var random = SplitMix(seed: 3)
            let positions = [head] + (0..<6).map { _ in Int64(random.next(below: Int(head))) + 1 }
            var compared = 0
            for position in positions {
                let asOf: CatalogReader.AsOf = position == head ? .head : .position(position)
                for dataset in Set(written.map(\.dataset)) {
                    let events = try log.filter { $0.streamID == dataset && $0.position <= position }
                        .map { try $0.datasetEvent() }
                    let state = events.reduce(into: DatasetState(id: dataset)) { $0.apply($1.0, context: $1.1) }
                    let (read, _) = try await reader.read(asOf: asOf) { snapshot in
                        (try await snapshot.dataset(dataset), try await snapshot.versions(of: dataset))
                    }
                    guard state.exists else {
                        #expect(read.0 == nil)
                        continue
                    }
                    #expect(read.0?.document == Documents.dataset(state), "dataset \(dataset) as of \(position)")
                    #expect(read.0?.streamVersion == state.streamVersion)
                    let versions = (1...max(state.latestVersion, 1)).reversed().filter { state.version($0) != nil }
                    #expect(read.1 == versions.map { Documents.version($0, of: state) })
                    compared += 1
                }
            }
            #expect(compared > 200)
        }
    }
}
