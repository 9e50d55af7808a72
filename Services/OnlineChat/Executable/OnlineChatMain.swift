import OnlineChat

@main
struct OnlineChatMain {
    static func main() async {
        await ChatCommand.main()
    }
}
