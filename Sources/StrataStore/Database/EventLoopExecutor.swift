import NIOCore

/// An event loop as a task executor: code run with it as the task's executor preference runs on the
/// loop's thread, between the loop's own work, never at the same time as it.
///
/// A connection's handler changes state only on its loop. Code that must see the connection open and
/// act on it before anything can close it (see `copyBinary` in `CopyRows.swift`) runs here, so that the
/// check and the act fall in one turn of the loop.
final class EventLoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
