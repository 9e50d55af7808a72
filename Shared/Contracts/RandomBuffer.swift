#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Synchronization

/// Bumped in a forked child, so it never hands out bytes its parent also holds.
private let forkGeneration = Atomic<Int>(0)

/// Random bytes from the kernel's generator, drawn 4 KiB at a time: each draw is a `getrandom` system call
/// (glibc's `arc4random_buf`), which costs as much for 4 KiB as for 12 bytes. For identifiers and nonces, several per
/// record. Each byte is handed out once and then overwritten; a forked child throws away what its parent had drawn.
public final class RandomBuffer: Sendable {
    public static let shared = RandomBuffer()

    private struct Buffer {
        var bytes = [UInt8](repeating: 0, count: 4_096)
        var position = 4_096
        var generation = -1
    }

    private let buffer = Mutex(Buffer())

    private init() {
        #if canImport(Glibc)
        pthread_atfork(nil, nil, { forkGeneration.add(1, ordering: .relaxed) })
        #endif
    }

    /// Fills `target` (at most 256 bytes) with fresh random bytes.
    public func fill(_ target: UnsafeMutableRawBufferPointer) {
        let count = target.count
        precondition(count <= 256, "draw at most 256 random bytes at a time")
        buffer.withLock { buffer in
            let generation = forkGeneration.load(ordering: .relaxed)
            if buffer.position + count > buffer.bytes.count || buffer.generation != generation {
                buffer.bytes.withUnsafeMutableBytes { Self.refill($0) }
                buffer.position = 0
                buffer.generation = generation
            }
            let start = buffer.position
            buffer.bytes.withUnsafeMutableBytes { bytes in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + count)]))
                for index in start..<(start + count) { bytes[index] = 0 }
            }
            buffer.position += count
        }
    }

    /// `count` (at most 256) fresh random bytes.
    public func bytes(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    private static func refill(_ bytes: UnsafeMutableRawBufferPointer) {
        #if canImport(Glibc)
        arc4random_buf(bytes.baseAddress!, bytes.count)
        #else
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        #endif
    }
}
