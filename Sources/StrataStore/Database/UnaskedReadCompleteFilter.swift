import NIOCore
import PostgresNIO

/// Drops a read-complete event that no read asked for, before PostgresNIO's handler sees it.
///
/// PostgresNIO 1.33 streams a result's rows to the task that reads them (its `async` `query`, its
/// prepared statements), and holds the channel's next read until that task asks for more. If the
/// connection ends meanwhile (an immediate shutdown, a crash, a killed backend), NIO reads what was left
/// and the end of input unasked, and fires a read-complete for each; PostgresNIO's row stream traps on it
/// ("How can we receive a body part, after a channelReadComplete, but no read has been forwarded yet")
/// and ends the process. AsyncHTTPClient's copy of that state machine treats the event as a no-op (its
/// PR #450); this handler does so from outside. Rows read meanwhile stay with PostgresNIO, whose stream
/// fails with the lost connection as the channel closes.
///
/// First in the pipeline, it sees every read that PostgresNIO (and TLS, if any) lets through to the
/// socket, and every read-complete the socket fires. Outside an end of input, NIO reads the socket only
/// when asked, so no other event is dropped.
final class UnaskedReadCompleteFilter: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    /// Whether a read went out since the last read-complete came in; true at first, when the channel's
    /// first read may have gone out before this handler was added.
    private var readAsked = true

    func read(context: ChannelHandlerContext) {
        readAsked = true
        context.read()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard readAsked else { return }
        readAsked = false
        context.fireChannelReadComplete()
    }
}

extension PostgresConnection {
    /// Adds an ``UnaskedReadCompleteFilter`` to this connection's channel, unless it already has one.
    ///
    /// PostgresNIO does not expose a connection's channel, nor a way to shape the channels its pool
    /// opens; the channel is found by reflection, once per connection. The test that ends a connection
    /// under a waiting stream (`CutOffResultTests`) fails loudly if a PostgresNIO release renames it.
    func addUnaskedReadCompleteFilter(logger: Logger) async throws {
        guard ConnectionRecords.shared.markFiltered(self) else { return }
        guard let channel = Mirror(reflecting: self).descendant("channel") as? any Channel else {
            logger.error(
                "this PostgresNIO's connection holds no `channel`: a connection lost under a streamed answer can end the process"
            )
            return
        }
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(UnaskedReadCompleteFilter(), position: .first)
        }.get()
    }
}
