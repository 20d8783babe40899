import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataCore
import StrataHTTP
import StrataTestSupport
import Testing

@Suite("Lineage")
struct LineageTests {
    /// An edge as recorded, with the position that recorded it.
    struct Edge: Hashable {
        var from: String
        var fromVersion: Int
        var to: String
        var toVersion: Int
        var position: Int
    }

    /// Random layered graphs (and, with `cycles`, edges pointing back up), built through the API with new
    /// versions published between records; every lineage and impact answer, for several depths,
    /// directions, versions and as_of positions, must equal an independent traversal of the edges.
    @Test(arguments: [(seed: UInt64(3), cycles: false), (seed: 11, cycles: true), (seed: 29, cycles: true)])
    func answersMatchAnIndependentTraversal(seed: UInt64, cycles: Bool) async throws {
        try await withTestApp { client, _ in
            var random = SplitMix(seed: seed)
            var layers: [[String]] = []
            for layer in 0..<4 {
                var ids: [String] = []
                for index in 0..<5 {
                    let id = try await client.createDataset(name: "l\(layer)-\(index)")
                    try await client.send(.post, "/v1/datasets/\(id)/publish")
                    ids.append(id)
                }
                layers.append(ids)
            }
            var edges: [Edge] = []
            var checkpoints: [Int] = []
            for round in 0..<40 {
                let layer = Int.random(in: 1..<layers.count, using: &random)
                let output = layers[layer].randomElement(using: &random)!
                var inputs = Set(
                    (0..<Int.random(in: 1...3, using: &random)).map { _ in
                        layers[Int.random(in: 0..<layer, using: &random)].randomElement(using: &random)!
                    })
                if cycles && round % 7 == 0 {
                    inputs.insert(layers[layers.count - 1].randomElement(using: &random)!)  // points back up
                }
                inputs.remove(output)
                if inputs.isEmpty { continue }
                let json =
                    #"{"job": {"namespace": "airflow", "name": "j\#(round)"}, "run_id": "r\#(round)", "#
                    + #""inputs": [\#(inputs.map { #"{"dataset_id": "\#($0)"}"# }.joined(separator: ","))], "#
                    + #""outputs": [{"dataset_id": "\#(output)"}]}"#
                let response = try await client.send(.post, "/v1/lineage", json: json)
                #expect(response.status == .created, "\(response.text)")
                let position = Int(response.headers[HTTPField.Name("Strata-Position")!] ?? "0") ?? 0
                for edge in try response.json()["edges"]?.arrayValue ?? [] {
                    edges.append(
                        Edge(
                            from: edge["from"]?["dataset_id"]?.stringValue ?? "",
                            fromVersion: edge["from"]?["version"]?.intValue ?? 0,
                            to: edge["to"]?["dataset_id"]?.stringValue ?? "",
                            toVersion: edge["to"]?["version"]?.intValue ?? 0,
                            position: position))
                }
                if round % 10 == 5 {
                    // New versions, so later edges name other versions than earlier ones.
                    for id in layers.joined().shuffled(using: &random).prefix(6) {
                        try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"row_count": \#(round)}"#)
                        try await client.send(.post, "/v1/datasets/\(id)/publish")
                    }
                    checkpoints.append(position)
                }
            }
            let head = edges.map(\.position).max() ?? 0
            for asOf in checkpoints + [head] {
                for _ in 0..<6 {
                    let root = layers.joined().randomElement(using: &random)!
                    for direction in ["upstream", "downstream", "both"] {
                        for depth in [1, 2, 5] {
                            let uri = "/v1/datasets/\(root)/lineage?direction=\(direction)&depth=\(depth)&as_of=\(asOf)"
                            let answer = try await client.send(.get, uri).json()
                            let expected = traverse(
                                edges, root: root, version: nil, direction: direction, depth: depth, asOf: asOf)
                            #expect(nodes(answer) == expected.nodes, "\(uri)")
                            #expect(edgeSet(answer) == expected.edges, "\(uri)")
                        }
                    }
                    let versioned = edges.filter { $0.position <= asOf && ($0.to == root || $0.from == root) }
                        .randomElement(using: &random)
                    if let edge = versioned {
                        let (id, version) = edge.to == root ? (edge.to, edge.toVersion) : (edge.from, edge.fromVersion)
                        for direction in ["upstream", "downstream"] {
                            let uri =
                                "/v1/datasets/\(id)/lineage?direction=\(direction)&depth=10&version=\(version)&as_of=\(asOf)"
                            let answer = try await client.send(.get, uri).json()
                            let expected = traverse(
                                edges, root: id, version: version, direction: direction, depth: 10, asOf: asOf)
                            #expect(nodes(answer, versioned: true) == expected.nodes, "\(uri)")
                            #expect(edgeSet(answer) == expected.edges, "\(uri)")
                        }
                    }
                    let impact = try await client.send(.get, "/v1/datasets/\(root)/impact?as_of=\(asOf)").json()
                    var expectedImpact = traverse(
                        edges, root: root, version: nil, direction: "downstream", depth: 1000, asOf: asOf
                    ).nodes
                    expectedImpact.removeValue(forKey: root)
                    let impactNodes = Dictionary(
                        uniqueKeysWithValues: (impact["impact"]?.arrayValue ?? []).map {
                            ($0["dataset_id"]?.stringValue ?? "", $0["distance"]?.intValue ?? -1)
                        })
                    #expect(impactNodes == expectedImpact)
                }
            }
        }
    }

