import Foundation
import Postgres
import ServiceKit
import Synchronization

/// Lead sources this process has recently authenticated: by API key hash (form posts) or by id with their webhook
/// settings. A request found here can validate its lead at once and send the source's row check in the round trip
/// that takes the flood locks and reads the stored leads, instead of round trips of its own before them.
///
/// Nothing is trusted from here without that check: the request re-reads the source's row in its transaction and
/// goes on only when the row still says what was remembered. A rotated key, a disabled source, new webhook secrets
/// or a changed default channel is therefore refused or applied at once, by every replica.
final class SourceCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// The most entries kept; past it the cache starts over (a deployment has tens of sources, not thousands).
    let capacity: Int
    private let entries = Mutex<[Key: Value]>([:])

    init(capacity: Int = 1_024) {
        self.capacity = capacity
    }

    /// What was remembered for `key`.
    subscript(key: Key) -> Value? {
        entries.withLock { $0[key] }
    }

    /// Remembers `value` for `key`.
    func remember(_ value: Value, for key: Key) {
        entries.withLock { entries in
            if entries.count >= capacity, entries[key] == nil { entries.removeAll(keepingCapacity: true) }
            entries[key] = value
        }
    }

    /// Forgets `key` (its source's row no longer matched).
    func forget(_ key: Key) {
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    var count: Int { entries.withLock { $0.count } }
}

/// A check of the request's lead source, sent ahead of the first statements of the lead's write: its rows must
/// still authenticate the request as the source the lead was validated for, or the transaction rolls back.
struct SourceCheck: Sendable {
    /// The statements of the check (re-reading the source's row first; a webhook also records its delivery).
    let queries: [PostgresQuery]
    /// Throws when the rows of `queries` do not confirm the source (and the write must not go on).
    let confirm: @Sendable ([PostgresRows]) throws -> Void

    init(_ queries: [PostgresQuery], confirm: @escaping @Sendable ([PostgresRows]) throws -> Void) {
        self.queries = queries
        self.confirm = confirm
    }

    /// Runs the check on its own (when no lead of the request is to be written).
    func run(in connection: PostgresConnection) throws {
        try confirm(connection.pipeline(queries))
    }
}

/// The cached source no longer matches its row: the request starts over and authenticates the key from the row.
struct CachedSourceChanged: Error {}
