import Contracts
import Foundation

/// One message of a conversation as the widget and operators see it. `seq` orders a conversation's messages
/// (1, 2, 3…) and lets a client ask for what it has not seen.
public struct ChatMessage: Codable, Sendable, Equatable {
    public var seq: Int
    /// visitor, bot, operator or system.
    public var author: String
    public var authorID: String?
    public var body: String
    public var at: Date

    enum CodingKeys: String, CodingKey { case seq, author, authorID = "author_id", body, at }
}

/// What the widget needs to draw its input: the conversation's status and the bot's pending question.
public struct ConversationView: Codable, Sendable, Equatable {
    public struct Question: Codable, Sendable, Equatable {
        public var id: String
        public var kind: QuestionKind
        public var required: Bool
        public var options: [String]
    }

    public var status: ConversationStatus
    public var question: Question?
}

/// New messages of a conversation and its state after them: one push to its subscribers.
public struct ConversationUpdate: Codable, Sendable {
    public var conversationID: UUID
    public var messages: [ChatMessage]
    public var state: ConversationView

    enum CodingKeys: String, CodingKey { case conversationID = "conversation_id", messages, state }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(conversationID.lowercasedText, forKey: .conversationID)
        try container.encode(messages, forKey: .messages)
        try container.encode(state, forKey: .state)
    }
}

/// The visit a conversation began on (for the lead's attribution).
struct Visit: Codable, Sendable, Equatable {
    var pageURL: String?
    var referrerURL: String?
    var utm: [String: String]

    static let utmKeys = ["source", "medium", "campaign", "term", "content"]
}
