import Foundation
@testable import OnlineChat
import Testing

/// The bot's rules one by one, on the pure engine (no I/O).
@Suite struct BotEngineTests {
    let engine = BotEngine(flow: .standard, locale: .en, defaultRegion: "CN")

    @Test func newConversationGreetsAndAsksTheFirstQuestion() {
        let (state, messages) = engine.start()
        #expect(state.status == .bot && state.step == 0)
        #expect(messages == [BotFlow.standard.greeting.en, BotFlow.standard.questions[0].prompt.en])
    }

    @Test func answersAdvanceInOrderAndAValidPhoneEndsTheFlowWithAContact() {
        var (state, _) = engine.start()
        var turn = engine.handle(.text("Li Lei"), state: state)
        #expect(turn.replies == [BotFlow.standard.questions[1].prompt.en])
        state = turn.state
        turn = engine.handle(.text("ielts"), state: state)
        #expect(turn.state.answers["course"]?.value == "IELTS", "a typed option is normalised to the option's spelling")
        state = turn.state
        turn = engine.handle(.text("+86 138 0013 8000"), state: state)
        #expect(turn.contact?.e164 == "+8613800138000")
        #expect(turn.storedVisitorText == "138****8000", "the transcript keeps the phone masked")
        #expect(turn.state.status == .waiting)
        #expect(turn.replies == [BotFlow.standard.completion.en])
    }

    @Test func anInvalidPhoneIsRetriedWithTheFlowsWordingAndNotKeptInClear() {
        let state = ConversationState(status: .bot, step: 2, attempts: 0, answers: [:])
        let turn = engine.handle(.text("1380013800"), state: state)
        #expect(turn.contact == nil)
        #expect(turn.state.step == 2 && turn.state.attempts == 1)
        #expect(turn.replies == [BotFlow.standard.questions[2].retry!.en])
        #expect(turn.storedVisitorText == "138***3800")
    }

    @Test func tooManyInvalidAnswersHandOverToAnOperator() {
        var state = ConversationState(status: .bot, step: 2, attempts: 0, answers: [:])
        for _ in 0..<2 { state = engine.handle(.text("not a phone"), state: state).state }
        let turn = engine.handle(.text("still not"), state: state)
        #expect(turn.state.status == .waiting)
        #expect(turn.replies == [BotFlow.handOver.en])
    }

    @Test func optionalQuestionsCanBeSkippedButRequiredOnesCannot() {
        let skipped = engine.handle(.skip, state: ConversationState(status: .bot, step: 0, attempts: 0, answers: [:]))
        #expect(skipped.state.step == 1 && skipped.storedVisitorText == nil)
        #expect(skipped.replies == [BotFlow.standard.skipped!.en, BotFlow.standard.questions[1].prompt.en])
        let refused = engine.handle(.skip, state: ConversationState(status: .bot, step: 2, attempts: 0, answers: [:]))
        #expect(refused.refused && refused.state.step == 2)
        #expect(refused.replies == [BotFlow.requiredRefusal.en])
    }

    @Test func aPhoneWrittenToAnOperatorIsFoundAndMasked() {
        let state = ConversationState(status: .operator, step: 3, attempts: 0, answers: [:])
        let turn = engine.handle(.text("call me on 139-1234-5678 after 6pm"), state: state)
        #expect(turn.contact?.e164 == "+8613912345678")
        #expect(turn.storedVisitorText == "call me on 139-****-5678 after 6pm")
        #expect(turn.replies.isEmpty)
        let plain = engine.handle(.text("how much is the course?"), state: state)
        #expect(plain.contact == nil && plain.storedVisitorText == "how much is the course?")
    }

    @Test func chineseVisitorsGetChineseWording() {
        let zh = BotEngine(flow: .standard, locale: .zh, defaultRegion: "CN")
        #expect(zh.start().1.first == BotFlow.standard.greeting.zh)
    }

    @Test func flowValidationNamesEveryProblem() {
        var flow = BotFlow.standard
        flow.questions.append(BotQuestion(id: "phone", kind: .phone, prompt: LocalizedText(zh: "", en: "x")))
        flow.questions.append(BotQuestion(id: "Bad Id", kind: .text, prompt: LocalizedText(zh: "a", en: "b"), maxAttempts: 0))
        let fields = flow.violations().map(\.field)
        #expect(fields.contains("bot_flow.questions[3].id"), "a repeated id")
        #expect(fields.contains("bot_flow.questions[3].prompt.zh"), "an empty prompt")
        #expect(fields.contains("bot_flow.questions[4].id"), "an id with capitals and spaces")
        #expect(fields.contains("bot_flow.questions[4].max_attempts"))
        #expect(fields.contains("bot_flow.questions"), "two phone questions")
        #expect(BotFlow.standard.violations().isEmpty)
    }
}
