"""Segments, rules, the scheduler and the outbox from Python, using only the .proto files.

A second rapport-server runs on a manual clock (`--manual-clock`): the test moves time with
ClockService.AdvanceClock, and every scheduled job (rule waits, segment re-checks) runs at its own due time.
Every RPC has a timeout; streams are read a bounded number of times.
"""

import time
from types import SimpleNamespace

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from conftest import CLOCK_START_SECONDS, bearer

T = 10  # seconds: the timeout of every unary call
DAY = 86_400


def at(seconds):
    """A timestamp `seconds` after the manual clock's start."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromSeconds(CLOCK_START_SECONDS + seconds)
    return stamp


def duration(seconds=0, millis=0):
    return duration_pb2.Duration(seconds=seconds, nanos=millis * 1_000_000)


def failure(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value


def violations(error):
    status = rpc_status.from_call(error)
    assert status is not None, error.details()
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            return {v.field: v.description for v in request.field_violations}
    raise AssertionError(f"no BadRequest in {list(status.details)}")


@pytest.fixture(scope="module")
def rpc(pb, clock_channel):
    return SimpleNamespace(
        customers=pb.customers_grpc.CustomerServiceStub(clock_channel),
        ingest=pb.ingest_grpc.IngestServiceStub(clock_channel),
        consents=pb.engagement_grpc.ConsentServiceStub(clock_channel),
        segments=pb.segments_grpc.SegmentServiceStub(clock_channel),
        rules=pb.rules_grpc.RuleServiceStub(clock_channel),
        outbox=pb.outbox_grpc.OutboxServiceStub(clock_channel),
        clock=pb.clock_grpc.ClockServiceStub(clock_channel),
        changes=pb.changes_grpc.ChangeServiceStub(clock_channel),
        keys=pb.api_keys_grpc.ApiKeyServiceStub(clock_channel),
    )


@pytest.fixture(scope="module")
def admin(clock_server):
    return bearer(clock_server.admin_key)


def email(pb, value):
    return pb.common.Identity(kind=pb.common.IDENTITY_KIND_EMAIL, value=value)


def event(pb, id, type, seconds, address, **properties):
    return pb.ingest.IngestItem(event=pb.ingest.EventInput(
        id=id, type=type, occur_time=at(seconds), channel=pb.common.CHANNEL_WEB, identities=[email(pb, address)],
        properties=properties))


def order(pb, external_id, seconds, address, minor=1000):
    return pb.ingest.IngestItem(order=pb.ingest.OrderInput(
        source="web", external_id=external_id, channel=pb.common.CHANNEL_WEB, identities=[email(pb, address)],
        lines=[pb.ingest.OrderLine(sku="SKU-1", quantity=1, unit_price_minor=minor)], currency="EUR",
        status=pb.ingest.ORDER_STATUS_PLACED, place_time=at(seconds)))


def now_seconds(pb, rpc, admin):
    """Seconds from the clock's start to the server's now (tests in this module share one clock)."""
    return rpc.clock.GetTime(pb.clock.GetTimeRequest(), metadata=admin, timeout=T).now.seconds - CLOCK_START_SECONDS


def test_the_clock_is_manual_and_refused_on_a_system_clock_server(pb, rpc, admin, channel, server):
    time = rpc.clock.GetTime(pb.clock.GetTimeRequest(), metadata=admin, timeout=T)
    assert time.manual and time.now.seconds == CLOCK_START_SECONDS
    system_clock = pb.clock_grpc.ClockServiceStub(channel)
    error = failure(system_clock.AdvanceClock, pb.clock.AdvanceClockRequest(by=duration(60)),
                    metadata=bearer(server.admin_key), timeout=T)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--manual-clock" in error.details()
    assert not system_clock.GetTime(pb.clock.GetTimeRequest(), metadata=bearer(server.admin_key), timeout=T).manual
    # Past the year 9999 no timestamp can follow: refused, naming the field sent, and the clock stays.
    error = failure(rpc.clock.AdvanceClock, pb.clock.AdvanceClockRequest(by=duration(9_000 * 366 * DAY)),
                    metadata=admin, timeout=T)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations(error)) == ["by"]
    assert "the latest time Rapport keeps" in error.details()
    assert rpc.clock.GetTime(pb.clock.GetTimeRequest(), metadata=admin, timeout=T).now.seconds == CLOCK_START_SECONDS


def test_an_abandoned_cart_rule_waits_rechecks_and_fills_the_outbox(pb, rpc, admin):
    start = now_seconds(pb, rpc, admin)
    rpc.rules.DefineEventType(pb.rules.DefineEventTypeRequest(event_type=pb.rules.EventType(
        type="checkout.started", properties=[pb.rules.EventProperty(key="value_minor", type=pb.common.ATTRIBUTE_TYPE_INT)])),
        metadata=admin, timeout=T)
    rule = pb.rules.Rule(
        name="Abandoned cart",
        trigger=pb.rules.RuleTrigger(event=pb.rules.EventTrigger(event_type="checkout.started")),
        wait=pb.rules.RuleWait(duration=duration(3600), recheck="orders_count(since: event.occurred_at) == 0"),
        actions=[pb.rules.RuleAction(send_message=pb.rules.SendMessageAction(
            channel=pb.engagement.CONSENT_CHANNEL_EMAIL, purpose=pb.engagement.CONSENT_PURPOSE_TRANSACTIONAL,
            template="cart-reminder", subject="{{ customer.given_name ?? \"Hello\" }}, your cart is waiting",
            data={"value": "{{ event.properties.value_minor }}"}))],
        limits=pb.rules.RuleLimits(once_per_customer_per=duration(DAY)))
    # Validation first: a typo is reported with its position, and nothing is saved.
    broken = pb.rules.Rule()
    broken.CopyFrom(rule)
    broken.wait.recheck = "orders_count(since: event.occured_at) == 0"
    issues = rpc.rules.ValidateRule(pb.rules.ValidateRuleRequest(rule=broken), metadata=admin, timeout=T).issues
    assert [(i.field, i.line, i.column) for i in issues] == [("rule.wait.recheck", 1, 21)]
    assert "did you mean 'event.occurred_at'?" in issues[0].message
    assert issues[0].excerpt.splitlines()[1].strip() == "^" * len("event.occured_at")
    error = failure(rpc.rules.CreateRule, pb.rules.CreateRuleRequest(rule=broken), metadata=admin, timeout=T)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations(error)) == ["rule.wait.recheck"]
    # Segment events fire per segment: as an event type they are refused, pointing to the segment triggers.
    anywhere = pb.rules.Rule(name="Any segment", trigger=pb.rules.RuleTrigger(event=pb.rules.EventTrigger(event_type="segment.entered")),
                             actions=[pb.rules.RuleAction(add_tag="moved")])
    error = failure(rpc.rules.CreateRule, pb.rules.CreateRuleRequest(rule=anywhere), metadata=admin, timeout=T)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "use the segment_entered trigger" in violations(error)["rule.trigger.event.event_type"]
    created = rpc.rules.CreateRule(pb.rules.CreateRuleRequest(rule=rule, request_id="cart-rule"), metadata=admin, timeout=T)
    assert created.id.startswith("rul_") and created.enabled and created.version == 1

    rpc.customers.CreateCustomer(pb.customers.CreateCustomerRequest(customer=pb.customers.Customer(
        given_name="Ada", identities=[email(pb, "ada@cart.example")])), metadata=admin, timeout=T)
    rpc.ingest.IngestEvents(pb.ingest.IngestEventsRequest(items=[
        event(pb, "cart-ada", "checkout.started", start, "ada@cart.example", value_minor=pb.common.AttributeValue(int_value=4999)),
        event(pb, "cart-bob", "checkout.started", start, "bob@cart.example", value_minor=pb.common.AttributeValue(int_value=1500)),
        order(pb, "bob-1", start + 600, "bob@cart.example"),
    ]), metadata=admin, timeout=T)
    runs = rpc.rules.ListRuleRuns(pb.rules.ListRuleRunsRequest(rule_id=created.id), metadata=admin, timeout=T).runs
    assert [r.status for r in runs] == [pb.rules.RUN_STATUS_WAITING] * 2

    # An hour later Bob's re-check fails (he ordered); Ada's message is queued.
    advanced = rpc.clock.AdvanceClock(pb.clock.AdvanceClockRequest(by=duration(3600)), metadata=admin, timeout=T)
    assert advanced.jobs_run >= 2
    runs = rpc.rules.ListRuleRuns(pb.rules.ListRuleRunsRequest(rule_id=created.id), metadata=admin, timeout=T).runs
    outcomes = sorted((r.status, r.reason) for r in runs)
    assert outcomes == sorted([(pb.rules.RUN_STATUS_FIRED, ""),
                               (pb.rules.RUN_STATUS_SKIPPED, "the re-check was false after waiting 1h")])
    # Ada starts two more checkouts the same day: the once-a-day limit skips both, in one record that counts the repeat.
    rpc.ingest.IngestEvents(pb.ingest.IngestEventsRequest(items=[
        event(pb, f"cart-ada-{n}", "checkout.started", start + 3600, "ada@cart.example", value_minor=pb.common.AttributeValue(int_value=100))
        for n in (2, 3)]), metadata=admin, timeout=T)
    runs = rpc.rules.ListRuleRuns(pb.rules.ListRuleRunsRequest(rule_id=created.id), metadata=admin, timeout=T).runs
    limited = [r for r in runs if r.reason.startswith("the rule fired for this customer within the last 1d")]
    assert [(r.status, r.event_id, r.repeats) for r in limited] == [(pb.rules.RUN_STATUS_SKIPPED, "cart-ada-3", 1)]

    # A worker streams the outbox, sends, and acknowledges.
    stream = rpc.outbox.StreamOutbox(pb.outbox.StreamOutboxRequest(consumer="py-worker", lease_duration=duration(30)),
                                     metadata=admin, timeout=T)
    entry = next(stream)
    stream.cancel()
    assert entry.message.recipient == "ada@cart.example"
    assert entry.message.subject == "Ada, your cart is waiting"
    assert dict(entry.message.data) == {"value": "4999"}
    assert entry.state == pb.outbox.OUTBOX_STATE_LEASED and entry.idempotency_key
    # Not acknowledged within the lease: it is offered again, with the same idempotency key.
    rpc.clock.AdvanceClock(pb.clock.AdvanceClockRequest(by=duration(31)), metadata=admin, timeout=T)
    # The cancel reaches the server on its own time: until its end of the stream notices, it may lease the entry once
    # more, and then it hands it back (not counting that attempt). Bounded wait for that, in real time.
    for _ in range(200):
        again = rpc.outbox.LeaseOutbox(pb.outbox.LeaseOutboxRequest(consumer="py-worker-2"), metadata=admin, timeout=T).entries
        if again:
            break
        time.sleep(0.05)
    assert [(e.id, e.idempotency_key, e.attempts) for e in again] == [(entry.id, entry.idempotency_key, 2)]
    # The first worker, whose lease expired, cannot give up on the entry the second one holds now.
    with pytest.raises(grpc.RpcError) as refused:
        rpc.outbox.FailOutboxEntry(pb.outbox.FailOutboxEntryRequest(id=entry.id, consumer="py-worker", error="timeout"),
                                   metadata=admin, timeout=T)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "leased by 'py-worker-2'" in refused.value.details()
    # Workers sharing a name tell their leases apart by the attempt they were handed.
    with pytest.raises(grpc.RpcError) as earlier:
        rpc.outbox.FailOutboxEntry(pb.outbox.FailOutboxEntryRequest(id=entry.id, consumer="py-worker-2", attempt=entry.attempts,
                                                                    error="timeout"), metadata=admin, timeout=T)
    assert earlier.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "leased again since attempt 1" in earlier.value.details()
    # The second worker gives up on it; its report, retried with the same request id, answers as the first time
    # (not FAILED_PRECONDITION for an entry failed already).
    give_up = pb.outbox.FailOutboxEntryRequest(id=entry.id, consumer="py-worker-2", attempt=2, error="mailbox full", request_id="py-give-up")
    failed = rpc.outbox.FailOutboxEntry(give_up, metadata=admin, timeout=T)
    assert failed.state == pb.outbox.OUTBOX_STATE_FAILED
    assert rpc.outbox.FailOutboxEntry(give_up, metadata=admin, timeout=T) == failed
    assert not entry.message.html, "a plain-text body"
    acknowledged = rpc.outbox.AcknowledgeOutbox(pb.outbox.AcknowledgeOutboxRequest(ids=[entry.id]), metadata=admin, timeout=T)
    assert acknowledged.entries[0].state == pb.outbox.OUTBOX_STATE_DELIVERED
    # An id of an entry that no longer exists is skipped; the others are acknowledged all the same.
    gone = "obx_01JZZZZZZZZZZZZZZZZZZZZZZZ"
    both = rpc.outbox.AcknowledgeOutbox(pb.outbox.AcknowledgeOutboxRequest(ids=[gone, entry.id]), metadata=admin, timeout=T)
    assert [(e.id, e.state) for e in both.entries] == [(entry.id, pb.outbox.OUTBOX_STATE_DELIVERED)]
    assert not rpc.outbox.LeaseOutbox(pb.outbox.LeaseOutboxRequest(consumer="py-worker"), metadata=admin, timeout=T).entries


def test_a_time_window_segment_is_entered_on_day_91_without_any_event(pb, rpc, admin):
    start = now_seconds(pb, rpc, admin)
    rpc.ingest.IngestEvents(pb.ingest.IngestEventsRequest(items=[order(pb, "lapse-1", start, "lapse@example.com")]),
                            metadata=admin, timeout=T)
    error = failure(rpc.segments.CreateSegment, pb.segments.CreateSegmentRequest(segment=pb.segments.Segment(
        key="lapsed_bad", name="Lapsed", kind=pb.segments.SEGMENT_KIND_DYNAMIC,
        expression="time_since(stats.last_order_at) > 90")), metadata=admin, timeout=T)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot compare duration with int" in violations(error)["segment.expression"]
    segment = rpc.segments.CreateSegment(pb.segments.CreateSegmentRequest(segment=pb.segments.Segment(
        key="lapsed_py", name="No order in 90 days", kind=pb.segments.SEGMENT_KIND_DYNAMIC,
        expression="stats.order_count > 0 and time_since(stats.last_order_at) > 90d and \"lapse@example.com\" in customer.emails")),
        metadata=admin, timeout=T)
    assert segment.state == pb.segments.SEGMENT_STATE_READY and segment.member_count == 0
    cursor = 0
    for change in rpc.changes.WatchChanges(pb.changes.WatchChangesRequest(), metadata=admin, timeout=T):
        cursor = change.cursor
        break
    rpc.clock.AdvanceClock(pb.clock.AdvanceClockRequest(to=at(start + 90 * DAY)), metadata=admin, timeout=T)
    assert rpc.segments.GetSegment(pb.segments.GetSegmentRequest(id=segment.id), metadata=admin, timeout=T).member_count == 0
    rpc.clock.AdvanceClock(pb.clock.AdvanceClockRequest(by=duration(millis=1)), metadata=admin, timeout=T)
    members = rpc.segments.ListSegmentMembers(pb.segments.ListSegmentMembersRequest(segment_id=segment.id),
                                              metadata=admin, timeout=T)
    assert members.total_size == 1
    member = members.members[0]
    assert member.since_time.ToMilliseconds() == (CLOCK_START_SECONDS + start + 90 * DAY) * 1000 + 1
    # The entry is in the change feed, naming the segment.
    entered = None
    for change in rpc.changes.WatchChanges(pb.changes.WatchChangesRequest(after_cursor=cursor, customer_id=member.customer_id),
                                           metadata=admin, timeout=T):
        if change.kind == pb.changes.CHANGE_KIND_SEGMENT_ENTERED:
            entered = change
            break
    assert entered.segment_id == segment.id
    explanation = rpc.segments.ExplainSegment(pb.segments.ExplainSegmentRequest(
        segment_id=segment.id, customer_id=member.customer_id), metadata=admin, timeout=T)
    assert explanation.value == "true"
    assert explanation.text.startswith("stats.order_count > 0 and time_since(stats.last_order_at) > 90d")


def test_automation_permissions_follow_roles(pb, rpc, admin):
    analyst = rpc.keys.CreateApiKey(pb.api_keys.CreateApiKeyRequest(name="py-analyst", role=pb.api_keys.ROLE_ANALYST),
                                    metadata=admin, timeout=T)
    as_analyst = bearer(analyst.secret)
    assert rpc.rules.ListRules(pb.rules.ListRulesRequest(), metadata=as_analyst, timeout=T).rules
    birthdays = rpc.segments.CreateSegment(pb.segments.CreateSegmentRequest(segment=pb.segments.Segment(
        key="py_june_birthdays", name="June birthdays", expression="customer.birthday.month == 6")), metadata=admin, timeout=T)
    for call, request in [
        (rpc.rules.CreateRule, pb.rules.CreateRuleRequest()),
        (rpc.outbox.LeaseOutbox, pb.outbox.LeaseOutboxRequest(consumer="x")),
        (rpc.clock.AdvanceClock, pb.clock.AdvanceClockRequest(by=duration(1))),
        # An unsaved expression could test a customer's masked data (a birthday, an e-mail) one guess at a time.
        (rpc.segments.PreviewSegment, pb.segments.PreviewSegmentRequest(expression='customer.birthday.month <= 6')),
        # Runs tell when a rule fired for whom: a birthday rule's runs date each customer's birthday.
        (rpc.rules.ListRuleRuns, pb.rules.ListRuleRunsRequest()),
        # Who is in a segment defined by a birthday's month is that month.
        (rpc.segments.ListSegmentMembers, pb.segments.ListSegmentMembersRequest(segment_id=birthdays.id)),
    ]:
        error = failure(call, request, metadata=as_analyst, timeout=T)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, call
    assert failure(rpc.rules.ListRules, pb.rules.ListRulesRequest(), timeout=T).code() == grpc.StatusCode.UNAUTHENTICATED
