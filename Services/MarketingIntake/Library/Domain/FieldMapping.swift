import Contracts
import Foundation
import ServiceKit
import SwiftProtobuf

/// How a platform's own lead JSON (Tencent, ByteDance and other pushes) becomes a `CampaignLead`, kept as data
/// per source: each lead field names a path into the pushed JSON (`data.telephone`, `answers.0.value`);
/// `records`, when set, names the array holding several leads; `constants` fill fields the payload lacks.
///
/// ```json
/// {"records": "data.clues", "fields": {"platform_lead_id": "clue_id", "phone": "telephone", "name": "name",
///  "campaign_id": "ad_info.campaign_id", "occurred_at": "create_time"}, "constants": {"channel": "feed"}}
/// ```
struct FieldMapping: Codable, Sendable, Equatable {
    var records: String?
    var fields: [String: String]
    var constants: [String: String]?

    /// The lead fields a mapping may fill.
    static let targets: Set<String> = [
        "channel", "platform_lead_id", "campaign_id", "ad_group_id", "ad_id", "keyword", "landing_url", "referrer_url",
        "name", "phone", "email", "wechat", "course_interest", "note", "is_test", "occurred_at", "click_id",
        "utm.source", "utm.medium", "utm.campaign", "utm.term", "utm.content",
    ]

    /// Every problem of the mapping, by field (empty when it is valid).
    func violations() -> [(field: String, detail: String)] {
        var out: [(String, String)] = []
        if fields.isEmpty { out.append(("fields", "map at least one lead field")) }
        for (target, path) in fields.sorted(by: { $0.key < $1.key }) {
            if !Self.targets.contains(target) { out.append(("fields.\(target)", "not a lead field (one of \(Self.targets.sorted().joined(separator: ", ")))")) }
            if !Self.validPath(path) { out.append(("fields.\(target)", "not a path: dot-separated keys or array indexes, at most 256 characters")) }
        }
        for (target, value) in (constants ?? [:]).sorted(by: { $0.key < $1.key }) {
            if !Self.targets.contains(target) { out.append(("constants.\(target)", "not a lead field")) }
            if value.count > 256 { out.append(("constants.\(target)", "longer than 256 characters")) }
        }
        if let records, !Self.validPath(records) { out.append(("records", "not a path")) }
        if fields.count > 50 || (constants?.count ?? 0) > 50 { out.append(("fields", "at most 50 fields")) }
        return out
    }

