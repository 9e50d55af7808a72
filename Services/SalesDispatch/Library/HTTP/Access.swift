import Foundation
import Hummingbird
import Postgres
import ServiceKit

/// The caller of a request, checked against the org mirror: a leaver's token is refused at once.
struct Caller: Sendable {
    let employeeID: String
    let role: EmployeeRole
    /// nil for an admin who is not a rep here (a platform admin).
    let record: EmployeeRecord?
}

/// Bearer JWT verification (ServiceKit) plus the org's data permissions: a rep acts on their own, a team lead
/// on their org subtree, an admin on everything.
struct Access: Sendable {
    let verifier: EmployeeTokenVerifier
    let org: OrgStore
    let postgres: PostgresClient

    func caller(_ request: Request) async throws -> Caller {
        let principal = try await verifier.principal(of: request)
        if let record = try await org.employee(principal.employeeID, postgres: postgres) {
            guard record.active else {
                throw Problem(.unauthorized, code: "employee_left", detail: "this employee has left; their tokens are no longer accepted",
                              headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
            }
            return Caller(employeeID: record.id, role: record.role, record: record)
        }
        guard principal.role == .admin else {
            throw Problem(.forbidden, code: "unknown_employee", detail: "the token's employee is not in the org")
        }
        return Caller(employeeID: principal.employeeID, role: .admin, record: nil)
    }

    func requireAdmin(_ request: Request) async throws -> Caller {
        let caller = try await caller(request)
        guard caller.role == .admin else { throw Problem(.forbidden, code: "admin_only", detail: "only an admin may do this") }
        return caller
    }

    func requireManager(_ request: Request) async throws -> Caller {
        let caller = try await caller(request)
        guard caller.role != .rep else { throw Problem(.forbidden, code: "managers_only", detail: "only a team lead or an admin may do this") }
        return caller
    }

    /// The teams a caller manages (nil = all).
    func managedTeams(_ caller: Caller) async throws -> Set<String>? {
        switch caller.role {
        case .admin: return nil
        case .lead: return try await org.teams(under: caller.record?.orgUnitID ?? "", postgres: postgres)
        case .rep: return []
        }
    }

    /// Refuses unless `caller` may manage `team`.
    func requireManages(_ caller: Caller, team: String) async throws {
        guard let teams = try await managedTeams(caller) else { return }
        guard teams.contains(team) else {
            throw Problem(.forbidden, code: "outside_subtree", detail: "team \(team) is outside your org subtree")
        }
    }
}

extension DispatchRefusal {
    /// The refusal as a problem: 404 for a missing record, 409 for a rule that refuses.
    var problem: Problem {
        switch code {
        case "not_found": Problem(.notFound, code: code, detail: detail)
        case "forbidden", "outside_subtree", "not_yours": Problem(.forbidden, code: code, detail: detail)
        default: Problem(.conflict, code: code, detail: detail)
        }
    }
}

/// Decodes a JSON body, or answers 400 naming what was expected.
func decodeBody<T: Decodable>(_ type: T.Type, from request: Request, limit: Int, expected: String) async throws -> T {
    var request = request
    let body = try await request.collectBody(limit: limit)
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    do { return try decoder.decode(T.self, from: Data(buffer: body)) } catch {
        throw Problem(.badRequest, code: "malformed_body", detail: "expected \(expected)")
    }
}

func uuidParameter(_ context: BasicRequestContext, _ name: String = "id") throws -> UUID {
    guard let text = context.parameters.get(name), let id = UUID(uuidString: text) else {
        throw Problem(.badRequest, code: "invalid_id", detail: "\(name) must be a UUID")
    }
    return id
}
