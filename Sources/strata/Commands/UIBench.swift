import ArgumentParser
import AsyncHTTPClient
import BrowserDriver
import EmbeddedPostgres
import Foundation
import NIOCore
import StrataStore

/// `strata bench ui`: how long the web UI takes to draw a large lineage answer in headless Chromium
/// (Debian's `chromium`, driven by `chromedriver`), next to how long the same browser took to fetch that answer from the API.
/// The page measures both with `performance.now()`: the fetch of the lineage JSON, and the layout and
/// drawing of the SVG until the browser has laid it out.
struct UIBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ui", abstract: "Time the web UI's lineage picture in headless Chromium.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Nodes the lineage answer should have at least") var nodes = 500
    @Option(help: "Page loads to time") var rounds = 7
    @OptionGroup var output: BenchOutput

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let (target, rounds, log) = (nodes, rounds, !output.json)
        let figures = Box<[String: Any]>([:])
        try await withScratchDatabase(configuration, logger: logger) { _, _, endpoint in
            let server = try await ServerUnderTest.start(databaseURL: endpoint.url, arguments: ["--insecure-no-auth"])
            defer { server.stop() }
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let root: String
            do {
                root = try await Self.makeLineage(nodes: target, on: server, http: http)
            } catch {
                try? await http.shutdown()
                throw error
            }
            let depth = 3
            let size = try await Self.size(of: root, depth: depth, on: server, http: http)
            if log {
                print("lineage of \(root), both directions, depth \(depth): \(size.nodes) nodes, \(size.edges) edges")
            }

            let link = "\(server.baseURL)/#/datasets/\(root)?tab=lineage&direction=both&depth=\(depth)"
            let folder = FileManager.default.temporaryDirectory.path
            let browser = try await Browser.start(http: http, logFolder: folder)
            var renders: [Double] = []
            var fetches: [Double] = []
            do {
                for round in 0..<rounds {
                    // A fresh page each time: scripts from the browser's cache, the lineage fetched anew.
                    try await browser.open("about:blank")
                    try await browser.open(link)
                    try await browser.waitFor(
                        "document.querySelector('#lineage')?.dataset.renderMs", within: .seconds(60))
                    let measured =
                        try await browser.run(
                            """
                            const graph = document.querySelector('#lineage');
                            return [graph.dataset.renderMs, graph.dataset.fetchMs, graph.querySelectorAll('g.node').length];
                            """) as? [Any] ?? []
                    guard measured.count == 3, let render = Double(measured[0] as? String ?? ""),
                        let fetch = Double(measured[1] as? String ?? ""), let drawn = measured[2] as? Int
                    else { throw BenchError("the page did not measure its lineage picture: \(measured)") }
                    guard drawn == size.nodes else { throw BenchError("drew \(drawn) nodes of \(size.nodes)") }
                    // The first load also compiles the scripts and warms the server's caches: not counted.
                    if round > 0 || rounds == 1 {
                        renders.append(render)
                        fetches.append(fetch)
                    }
                }
                let errors = try await browser.consoleErrors()
                if !errors.isEmpty { throw BenchError("the page logged errors: \(errors)") }
            } catch {
                await browser.close()
                try? await http.shutdown()
                throw error
            }
            await browser.close()
            try await http.shutdown()
            let render = Self.median(renders)
            let fetch = Self.median(fetches)
            if log {
                print(String(format: "fetch of the lineage answer in the browser: median %7.1f ms", fetch))
                print(
                    String(
                        format:
                            "layout and SVG drawing of %d nodes:          median %7.1f ms (%.2f× the fetch; target < 1000 ms)",
                        size.nodes, render, render / fetch))
            }
            figures.value = [
                "nodes": size.nodes, "edges": size.edges, "depth": depth, "rounds": renders.count,
                "render_ms_p50": render, "fetch_ms_p50": fetch, "render_per_fetch": render / fetch,
                "render_ms": renders, "fetch_ms": fetches,
            ]
        }
        if output.json { print(try BenchJSON.document(["ui": figures.value])) }
    }

    /// A lineage of `nodes` datasets around one root, made through the API as users would: three layers
    /// upstream (sources feeding fewer and fewer datasets), three downstream (fanning out), each dataset
    /// made from two of the layer nearer the root. Answers the root's id.
    static func makeLineage(nodes: Int, on server: ServerUnderTest, http: HTTPClient) async throws -> String {
        let outer = max(2, (nodes - 1) * 4 / 10)
        let sizes = [outer, max(2, outer / 5), max(2, outer / 25)]  // upstream, from the sources inwards
        let downstream = [sizes[2], sizes[1], max(2, nodes - 1 - sizes.reduce(0, +) - sizes[2] - sizes[1])]
        var random = SystemRandomNumberGenerator()
        func create(_ name: String, parents: [String]) async throws -> String {
            let parentList = parents.map { #"{"dataset_id": "\#($0)", "version": 1}"# }.joined(separator: ", ")
            var request = HTTPClientRequest(url: server.baseURL + "/v1/datasets")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(
                ByteBuffer(string: #"{"namespace": "bench-ui", "name": "\#(name)", "parents": [\#(parentList)]}"#))
            let response = try await http.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            let created = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
            guard response.status == .created, let id = created?["id"] as? String else {
                throw BenchError("creating \(name): \(response.status) \(String(buffer: body))")
            }
            return id
        }
        /// Each dataset of a layer made from the one at its place in `inner` and one more at random, so
        /// that every dataset of `inner` feeds some of them.
        func layer(_ count: Int, _ name: String, from inner: [String]) async throws -> [String] {
            var ids: [String] = []
            for index in 0..<count {
                var parents = inner.isEmpty ? [] : [inner[index % inner.count]]
                if inner.count > 1, let other = inner.randomElement(using: &random), other != parents[0] {
                    parents.append(other)
                }
                ids.append(try await create("\(name)-\(index)", parents: parents))
            }
            return ids
        }
        // Upstream: sources first; each inner dataset made from two or more of the layer outside it.
        let sources = try await layer(sizes[0], "source", from: [])
        var upstream = sources
        for (depth, count) in sizes.dropFirst().enumerated() {
            var ids: [String] = []
            for index in 0..<count {
                let feeding = stride(from: index, to: upstream.count, by: count).map { upstream[$0] }
                ids.append(try await create("upstream-\(depth)-\(index)", parents: feeding))
            }
            upstream = ids
        }
        let root = try await create("root", parents: upstream)
        var inner = [root]
        for (depth, count) in downstream.enumerated() {
            inner = try await layer(count, "downstream-\(depth)", from: inner)
        }
        return root
    }

    static func size(of root: String, depth: Int, on server: ServerUnderTest, http: HTTPClient) async throws
        -> (nodes: Int, edges: Int)
    {
        let request = HTTPClientRequest(
            url: server.baseURL + "/v1/datasets/\(root)/lineage?direction=both&depth=\(depth)")
        let response = try await http.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 256 << 20)
        let answer = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        return (nodes: (answer?["nodes"] as? [Any])?.count ?? 0, edges: (answer?["edges"] as? [Any])?.count ?? 0)
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }
}
