import Foundation
import PostgresNIO
import StrataStore
import StrataTestSupport
import Testing

@Suite("The event log")
struct EventStoreTests {
    @Test func appendedEventsReadBackInOrderWithTheirPositions() async throws {
        try await withTestDatabase { database in
            let store = EventStore(client: database.client, logger: database.logger)
            let stream = UUID()
            let events = [sampleEvent(type: "DatasetCreated"), sampleEvent(type: "DatasetVersionDrafted")]
            let result = try await store.append(events, to: stream, expectedVersion: .noStream)

            #expect(result.streamVersion == 2)
            #expect(result.positions.count == 2 && result.positions[0] < result.positions[1])
            let read = try await store.readStream(stream)
            #expect(read.map(\.eventID) == events.map(\.eventID))
            #expect(read.map(\.streamVersion) == [1, 2])
            #expect(read.map(\.position) == result.positions)
            #expect(read[0].type == "DatasetCreated")
            #expect(read[0].data == #"{"name": "orders"}"#)
            #expect(read[0].metadata == #"{"actor": "alice"}"#)
            #expect(read[0].recordedAt == read[1].recordedAt)
            #expect(try await store.readStream(stream, from: 2).map(\.streamVersion) == [2])
            #expect(
                try await store.readAll(after: result.positions[0], limit: 10).map(\.eventID) == [events[1].eventID])
        }
    }

    @Test func aWrongExpectedVersionAppendsNothingAndReportsTheActualVersion() async throws {
        try await withTestDatabase { database in
            let store = EventStore(client: database.client, logger: database.logger)
            let stream = UUID()
            try await store.append([sampleEvent()], to: stream, expectedVersion: .noStream)

            await #expect(throws: AppendError.versionConflict(stream: stream, expected: .exactly(3), actual: 1)) {
                try await store.append([sampleEvent()], to: stream, expectedVersion: .exactly(3))
            }
            await #expect(throws: AppendError.versionConflict(stream: stream, expected: .noStream, actual: 1)) {
                try await store.append([sampleEvent()], to: stream, expectedVersion: .noStream)
            }
            #expect(try await store.readStream(stream).count == 1)
            let appended = try await store.append([sampleEvent()], to: stream, expectedVersion: .any)
            #expect(appended.streamVersion == 2)
        }
    }

    @Test func fiftyRacingAppendersWithOneExpectedVersionLeaveOneWinnerPerVersion() async throws {
        try await withTestDatabase { database in
            let store = EventStore(client: database.client, logger: database.logger)
            let stream = UUID()
            // Each round, 50 writers all believe the stream is at the same version.
            for round in Int64(0)..<3 {
                let outcomes = try await withThrowingTaskGroup(of: Bool.self, returning: [Bool].self) { group in
                    for _ in 0..<50 {
                        group.addTask {
                            do {
                                let expected: ExpectedVersion = round == 0 ? .noStream : .exactly(round)
                                try await store.append([sampleEvent()], to: stream, expectedVersion: expected)
                                return true
                            } catch AppendError.versionConflict(_, _, let actual) {
                                #expect(actual == round + 1)
                                return false
                            }
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(outcomes.filter { $0 }.count == 1)
            }
            let versions = try await store.readStream(stream).map(\.streamVersion)
            #expect(versions == [1, 2, 3])
        }
    }

    @Test func aRetriedAppendWithTheSameEventIDsAppendsNothingAndAnswersTheFirstResult() async throws {
        try await withTestDatabase { database in
            let store = EventStore(client: database.client, logger: database.logger)
            let stream = UUID()
            let events = [sampleEvent(), sampleEvent()]
            let first = try await store.append(events, to: stream, expectedVersion: .noStream)
            try await store.append([sampleEvent()], to: stream, expectedVersion: .exactly(2))

            // The retry carries the expected version the first attempt had; it is a retry all the same.
            let retry = try await store.append(events, to: stream, expectedVersion: .noStream)
            #expect(retry.streamVersion == first.streamVersion)
            #expect(retry.positions == first.positions)
            #expect(retry.wasAlreadyAppended)
            #expect(try await store.readStream(stream).count == 3)
        }
    }

    @Test func anAppendThatReusesOnlySomeEventIDsIsRefused() async throws {
        try await withTestDatabase { database in
            let store = EventStore(client: database.client, logger: database.logger)
            let stream = UUID()
            let known = sampleEvent()
            try await store.append([known], to: stream, expectedVersion: .noStream)

            await #expect(throws: AppendError.eventIDsAlreadyUsed(stream: stream, eventIDs: [known.eventID])) {
                try await store.append([known, sampleEvent()], to: stream, expectedVersion: .any)
            }
            let elsewhere = UUID()
            await #expect(throws: AppendError.eventIDsAlreadyUsed(stream: elsewhere, eventIDs: [known.eventID])) {
                try await store.append([known], to: elsewhere, expectedVersion: .any)
            }
            #expect(try await store.lastPosition() == 1)
        }
    }

    @Test(arguments: [
        "UPDATE events SET event_type = 'Tampered'",
        "DELETE FROM events",
        "TRUNCATE events",
    ])
    func theDatabaseRefusesToChangeOrRemoveEvents(statement: String) async throws {
        try await withTestDatabase { database in
            let store = EventStore(client: database.client, logger: database.logger)
            let stream = UUID()
            try await store.append([sampleEvent()], to: stream, expectedVersion: .noStream)

            let error = await #expect(throws: PSQLError.self) {
                try await database.client.perform(PostgresQuery(unsafeSQL: statement), logger: database.logger)
            }
            #expect(error?.serverInfo?[.message]?.contains("append-only") == true)
            #expect(try await store.readStream(stream).map(\.type) == ["DatasetCreated"])
        }
    }
}

/// An event with fresh ids and a fixed, plausible body.
func sampleEvent(type: String = "DatasetCreated") -> NewEvent {
    NewEvent(
        eventID: UUID(), type: type, data: #"{"name": "orders"}"#, metadata: #"{"actor": "alice"}"#,
        occurredAt: Date(timeIntervalSince1970: 1_790_000_000)
    )
}
