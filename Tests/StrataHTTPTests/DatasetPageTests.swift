import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataCore
import Testing

/// A dataset's versions, usages and events come whole, or in pages a client walks with `next_cursor`;
/// the pages together are the catalog at one moment, whatever is written while the client walks them.
@Suite("A dataset's pages")
struct DatasetPageTests {
    @Test func pagesJoinToTheWholeCollectionAsItStoodAtTheFirstPage() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset(name: "features")
            try await client.send(.post, "/v1/datasets/\(id)/publish")
            for round in 2...4 {
                try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"description": "round \#(round)"}"#)
                try await client.send(.post, "/v1/datasets/\(id)/publish")
            }
            for run in 1...5 {
                let pinned = try await client.send(
                    .post, "/v1/datasets/\(id)/versions/\(run % 4 + 1)/usages", json: #"{"consumer": "run-\#(run)"}"#)
                #expect(pinned.status == .created)
            }

            for (collection, path, limit) in [
                ("versions", "versions", 3), ("usages", "usages", 2), ("events", "history", 3),
            ] {
                let whole = try await client.send(.get, "/v1/datasets/\(id)/\(path)")
                let position = try #require(whole.headers[HTTPField.Name("Strata-Position")!])
                let items = try #require(try whole.json()[collection]?.arrayValue)
                #expect(items.count > limit, "\(path): \(items.count)")
                #expect(try whole.json()["next_cursor"] == .null, "\(path): the whole collection ends it")

                var pages: [[JSONValue]] = []
                var next = "/v1/datasets/\(id)/\(path)?limit=\(limit)"
                // A page that never ends its collection would be walked forever: a dozen pages is plenty.
                for _ in 0..<12 {
                    let page = try await client.send(.get, next)
                    #expect(page.status == .ok, "\(path): \(page.text)")
                    #expect(page.headers[HTTPField.Name("Strata-Position")!] == position, "\(path): one snapshot")
                    pages.append(try #require(try page.json()[collection]?.arrayValue))
                    // Writes between pages are after the first page's position: no page shows them.
                    try await client.send(.post, "/v1/datasets/\(id)/versions/1/usages", json: #"{"consumer": "late"}"#)
                    guard let cursor = try page.json()["next_cursor"]?.stringValue else {
                        next = ""
                        break
                    }
                    next = "/v1/datasets/\(id)/\(path)?cursor=\(cursor)&limit=\(limit)"
                }
                #expect(next == "", "\(path): the last page has no next_cursor")
                #expect(pages.dropLast().allSatisfy { $0.count == limit }, "\(path): \(pages.map(\.count))")
                #expect(Array(pages.joined()) == items, "\(path): the pages are the whole, in order")
            }
        }
    }

    @Test func aBadLimitOrCursorIsRefusedAndACursorAtTheEndAnswersNothing() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset(name: "labels")
            for query in ["limit=0", "limit=1001", "limit=x", "cursor=!!", "cursor=MTIz", "cursor=LTEuMA"] {
                let refused = try await client.send(.get, "/v1/datasets/\(id)/history?\(query)")
                #expect(refused.status == .badRequest && refused.problemCode == "invalid_parameter", "\(query)")
            }
            let first = try await client.send(.get, "/v1/datasets/\(id)/versions")
            let position = try #require(first.headers[HTTPField.Name("Strata-Position")!])
            // The cursor a page after version 1 would carry: nothing comes after it.
            let atTheEnd = Data("\(position).1".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
            let empty = try await client.send(.get, "/v1/datasets/\(id)/versions?cursor=\(atTheEnd)")
            #expect(empty.status == .ok, "\(empty.text)")
            #expect(try empty.json()["versions"]?.arrayValue == [])
            #expect(try empty.json()["next_cursor"] == .null)
            // A dataset nobody has used has no usages, whole or in pages: an empty list, not a missing dataset.
            for query in ["", "?limit=5", "?as_of=\(position)", "?cursor=\(atTheEnd)"] {
                let unused = try await client.send(.get, "/v1/datasets/\(id)/usages\(query)")
                #expect(unused.status == .ok, "usages\(query): \(unused.text)")
                #expect(try unused.json()["usages"]?.arrayValue == [], "usages\(query)")
            }
            let unknown = UUID().uuidString.lowercased()
            let missing = try await client.send(.get, "/v1/datasets/\(unknown)/versions?cursor=\(atTheEnd)")
            #expect(missing.status == .notFound && missing.problemCode == "not_found")
            let pastTheLog = Data("99999999.1".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
            let beyond = try await client.send(.get, "/v1/datasets/\(id)/usages?cursor=\(pastTheLog)")
            #expect(beyond.status == .badRequest && beyond.problemCode == "invalid_parameter")
            #expect(try beyond.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == "cursor")
        }
    }
}
