import Foundation
@testable import OnlineChat
import TestSupport
import Testing

/// The in-process fan-out: every subscriber of a conversation gets its updates, others none, and a subscriber
/// that falls too far behind is ended rather than silently losing updates.
@Suite struct ConversationHubTests {
    func hub() -> ConversationHub {
        ConversationHub(logger: TestEnvironment.logger("hub")) { _, _ in nil }
    }

    func update(_ conversation: UUID, seq: Int) -> ConversationUpdate {
        ConversationUpdate(conversationID: conversation, messages: [ChatMessage(seq: seq, author: "visitor", authorID: nil, body: "m\(seq)", at: Date())],
                           state: ConversationView(status: .waiting, question: nil))
    }

    @Test func updatesReachEverySubscriberOfTheirConversationOnly() async {
        let hub = hub()
        let (a, b) = (UUID(), UUID())
        let (_, first) = hub.subscribe(a, lastSeq: 0)
        let (_, second) = hub.subscribe(a, lastSeq: 0)
        let (otherID, other) = hub.subscribe(b, lastSeq: 0)
        hub.publish(update(a, seq: 1))
        var i1 = first.makeAsyncIterator(), i2 = second.makeAsyncIterator()
        #expect(await i1.next()?.messages.first?.seq == 1)
        #expect(await i2.next()?.messages.first?.seq == 1)
        hub.unsubscribe(b, id: otherID)
        var i3 = other.makeAsyncIterator()
        #expect(await i3.next() == nil, "unsubscribing ends the stream, and nothing of a was delivered to b")
        #expect(hub.subscriberCount == 2)
    }

    @Test func aSubscriberTooFarBehindIsEndedNotSilentlyShortChanged() async {
        let hub = hub()
        let conversation = UUID()
        let (_, stream) = hub.subscribe(conversation, lastSeq: 0)
        for seq in 1...(ConversationHub.bufferLimit + 10) { hub.publish(update(conversation, seq: seq)) }
        var received: [Int] = []
        for await update in stream { received += update.messages.map(\.seq) }
        #expect(received == Array(1...ConversationHub.bufferLimit), "what was buffered arrives in order, then the stream ends")
    }
}
