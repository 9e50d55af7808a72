import Foundation
import Postgres
import ServiceKit
import Synchronization

/// The lead sources this process has recently authenticated, by API key hash. A request whose key is here can
/// validate its lead at once and send the source's row check in the round trip that takes the flood locks and
/// reads the stored leads, instead of a round trip of its own before them.
///
/// Nothing is trusted from here without that check: the request re-reads the source's row in its transaction and
/// goes on only when the row still holds the key's hash, is enabled and equals the cached source. A rotated key,
/// a disabled source or a changed default channel is therefore refused or applied at once, by every replica.
final class SourceCache: Sendable {
    /// The most keys kept; past it the cache starts over (a deployment has tens of sources, not thousands).
    let capacity: Int
    private let sources = Mutex<[[UInt8]: LeadSource]>([:])

    init(capacity: Int = 1_024) {
        self.capacity = capacity
    }

    /// The source last authenticated by the key whose SHA-256 is `keyHash`.
    func source(forKeyHash keyHash: [UInt8]) -> LeadSource? {
        sources.withLock { $0[keyHash] }
    }

    /// Remembers that the key hashing to `keyHash` authenticated `source`.
    func remember(_ source: LeadSource, forKeyHash keyHash: [UInt8]) {
        sources.withLock { sources in
            if sources.count >= capacity, sources[keyHash] == nil { sources.removeAll(keepingCapacity: true) }
            sources[keyHash] = source
        }
    }

    /// Forgets the key hashing to `keyHash` (its source's row no longer matched).
    func forget(keyHash: [UInt8]) {
        _ = sources.withLock { $0.removeValue(forKey: keyHash) }
    }

    var count: Int { sources.withLock { $0.count } }
}

/// A check of the request's lead source, sent ahead of the first statements of the lead's write: its rows must
/// still authenticate the key as the source the lead was validated for, or the transaction rolls back.
struct SourceCheck: Sendable {
    let query: PostgresQuery
    /// Throws when the rows do not confirm the source (and the write must not go on).
    let confirm: @Sendable (PostgresRows) throws -> Void
}

/// The cached source no longer matches its row: the request starts over and authenticates the key from the row.
struct CachedSourceChanged: Error {}
