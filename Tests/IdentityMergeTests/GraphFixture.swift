import Contracts
import Foundation
@testable import IdentityMerge
import Kafka
import Postgres
import ServiceKit
import SwiftProtobuf
import TestSupport

/// identity-merge's handler on a fresh schema of the test PostgreSQL, fed records directly (one transaction per
/// feed, as the consume loop runs it), for rule cases that need no broker.
final class GraphFixture: Sendable {
    let schema: String
    let postgres: PostgresClient
    let handler: IdentityHandler
    let store: CustomerStore
    let rules: RulesStore
    let keyer = IdentityKeyer(pepper: Array(RecordBuilder.pepper.utf8))
    let cipher: PIICipher

    static let topics = IdentityTopics(leads: "t.leads.captured.v1", registrations: "t.identity.registrations.v1",
                                       tags: "t.identity.tags.v1", customers: "t.identity.customers.v1")

    init() async throws {
        schema = TestEnvironment.uniqueName("im")
        postgres = TestEnvironment.postgres(maxConnections: 2)
        cipher = try PIICipher(keys: ["k1": RecordBuilder.key], activeKeyID: "k1")
        _ = try await PostgresMigrator(schema: schema, migrations: IdentityService.migrations).migrate(postgres, logger: TestEnvironment.logger())
        let events = CustomerEvents(service: "identity-merge", topic: Self.topics.customers)
        rules = RulesStore(schema: schema, keyer: keyer, defaultRegion: "CN")
        try await rules.ensureDefault(postgres)
        handler = IdentityHandler(topics: Self.topics, builder: ObservationBuilder(keyer: keyer, cipher: cipher, defaultRegion: "CN"),
                                  rules: rules, graphStore: GraphStore(schema: schema), tags: TagApplier(schema: schema, events: events), events: events)
        store = CustomerStore(schema: schema, postgres: postgres, events: events, rules: rules, cipher: cipher, keyer: keyer, defaultRegion: "CN")
    }

    func close() async { await postgres.shutdown() }

    /// Runs the handler on `records` in one transaction.
    @discardableResult
    func feed(_ records: [KafkaConsumedMessage]) async throws -> [HandlerOutcome] {
        let handler = self.handler
        return try await postgres.withTransaction { try handler.handle(records, in: $0) }
    }

    /// Feeds records one transaction each.
    func feedEach(_ records: [KafkaConsumedMessage]) async throws {
        for record in records { try await feed([record]) }
    }

    // MARK: records

    var records: RecordBuilder { RecordBuilder(keyer: keyer, cipher: cipher, topics: Self.topics) }

    func lead(phone: String? = nil, email: String? = nil, wechat: String? = nil, visitor: String? = nil, id: String = UUIDv7.generate().lowercasedText,
              at: Date = Date(), name: String? = nil, channel: String = "sem", campaign: String = "c1", course: String = "python") -> KafkaConsumedMessage {
        records.lead(phone: phone, email: email, wechat: wechat, visitor: visitor, id: id, at: at, name: name, channel: channel, campaign: campaign, course: course)
    }

    func registration(user: String, phone: String? = nil, email: String? = nil, unionid: String? = nil, at: Date = Date(),
                      name: String? = nil) -> KafkaConsumedMessage {
        records.registration(user: user, phone: phone, email: email, unionid: unionid, at: at, name: name)
    }

    func tag(customer: UUID? = nil, user: String? = nil, tag: String, source: String = "learning-system", removed: Bool = false) -> KafkaConsumedMessage {
        records.tag(customer: customer, user: user, tag: tag, source: source, removed: removed)
    }

    func json(_ topic: String, key: String, _ text: String) -> KafkaConsumedMessage { records.json(topic, key: key, text) }

    func message(_ topic: String, key: String, bytes: [UInt8], contentType: String) -> KafkaConsumedMessage {
        records.message(topic, key: key, bytes: bytes, contentType: contentType)
    }

    // MARK: reading the graph

    /// The customer holding this phone now.
    func customer(phone: String) async throws -> UUID? { try await store.find(kind: .phone, value: phone) }
    func customer(user: String) async throws -> UUID? { try await store.find(kind: .userID, value: user) }

    /// The identifiers of every active customer, grouped: the clustering, independent of customer ids.
    func clustering() async throws -> Set<Set<String>> { try await Self.clustering(schema: schema, postgres: postgres) }

    static func clustering(schema: String, postgres: PostgresClient) async throws -> Set<Set<String>> {
        let rows = try await postgres.query("SELECT customer_id, ident FROM \(identifier: schema).identifiers")
        var groups: [UUID: Set<String>] = [:]
        for row in rows {
            let (customer, ident) = try row.decode(UUID.self, String.self)
            groups[customer, default: []].insert(ident)
        }
        return Set(groups.values)
    }

