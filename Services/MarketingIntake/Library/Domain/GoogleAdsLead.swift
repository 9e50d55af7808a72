import Contracts
import Foundation

/// A Google Ads lead-form webhook delivery: `lead_id`, `form_id`, `campaign_id`, `adgroup_id`, `creative_id`,
/// `gcl_id`, `google_key` (the shared secret configured on the form), `is_test` and the answers in
/// `user_column_data[{column_id, string_value}]`.
struct GoogleAdsLead: Sendable {
    var leadID = ""
    var formID = ""
    var campaignID = ""
    var adGroupID = ""
    var creativeID = ""
    var gclID = ""
    var googleKey = ""
    var isTest = false
    var columns: [(id: String, name: String, value: String)] = []

    /// Reads a delivery; ids arrive as numbers or strings.
    static func parse(_ body: [UInt8]) throws(FieldMapping.Failure) -> GoogleAdsLead {
        guard let root = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = root else {
            throw FieldMapping.Failure(code: "malformed_json", detail: "the body is not a JSON object")
        }
        func text(_ key: String) -> String { object[key]?.text ?? "" }
        var lead = GoogleAdsLead(leadID: text("lead_id"), formID: text("form_id"), campaignID: text("campaign_id"), adGroupID: text("adgroup_id"),
                                 creativeID: text("creative_id"), gclID: text("gcl_id"), googleKey: text("google_key"))
        lead.isTest = object["is_test"] == .bool(true)
        if case .array(let items)? = object["user_column_data"] {
            for case .object(let column) in items {
                let id = column["column_id"]?.text ?? ""
                let name = column["column_name"]?.text ?? column["question_text"]?.text ?? id
                guard let value = column["string_value"]?.text, !value.isEmpty else { continue }
                lead.columns.append((id, name, value))
            }
        } else if object["user_column_data"] != nil {
            throw FieldMapping.Failure(code: "malformed_json", detail: "user_column_data must be an array")
        }
        guard !lead.leadID.isEmpty else { throw FieldMapping.Failure(code: "missing_lead_id", detail: "lead_id is required") }
        return lead
    }

    /// The campaign lead: Google's standard columns to name/phone/email, `mapping.fields` naming column ids for
    /// other lead fields (e.g. `{"course_interest": "COURSE"}`), every other answer into the note.
    func campaignLead(mapping: FieldMapping?) -> Funnel_Marketing_V1_CampaignLead {
        var lead = Funnel_Marketing_V1_CampaignLead()
        lead.platformLeadID = leadID
        lead.campaignID = campaignID
        lead.adGroupID = adGroupID
        lead.adID = creativeID
        lead.clickID = gclID
        lead.isTest = isTest
        let mapped = Dictionary((mapping?.fields ?? [:]).map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        var first = "", last = "", notes: [String] = []
        for column in columns {
            if let target = mapped[column.id] {
                try? FieldMapping.set(target, text: column.value, on: &lead)
                continue
            }
            switch column.id {
            case "FULL_NAME": lead.name = column.value
            case "FIRST_NAME": first = column.value
            case "LAST_NAME": last = column.value
            case "PHONE_NUMBER": lead.phone = column.value
            case "WORK_PHONE": if lead.phone.isEmpty { lead.phone = column.value }
            case "EMAIL": lead.email = column.value
            case "WORK_EMAIL": if lead.email.isEmpty { lead.email = column.value }
            default: notes.append("\(column.name): \(column.value)")
            }
        }
        if lead.name.isEmpty { lead.name = [first, last].filter { !$0.isEmpty }.joined(separator: " ") }
        if !formID.isEmpty { notes.insert("form: \(formID)", at: 0) }
        if lead.note.isEmpty { lead.note = String(notes.joined(separator: "\n").prefix(2_000)) }
        for (target, constant) in mapping?.constants ?? [:] where target == "channel" || target == "course_interest" {
            try? FieldMapping.set(target, text: constant, on: &lead)
        }
        return lead
    }
}
