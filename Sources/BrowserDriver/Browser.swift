import AsyncHTTPClient
import EmbeddedPostgres
import Foundation
import NIOCore
import NIOHTTP1

/// A real headless Chromium, driven over W3C WebDriver by Debian's `chromedriver`: the tests and
/// `strata bench ui` load the web UI as a user's browser does, run its JavaScript, and read the DOM it
/// rendered.
public struct Browser: Sendable {
    let http: HTTPClient
    let driver: pid_t
    let endpoint: String

    /// Starts chromedriver (its log in `logFolder`) and one browser session. `.ci/run` installs both from
    /// Debian's packages.
    public static func start(http: HTTPClient, logFolder: String, windowWidth: Int = 1280, windowHeight: Int = 900)
        async throws -> Browser
    {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver") else {
            throw BrowserError(message: "chromedriver is missing: apt-get install chromium chromium-driver")
        }
        // Started again once if it does not announce itself: it once failed to within its wait in a full
        // run of the suites, and ran at once alone.
        var attempt = 0
        var started: (driver: pid_t, url: String)?
        while started == nil {
            attempt += 1
            let logPath = logFolder + "/chromedriver-\(UUID().uuidString.prefix(8)).log"
            let driver = try ProcessRunner.start(["/usr/bin/chromedriver", "--port=0"], outputPath: logPath)
            do {
                started = (driver, try await address(of: driver, announcedIn: logPath))
            } catch let error as BrowserError where attempt < 2 {
                FileHandle.standardError.write(Data("\(error.message); starting it again\n".utf8))
            }
        }
        let (driver, driverURL) = started!
        // Root (CI) needs --no-sandbox; /dev/shm is small in containers.
        let arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=\(windowWidth),\(windowHeight)", "--lang=en-US",
        ]
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": ["args": arguments, "binary": "/usr/bin/chromium"],
                    "goog:loggingPrefs": ["browser": "ALL"],
                ]
            ]
        ]
        do {
            let session = try await call(http, .POST, driverURL + "/session", body: capabilities)
            guard let id = (session as? [String: Any])?["sessionId"] as? String else {
                throw BrowserError(message: "no WebDriver session: \(String(describing: session))")
            }
            return Browser(http: http, driver: driver, endpoint: driverURL + "/session/" + id)
        } catch {
            kill(driver, SIGKILL)
            throw error
        }
    }

    /// Where chromedriver listens, from its "started successfully on port N".
    private static func address(of driver: pid_t, announcedIn logPath: String) async throws -> String {
        let started = ContinuousClock.now
        while started.duration(to: .now) < .seconds(30) {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let line = log.split(separator: "\n").first(where: { $0.contains("started successfully on port") }),
                let port = Int(line.split(separator: " ").last?.prefix(while: \.isNumber) ?? "")
            {
                return "http://127.0.0.1:\(port)"
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let alive = isProcessAlive(driver)
        kill(driver, SIGKILL)
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log)"
        throw BrowserError(
            message:
                "chromedriver did not start within 30 s (\(alive ? "still running" : "exited")): \(log.suffix(2000))")
    }

    public func close() async {
        // Ending the session closes the browser; chromedriver itself does not stop on SIGTERM.
        _ = try? await Self.call(http, .DELETE, endpoint)
        kill(driver, SIGKILL)
        var status: Int32 = 0
        waitpid(driver, &status, 0)
    }

    public func open(_ url: String) async throws {
        _ = try await Self.call(http, .POST, endpoint + "/url", body: ["url": url])
    }

    /// Opens `fragment` of the UI at `baseURL` and waits until its view has rendered.
    public func show(_ baseURL: String, _ fragment: String) async throws {
        try await open(baseURL + "/" + fragment)
        try await waitFor("document.body.dataset.view === \(javaScriptString(fragment)) || null")
    }

    /// Runs `script` (a function body; `arguments` holds `arguments`) in the page, answering its result.
    @discardableResult
    public func run(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        let value = try await Self.call(
            http, .POST, endpoint + "/execute/sync", body: ["script": script, "args": arguments])
        return value is NSNull ? nil : value
    }

    /// Polls `expression` until it is neither null nor false, answering its value.
    @discardableResult
    public func waitFor(_ expression: String, within limit: Duration = .seconds(20)) async throws -> Any {
        let started = ContinuousClock.now
        while true {
            if let value = try await run("return (\(expression));"), (value as? Bool) != false { return value }
            guard started.duration(to: .now) < limit else {
                let text = (try? await run("return document.body.innerText;")) as? String ?? ""
                throw BrowserError(message: "waited \(limit) for \(expression); the page says:\n\(text.prefix(2000))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The page's strings under `selector`, read by `property` of each element (`textContent`,
    /// `dataset.id`…).
    public func strings(_ selector: String, _ property: String = "textContent") async throws -> [String] {
        let value = try await run(
            "return [...document.querySelectorAll(arguments[0])].map((e) => String(e.\(property) ?? ''));", [selector])
        return value as? [String] ?? []
    }

    /// Writes a PNG of the window to `path`.
    public func screenshot(to path: String) async throws {
        guard let base64 = try await Self.call(http, .GET, endpoint + "/screenshot") as? String,
            let png = Data(base64Encoded: base64)
        else { throw BrowserError(message: "no screenshot") }
        try png.write(to: URL(fileURLWithPath: path))
    }

    /// What the page logged at error level (and failed loads) since the last call.
    public func consoleErrors() async throws -> [String] {
        let entries =
            try await Self.call(http, .POST, endpoint + "/se/log", body: ["type": "browser"]) as? [[String: Any]]
        return (entries ?? []).filter { $0["level"] as? String == "SEVERE" }.compactMap { $0["message"] as? String }
    }

    private static func call(_ http: HTTPClient, _ method: HTTPMethod, _ url: String, body: Any? = nil) async throws
        -> Any?
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let document = try JSONSerialization.jsonObject(
            with: Data(bytes.readableBytesView), options: [.fragmentsAllowed])
        let value = (document as? [String: Any])?["value"]
        if response.status.code >= 400 {
            let error = (value as? [String: Any]).map { "\($0["error"] ?? ""): \($0["message"] ?? "")" }
            throw BrowserError(message: "WebDriver \(method) \(url): \(response.status) \(error ?? "")")
        }
        return value
    }
}

public struct BrowserError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    public init(message: String) { self.message = message }
}

/// A JavaScript string literal of `text`.
public func javaScriptString(_ text: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [text])
    return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
}
