import Contracts
import Foundation
import Kafka
import Postgres
import Testing
import TestSupport
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// The delivery promise, shown on the real executable: kill -9 mid-stream, restart, and every lead is emitted,
/// none with two effects.
@Suite("marketing-intake crash recovery")
struct CrashRecoveryTests {
    @Test func killNineMidBatchThenRestartLosesNoLeadAndDuplicatesNone() async throws {
        let count = 20_000
        let intake = try IntakeExecutable("crash", partitions: 8, extra: ["FUNNEL_LOG_LEVEL": "warning", "FUNNEL_CONSUMER_BATCH_SIZE": "500"])
        let (prefix, schema) = (intake.prefix, intake.schema)
        let sourceName = TestEnvironment.uniqueName("src")
        _ = try await intake.createSource(named: sourceName)
        try await intake.produce(count, lead: { i in
            ("p-\(i)", #"{"source": "\#(sourceName)", "phone": "+86 139\#(String(format: "%08d", i))", "platformLeadId": "p-\#(i)", "campaignId": "c\#(i % 7)"}"#)
        }, headers: { i in [KafkaHeader(key: "ce_id", text: "\(prefix)lead-\(i)")] })

        let reader = try TopicReader(topic: prefix + "leads.captured.v1")
        var output: [KafkaConsumedMessage] = []
        let first = try intake.serve()
        let deadline = ContinuousClock.now + .seconds(120)
        while output.count < count / 5, ContinuousClock.now < deadline {
            output += try await reader.read(atLeast: 1, timeout: .milliseconds(200))
        }
        first.signal(SIGKILL)
        #expect(await first.wait() != 0)
        #expect(output.count >= count / 5 && output.count < count, "killed mid-stream (after \(output.count))")

        let second = try intake.serve()
        var platformIDs = Set<String>()
        for message in output { platformIDs.insert(try Funnel_Leads_V1_LeadCaptured(serializedBytes: message.value).platformLeadID) }
        while platformIDs.count < count, ContinuousClock.now < deadline + .seconds(60) {
            let batch = try await reader.read(atLeast: 1, timeout: .milliseconds(200))
            output += batch
            for message in batch { platformIDs.insert(try Funnel_Leads_V1_LeadCaptured(serializedBytes: message.value).platformLeadID) }
        }
        output += try await reader.read(atLeast: Int.max, timeout: .seconds(2))
        await reader.close()
        second.signal(SIGTERM)
        #expect(await second.wait(timeout: .seconds(30)) == 0, "graceful shutdown on SIGTERM: \(second.exitReport)")

        // Every lead arrived; each platform lead has exactly one lead id (one effect). A record the relay had
        // published but not yet marked when killed comes again with the same ce_id, which consumers dedupe.
        let events = try output.map { try Funnel_Leads_V1_LeadCaptured(serializedBytes: $0.value) }
        var leadIDsByPlatformID: [String: Set<String>] = [:]
        for event in events { leadIDsByPlatformID[event.platformLeadID, default: []].insert(event.leadID) }
        #expect(leadIDsByPlatformID.count == count, "no lead lost")
        #expect(leadIDsByPlatformID.values.allSatisfy { $0.count == 1 }, "no lead emitted twice as two leads")
        let ceIDs = output.compactMap { $0.header("ce_id") }
        #expect(Set(ceIDs).count == count, "after dedupe by ce_id, exactly one record per lead")
        let stored = try await TestEnvironment.postgres(maxConnections: 1).query("SELECT count(*), count(DISTINCT platform_lead_id) FROM \(identifier: schema).leads").first!.decode(Int.self, Int.self)
        #expect(stored == (count, count))
        if output.count > count { print("crash recovery: \(output.count - count) records re-sent with their original ce_id") }
    }
}
