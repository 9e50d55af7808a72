import Foundation

/// Writes the small JSON documents decisions store, by hand: a decision is written for every assignment, and
/// JSONEncoder (with its boxing and key sorting) cost more than the decision itself.
struct JSONWriter {
    private(set) var text = "{"
    private var empty = true

    static func quote(_ value: String) -> String {
        var needsEscape = false
        for unit in value.utf8 where unit < 0x20 || unit == 0x22 || unit == 0x5C { needsEscape = true; break }
        if !needsEscape { return "\"" + value + "\"" }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    private mutating func key(_ name: String) {
        if !empty { text += "," }
        empty = false
        text += Self.quote(name) + ":"
    }

    mutating func field(_ name: String, _ value: String?) {
        key(name)
        text += value.map(Self.quote) ?? "null"
    }

    mutating func field(_ name: String, _ value: Int) {
        key(name)
        text += String(value)
    }

    mutating func field(_ name: String, _ value: Bool) {
        key(name)
        text += value ? "true" : "false"
    }

    /// A value that is already JSON.
    mutating func raw(_ name: String, _ json: String) {
        key(name)
        text += json
    }

    var json: String { text + "}" }

    static func object(_ fields: [String: String]) -> String {
        var writer = JSONWriter()
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) { writer.field(name, value) }
        return writer.json
    }

    static func object(_ fields: [String: Int]) -> String {
        var writer = JSONWriter()
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) { writer.field(name, value) }
        return writer.json
    }
}

/// Appends JSON pieces to a byte buffer (the candidate list of every dispatch decision is built this way).
struct JSONBytes {
    var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ value: String?) {
        guard var value else { raw("null"); return }
        let simple = value.withUTF8 { utf8 in !utf8.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C } }
        if simple {
            bytes.append(0x22)
            value.withUTF8 { bytes.append(contentsOf: $0) }
            bytes.append(0x22)
        } else {
            bytes.append(contentsOf: JSONWriter.quote(value).utf8)
        }
    }

    mutating func int(_ value: Int) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var v = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                count += 1
            } while v > 0
            for i in stride(from: count - 1, through: 0, by: -1) { bytes.append(buffer[i]) }
        }
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }
}

extension CandidateView {
    /// The fields of a stored candidate row, in order.
    static let fields = ["employee_id", "holding", "new_today", "daily_new_cap", "max_holding", "weight", "filtered_out"]

    /// One candidate as a compact row (the field names are stored once per decision, in `candidate_fields`).
    func write(to out: inout JSONBytes) {
        out.raw("[")
        out.string(employeeID)
        out.raw(",")
        out.int(holding)
        out.raw(",")
        out.int(newToday)
        out.raw(",")
        out.int(dailyNewCap)
        out.raw(",")
        out.int(maxHolding)
        out.raw(",")
        out.int(weight)
        out.raw(",")
        out.string(filteredOut)
        out.raw("]")
    }
}

extension DispatchChoice {
    /// The explanation as stored: team, strategy, every candidate (compact rows), the pick, the tie-break, why nobody.
    var json: String {
        var out = JSONBytes(capacity: 200 + candidates.count * 40)
        out.raw("{\"team\":")
        out.string(team)
        out.raw(",\"strategy\":")
        out.string(strategy.rawValue)
        out.raw(",\"candidate_fields\":[\"employee_id\",\"holding\",\"new_today\",\"daily_new_cap\",\"max_holding\",\"weight\",\"filtered_out\"],\"candidates\":[")
        for (i, candidate) in candidates.enumerated() {
            if i > 0 { out.raw(",") }
            candidate.write(to: &out)
        }
        out.raw("],\"picked\":")
        out.string(picked)
        out.raw(",\"tie_break\":")
        out.string(tieBreak)
        out.raw(",\"no_pick_reason\":")
        out.string(noPickReason)
        out.raw("}")
        return out.text
    }
}

/// Stored decision details as the API shows them: compact candidate rows expanded into objects.
enum DecisionDetail {
    static func expanded(_ json: String) -> String {
        guard json.contains("\"candidate_fields\""),
              var object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any],
              let fields = object["candidate_fields"] as? [String], let rows = object["candidates"] as? [[Any]] else { return json }
        object["candidates"] = rows.map { row in Dictionary(uniqueKeysWithValues: zip(fields, row)) }
        object["candidate_fields"] = nil
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return json }
        return String(decoding: data, as: UTF8.self)
    }
}
