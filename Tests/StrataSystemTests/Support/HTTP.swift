import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StrataTestSupport

/// An HTTP client for tests that talk to a server process, with enough connections for many writers.
func withHTTPClient<Result: Sendable>(_ body: @Sendable (HTTPClient) async throws -> Result) async throws -> Result {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    do {
        let result = try await body(client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

/// What a request got back, or how it failed to.
struct Answer: Sendable {
    var status: Int?
    var headers: HTTPHeaders
    var body: String
    /// The transport's error when no answer came: a timeout, a refused connection.
    var failure: String?
    var elapsed: Duration

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }
}

extension HTTPClient {
    /// Sends one request, never throwing: a transport failure is part of the answer. It presents the
    /// test servers' admin token unless `token` says otherwise.
    func send(
        _ method: HTTPMethod,
        _ url: String,
        json: String? = nil,
        headers: [String: String] = [:],
        token: String? = ServerProcess.adminToken,
        timeout: Duration = .seconds(30)
    ) async -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let started = ContinuousClock.now
        do {
            let response = try await execute(
                request, timeout: .nanoseconds(Int64(timeout.components.seconds * 1_000_000_000)))
            let body = try await response.body.collect(upTo: 16 << 20)
            return Answer(
                status: Int(response.status.code), headers: response.headers, body: String(buffer: body), failure: nil,
                elapsed: started.duration(to: .now))
        } catch {
            return Answer(
                status: nil, headers: [:], body: "", failure: String(describing: error),
                elapsed: started.duration(to: .now))
        }
    }
}

/// Runs a blocking call (a `pg_ctl`, a child process) on a thread of its own, not on one of the few
/// threads every task of the test process shares.
func blocking<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
