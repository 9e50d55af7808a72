import Foundation
import Postgres
import ServiceKit

/// An employee as the auth check sees them.
struct EmployeeRecord: Sendable {
    let id: String
    let teamID: String
    let role: EmployeeRole
    let active: Bool
    let orgUnitID: String
}

/// The org: units in a tree, teams, reps and their settings.
struct OrgStore: Sendable {
    let schema: String

    func upsertUnit(id: String, name: String, parent: String?, in connection: PostgresConnection) throws {
        if let parent {
            guard parent != id else { throw DispatchRefusal("cycle", "a unit cannot be its own parent") }
            // Refuse a parent inside this unit's subtree: the tree stays a tree.
            let cycle = try connection.query("""
                WITH RECURSIVE up(id, parent_id) AS (
                    SELECT id, parent_id FROM \(identifier: schema).org_units WHERE id = \(parent)
                    UNION SELECT u.id, u.parent_id FROM \(identifier: schema).org_units u JOIN up ON u.id = up.parent_id
                ) SELECT count(*) FILTER (WHERE id = \(id)), count(*) FROM up
                """).first!
            let (hits, found) = try cycle.decode(Int.self, Int.self)
            guard found > 0 else { throw DispatchRefusal("unknown_parent", "no org unit \(parent)") }
            guard hits == 0 else { throw DispatchRefusal("cycle", "\(parent) is inside \(id)'s subtree") }
        }
        _ = try connection.query("""
            INSERT INTO \(identifier: schema).org_units (id, name, parent_id) VALUES (\(id), \(name), \(parent))
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, parent_id = EXCLUDED.parent_id, updated_at = now()
            """)
    }

    func upsertTeam(id: String, name: String, orgUnit: String, in connection: PostgresConnection) throws {
        guard try !connection.query("SELECT 1 FROM \(identifier: schema).org_units WHERE id = \(orgUnit)").isEmpty else {
            throw DispatchRefusal("unknown_org_unit", "no org unit \(orgUnit)")
        }
        _ = try connection.query("""
            INSERT INTO \(identifier: schema).teams (id, name, org_unit_id) VALUES (\(id), \(name), \(orgUnit))
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, org_unit_id = EXCLUDED.org_unit_id, updated_at = now()
            """)
    }

    /// Creates or changes a rep (their team's lock held by the caller's unit). A new rep, or one moving team,
    /// starts level with the team's rotation: never ahead of colleagues, never behind.
    func upsertRep(id: String, settings: RepSettings, unit: inout DispatchUnit, store: DispatchStore, in connection: PostgresConnection) throws {
        guard try !connection.query("SELECT 1 FROM \(identifier: schema).teams WHERE id = \(settings.teamID)").isEmpty else {
            throw DispatchRefusal("unknown_team", "no team \(settings.teamID)")
        }
        let current = try connection.query("SELECT team_id FROM \(identifier: schema).reps WHERE employee_id = \(id)").first?.decode(String.self)
        try store.lockTeams(Set([settings.teamID] + (current.map { [$0] } ?? [])), into: &unit, in: connection)
        let team = unit.teams[settings.teamID]!
        let joining = current != settings.teamID
        _ = try connection.query("""
            INSERT INTO \(identifier: schema).reps (employee_id, name, team_id, role, product_lines, weight, daily_new_cap, max_holding,
                                                    last_assigned_seq, pass)
            VALUES (\(id), \(settings.name), \(settings.teamID), \(settings.role.rawValue), \(PostgresArray(settings.productLines.map { Optional($0) })),
                    \(settings.weight), \(settings.dailyNewCap), \(settings.maxHolding), \(team.sequence), \(team.virtualTime))
            ON CONFLICT (employee_id) DO UPDATE SET name = EXCLUDED.name, team_id = EXCLUDED.team_id, role = EXCLUDED.role,
                product_lines = EXCLUDED.product_lines, weight = EXCLUDED.weight, daily_new_cap = EXCLUDED.daily_new_cap,
                max_holding = EXCLUDED.max_holding, active = true, left_at = NULL,
                last_assigned_seq = CASE WHEN \(joining) THEN EXCLUDED.last_assigned_seq ELSE reps.last_assigned_seq END,
                pass = CASE WHEN \(joining) THEN EXCLUDED.pass ELSE reps.pass END, updated_at = now()
            """)
        // Reload the rep into the unit so a drain that follows sees the new settings.
        for row in try connection.query("""
            SELECT employee_id, name, team_id, role, array_to_string(product_lines, chr(31)), weight, daily_new_cap, max_holding, paused, active,
                   holding, new_today, claims_today, counts_day, last_assigned_seq, pass
            FROM \(identifier: schema).reps WHERE employee_id = \(id)
            """) {
            let rep = try DispatchStore.decodeRep(row)
            unit.setRep(rep)
        }
    }

    func employee(_ id: String, postgres: PostgresClient) async throws -> EmployeeRecord? {
        try await postgres.query("""
            SELECT r.employee_id, r.team_id, r.role, r.active, t.org_unit_id FROM \(identifier: schema).reps r
            JOIN \(identifier: schema).teams t ON t.id = r.team_id WHERE r.employee_id = \(id)
            """).first.map { row in
            let (id, team, role, active, unitID) = try row.decode(String.self, String.self, String.self, Bool.self, String.self)
            return EmployeeRecord(id: id, teamID: team, role: EmployeeRole(rawValue: role) ?? .rep, active: active, orgUnitID: unitID)
        }
    }

    /// The teams under `orgUnit` (itself and every descendant unit).
    func teams(under orgUnit: String, postgres: PostgresClient) async throws -> Set<String> {
        Set(try await postgres.query("""
            WITH RECURSIVE sub(id) AS (
                SELECT id FROM \(identifier: schema).org_units WHERE id = \(orgUnit)
                UNION SELECT u.id FROM \(identifier: schema).org_units u JOIN sub ON u.parent_id = sub.id
            ) SELECT t.id FROM \(identifier: schema).teams t JOIN sub ON t.org_unit_id = sub.id
            """).map { try $0.decode(String.self) })
    }
}