    /// One answer holds at most so many edges (50,000; 5,000 here, where building 50,000 would take a
    /// debug build minutes). A walk whose next level would pass that stops before the level and says how
    /// deep it went, so the answer is still a whole graph; impact holds no edges and is whole however
    /// wide the graph. (`LineageWalkTests` holds the walk's own bounds.)
    @Test func aWalkWhoseNextLevelWouldPassTheEdgeLimitStopsBeforeItAndSaysSo() async throws {
        let limit = 5_000
        let lowered: @Sendable (inout StrataServices) -> Void = { $0.lineageEdgeLimit = limit }
        try await withTestApp(configuring: lowered) { client, _ in
            func datasets(_ prefix: String, _ count: Int) -> String {
                (0..<count).map { #"{"namespace": "wide", "name": "\#(prefix)\#($0)"}"# }.joined(separator: ",")
            }
            func run(_ job: String, inputs: String, outputs: String) async throws -> String {
                let event =
                    #"{"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z", "producer": "p", "run": {"runId": "\#(job)"}, "job": {"namespace": "airflow", "name": "\#(job)"}, "inputs": [\#(inputs)], "outputs": [\#(outputs)]}"#
                let response = try await client.send(.post, "/api/v1/lineage", json: event)
                #expect(response.status == .created, "\(response.text.prefix(300))")
                return response.headers[HTTPField.Name("Strata-Position")!] ?? ""
            }
            // The root feeds 100 datasets (100 edges); each join makes all of them feed 10 more (1,000
            // edges). The joins' edges alone fill an answer: with the last, the second level passes it.
            let joins = limit / 1_000
            var beforeLastJoin = try await run("fan", inputs: datasets("root", 1), outputs: datasets("m", 100))
            for join in 0..<joins - 1 {
                beforeLastJoin = try await run(
                    "join\(join)", inputs: datasets("m", 100), outputs: datasets("end\(join)-", 10))
            }
            _ = try await run("last", inputs: datasets("m", 100), outputs: datasets("end\(joins - 1)-", 10))
            let root = try #require(try await OpenLineageTests.dataset(client, "wide", "root0")?["id"]?.stringValue)
            let end = try #require(try await OpenLineageTests.dataset(client, "wide", "end0-0")?["id"]?.stringValue)
            func lineage(_ id: String, _ query: String) async throws -> [String: JSONValue] {
                let response = try await client.send(.get, "/v1/datasets/\(id)/lineage?\(query)")
                #expect(response.status == .ok, "\(response.text.prefix(300))")
                return try response.json()
            }

            let one = try await lineage(root, "direction=downstream&depth=1")
            #expect(one["edges"]?.arrayValue?.count == 100)
            #expect(one["truncated"] == .bool(false) && one["depth"]?.intValue == 1)

            let cut = try await lineage(root, "direction=downstream&depth=2")
            #expect(cut["truncated"] == .bool(true), "100 more edges than an answer holds, to depth 2")
            #expect(cut["depth"]?.intValue == 1)
            #expect(cut["edges"]?.arrayValue?.count == 100, "the whole first level, none of the second")
            #expect(cut["nodes"]?.arrayValue?.count == 101)
            #expect(cut["nodes"]?.arrayValue?.allSatisfy { ($0["distance"]?.intValue ?? 9) <= 1 } == true)
            let dot = try await client.send(
                .get, "/v1/datasets/\(root)/lineage?direction=downstream&depth=2&format=dot")
            #expect(dot.text.hasPrefix("// Truncated: depth 1 only"), "\(dot.text.prefix(200))")

            let full = try await lineage(root, "direction=downstream&depth=2&as_of=\(beforeLastJoin)")
            #expect(full["truncated"] == .bool(false) && full["depth"]?.intValue == 2, "the last join came later")
            #expect(full["edges"]?.arrayValue?.count == 100 + (joins - 1) * 1_000)

            // Upstream of one end: 100 edges, then the root's 100: well within, whole.
            let upstream = try await lineage(end, "direction=upstream&depth=5")
            #expect(upstream["truncated"] == .bool(false) && upstream["depth"]?.intValue == 5)
            #expect(upstream["edges"]?.arrayValue?.count == 200)

            let impact = try await client.send(.get, "/v1/datasets/\(root)/impact").json()
            let distances = (impact["impact"]?.arrayValue ?? []).map { $0["distance"]?.intValue ?? 0 }
            #expect(distances.count == 100 + 10 * joins)
            #expect(distances.filter { $0 == 2 }.count == 10 * joins)
        }
    }

    @Test func lineageIsRefusedIntoRetiredOrArchivedDatasetsFromRetiredOnesAndIntoItself() async throws {
        try await withTestApp { client, _ in
            let source = try await client.createDataset()
            let target = try await client.createDataset()
            func record(_ inputs: [String], _ output: String) async throws -> TestResponse {
                try await client.send(
                    .post, "/v1/lineage",
                    json:
                        #"{"inputs": [\#(inputs.map { #"{"dataset_id": "\#($0)"}"# }.joined(separator: ","))], "outputs": [{"dataset_id": "\#(output)"}]}"#
                )
            }
            #expect(try await record([source], target).status == .created)
            #expect(try await record([target], target).status == .unprocessableContent, "self-loop")
            #expect(try await record([UUID().uuidString], target).status == .notFound)
            let badVersion = try await client.send(
                .post, "/v1/lineage",
                json:
                    #"{"inputs": [{"dataset_id": "\#(source)", "version": 9}], "outputs": [{"dataset_id": "\#(target)"}]}"#
            )
            #expect(badVersion.status == .notFound)

            let archived = try await client.createDataset()
            try await client.send(.post, "/v1/datasets/\(archived)/archive")
            #expect(try await record([source], archived).status == .conflict, "into archived")
            #expect(try await record([archived], target).status == .created, "from archived is allowed")
            let retired = try await client.createDataset()
            try await client.send(.post, "/v1/datasets/\(retired)/retire", json: #"{"reason": "x"}"#)
            #expect(try await record([source], retired).status == .conflict, "into retired")
            #expect(try await record([retired], target).status == .conflict, "from retired")
            let events =
                try await client.send(.get, "/v1/datasets/\(target)/history").json()["events"]?.arrayValue ?? []
            #expect(events.filter { $0["type"]?.stringValue == "LineageRecorded" }.count == 2)
        }
    }

    @Test func parentsOfAVersionAreLineageAndRetireAnswersItsImpact() async throws {
        try await withTestApp { client, _ in
            let raw = try await client.createDataset(name: "raw")
            try await client.send(.post, "/v1/datasets/\(raw)/publish")
            let cleaned = try await client.createDataset(
                name: "cleaned",
                fields:
                    #""location": "s3://x", "schema": [{"name": "id", "type": "int"}], "parents": [{"dataset_id": "\#(raw)", "version": 1}]"#
            )
            // An edit that leaves the parents alone carries them over to the new draft.
            let edited = try await client.send(
                .patch, "/v1/datasets/\(cleaned)", json: #"{"description": "deduplicated"}"#)
            #expect(edited.status == .ok, "\(edited.text)")
            let draft = try edited.json()
            #expect(draft["latest_version"]?.intValue == 2)
            #expect(
                draft["current"]?["parents"]?.arrayValue?.compactMap { $0["dataset_id"]?.stringValue } == [raw])
            let features = try await client.createDataset(name: "features")
            try await client.send(
                .post, "/v1/lineage",
                json:
                    #"{"job": {"namespace": "spark", "name": "featurize"}, "run_id": "r1", "inputs": [{"dataset_id": "\#(cleaned)"}], "outputs": [{"dataset_id": "\#(features)"}]}"#
            )

            let lineage = try await client.send(.get, "/v1/datasets/\(features)/lineage?direction=upstream").json()
            #expect(nodes(lineage) == [features: 0, cleaned: 1, raw: 2])
            let dot = try await client.send(.get, "/v1/datasets/\(features)/lineage?format=dot")
            #expect(dot.headers[.contentType] == "text/vnd.graphviz")
            #expect(
                dot.text.hasPrefix("digraph lineage {") && dot.text.contains("->")
                    && dot.text.contains("spark.featurize"))
            // Graphviz breaks a label's line at \n; an escaped \\n would show as the two characters.
            #expect(dot.text.contains(#"/features\nv1 (draft)""#) && !dot.text.contains(#"\\n"#), "\(dot.text)")

            let dry = try await client.send(
                .post, "/v1/datasets/\(raw)/retire", json: #"{"reason": "x", "dry_run": true}"#
            ).json()
            let impact = (dry["impact"]?.arrayValue ?? []).map {
                ($0["dataset_id"]?.stringValue ?? "", $0["distance"]?.intValue ?? 0)
            }
            #expect(Dictionary(uniqueKeysWithValues: impact) == [cleaned: 1, features: 2])
            try await client.send(.post, "/v1/datasets/\(features)/retire", json: #"{"reason": "x"}"#)
            let after = try await client.send(.post, "/v1/datasets/\(raw)/retire", json: #"{"reason": "y"}"#).json()
            #expect(
                after["impact"]?.arrayValue?.compactMap { $0["dataset_id"]?.stringValue } == [cleaned],
                "retired datasets are not impacted")
        }
    }
}

/// The reference traversal: breadth-first over the recorded edges, shortest distances, edges touched.
private func traverse(
    _ all: [LineageTests.Edge], root: String, version: Int?, direction: String, depth: Int, asOf: Int
) -> (nodes: [String: Int], edges: Set<String>) {
    let edges = all.filter { $0.position <= asOf }
    var distances: [String: Int] = [key(root, version): 0]
    var touched: Set<String> = []
    for walk in direction == "both" ? ["upstream", "downstream"] : [direction] {
        var frontier = [key(root, version)]
        var seen: Set<String> = [key(root, version)]
        var level = 0
        while !frontier.isEmpty && level < depth {
            level += 1
            var next: [String] = []
            for node in frontier {
                for edge in edges {
                    let near =
                        walk == "upstream"
                        ? key(edge.to, version == nil ? nil : edge.toVersion)
                        : key(edge.from, version == nil ? nil : edge.fromVersion)
                    guard near == node else { continue }
                    touched.insert("\(edge.from)@\(edge.fromVersion)>\(edge.to)@\(edge.toVersion)")
                    let far =
                        walk == "upstream"
                        ? key(edge.from, version == nil ? nil : edge.fromVersion)
                        : key(edge.to, version == nil ? nil : edge.toVersion)
                    if seen.insert(far).inserted {
                        next.append(far)
                        distances[far] = min(distances[far] ?? level, level)
                    }
                }
            }
            frontier = next
        }
    }
    return (distances, touched)
}

private func key(_ id: String, _ version: Int?) -> String { version.map { "\(id)@\($0)" } ?? id }

private func nodes(_ answer: [String: JSONValue], versioned: Bool = false) -> [String: Int] {
    Dictionary(
        uniqueKeysWithValues: (answer["nodes"]?.arrayValue ?? []).map { node in
            (
                key(node["dataset_id"]?.stringValue ?? "", versioned ? node["version"]?.intValue : nil),
                node["distance"]?.intValue ?? -1
            )
        })
}

private func edgeSet(_ answer: [String: JSONValue]) -> Set<String> {
    Set(
        (answer["edges"]?.arrayValue ?? []).map { edge in
            "\(edge["from"]?["dataset_id"]?.stringValue ?? "")@\(edge["from"]?["version"]?.intValue ?? 0)>\(edge["to"]?["dataset_id"]?.stringValue ?? "")@\(edge["to"]?["version"]?.intValue ?? 0)"
        })
}
