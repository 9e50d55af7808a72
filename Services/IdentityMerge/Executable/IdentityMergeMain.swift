import IdentityMerge

@main
struct IdentityMergeMain {
    static func main() async {
        await IdentityCommand.main()
    }
}
