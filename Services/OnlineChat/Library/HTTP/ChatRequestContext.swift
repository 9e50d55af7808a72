import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import ServiceKit

/// online-chat's request context: WebSocket upgrades plus the client's address for per-client limits.
public struct ChatRequestContext: RequestContext, WebSocketRequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.remoteAddress = source.channel.remoteAddress
    }

    /// The client's IP: the first address of `header` when configured and present, else the connection's peer.
    func clientIP(of request: Request, header: HTTPField.Name?) -> String {
        if let header, let value = request.headers[header] {
            let first = value.split(separator: ",", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if !first.isEmpty { return String(first.prefix(64)) }
        }
        return remoteAddress?.ipAddress ?? "unknown"
    }
}
