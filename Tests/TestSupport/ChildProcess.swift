import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// A child process for tests (kcat, a service under test), started with posix_spawn, its output sent to a file,
/// and waited for without blocking or spinning (Foundation's `Process.waitUntilExit` busy-waits on Linux).
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    /// Where stdout and stderr go.
    public let outputPath: String
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments`; `environment` entries are added to this process's environment.
    public init(executable: String, arguments: [String], environment: [String: String] = [:], outputPath: String? = nil) throws {
        let output = outputPath ?? NSTemporaryDirectory() + TestEnvironment.uniqueName("child") + ".log"
        self.outputPath = output
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, nil, argv, envp)
        guard result == 0 else { throw ChildProcessError(description: "cannot start \(executable): \(String(cString: strerror(result)))") }
        self.pid = child
    }

    /// Sends `signal` (SIGTERM by default; SIGKILL for a crash).
    public func signal(_ signal: Int32 = SIGTERM) {
        if status == nil { kill(pid, signal) }
    }

    /// The exit status once it has ended (reaps it without blocking).
    public var status: Int32? {
        lock.withLock {
            if exitStatus == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid { exitStatus = raw }
            }
            return exitStatus
        }
    }

    /// Waits (sleeping, not spinning) until it ends or `timeout` passes; then kills it. Returns its status.
    @discardableResult
    public func wait(timeout: Duration = .seconds(30)) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while status == nil, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if status == nil {
            kill(pid, SIGKILL)
            while status == nil { try? await Task.sleep(for: .milliseconds(20)) }
        }
        return status!
    }

    /// Everything it wrote so far.
    public var output: String {
        (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    /// What to show when it ended badly: a crash report from its start (the crashing thread comes first), else the
    /// last lines it wrote.
    public var exitReport: String {
        let text = output
        for marker in ["Fatal error", "Program crashed", "Assertion"] {
            if let start = text.range(of: marker) {
                return String(text[start.lowerBound...].prefix(4_000))
            }
        }
        return String(text.suffix(2_000))
    }

    deinit {
        if status == nil { kill(pid, SIGKILL); var raw: Int32 = 0; waitpid(pid, &raw, 0) }
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}
