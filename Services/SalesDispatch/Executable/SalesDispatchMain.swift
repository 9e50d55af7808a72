import SalesDispatch

@main
struct SalesDispatchMain {
    static func main() async {
        await SalesDispatchCommand.main()
    }
}
