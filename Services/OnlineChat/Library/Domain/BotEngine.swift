import FastText
import Foundation
import ServiceKit

/// Where a conversation is: the bot asking its questions, waiting for an operator, with an operator, or closed.
public enum ConversationStatus: String, Codable, Sendable, CaseIterable {
    case bot, waiting, `operator`, closed
}

/// One answer to a question, as kept with the conversation. Names and phones are sealed before storing
/// (``value`` cleared), so the table holds them only encrypted.
struct Answer: Codable, Sendable, Equatable {
    var value: String?
    var sealed: String?
    var masked: String?
}

/// The bot's side of a conversation.
struct ConversationState: Sendable, Equatable {
    var status: ConversationStatus
    var step: Int
    var attempts: Int
    var answers: [String: Answer]
}

/// What the visitor sent.
enum VisitorInput: Sendable, Equatable {
    case text(String)
    case skip
}

/// The outcome of one visitor input: how the visitor's message is stored (a phone masked), what the bot says,
/// the phone it yielded (if any), and the new state.
struct BotTurn: Sendable {
    var storedVisitorText: String?
    var replies: [String]
    var contact: PhoneNumber?
    var state: ConversationState
    /// The input was refused without being stored (skipping a required question).
    var refused = false
}

/// Runs a site's ``BotFlow``: asks the questions in order, checks answers (phones with the intake's normaliser),
/// retries with the flow's wording, lets optional questions be skipped, and hands over when the flow ends or a
/// question fails too often. Pure: no I/O, so every rule is testable on its own.
struct BotEngine: Sendable {
    let flow: BotFlow
    let locale: ChatLocale
    let defaultRegion: String

    /// The state and messages of a new conversation: the greeting and the first question.
    func start() -> (ConversationState, [String]) {
        var state = ConversationState(status: .bot, step: 0, attempts: 0, answers: [:])
        var messages = [flow.greeting.text(locale)]
        if let first = flow.questions.first { messages.append(first.prompt.text(locale)) } else {
            state.status = .waiting
            messages.append(flow.completion.text(locale))
        }
        return (state, messages)
    }

    /// The question being asked, when the bot is asking one.
    func currentQuestion(_ state: ConversationState) -> BotQuestion? {
        guard state.status == .bot, flow.questions.indices.contains(state.step) else { return nil }
        return flow.questions[state.step]
    }

    func handle(_ input: VisitorInput, state: ConversationState) -> BotTurn {
        guard let question = currentQuestion(state) else {
            // No bot question pending: the message is for the operator; a phone written in it still counts.
            guard case .text(let text) = input else { return BotTurn(storedVisitorText: nil, replies: [], contact: nil, state: state, refused: true) }
            let found = PhoneFinder.find(in: text, defaultRegion: defaultRegion)
            return BotTurn(storedVisitorText: found.map { PhoneFinder.mask(text, phone: $0.1) } ?? text, replies: [], contact: found?.0, state: state)
        }
        var next = state
        switch input {
        case .skip:
            guard !question.required else {
                return BotTurn(storedVisitorText: nil, replies: [BotFlow.requiredRefusal.text(locale)], contact: nil, state: state, refused: true)
            }
            return advance(from: next, saying: [(flow.skipped ?? BotFlow.defaultSkipped).text(locale)], stored: nil, contact: nil)
        case .text(let raw):
            let text = raw.trimmingSpacesAndNewlines
            switch accept(text, for: question) {
            case .success(let (answer, contact, stored)):
                next.answers[question.id] = answer
                return advance(from: next, saying: [], stored: stored, contact: contact)
            case .failure:
                next.attempts += 1
                let stored = question.kind == .phone ? PhoneFinder.maskDigits(text) : text
                if next.attempts >= question.attempts {
                    // Too many tries: stop asking and let a person help.
                    next.status = .waiting
                    next.attempts = 0
                    return BotTurn(storedVisitorText: stored, replies: [BotFlow.handOver.text(locale)], contact: nil, state: next)
                }
                return BotTurn(storedVisitorText: stored, replies: [(question.retry ?? BotFlow.defaultRetry).text(locale)], contact: nil, state: next)
            }
        }
    }

    struct InvalidAnswer: Error {}

    private func accept(_ text: String, for question: BotQuestion) -> Result<(Answer, PhoneNumber?, String), InvalidAnswer> {
        guard !text.isEmpty else { return .failure(InvalidAnswer()) }
        switch question.kind {
        case .phone:
            guard let phone = try? PhoneNumber.parse(text, defaultRegion: defaultRegion) else { return .failure(InvalidAnswer()) }
            return .success((Answer(value: phone.e164, masked: phone.masked), phone, phone.masked))
        case .name:
            guard text.count <= 50 else { return .failure(InvalidAnswer()) }
            return .success((Answer(value: text, masked: Masking.name(text)), nil, text))
        case .course:
            guard text.count <= 100 else { return .failure(InvalidAnswer()) }
            let chosen = question.options?.first { $0.caseInsensitiveCompare(text) == .orderedSame } ?? text
            return .success((Answer(value: chosen), nil, text))
        case .text:
            return .success((Answer(value: String(text.prefix(500))), nil, text))
        }
    }

    private func advance(from state: ConversationState, saying: [String], stored: String?, contact: PhoneNumber?) -> BotTurn {
        var next = state
        next.step += 1
        next.attempts = 0
        var replies = saying
        if flow.questions.indices.contains(next.step) {
            replies.append(flow.questions[next.step].prompt.text(locale))
        } else {
            next.status = .waiting
            replies.append(flow.completion.text(locale))
        }
        return BotTurn(storedVisitorText: stored, replies: replies, contact: contact, state: next)
    }
}

/// Finds a phone number written in free text ("my number is 138-0013-8000"), for messages to operators.
enum PhoneFinder {
    /// Runs of digits with the separators people type between them.
    private static let candidate = try! NSRegularExpression(pattern: "\\+?[0-9０-９][0-9０-９ \\-()（）]{6,22}[0-9０-９]")

    /// The first valid number in `text` and the range of `text` it was written in.
    static func find(in text: String, defaultRegion: String) -> (PhoneNumber, Range<String.Index>)? {
        let range = NSRange(text.startIndex..., in: text)
        for match in candidate.matches(in: text, range: range) {
            guard let r = Range(match.range, in: text) else { continue }
            if let phone = try? PhoneNumber.parse(String(text[r]), defaultRegion: defaultRegion) { return (phone, r) }
        }
        return nil
    }

    /// `text` with the number at `range` masked, as stored in the transcript.
    static func mask(_ text: String, phone range: Range<String.Index>) -> String {
        text.replacingCharacters(in: range, with: maskDigits(String(text[range])))
    }

    /// Every digit but the first 3 and last 4 replaced by `*` (an invalid attempt at a phone is still not kept).
    static func maskDigits(_ text: String) -> String {
        let digitCount = text.filter(\.isNumber).count
        guard digitCount > 7 else { return text }
        var seen = 0
        return String(text.map { c -> Character in
            guard c.isNumber else { return c }
            seen += 1
            return seen <= 3 || seen > digitCount - 4 ? c : "*"
        })
    }
}
