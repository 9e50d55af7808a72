import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import TestSupport

/// A headless Chromium driven through chromedriver's W3C WebDriver HTTP API (Debian's `chromium` and
/// `chromium-driver`, which `make test` installs). Only what the widget test needs.
final class WebDriver: Sendable {
    let port: Int
    let sessionID: String
    private let driver: ChildProcess

    struct Failure: Error, CustomStringConvertible { let description: String }

    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    static func start() async throws -> WebDriver {
        let binary = "/usr/bin/chromedriver"
        guard FileManager.default.isExecutableFile(atPath: binary), FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") else {
            throw Failure(description: "the browser test needs Debian's chromium and chromium-driver (make test installs them)")
        }
        // Below the ephemeral range (32768+), so no outgoing connection holds the port; a taken port makes
        // chromedriver exit, and then another is tried.
        var started: (ChildProcess, Int)?
        for _ in 0..<5 where started == nil {
            let port = Int.random(in: 12_000..<32_000)
            let driver = try ChildProcess(executable: binary, arguments: ["--port=\(port)", "--allowed-ips=127.0.0.1"])
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, driver.status == nil {
                if let (status, _) = try? await call(port: port, .get, "/status"), status == .ok { started = (driver, port); break }
                try await Task.sleep(for: .milliseconds(100))
            }
            if started == nil { driver.signal(SIGKILL) }
        }
        guard let (driver, port) = started else { throw Failure(description: "chromedriver did not start: \(binary)") }
        let capabilities = #"{"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900", "--lang=en-US"]}}}}"#
        let (status, json) = try await call(port: port, .post, "/session", body: capabilities)
        guard status == .ok, let value = json["value"] as? [String: Any], let id = value["sessionId"] as? String else {
            driver.signal(SIGKILL)
            throw Failure(description: "chromedriver did not start a session: \(status) \(json)")
        }
        return WebDriver(port: port, sessionID: id, driver: driver)
    }

    private init(port: Int, sessionID: String, driver: ChildProcess) {
        self.port = port
        self.sessionID = sessionID
        self.driver = driver
    }

    func quit() async {
        _ = try? await Self.call(port: port, .delete, "/session/\(sessionID)")
        driver.signal(SIGTERM)
        _ = await driver.wait(timeout: .seconds(5))
    }

    static func call(port: Int, _ method: HTTPRequest.Method, _ path: String, body: String? = nil) async throws -> (HTTPResponse.Status, [String: Any]) {
        let response = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            try await client.execute(.init(path, method: method, headers: body == nil ? [:] : [.contentType: "application/json"],
                                           body: body.map { ByteBuffer(string: $0) }))
        }
        let data = response.body.map { Data(buffer: $0) } ?? Data()
        return (response.status, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }

    @discardableResult
    private func command(_ method: HTTPRequest.Method, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        let text = try body.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        let (status, json) = try await Self.call(port: port, method, "/session/\(sessionID)\(path)", body: text ?? (method == .post ? "{}" : nil))
        guard status == .ok else { throw Failure(description: "WebDriver \(method) \(path): \(status) \(json["value"] ?? json)") }
        return json["value"]
    }

    func navigate(_ url: String) async throws { try await command(.post, "/url", ["url": url]) }

    func element(_ css: String) async throws -> String {
        guard let value = try await command(.post, "/element", ["using": "css selector", "value": css]) as? [String: Any],
              let id = value[Self.elementKey] as? String else { throw Failure(description: "no element \(css)") }
        return id
    }

    func click(_ css: String) async throws { try await command(.post, "/element/\(try await element(css))/click") }

    /// Types into an element; `\u{E007}` is Enter, `\u{E00C}` Escape.
    func type(_ css: String, _ text: String) async throws { try await command(.post, "/element/\(try await element(css))/value", ["text": text]) }

    /// Runs JavaScript in the page and returns its result.
    func script(_ source: String) async throws -> Any? { try await command(.post, "/execute/sync", ["script": source, "args": []]) }

    func setWindow(width: Int, height: Int) async throws { try await command(.post, "/window/rect", ["width": width, "height": height]) }

    /// Waits until `source` (a JavaScript expression) is true in the page, or fails after `timeout`.
    func waitFor(_ what: String, _ source: String, timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await script("return !!(\(source));") as? Bool == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let texts = try await script("return Array.from(document.querySelectorAll('.fnl-chat-msg')).map(function (n) { return n.textContent; });")
        throw Failure(description: "timed out waiting for \(what); messages: \(texts ?? "none")")
    }
}
