// devbroker: librdkafka's in-memory mock cluster as a long-running local broker, for laptops and CI only.
import ArgumentParser
import BindInterpose
@preconcurrency import CRdKafka
import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// The suite's topics, created at start with enough partitions (the mock keeps ~5 MiB per partition).
let suiteTopics = [
    "marketing.campaign-leads.v1", "marketing.campaign-costs.v1", "leads.captured.v1", "identity.registrations.v1",
    "identity.tags.v1", "identity.customers.v1", "sales.opportunities.v1", "callcenter.dial-tasks.v1",
    "callcenter.call-events.v1", "callcenter.calls.v1", "sms.requests.v1", "sms.deliveries.v1",
    "commerce.orders.v1", "sales.conversions.v1", "hr.employees.v1",
    "dlq.marketing-intake.v1", "dlq.online-chat.v1", "dlq.identity-merge.v1", "dlq.sales-dispatch.v1",
    "dlq.callcenter-gateway.v1", "dlq.sms-gateway.v1", "dlq.order-bridge.v1", "dlq.hr-sync.v1",
]

@main
struct DevBroker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devbroker",
        abstract: "A Kafka-protocol broker for development and CI: librdkafka's mock cluster, in memory only.",
        discussion: """
            FOR LAPTOPS AND CI ONLY. Everything lives in memory and is lost when the process stops; there is no \
            replication to disk, no SASL/TLS, and retention is about 5 MiB per partition (older data is dropped \
            silently). Production uses Apache Kafka (see deploy/).

            Control channel (one command per line over TCP, answers 'ok …' or 'error …'):
              ping | create-topic NAME PARTITIONS | broker-down ID | broker-up ID | rtt ID MILLISECONDS
              request-errors API_KEY ERROR_CODE COUNT | clear-errors API_KEY
            """
    )

    @Option(help: "Address the broker listens on (the mock binds 127.0.0.1 only).")
    var listen = "127.0.0.1:9092"

    @Option(help: "Address of the control channel.")
    var control = "127.0.0.1:9192"

    @Option(help: "Number of brokers in the mock cluster (the first gets the --listen port).")
    var brokers = 1

    @Option(help: "Partitions of each suite topic created at start.")
    var partitions = 16

    @Option(help: "Extra topics to create, as NAME:PARTITIONS, comma-separated.")
    var topics = ""

    func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        guard let (_, port) = parseAddress(listen) else { throw ValidationError("--listen must be 127.0.0.1:PORT") }
        guard let (controlHost, controlPort) = parseAddress(control) else { throw ValidationError("--control must be HOST:PORT") }
        funnel_devbroker_set_port(Int32(port))

        let conf = rd_kafka_conf_new()
        var errstr = [CChar](repeating: 0, count: 512)
        // Without this, each produce batch waits ~44 ms in the mock (Nagle); it must be set on the hosting handle.
        _ = rd_kafka_conf_set(conf, "socket.nagle.disable", "true", &errstr, errstr.count)
        _ = rd_kafka_conf_set(conf, "log_level", "3", &errstr, errstr.count)
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count) else {
            throw ValidationError("rd_kafka_new failed")
        }
        guard let cluster = rd_kafka_mock_cluster_new(rk, Int32(brokers)) else {
            throw ValidationError("could not start the mock cluster")
        }
        let bootstrap = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        guard funnel_devbroker_port_used() == 1, bootstrap.contains(":\(port)") else {
            print("devbroker: could not bind \(listen) (in use?); mock bootstraps are \(bootstrap)")
            Foundation.exit(1)
        }

        var wanted = suiteTopics.map { ($0, partitions) }
        for item in topics.split(separator: ",") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let count = Int(parts[1]), count > 0 else { throw ValidationError("bad --topics item \(item)") }
            wanted.append((String(parts[0]), count))
        }
        for (topic, count) in wanted {
            let code = rd_kafka_mock_topic_create(cluster, topic, Int32(count), 1)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR { print("devbroker: cannot create \(topic): \(String(cString: rd_kafka_err2str(code)))") }
        }

        let controller = ControlServer(cluster: MockCluster(pointer: cluster), host: controlHost, port: port == controlPort ? 0 : controlPort)
        try controller.start()
        print("devbroker: in-memory Kafka mock cluster for development and CI only (librdkafka \(String(cString: rd_kafka_version_str())))")
        print("bootstrap=\(bootstrap)")
        print("control=\(controlHost):\(controlPort)")
        print("topics=\(wanted.count) partitions=\(partitions)")

        signal(SIGPIPE, SIG_IGN)
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGTERM)
        sigaddset(&mask, SIGINT)
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        var received: Int32 = 0
        sigwait(&mask, &received)
        print("devbroker: stopping on signal \(received)")
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(rk)
    }
}

func parseAddress(_ text: String) -> (String, Int)? {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
    return (String(text[..<colon]), port)
}

/// The mock cluster handle: librdkafka serialises mock commands internally, so it may be used from any thread.
struct MockCluster: @unchecked Sendable {
    let pointer: OpaquePointer
}
