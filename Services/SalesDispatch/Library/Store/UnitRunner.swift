import Contracts
import Foundation
import Postgres
import ServiceKit

/// Runs one action outside the consumer (HTTP, the scheduler) as a transaction: build a unit under the policy in
/// force, let `body` lock and change it, write it back with its events in the outbox, then wake the relay.
struct UnitRunner: Sendable {
    let postgres: PostgresClient
    let policies: PolicyStore
    let store: DispatchStore
    let events: OpportunityEvents
    let clock: DispatchClock
    let relay: OutboxRelay?
    let newID: @Sendable (Date) -> UUID

    func run<T: Sendable>(_ body: @escaping @Sendable (inout DispatchUnit, PostgresConnection) throws -> T) async throws -> T {
        let store = self.store, policies = self.policies, events = self.events, clock = self.clock, newID = self.newID
        var attempt = 0
        while true {
            do {
                let result = try await postgres.withTransaction { connection in
                    let (policy, version) = try policies.current(in: connection)
                    var unit = DispatchUnit(policy: policy, policyVersion: version, now: clock.now(), newID: newID)
                    let value = try body(&unit, connection)
                    var statements = store.save(unit)
                    if !unit.events.isEmpty { statements.append(Outbox(schema: store.schema).insert(try events.events(unit.events).map(OutboxRecord.init))) }
                    if !statements.isEmpty { _ = try connection.pipeline(statements) }
                    return value
                }
                relay?.signal()
                return result
            } catch let error as PostgresError where (error.sqlState == "40P01" || error.sqlState == "40001") && attempt < 3 {
                attempt += 1  // deadlock or serialization failure: the transaction was rolled back; try again
            } catch is TeamsChangedError where attempt < 3 {
                attempt += 1
            }
        }
    }
}
