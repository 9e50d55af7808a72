import Contracts
import Testing

@Suite("Buffered random bytes")
struct RandomBufferTests {
    /// 2,000 draws cross several 4 KiB refills: no draw repeats another or hands out the zeros a used byte is
    /// overwritten with.
    @Test func drawsAcrossRefillsAreFreshAndNeverRepeat() async {
        let draws = await withTaskGroup(of: [[UInt8]].self) { group in
            for _ in 0..<4 {
                group.addTask { (0..<500).map { _ in RandomBuffer.shared.bytes(12) } }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(draws.count == 2_000 && Set(draws).count == 2_000)
        #expect(draws.allSatisfy { $0.count == 12 && $0 != [UInt8](repeating: 0, count: 12) })
        // Every byte value turns up among 24,000 random bytes; a stuck or zeroed buffer would not give that.
        #expect(Set(draws.joined()).count == 256)
    }
}
