import CSV
import Contracts
import FastText
import Foundation
import Hummingbird
import Postgres
import ServiceKit

/// Campaign spend and what it bought (admin token):
/// - `POST /v1/costs`: `{"costs": [{channel, campaign_id, day, spend_minor, currency?, impressions?, clicks?, reported_by?}]}`
///   (or one such object); a later report for the same channel, campaign and day replaces the earlier;
/// - `GET /v1/stats/leads?from=YYYY-MM-DD&to=YYYY-MM-DD[&group_by=day,channel,campaign][&channel=][&campaign_id=][&format=csv]`:
///   leads, test leads, duplicates, spend and cost per lead per group, as JSON or CSV.
struct CostRoutes: Sendable {
    let postgres: PostgresClient
    let store: CostStore
    let validator: CostValidator
    let adminToken: String
    let maxBodyBytes: Int
    let timeZone: TimeZone
    let currency: String

    func add(to router: Router<ClientRequestContext>) {
        router.post("/v1/costs") { request, _ in try await self.post(request) }
        router.get("/v1/stats/leads") { request, _ in try await self.stats(request) }
    }

    func post(_ request: Request) async throws -> Response {
        try request.requireAdmin(token: adminToken)
        var request = request
        let body = Array(buffer: try await request.collectBody(limit: maxBodyBytes))
        guard let root = try? JSONDecoder().decode(JSONValue.self, from: Data(body)) else {
            throw Problem(.badRequest, code: "malformed_json", detail: "expected {\"costs\": [{\"channel\", \"campaign_id\", \"day\", \"spend_minor\"}]}")
        }
        let items: [JSONValue]
        switch root {
        case .object(let object):
            if case .array(let list)? = object["costs"] { items = list } else { items = [root] }
        default:
            throw Problem(.badRequest, code: "malformed_json", detail: "expected a JSON object")
        }
        guard (1...1_000).contains(items.count) else {
            throw Problem(.unprocessableContent, code: "invalid_batch", detail: "send 1 to 1,000 costs at a time")
        }
        var valid: [ValidCost] = []
        var errors: [Problem.FieldError] = []
        for (index, item) in items.enumerated() {
            let cost: Funnel_Marketing_V1_CampaignCost
            do {
                let data = try JSONEncoder().encode(item)
                cost = try EventDecoder.decode(Funnel_Marketing_V1_CampaignCost.self, payload: Array(data), contentType: .json)
            } catch {
                errors.append(.init(field: "costs[\(index)]", code: "malformed_cost", detail: "not a campaign cost (JSON fields: channel, campaign_id, day, spend_minor, …)"))
                continue
            }
            switch validator.validate(cost) {
            case .success(let v): valid.append(v)
            case .failure(let rejection):
                errors += rejection.violations.map { .init(field: "costs[\(index)].\($0.field)", code: $0.code, detail: $0.detail) }
            }
        }
        guard errors.isEmpty else {
            throw Problem(.unprocessableContent, code: errors[0].code, title: "Invalid costs", detail: "no cost was stored; fix the fields listed", errors: errors)
        }
        let statement = store.upsert(valid)
        try await postgres.withTransaction { try $0.query(statement) }
        return jsonResponse(.ok, ["stored": CostStore.latest(valid).count])
    }

    func stats(_ request: Request) async throws -> Response {
        try request.requireAdmin(token: adminToken)
        let query = request.uri.queryParameters
        func text(_ name: String) -> String? { query.get(name).flatMap { $0.isEmpty ? nil : $0 } }
        var errors: [Problem.FieldError] = []
        let from = text("from"), to = text("to")
        if from.flatMap(CostValidator.day) == nil { errors.append(.init(field: "from", code: "invalid_day", detail: "a date YYYY-MM-DD is required")) }
        if to.flatMap(CostValidator.day) == nil { errors.append(.init(field: "to", code: "invalid_day", detail: "a date YYYY-MM-DD is required")) }
        if let from, let to, errors.isEmpty {
            if from > to { errors.append(.init(field: "to", code: "invalid_range", detail: "to is before from")) }
            if let a = CostValidator.day(from), let b = CostValidator.day(to), b.timeIntervalSince(a) > 366 * 86_400 {
                errors.append(.init(field: "to", code: "invalid_range", detail: "at most 366 days at a time"))
            }
        }
        var grouping = StatsGrouping(day: false, channel: false, campaign: false)
        for part in (text("group_by") ?? "day,channel,campaign").split(separator: ",") {
            switch part.trimmingSpaces {
            case "day": grouping.day = true
            case "channel": grouping.channel = true
            case "campaign", "campaign_id": grouping.campaign = true
            default: errors.append(.init(field: "group_by", code: "invalid_group_by", detail: "a comma-separated subset of day, channel, campaign"))
            }
        }
        let format = text("format") ?? (request.headers[.accept]?.contains("text/csv") == true ? "csv" : "json")
        if format != "csv" && format != "json" { errors.append(.init(field: "format", code: "invalid_format", detail: "json or csv")) }
        let channel = text("channel"), campaign = text("campaign_id")
        if let channel, Channel(rawValue: channel) == nil { errors.append(.init(field: "channel", code: "unknown_channel", detail: "not a channel")) }
        // libpq passes text parameters as C strings: a NUL would silently cut the filter short.
        if let campaign, campaign.utf8.contains(0) || campaign.count > 128 {
            errors.append(.init(field: "campaign_id", code: "invalid_character", detail: "at most 128 characters, no NUL"))
        }
        guard errors.isEmpty, let from, let to else {
            throw Problem(.unprocessableContent, code: errors[0].code, title: "Invalid query", detail: "see errors", errors: errors)
        }
        let (store, zone, groups) = (self.store, timeZone.identifier, grouping)
        let rows = try await postgres.withConnection { conn in
            try store.leadStats(from: from, to: to, timeZone: zone, grouping: groups, channel: channel, campaign: campaign, in: conn)
        }
        if format == "csv" { return try csv(rows, grouping: grouping) }
        struct Body: Encodable {
            let from: String, to: String, timeZone: String, currency: String, groupBy: [String], rows: [LeadStatsRow]
            enum CodingKeys: String, CodingKey { case from, to, timeZone = "time_zone", currency, groupBy = "group_by", rows }
        }
        return jsonResponse(.ok, Body(from: from, to: to, timeZone: zone, currency: currency, groupBy: Self.names(grouping), rows: rows))
    }

    func csv(_ rows: [LeadStatsRow], grouping: StatsGrouping) throws -> Response {
        let writer = try CSVWriter(stream: .toMemory())
        let dimensions = Self.names(grouping)
        try writer.write(row: dimensions.map { $0 == "campaign" ? "campaign_id" : $0 }
                         + ["leads", "test_leads", "duplicates", "spend_minor", "cost_per_lead_minor", "currency"])
        for row in rows {
            var fields: [String] = []
            if grouping.day { fields.append(row.day ?? "") }
            if grouping.channel { fields.append(row.channel ?? "") }
            if grouping.campaign { fields.append(row.campaignID ?? "") }
            fields += [String(row.leads), String(row.testLeads), String(row.duplicates), String(row.spendMinor),
                       row.costPerLeadMinor.map(String.init) ?? "", currency]
            try writer.write(row: fields)
        }
        writer.stream.close()
        let data = writer.stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"lead-stats.csv\""],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func names(_ g: StatsGrouping) -> [String] {
        (g.day ? ["day"] : []) + (g.channel ? ["channel"] : []) + (g.campaign ? ["campaign"] : [])
    }
}
