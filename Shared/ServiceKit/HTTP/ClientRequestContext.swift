import FastText
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A request context that knows the connected client's address, for per-client limits.
public struct ClientRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer of the TCP connection (a proxy's address when behind one; see ``clientIP(header:)``).
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}

extension RemoteAddressRequestContext {
    /// The client's IP: the first address of `header` (e.g. `X-Forwarded-For`, set only behind a proxy that
    /// overwrites it) when one is configured and present, else the connection's peer.
    public func clientIP(of request: Request, header: HTTPField.Name?) -> String {
        if let header, let value = request.headers[header] {
            let first = value.split(separator: ",", maxSplits: 1).first.map { $0.trimmingSpaces } ?? ""
            if !first.isEmpty { return String(first.prefix(64)) }
        }
        return remoteAddress?.ipAddress ?? "unknown"
    }
}
