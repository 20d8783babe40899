import Foundation
import Hummingbird
import HummingbirdTesting
import StrataHTTP
import StrataTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Clients that hold a connection without finishing a request: the server closes it after its idle
/// timeout, but never a live feed it is writing to.
@Suite("Slow, silent and torn requests")
struct SlowClientTests {
    @Test func aClientThatTricklesOrSaysNothingIsCutOffButAQuietFeedIsNot() async throws {
        try await withTestDatabase { database in
            let services = try StrataServices(
                database: .fixed(database.makeClient()), logger: database.logger,
                access: .tokens(bootstrapSecret: testAdminSecret), deadlines: .patient)
            let app = buildApplication(.init(host: "127.0.0.1", port: 0, idleTimeout: .seconds(1)), services: services)
            try await app.test(.live) { client in
                let port = try #require(client.port)
                try await blockingThread {
                    // Ready first, each question on a connection of its own: the test client's one connection
                    // would be closed by the 1 s idle timeout while the server prepares its database.
                    let deadline = Date().addingTimeInterval(60)
                    while Date() < deadline {
                        let probe = try RawConnection(port: port)
                        try probe.send("GET /readyz HTTP/1.1\r\nHost: strata\r\nConnection: close\r\n\r\n")
                        if probe.received(within: 5).hasPrefix("HTTP/1.1 200") { break }
                        usleep(50_000)
                    }

                    // Half a request's headers, then nothing.
                    let trickle = try RawConnection(port: port)
                    try trickle.send("GET /healthz HTTP/1.1\r\nHost: strata\r\n")
                    let cutOff = trickle.secondsUntilClosed(within: 10)
                    #expect(cutOff.map { $0 < 5 } == true, "a half-sent request held its connection: \(cutOff ?? -1) s")

                    // A connection that never says anything.
                    let silent = try RawConnection(port: port)
                    let dropped = silent.secondsUntilClosed(within: 10)
                    #expect(dropped.map { $0 < 5 } == true, "a silent connection was kept: \(dropped ?? -1) s")

                    // A live feed sends nothing for seconds at a time, and is not idle.
                    let feed = try RawConnection(port: port)
                    try feed.send(
                        "GET /v1/events/stream HTTP/1.1\r\nHost: strata\r\nAuthorization: Bearer \(testAdminSecret)\r\n\r\n"
                    )
                    #expect(feed.secondsUntilClosed(within: 3) == nil, "the feed was cut off")
                }
            }
        }
    }
}

extension SlowClientTests {
    /// A body whose framing is broken, or that ends before its Content-Length, is the client's fault: 400,
    /// and nothing is written.
    @Test func aBodyMalformedOrCutShortIs400AndWritesNothing() async throws {
        try await withLiveApp { client, _ in
            let port = try #require(client.port)
            let headers =
                "Host: strata\r\nAuthorization: Bearer \(testAdminSecret)\r\nContent-Type: application/json\r\n"
            let create = #"{"namespace": "raw", "name": "torn"}"#
            let requests = [
                "POST /v1/datasets HTTP/1.1\r\n\(headers)Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
                "POST /v1/datasets HTTP/1.1\r\n\(headers)Transfer-Encoding: chunked\r\n\r\n3\r\n\(create)\r\n0\r\n\r\n",
                "POST /api/v1/lineage/batch HTTP/1.1\r\n\(headers)Transfer-Encoding: chunked\r\n\r\n-1\r\n[]\r\n0\r\n\r\n",
                "POST /v1/datasets HTTP/1.1\r\n\(headers)Content-Length: 100\r\n\r\n\(create)",
            ]
            for request in requests {
                let answer = try await blockingThread { () -> String in
                    let connection = try RawConnection(port: port)
                    try connection.send(request)
                    connection.finishSending()
                    return connection.received(within: 10)
                }
                let line = answer.components(separatedBy: "\r\n").first
                #expect(line == "HTTP/1.1 400 Bad Request", "\(request.prefix(40)): \(answer.prefix(300))")
                #expect(answer.contains("application/problem+json"), "\(answer.prefix(300))")
            }
            let listed = try await client.send(.get, "/v1/datasets?status=all").json()
            #expect(listed["datasets"]?.arrayValue == [], "a torn request wrote something")
        }
    }
}

/// A TCP connection to the test server, written and read byte by byte as a misbehaving client would.
private final class RawConnection {
    let socket: Int32

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(socket) }

    func send(_ text: String) throws {
        let sent = text.utf8CString.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count - 1, 0) }
        guard sent > 0 else { throw POSIXError(.EPIPE) }
    }

    /// Says no more: what was sent is the whole request.
    func finishSending() {
        shutdown(socket, Int32(SHUT_WR))
    }

    /// What arrives until the server closes the connection, or `limit` seconds pass.
    func received(within limit: Double) -> String {
        let started = Date()
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date().timeIntervalSince(started) < limit {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count > 0 { answer += buffer.prefix(count) }
            if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { break }
        }
        return String(decoding: answer, as: UTF8.self)
    }

    /// Reads (and drops) whatever arrives until the server closes the connection; answers after how many
    /// seconds it did, or nil if it was still open after `limit`.
    func secondsUntilClosed(within limit: Double) -> Double? {
        let started = Date()
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date().timeIntervalSince(started) < limit {
            let received = recv(socket, &buffer, buffer.count, 0)
            if received == 0 || (received < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                return Date().timeIntervalSince(started)
            }
        }
        return nil
    }
}

/// Runs blocking socket calls on a thread of their own, off the few the test process's tasks share.
private func blockingThread<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
        Thread { continuation.resume(with: Swift.Result { try body() }) }.start()
    }
}
