@preconcurrency import CRdKafka
import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// The fault-injection channel tests use: a TCP listener taking one command per line.
final class ControlServer: @unchecked Sendable {
    let cluster: MockCluster
    let host: String
    let port: Int
    private var listener: Int32 = -1

    init(cluster: MockCluster, host: String, port: Int) {
        self.cluster = cluster
        self.host = host
        self.port = port
    }

    func start() throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            throw ControlError(message: "cannot listen on \(host):\(port): \(String(cString: strerror(errno)))")
        }
        let thread = Thread { [self] in self.acceptLoop() }
        thread.name = "devbroker-control"
        thread.start()
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { continue }
            let thread = Thread { [self] in self.serve(client) }
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return }
            pending += buffer[0..<n]
            while let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<newline], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                pending.removeSubrange(...newline)
                let answer = Array((handle(line) + "\n").utf8)
                _ = answer.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            }
        }
    }

    func handle(_ line: String) -> String {
        let words = line.split(separator: " ").map(String.init)
        guard let command = words.first else { return "error empty command" }
        let args = Array(words.dropFirst())
        func int(_ i: Int) -> Int? { i < args.count ? Int(args[i]) : nil }
        let code: rd_kafka_resp_err_t
        switch command {
        case "ping":
            return "ok " + String(cString: rd_kafka_mock_cluster_bootstraps(cluster.pointer))
        case "create-topic":
            guard args.count == 2, let partitions = int(1), partitions > 0 else { return "error usage: create-topic NAME PARTITIONS" }
            code = rd_kafka_mock_topic_create(cluster.pointer, args[0], Int32(partitions), 1)
        case "broker-down", "broker-up":
            guard let id = int(0) else { return "error usage: \(command) ID" }
            code = command == "broker-down" ? rd_kafka_mock_broker_set_down(cluster.pointer, Int32(id)) : rd_kafka_mock_broker_set_up(cluster.pointer, Int32(id))
        case "rtt":
            guard let id = int(0), let ms = int(1) else { return "error usage: rtt ID MILLISECONDS" }
            code = rd_kafka_mock_broker_set_rtt(cluster.pointer, Int32(id), Int32(ms))
        case "request-errors":
            guard let api = int(0), let error = int(1), let count = int(2), count > 0 else { return "error usage: request-errors API_KEY ERROR_CODE COUNT" }
            let errors = [rd_kafka_resp_err_t](repeating: rd_kafka_resp_err_t(rawValue: Int32(error)), count: count)
            rd_kafka_mock_push_request_errors_array(cluster.pointer, Int16(api), count, errors)
            return "ok"
        case "clear-errors":
            guard let api = int(0) else { return "error usage: clear-errors API_KEY" }
            rd_kafka_mock_clear_request_errors(cluster.pointer, Int16(api))
            return "ok"
        default:
            return "error unknown command \(command)"
        }
        return code == RD_KAFKA_RESP_ERR_NO_ERROR ? "ok" : "error \(String(cString: rd_kafka_err2str(code)))"
    }
}

struct ControlError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
