import Contracts
import FastText
import Foundation
import Kafka
import Postgres
import ServiceKit

/// Consumes `hr.employees.v1` so a leaver's operator token is refused at once, whatever its expiry: `left` records
/// the employee, a later `hired` (a rehire) lifts it.
struct EmployeeEventHandler: BatchHandler {
    let schema: String

    func handle(_ records: [KafkaConsumedMessage], in connection: PostgresConnection) throws -> [HandlerOutcome] {
        var outcomes: [HandlerOutcome] = []
        var statements: [PostgresQuery] = []
        for record in records {
            let event: Funnel_Hr_V1_EmployeeEvent
            do {
                event = try EventDecoder.decode(Funnel_Hr_V1_EmployeeEvent.self, from: record)
            } catch let error as EventDecodingError {
                outcomes.append(.rejected(error))
                continue
            }
            let id = event.employeeID.trimmingSpaces
            guard !id.isEmpty, id.count <= 128 else {
                outcomes.append(.rejected(code: "missing_employee_id", reason: "employee_id: required, at most 128 characters"))
                continue
            }
            let at = event.hasOccurredAt ? event.occurredAt.date : Date()
            switch event.change {
            case .left:
                statements.append("""
                    INSERT INTO \(identifier: schema).employees_left (employee_id, left_at) VALUES (\(id), \(at))
                    ON CONFLICT (employee_id) DO UPDATE SET left_at = excluded.left_at
                    """)
            case .hired:
                statements.append("DELETE FROM \(identifier: schema).employees_left WHERE employee_id = \(id) AND left_at <= \(at)")
            default:
                break
            }
            outcomes.append(.processed([]))
        }
        if !statements.isEmpty { _ = try connection.pipeline(statements) }
        return outcomes
    }
}
