import PostgresNIO
import ServiceLifecycle
import Synchronization

/// A `PostgresClient` run as a service, saying when its `run()` has begun.
///
/// At start, the schema's preparation and the first requests lease connections while the service group
/// is still starting the clients' `run()`. PostgresNIO holds such a lease until `run()` begins, but warns
/// of it ("PostgresClient.run() hasn't been called yet") on every start that loses the race, which reads
/// as a fault to whoever watches the log. A lease waits for ``untilBegun()`` instead.
final class ClientRun: Service, Sendable {
    let client: PostgresClient
    private let begun: Atomic<Bool>

    /// `begun`: whether to take `run()` as begun already, for a client that its maker may run itself.
    init(_ client: PostgresClient, begun: Bool = false) {
        self.client = client
        self.begun = Atomic(begun)
    }

    func run() async {
        // No suspension between the flag and PostgresNIO's own, which `client.run()` sets first.
        begun.store(true, ordering: .releasing)
        await client.run()
    }

    /// Returns once `run()` has begun, at once on every call after that.
    func untilBegun() async {
        while !begun.load(ordering: .acquiring) {
            guard (try? await eventLoopSleep(for: .milliseconds(1))) != nil else { return }
        }
    }
}
