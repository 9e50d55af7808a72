import Foundation
import Logging
import Metrics
import Postgres
import ServiceKit

/// Who is listening to which conversation in this process (WebSockets and long polls), and the fan-out of new
/// messages to them. Writes made here are pushed at once; writes made by another replica arrive as a PostgreSQL
/// notification (``remoteChange(_:)``) and are read back from the database before being pushed.
final class ConversationHub: Sendable {
    struct Subscriber {
        let continuation: AsyncStream<ConversationUpdate>.Continuation
    }

    private struct State {
        var subscribers: [UUID: [Int: Subscriber]] = [:]
        /// The highest message seq pushed per conversation with subscribers (where a remote read starts).
        var pushed: [UUID: Int] = [:]
        var nextID = 0
        var count = 0
    }

    private let state = LockedBox(State())
    private let fetch: @Sendable (UUID, Int) async throws -> ConversationUpdate?
    private let logger: Logger
    private let gauge = Gauge(label: "funnel_chat_subscribers")

    /// `fetch(conversation, after)` reads a conversation's messages after a seq and its state.
    init(logger: Logger, fetch: @escaping @Sendable (UUID, Int) async throws -> ConversationUpdate?) {
        self.logger = logger
        self.fetch = fetch
    }

    /// Updates buffered for one subscriber. A reader this far behind has its stream finished instead of losing
    /// updates silently: its socket closes and the widget reconnects, reading what it missed from the database.
    static let bufferLimit = 256

    /// Subscribes to a conversation; pass the id to ``unsubscribe(_:id:)`` when done. The stream finishes early
    /// when the subscriber falls ``bufferLimit`` updates behind.
    func subscribe(_ conversationID: UUID, lastSeq: Int) -> (Int, AsyncStream<ConversationUpdate>) {
        let (stream, continuation) = AsyncStream<ConversationUpdate>.makeStream(bufferingPolicy: .bufferingOldest(Self.bufferLimit))
        let (id, count) = state.withLock { s -> (Int, Int) in
            s.nextID += 1
            s.subscribers[conversationID, default: [:]][s.nextID] = Subscriber(continuation: continuation)
            s.pushed[conversationID] = max(s.pushed[conversationID] ?? 0, lastSeq)
            s.count += 1
            return (s.nextID, s.count)
        }
        gauge.record(count)
        return (id, stream)
    }

    func unsubscribe(_ conversationID: UUID, id: Int) {
        let (removed, count) = state.withLock { s -> (Subscriber?, Int) in
            let removed = s.subscribers[conversationID]?.removeValue(forKey: id)
            if removed != nil { s.count -= 1 }
            if s.subscribers[conversationID]?.isEmpty == true {
                s.subscribers[conversationID] = nil
                s.pushed[conversationID] = nil
            }
            return (removed, s.count)
        }
        removed?.continuation.finish()
        gauge.record(count)
    }

    /// Number of open subscriptions in this process.
    var subscriberCount: Int { state.withLock { $0.count } }

    /// Pushes an update written by this process to the conversation's subscribers.
    func publish(_ update: ConversationUpdate) {
        let targets = state.withLock { s -> [Subscriber] in
            guard let subscribers = s.subscribers[update.conversationID] else { return [] }
            if let last = update.messages.last?.seq { s.pushed[update.conversationID] = max(s.pushed[update.conversationID] ?? 0, last) }
            return Array(subscribers.values)
        }
        for target in targets {
            if case .dropped = target.continuation.yield(update) { target.continuation.finish() }
        }
    }

    /// Another replica wrote to a conversation: read what is new and push it, if anyone here is listening.
    func remoteChange(_ conversationID: UUID) async {
        guard let after = state.withLock({ $0.subscribers[conversationID] == nil ? nil : $0.pushed[conversationID] ?? 0 }) else { return }
        do {
            if let update = try await fetch(conversationID, after) { publish(update) }
        } catch {
            logger.warning("could not read a conversation another replica changed", metadata: ["conversation": "\(conversationID)", "error": "\(error)"])
        }
    }

    /// After the notification connection was lost: re-read every watched conversation, since notifications were missed.
    func refreshAll() async {
        let ids = state.withLock { Array($0.subscribers.keys) }
        for id in ids { await remoteChange(id) }
    }

    /// Handles a notification payload `<conversation id> <instance>`; this process's own writes are ignored.
    func notification(_ payload: String, selfInstance: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 2, parts[1] != selfInstance, let id = UUID(uuidString: String(parts[0])) else { return }
        Task { await self.remoteChange(id) }
    }
}