    func count(_ sql: PostgresQuery) async throws -> Int {
        try await postgres.query(sql).first!.decode(Int.self)
    }

    func activeCustomers() async throws -> Int {
        try await count("SELECT count(*)::int FROM \(identifier: schema).customers WHERE status = 'active'")
    }

    func decisions(_ customer: UUID) async throws -> [HistoryEntry] { try await store.history(customer) }
}

extension HandlerOutcome {
    var events: [Funnel_Identity_V1_CustomerEvent] {
        guard case .processed(let events) = self else { return [] }
        return events.compactMap { try? Funnel_Identity_V1_CustomerEvent(serializedBytes: $0.payload) }
    }

    var rejection: String? {
        guard case .rejected(let code, _) = self else { return nil }
        return code
    }
}

/// Builds input records as intake, chat, the main system and the learning system send them.
struct RecordBuilder: Sendable {
    let keyer: IdentityKeyer
    let cipher: PIICipher
    let topics: IdentityTopics

    static let pepper = "graph-fixture-pepper-0123456789"
    static let key = [UInt8](repeating: 7, count: 32)


    func lead(phone: String? = nil, email: String? = nil, wechat: String? = nil, visitor: String? = nil, id: String = UUIDv7.generate().lowercasedText,
              at: Date = Date(), name: String? = nil, channel: String = "sem", campaign: String = "c1", course: String = "python") -> KafkaConsumedMessage {
        var lead = Funnel_Leads_V1_LeadCaptured()
        lead.leadID = id
        lead.attribution.channel = channel
        lead.attribution.campaignID = campaign
        lead.courseInterest = course
        lead.occurredAt = Google_Protobuf_Timestamp(date: at)
        if let phone {
            let e164 = (try? PhoneNumber.parse(phone).e164) ?? phone
            lead.phoneKey = keyer.key(kind: "phone", normalized: e164)
            lead.phone = try! cipher.encrypt(e164, field: "phone")
            lead.phoneMasked = Masking.phone(e164)
        }
        if let email {
            lead.emailKey = keyer.key(kind: "email", normalized: email.lowercased())
            lead.emailMasked = Masking.email(email)
        }
        if let wechat {
            lead.wechatKey = keyer.key(kind: "wechat", normalized: wechat)
            lead.wechat = try! cipher.encrypt(wechat, field: "wechat")
        }
        if let visitor { lead.visitorID = visitor }
        if let name {
            lead.name = try! cipher.encrypt(name, field: "name")
            lead.nameMasked = Masking.name(name)
        }
        return message(topics.leads, key: lead.phoneKey, bytes: try! lead.serializedBytes(), contentType: "application/protobuf")
    }

    func registration(user: String, phone: String? = nil, email: String? = nil, unionid: String? = nil, at: Date = Date(),
                      name: String? = nil) -> KafkaConsumedMessage {
        var fields = ["\"userId\": \"\(user)\"", "\"registeredAt\": \"\(RFC3339.format(at))\""]
        if let phone { fields.append("\"phone\": \"\(phone)\"") }
        if let email { fields.append("\"email\": \"\(email)\"") }
        if let unionid { fields.append("\"wechatUnionid\": \"\(unionid)\"") }
        if let name { fields.append("\"displayName\": \"\(name)\"") }
        return json(topics.registrations, key: user, "{" + fields.joined(separator: ", ") + "}")
    }

    func tag(customer: UUID? = nil, user: String? = nil, tag: String, source: String = "learning-system", removed: Bool = false) -> KafkaConsumedMessage {
        var fields = ["\"tag\": \"\(tag)\"", "\"source\": \"\(source)\"", "\"removed\": \(removed)"]
        if let customer { fields.append("\"customerId\": \"\(customer.uuidString.lowercased())\"") }
        if let user { fields.append("\"userId\": \"\(user)\"") }
        return json(topics.tags, key: user ?? "", "{" + fields.joined(separator: ", ") + "}")
    }

    func json(_ topic: String, key: String, _ text: String) -> KafkaConsumedMessage {
        message(topic, key: key, bytes: Array(text.utf8), contentType: "application/json")
    }

    func message(_ topic: String, key: String, bytes: [UInt8], contentType: String) -> KafkaConsumedMessage {
        KafkaConsumedMessage(topic: topic, partition: 0, offset: 0, key: Array(key.utf8), value: bytes,
                             headers: [KafkaHeader(key: "content-type", text: contentType)], timestampMilliseconds: nil)
    }

}
