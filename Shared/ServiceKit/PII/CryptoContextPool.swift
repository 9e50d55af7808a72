@preconcurrency import COpenSSL
import Synchronization

/// libcrypto contexts already keyed (an HMAC with its key, an AES-GCM cipher with its key schedule), kept for reuse.
///
/// Setting a context up is most of what one small MAC or encryption costs with OpenSSL 3: the one-shot `HMAC()` and
/// `EVP_EncryptInit_ex(EVP_aes_256_gcm(), key, …)` look the algorithm up in the provider store (under its lock) and
/// expand the key on every call. A context is used by one caller at a time; the pool hands each caller its own.
final class CryptoContextPool: @unchecked Sendable {
    /// A context no caller is using: only the pool holds it, so it may pass between threads.
    private struct Idle: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private let idle = Mutex<[Idle]>([])
    private let make: @Sendable () -> OpaquePointer?
    private let release: @Sendable (OpaquePointer) -> Void
    /// Contexts kept beyond this are freed (there are rarely more callers at once than threads).
    private let keep = 32

    init(make: @escaping @Sendable () -> OpaquePointer?, release: @escaping @Sendable (OpaquePointer) -> Void) {
        self.make = make
        self.release = release
    }

    /// Runs `body` with a keyed context. A context whose use threw is freed, not reused.
    func withContext<R>(_ body: (OpaquePointer) throws -> R) throws -> R {
        guard let context = idle.withLock({ $0.popLast()?.pointer }) ?? make() else { throw ContextUnavailable() }
        let result: R
        do { result = try body(context) } catch {
            release(context)
            throw error
        }
        let kept = idle.withLock { contexts -> Bool in
            guard contexts.count < keep else { return false }
            contexts.append(Idle(pointer: context))
            return true
        }
        if !kept { release(context) }
        return result
    }

    deinit {
        for context in idle.withLock({ $0 }) { release(context.pointer) }
    }

    struct ContextUnavailable: Error, CustomStringConvertible {
        var description: String { "libcrypto could not set up a context" }
    }
}

/// Algorithms fetched once from libcrypto's default provider (a fetch takes the provider store's lock).
enum FetchedAlgorithms {
    /// `EVP_MAC` HMAC and `EVP_CIPHER` AES-256-GCM: libcrypto keeps them for the process's life.
    private final class Fetched: @unchecked Sendable {
        let hmac = EVP_MAC_fetch(nil, "HMAC", nil)
        let aes256GCM = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil)
    }

    private static let fetched = Fetched()
    static var hmac: OpaquePointer? { fetched.hmac }
    static var aes256GCM: OpaquePointer? { fetched.aes256GCM }
}
