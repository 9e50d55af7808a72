import MarketingIntake

@main
struct MarketingIntakeMain {
    static func main() async {
        await IntakeCommand.main()
    }
}
