import GRPCCore
import GRPCProtobuf
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf
import Testing

/// Records, for each call, when the server's handling of it has completely finished (response stream included).
struct CompletionRecorder: ServerInterceptor {
    let finished: AsyncStream<String>.Continuation

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.method
        var response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            finished.yield(method)
            throw error
        }
        guard case .success(var contents) = response.accepted else {
            finished.yield(method)
            return response
        }
        let producer = contents.producer
        let finished = self.finished
        contents.producer = { writer in
            defer { finished.yield(method) }
            return try await producer(writer)
        }
        response.accepted = .success(contents)
        return response
    }
}

@Suite("ChangeService.WatchChanges over gRPC")
struct ChangeFeedTests {
    @Test(.timeLimit(.minutes(1))) func theBacklogAfterACursorThenChangesAsTheyHappen() async throws {
        try await withRapport { c in
            let ada = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email(adaEmail)] } })
            c.clock.advance(by: .seconds(10))
            let bob = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("bob@example.com")] } })
            _ = try await c.ingest.ingestEvents(.with { $0.items = [eventItem("e-1", at: 5, .email(adaEmail))] })

            // Everything from the start.
            let all = try await c.changes.watchChanges(.init()) { response in try await response.messages.first(3) }
            #expect(all.map(\.kind) == [.customerCreated, .customerCreated, .activityRecorded])
            #expect(all.map(\.customerID) == [ada.id, bob.id, ada.id])
            #expect(all.map(\.time) == [at(0), at(10), at(10)])
            #expect(zip(all, all.dropFirst()).allSatisfy { $0.cursor < $1.cursor })

            let engine = c.engine
            let watched = try await c.changes.watchChanges(.with { $0.afterCursor = all[0].cursor }) { response in
                var iterator = response.messages.makeAsyncIterator()
                var seen = [try #require(try await iterator.next()), try #require(try await iterator.next())]
                // Caught up: a change made now arrives on the open stream.
                _ = try await engine.updateCustomer(CustomerID(rawValue: ada.id)!) { $0.tags = ["vip"] }
                seen.append(try #require(try await iterator.next()))
                return seen
            }
            #expect(watched.map(\.cursor) == [all[1].cursor, all[2].cursor, all[2].cursor + 1])
            #expect(watched.map(\.kind) == [.customerCreated, .activityRecorded, .customerUpdated])
            #expect(watched.last?.customerID == ada.id)

            // Only one customer's changes, including a merge that names them as the absorbed one.
            let forBob = try await c.changes.watchChanges(.with { $0.customerID = bob.id }) { response in
                var iterator = response.messages.makeAsyncIterator()
                var seen = [try #require(try await iterator.next())]
                _ = try await c.customers.updateCustomer(
                    .with { $0.customer = .with { $0.id = ada.id; $0.givenName = "Ada" }; $0.updateMask = .with { $0.paths = ["given_name"] } })
                let merged = try await c.merges.mergeCustomers(.with { $0.customerIds = [ada.id, bob.id] })
                seen.append(try #require(try await iterator.next()))
                #expect(seen.last?.mergeID == merged.merge.id)
                return seen
            }
            #expect(forBob.map(\.kind) == [.customerCreated, .customersMerged])
            #expect(forBob.last?.customerID == ada.id)
            #expect(forBob.last?.otherCustomerID == bob.id)
        }
    }

    @Test(.timeLimit(.minutes(1))) func cancellingAWatchEndsItOnBothSides() async throws {
        let (finished, recorder) = AsyncStream<String>.makeStream()
        try await withRapport(serverInterceptors: [CompletionRecorder(finished: recorder)]) { c in
            var completions = finished.makeAsyncIterator()
            _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email(adaEmail)] } })
            #expect(await completions.next() == "CreateCustomer")

            // Cancelling the task that waits for the next change ends the client's call.
            let (started, startedContinuation) = AsyncStream<Void>.makeStream()
            let watching = Task {
                try await c.changes.watchChanges(.init()) { response in
                    var count = 0
                    for try await _ in response.messages {
                        count += 1
                        startedContinuation.yield()
                    }
                    return count
                }
            }
            var startedIterator = started.makeAsyncIterator()
            _ = await startedIterator.next()  // the backlog arrived: the stream is open and waiting
            watching.cancel()
            switch await watching.result {
            case .success(let count): #expect(count == 1)  // the client's stream ends quietly on cancellation
            case .failure(let error as RPCError): #expect(error.code == .cancelled, "\(error)")
            case .failure(let error): #expect(error is CancellationError, "\(error)")
            }
            // Returning from the response handler ends it too.
            let first = try await c.changes.watchChanges(.init()) { response in try await response.messages.first(1) }
            #expect(first.map(\.kind) == [.customerCreated])

            // On the server, a watch ends when its RPC is cancelled. grpc-swift's in-process transport does not pass a
            // client's cancellation on (it finishes the request stream as for a normal end); it cancels every open
            // RPC when the server shuts down, which is what an HTTP/2 reset does for one. So: one more open watch,
            // then shut down: every watch handler must end, or the server never stops and the test hangs.
            let (open, openContinuation) = AsyncStream<Void>.makeStream()
            let lastWatch = Task {
                try await c.changes.watchChanges(.init()) { response in
                    var count = 0
                    for try await _ in response.messages {
                        count += 1
                        openContinuation.yield()
                    }
                    return count
                }
            }
            var openIterator = open.makeAsyncIterator()
            _ = await openIterator.next()
            c.grpcServer.beginGracefulShutdown()
            #expect(await completions.next() == "WatchChanges")
            #expect(await completions.next() == "WatchChanges")
            #expect(await completions.next() == "WatchChanges")
            // The open call ends for the client too: normally, or as cancelled.
            switch await lastWatch.result {
            case .success(let count): #expect(count == 1)
            case .failure(let error as RPCError): #expect(error.code == .cancelled || error.code == .unavailable, "\(error)")
            case .failure(let error): Issue.record("\(error)")
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func aDeadlineEndsTheWatch() async throws {
        try await withRapport { c in
            _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email(adaEmail)] } })
            var options = CallOptions.defaults
            // Long enough for the first change to arrive on a loaded machine (200 ms once was not, with every suite
            // running in parallel on 2 cores), short enough to end the open watch.
            options.timeout = .seconds(2)
            let received = Counter()
            let error = await expectRPCError(.deadlineExceeded) {
                try await c.changes.watchChanges(.init(), options: options) { response in
                    for try await _ in response.messages { received.increment() }
                }
            }
            #expect(error != nil)
            #expect(received.value == 1)
        }
    }

    @Test func badWatchRequestsAreInvalidArguments() async throws {
        try await withRapport { c in
            let negative = await expectRPCError(.invalidArgument) {
                try await c.changes.watchChanges(.with { $0.afterCursor = -1 }) { response in try await response.messages.first(1) }
            }
            #expect(violationFields(negative) == ["after_cursor"])
            let badID = await expectRPCError(.invalidArgument) {
                try await c.changes.watchChanges(.with { $0.customerID = "ada" }) { response in try await response.messages.first(1) }
            }
            #expect(violationFields(badID) == ["customer_id"])

            // A cursor this store never made (a restored backup, an in-memory server that restarted) is refused,
            // instead of waiting for changes that are not coming.
            _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email(adaEmail)] } })
            let latest = try await c.engine.changes(after: 0).last!.cursor
            let beyond = await expectRPCError(.failedPrecondition) {
                try await c.changes.watchChanges(.with { $0.afterCursor = latest + 1 }) { response in try await response.messages.first(1) }
            }
            #expect(beyond?.message == "after_cursor \(latest + 1) is beyond the latest change (\(latest)): this store did not make that cursor; read again from 0")
        }
    }

    @Test(.timeLimit(.minutes(1))) func revokingAKeyEndsTheStreamsItOpened() async throws {
        try await withRapport { c in
            _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email(adaEmail)] } })
            let marketing = try await c.apiKeys.listApiKeys(.init()).apiKeys.first { $0.role == .marketing }!
            let (opened, signal) = AsyncStream<Void>.makeStream()
            let watch = Task {
                try await c.as(.marketing) {
                    try await c.changes.watchChanges(.init()) { response in
                        var count = 0
                        do {
                            for try await _ in response.messages {
                                count += 1
                                signal.yield()
                            }
                        } catch let error as RPCError {
                            return (count, RPCError.Code?.some(error.code), error.message)
                        }
                        return (count, RPCError.Code?.none, "")
                    }
                }
            }
            var iterator = opened.makeAsyncIterator()
            _ = await iterator.next()  // the backlog arrived: the stream is open
            _ = try await c.apiKeys.revokeApiKey(.with { $0.id = marketing.id })
            let (count, code, message) = try await watch.value
            #expect(count == 1)
            #expect(code == .unauthenticated)
            #expect(message == "the API key was revoked")
        }
    }
}