    static func validPath(_ path: String) -> Bool {
        !path.isEmpty && path.count <= 256 && !path.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty)
    }

    /// Why a pushed body could not be read.
    struct Failure: Error, Sendable {
        let code: String
        let detail: String

        /// Its answer: 400 when the body is not JSON, 422 when the JSON holds no usable lead.
        var problem: Problem {
            Problem(code == "malformed_json" ? .badRequest : .unprocessableContent, code: code, detail: detail)
        }
    }

    /// The leads of a pushed body: one per element of `records`, or the body itself.
    func leads(from body: [UInt8]) throws(Failure) -> [Funnel_Marketing_V1_CampaignLead] {
        guard let root = try? JSONDecoder().decode(JSONValue.self, from: Data(body)) else {
            throw Failure(code: "malformed_json", detail: "the body is not JSON")
        }
        let items: [JSONValue]
        if let records {
            guard case .array(let array)? = root.value(at: records) else { throw Failure(code: "missing_records", detail: "no array at \(records)") }
            guard array.count <= 500 else { throw Failure(code: "too_many_records", detail: "at most 500 leads per delivery") }
            items = array
        } else {
            items = [root]
        }
        var leads: [Funnel_Marketing_V1_CampaignLead] = []
        for item in items { leads.append(try lead(from: item)) }
        return leads
    }

    func lead(from item: JSONValue) throws(Failure) -> Funnel_Marketing_V1_CampaignLead {
        var lead = Funnel_Marketing_V1_CampaignLead()
        for (target, constant) in (constants ?? [:]).sorted(by: { $0.key < $1.key }) { try Self.set(target, text: constant, on: &lead) }
        for (target, path) in fields.sorted(by: { $0.key < $1.key }) {
            guard let raw = item.value(at: path) else { continue }
            if case .null = raw { continue }
            guard let text = raw.text else { throw Failure(code: "unmappable_value", detail: "\(path) (for \(target)) is an object or array, not a value") }
            try Self.set(target, text: text, on: &lead)
        }
        return lead
    }

    static func set(_ target: String, text: String, on lead: inout Funnel_Marketing_V1_CampaignLead) throws(Failure) {
        switch target {
        case "channel": lead.channel = text
        case "platform_lead_id": lead.platformLeadID = text
        case "campaign_id": lead.campaignID = text
        case "ad_group_id": lead.adGroupID = text
        case "ad_id": lead.adID = text
        case "keyword": lead.keyword = text
        case "landing_url": lead.landingURL = text
        case "referrer_url": lead.referrerURL = text
        case "name": lead.name = text
        case "phone": lead.phone = text
        case "email": lead.email = text
        case "wechat": lead.wechat = text
        case "course_interest": lead.courseInterest = text
        case "note": lead.note = text
        case "click_id": lead.clickID = text
        case "utm.source": lead.utm.source = text
        case "utm.medium": lead.utm.medium = text
        case "utm.campaign": lead.utm.campaign = text
        case "utm.term": lead.utm.term = text
        case "utm.content": lead.utm.content = text
        case "is_test": lead.isTest = ["true", "1", "yes"].contains(text.lowercased())
        case "occurred_at":
            guard let date = Self.date(text) else {
                throw Failure(code: "invalid_occurred_at", detail: "occurred_at must be RFC 3339, `YYYY-MM-DD HH:MM:SS` (the stats time zone) or epoch seconds")
            }
            lead.occurredAt = Google_Protobuf_Timestamp(date: date)
        default: break
        }
    }

    /// RFC 3339, epoch seconds (or milliseconds), or `YYYY-MM-DD HH:MM:SS` in China time as Chinese platforms send.
    static func date(_ text: String) -> Date? {
        if let number = Double(text) { return Date(timeIntervalSince1970: number > 1e11 ? number / 1_000 : number) }
        if let date = RFC3339.parse(text) { return date }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "Asia/Shanghai")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.date(from: text)
    }
}

/// Any JSON value, read without losing 19-digit ids (integers stay integers).
enum JSONValue: Codable, Sendable, Equatable {
    case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Swift.Decoder) throws {
        if var items = try? decoder.unkeyedContainer() {
            var out: [JSONValue] = []
            while !items.isAtEnd { out.append(try items.decode(JSONValue.self)) }
            self = .array(out)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            var out: [String: JSONValue] = [:]
            for key in object.allKeys { out[key.stringValue] = try object.decode(JSONValue.self, forKey: key) }
            self = .object(out)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null }
        else if let b = try? single.decode(Bool.self) { self = .bool(b) }
        else if let i = try? single.decode(Int64.self) { self = .integer(i) }
        else if let d = try? single.decode(Double.self) { self = .number(d) }
        else { self = .string(try single.decode(String.self)) }
    }

    func encode(to encoder: any Swift.Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .integer(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .number(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .object(let object):
            var c = encoder.container(keyedBy: AnyKey.self)
            for (key, value) in object { try c.encode(value, forKey: AnyKey(stringValue: key)) }
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// The value at a dot path (array elements by index), or nil.
    func value(at path: String) -> JSONValue? {
        var current = self
        for segment in path.split(separator: ".") {
            switch current {
            case .object(let object):
                guard let next = object[String(segment)] else { return nil }
                current = next
            case .array(let array):
                guard let index = Int(segment), array.indices.contains(index) else { return nil }
                current = array[index]
            default:
                return nil
            }
        }
        return current
    }

    /// A scalar as text (integers without a decimal point); nil for objects, arrays and null.
    var text: String? {
        switch self {
        case .string(let s): return s
        case .integer(let i): return String(i)
        case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .bool(let b): return b ? "true" : "false"
        case .null, .array, .object: return nil
        }
    }
}
