"""Calls the real rapport-server from Python using only the .proto files, as a user of another language would.

Every RPC has a timeout; streams are read a bounded number of times.
"""

import time
import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

T = 10  # seconds: the timeout of every unary call


def unique(prefix="x"):
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def now_ts(offset_seconds=0):
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMilliseconds(int(time.time() * 1000) + offset_seconds * 1000)
    return stamp


def code_of(call, *args, **kwargs):
    """Makes a call that must fail and returns the grpc.RpcError."""
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value


def bad_request(error):
    """The google.rpc.BadRequest in the status details of a failed call, as {field: description}."""
    status = rpc_status.from_call(error)
    assert status is not None, f"INVALID_ARGUMENT without status details: {error.details()}"
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            return {v.field: v.description for v in request.field_violations}
    raise AssertionError(f"no google.rpc.BadRequest in the details: {list(status.details)}")


@pytest.fixture(scope="session")
def stubs(pb, channel):
    from types import SimpleNamespace

    return SimpleNamespace(
        customers=pb.customers_grpc.CustomerServiceStub(channel),
        merges=pb.merges_grpc.MergeServiceStub(channel),
        ingest=pb.ingest_grpc.IngestServiceStub(channel),
        c360=pb.c360_grpc.Customer360ServiceStub(channel),
        changes=pb.changes_grpc.ChangeServiceStub(channel),
        keys=pb.api_keys_grpc.ApiKeyServiceStub(channel),
        privacy=pb.privacy_grpc.PrivacyServiceStub(channel),
        health=health_pb2_grpc.HealthStub(channel),
    )


def email(pb, value):
    return pb.common.Identity(kind=pb.common.IDENTITY_KIND_EMAIL, value=value)


def phone(pb, value):
    return pb.common.Identity(kind=pb.common.IDENTITY_KIND_PHONE, value=value)


def create(pb, stubs, metadata, request_id="", **fields):
    identities = fields.pop("identities", [])
    return stubs.customers.CreateCustomer(
        pb.customers.CreateCustomerRequest(
            customer=pb.customers.Customer(identities=identities, **fields), request_id=request_id),
        metadata=metadata, timeout=T)


# Health and keys


def test_health_is_serving_without_a_key(stubs):
    reply = stubs.health.Check(health_pb2.HealthCheckRequest(), timeout=T)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    for service in ["rapport.v1.CustomerService", "rapport.v1.PrivacyService"]:
        reply = stubs.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=T)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    error = code_of(stubs.health.Check, health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=T)
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_admin_creates_a_marketing_key_that_works(pb, stubs, admin, make_key):
    metadata, created = make_key(pb.api_keys.ROLE_MARKETING, "checkout-service")
    listed = stubs.keys.ListApiKeys(pb.api_keys.ListApiKeysRequest(), metadata=admin, timeout=T)
    assert created.api_key.id in [k.id for k in listed.api_keys]
    customer = create(pb, stubs, metadata, given_name="Grace", identities=[email(pb, f"{unique()}@example.com")])
    assert customer.id.startswith("cus_")
    # Managing keys is for admins only.
    error = code_of(stubs.keys.ListApiKeys, pb.api_keys.ListApiKeysRequest(), metadata=metadata, timeout=T)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


# Customers


def test_create_and_get_customer_with_normalized_identities(pb, stubs, marketing):
    local = unique("ada")
    customer = create(
        pb, stubs, marketing, given_name="Ada", family_name="Lovelace", tags=["vip", "newsletter"],
        identities=[email(pb, f"  {local.upper()}@Example.COM "), phone(pb, "(415) 555-0123")])
    assert customer.id.startswith("cus_") and customer.etag
    assert customer.create_time.seconds > 0
    assert customer.tags == ["newsletter", "vip"]
    values = {(i.kind, i.value) for i in customer.identities}
    assert (pb.common.IDENTITY_KIND_EMAIL, f"{local}@example.com") in values
    assert (pb.common.IDENTITY_KIND_PHONE, "+14155550123") in values

    fetched = stubs.customers.GetCustomer(pb.customers.GetCustomerRequest(id=customer.id), metadata=marketing, timeout=T)
    assert fetched == customer
    found = stubs.customers.FindCustomer(
        pb.customers.FindCustomerRequest(identity=email(pb, f"{local}@EXAMPLE.com")), metadata=marketing, timeout=T)
    assert found.id == customer.id


def test_update_with_mask_and_etag_then_stale_etag_is_aborted(pb, stubs, marketing):
    customer = create(pb, stubs, marketing, given_name="Ada", family_name="Lovelace",
                      identities=[email(pb, f"{unique()}@example.com")])
    change = pb.customers.Customer(id=customer.id, etag=customer.etag, given_name="Augusta", family_name="IGNORED",
                                   tags=["vip"], locale="en-GB")
    updated = stubs.customers.UpdateCustomer(
        pb.customers.UpdateCustomerRequest(
            customer=change, update_mask=field_mask_pb2.FieldMask(paths=["given_name", "tags", "locale"])),
        metadata=marketing, timeout=T)
    assert updated.given_name == "Augusta" and updated.tags == ["vip"] and updated.locale == "en-GB"
    assert updated.family_name == "Lovelace", "a field outside the update mask must not change"
    assert updated.etag and updated.etag != customer.etag

    stale = pb.customers.Customer(id=customer.id, etag=customer.etag, given_name="Stale")
    error = code_of(
        stubs.customers.UpdateCustomer,
        pb.customers.UpdateCustomerRequest(customer=stale, update_mask=field_mask_pb2.FieldMask(paths=["given_name"])),
        metadata=marketing, timeout=T)
    assert error.code() == grpc.StatusCode.ABORTED
    after = stubs.customers.GetCustomer(pb.customers.GetCustomerRequest(id=customer.id), metadata=marketing, timeout=T)
    assert after == updated, "a stale update must change nothing"


def test_list_customers_pages_through_everyone_once(pb, stubs, marketing):
    tag = unique("page_")
    created = [create(pb, stubs, marketing, given_name=f"P{n}", tags=[tag]).id for n in range(7)]
    seen, times, sizes, token = [], [], [], ""
    for _ in range(10):  # 3 pages expected; bounded in case the token never empties
        page = stubs.customers.ListCustomers(
            pb.customers.ListCustomersRequest(page_size=3, page_token=token, filter=f"tags:{tag}"),
            metadata=marketing, timeout=T)
        seen += [c.id for c in page.customers]
        times += [c.create_time.ToMilliseconds() for c in page.customers]
        sizes.append(len(page.customers))
        token = page.next_page_token
        if not token:
            break
    assert sizes == [3, 3, 1]
    assert sorted(seen) == sorted(created) and len(set(seen)) == 7
    assert times == sorted(times), "the default order is create_time, oldest first"

    everyone = stubs.customers.ListCustomers(
        pb.customers.ListCustomersRequest(page_size=1000), metadata=marketing, timeout=T)
    assert set(created) <= {c.id for c in everyone.customers}

    # common.proto: a token works only for the request that made it; with another filter it is INVALID_ARGUMENT.
    first = stubs.customers.ListCustomers(
        pb.customers.ListCustomersRequest(page_size=3, filter=f"tags:{tag}"), metadata=marketing, timeout=T)
    assert first.next_page_token
    error = code_of(stubs.customers.ListCustomers, pb.customers.ListCustomersRequest(
        page_size=3, page_token=first.next_page_token, filter=f"tags:{unique('other_')}"), metadata=marketing, timeout=T)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(bad_request(error)) == ["page_token"]


def test_create_customer_request_id_replay_returns_the_same_customer(pb, stubs, marketing):
    request_id = unique("create-")
    address = f"{unique()}@example.com"
    first = create(pb, stubs, marketing, request_id=request_id, given_name="Ada", identities=[email(pb, address)])
    again = create(pb, stubs, marketing, request_id=request_id, given_name="Ada", identities=[email(pb, address)])
    assert again.id == first.id and again.etag == first.etag
    # A different request under the same id is refused and creates nothing.
    error = code_of(create, pb, stubs, marketing, request_id=request_id, given_name="Bob",
                    identities=[email(pb, f"{unique()}@example.com")])
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


# Ingest and the 360 view


def event_item(pb, event_id, address, type_="product.viewed", occur=None):
    return pb.ingest.IngestItem(event=pb.ingest.EventInput(
        id=event_id, type=type_, occur_time=occur or now_ts(), channel=pb.common.CHANNEL_WEB,
        identities=[email(pb, address)],
        properties={"sku": pb.common.AttributeValue(string_value="SKU-1")}))


def order_item(pb, external_id, address, quantity=2, unit_price=1999):
    return pb.ingest.IngestItem(order=pb.ingest.OrderInput(
        source="web", external_id=external_id, channel=pb.common.CHANNEL_WEB, identities=[email(pb, address)],
        lines=[pb.ingest.OrderLine(sku="SKU-1", name="Scarf", quantity=quantity, unit_price_minor=unit_price)],
        currency="EUR", shipping_minor=495, place_time=now_ts(-60)))


def test_ingest_events_and_orders_with_replay_and_a_rejected_item(pb, stubs, marketing):
    address = f"{unique()}@example.com"
    items = [
        event_item(pb, unique("evt-"), address),
        order_item(pb, unique("ord-"), address),
        event_item(pb, unique("evt-"), address, type_="Not A Type!"),
    ]
    request = pb.ingest.IngestEventsRequest(items=items)
    result = stubs.ingest.IngestEvents(request, metadata=marketing, timeout=T)
    outcomes = [r.outcome for r in result.results]
    assert outcomes == [pb.ingest.INGEST_OUTCOME_ACCEPTED, pb.ingest.INGEST_OUTCOME_ACCEPTED,
                        pb.ingest.INGEST_OUTCOME_REJECTED]
    assert [r.index for r in result.results] == [0, 1, 2]
    assert (result.accepted_count, result.duplicate_count, result.rejected_count) == (2, 0, 1)
    assert len(result.created_customer_ids) == 1
    customer_id = result.created_customer_ids[0]
    assert result.results[0].customer_id == customer_id == result.results[1].customer_id
    rejected = result.results[2]
    assert rejected.customer_id == "" and [v.field for v in rejected.violations] == ["type"], rejected

    replay = stubs.ingest.IngestEvents(request, metadata=marketing, timeout=T)
    assert [r.outcome for r in replay.results] == [pb.ingest.INGEST_OUTCOME_DUPLICATE,
                                                   pb.ingest.INGEST_OUTCOME_DUPLICATE,
                                                   pb.ingest.INGEST_OUTCOME_REJECTED]
    assert (replay.accepted_count, replay.duplicate_count, replay.rejected_count) == (0, 2, 1)
    assert list(replay.created_customer_ids) == []

    view = stubs.c360.GetCustomer360(pb.c360.GetCustomer360Request(customer_id=customer_id),
                                     metadata=marketing, timeout=T)
    assert view.customer.id == customer_id
    assert view.stats.order_count == 1 and view.stats.event_count == 1, view.stats
    assert len(view.stats.spent) == 1
    spent = view.stats.spent[0]
    assert (spent.total.minor_units, spent.total.currency) == (2 * 1999 + 495, "EUR")
    assert len(view.recent_orders) == 1
    order = view.recent_orders[0]
    assert order.id.startswith("ord_") and order.total.minor_units == 4493
    assert order.status == pb.ingest.ORDER_STATUS_PLACED
    kinds = [e.WhichOneof("entry") for e in view.timeline]
    assert kinds == ["event", "order"], "newest first: the event (now) before the order (a minute ago)"
    assert view.timeline_next_page_token == ""

    # The timeline one entry per page.
    entries, token = [], ""
    for _ in range(5):
        page = stubs.c360.ListTimeline(
            pb.c360.ListTimelineRequest(customer_id=customer_id, page_size=1, page_token=token),
            metadata=marketing, timeout=T)
        entries += list(page.entries)
        token = page.next_page_token
        if not token:
            break
    assert [e.WhichOneof("entry") for e in entries] == ["event", "order"]
    assert entries[1].order.id == order.id

    # A later state without its time is an estimate; sent again with its time, it is not.
    shipped = order_item(pb, items[1].order.external_id, address)
    shipped.order.status = pb.ingest.ORDER_STATUS_SHIPPED
    stubs.ingest.IngestEvents(pb.ingest.IngestEventsRequest(items=[shipped]), metadata=marketing, timeout=T)
    def history():
        view = stubs.c360.GetCustomer360(pb.c360.GetCustomer360Request(customer_id=customer_id), metadata=marketing, timeout=T)
        return [(c.status, c.estimated) for c in view.recent_orders[0].status_history]
    assert history() == [(pb.ingest.ORDER_STATUS_PLACED, False), (pb.ingest.ORDER_STATUS_SHIPPED, True)]
    shipped.order.status_time.CopyFrom(now_ts(-30))
    stubs.ingest.IngestEvents(pb.ingest.IngestEventsRequest(items=[shipped]), metadata=marketing, timeout=T)
    assert history() == [(pb.ingest.ORDER_STATUS_PLACED, False), (pb.ingest.ORDER_STATUS_SHIPPED, False)]


def test_ingest_violations_name_the_proto_fields(pb, stubs, marketing):
    """Item violations use the field names of the contract (EventInput.occur_time, OrderLine.unit_price_minor)."""
    address = f"{unique()}@example.com"
    future = event_item(pb, unique("evt-"), address, occur=now_ts(3 * 86_400))
    bad_line = order_item(pb, unique("ord-"), address, quantity=0, unit_price=-5)
    status_before_placing = order_item(pb, unique("ord-"), address)
    status_before_placing.order.status_time.FromMilliseconds(status_before_placing.order.place_time.ToMilliseconds() - 1000)
    items = [future, bad_line, status_before_placing]
    result = stubs.ingest.IngestEvents(pb.ingest.IngestEventsRequest(items=items), metadata=marketing, timeout=T)
    assert result.rejected_count == 3
    fields = [sorted(v.field for v in r.violations) for r in result.results]
    assert fields == [["occur_time"], ["lines[0].quantity", "lines[0].unit_price_minor"], ["status_time"]]

    error = code_of(stubs.ingest.IngestEvents,
                    pb.ingest.IngestEventsRequest(items=items, mode=pb.ingest.INGEST_MODE_ALL_OR_NOTHING),
                    metadata=marketing, timeout=T)
    assert sorted(bad_request(error)) == [
        "items[0].occur_time", "items[1].lines[0].quantity", "items[1].lines[0].unit_price_minor", "items[2].status_time"]


def test_ingest_all_or_nothing_fails_with_bad_request(pb, stubs, marketing):
    address = f"{unique()}@example.com"
    request = pb.ingest.IngestEventsRequest(
        items=[event_item(pb, unique("evt-"), address), event_item(pb, unique("evt-"), address, type_="BAD")],
        mode=pb.ingest.INGEST_MODE_ALL_OR_NOTHING)
    error = code_of(stubs.ingest.IngestEvents, request, metadata=marketing, timeout=T)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(bad_request(error)) == ["items[1].type"]
    missing = code_of(stubs.customers.FindCustomer, pb.customers.FindCustomerRequest(identity=email(pb, address)),
                      metadata=marketing, timeout=T)
    assert missing.code() == grpc.StatusCode.NOT_FOUND, "nothing of a failed batch is applied"
    # A thousand bad items still come back as INVALID_ARGUMENT (grpcio takes 8 KiB of trailers by default): the
    # status names the first 25 and counts the rest.
    many = pb.ingest.IngestEventsRequest(items=[event_item(pb, unique("evt-"), address, type_="BAD") for _ in range(1000)],
                                         mode=pb.ingest.INGEST_MODE_ALL_OR_NOTHING)
    error = code_of(stubs.ingest.IngestEvents, many, metadata=marketing, timeout=T)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = list(bad_request(error))
    assert fields[:2] == ["items[0].type", "items[1].type"] and len(fields) == 26 and fields[-1] == ""
    assert error.details().endswith("and 995 more (1000 in all)")


def test_stream_ingest_over_a_generator_of_batches(pb, stubs, marketing):
    address = f"{unique()}@example.com"
    ids = [unique("evt-") for _ in range(5)]

    def batches():
        yield pb.ingest.IngestEventsRequest(items=[event_item(pb, ids[0], address), event_item(pb, ids[1], address)])
        yield pb.ingest.IngestEventsRequest(items=[event_item(pb, ids[2], address, type_="Bad Type"),
                                                   order_item(pb, unique("ord-"), address)])
        # A replay of the first event is a duplicate.
        yield pb.ingest.IngestEventsRequest(items=[event_item(pb, ids[0], address), event_item(pb, ids[3], address)])

    summary = stubs.ingest.StreamIngest(batches(), metadata=marketing, timeout=30)
    assert (summary.accepted_count, summary.duplicate_count, summary.rejected_count) == (4, 1, 1), summary
    assert summary.created_customer_count == 1 and summary.merge_count == 0
    assert [r.index for r in summary.rejected] == [2], "the index counts items across the whole stream"
    assert summary.rejected[0].outcome == pb.ingest.INGEST_OUTCOME_REJECTED

    customer = stubs.customers.FindCustomer(pb.customers.FindCustomerRequest(identity=email(pb, address)),
                                            metadata=marketing, timeout=T)
    stats = stubs.c360.GetCustomerStats(pb.c360.GetCustomerStatsRequest(customer_id=customer.id),
                                        metadata=marketing, timeout=T)
    assert (stats.event_count, stats.order_count) == (3, 1)


# Merges


def test_merge_then_unmerge_brings_the_absorbed_customer_back(pb, stubs, marketing):
    a_mail, b_mail = f"{unique()}@example.com", f"{unique()}@example.com"
    older = create(pb, stubs, marketing, given_name="Ada", identities=[email(pb, a_mail)])
    time.sleep(0.01)  # one sleep, so that `older` is strictly older at millisecond precision
    newer = create(pb, stubs, marketing, given_name="Ada", family_name="Lovelace", identities=[email(pb, b_mail)])

    merged = stubs.merges.MergeCustomers(
        pb.merges.MergeCustomersRequest(customer_ids=[newer.id, older.id]), metadata=marketing, timeout=T)
    assert merged.merge.id.startswith("mrg_")
    assert (merged.merge.survivor_id, merged.merge.absorbed_id) == (older.id, newer.id)
    assert merged.merge.reason == pb.merges.MERGE_REASON_MANUAL
    assert merged.survivor.id == older.id and merged.survivor.family_name == "Lovelace"
    assert {i.value for i in merged.survivor.identities} == {a_mail, b_mail}
    via_absorbed = stubs.customers.GetCustomer(pb.customers.GetCustomerRequest(id=newer.id),
                                               metadata=marketing, timeout=T)
    assert via_absorbed.id == older.id, "a merged id reads the survivor"
    view = stubs.c360.GetCustomer360(pb.c360.GetCustomer360Request(customer_id=older.id),
                                     metadata=marketing, timeout=T)
    assert [m.id for m in view.merges] == [merged.merge.id]
    again = code_of(stubs.merges.MergeCustomers, pb.merges.MergeCustomersRequest(customer_ids=[newer.id, older.id]),
                    metadata=marketing, timeout=T)
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION

    undone = stubs.merges.UnmergeCustomers(pb.merges.UnmergeCustomersRequest(merge_id=merged.merge.id),
                                           metadata=marketing, timeout=T)
    assert undone.merge.HasField("unmerge_time")
    assert undone.restored.id == newer.id
    assert [i.value for i in undone.restored.identities] == [b_mail]
    assert undone.restored.family_name == "Lovelace"
    assert undone.survivor.id == older.id and [i.value for i in undone.survivor.identities] == [a_mail]
    assert undone.survivor.family_name == ""
    back = stubs.customers.GetCustomer(pb.customers.GetCustomerRequest(id=newer.id), metadata=marketing, timeout=T)
    assert back.id == newer.id and [i.value for i in back.identities] == [b_mail]
    twice = code_of(stubs.merges.UnmergeCustomers, pb.merges.UnmergeCustomersRequest(merge_id=merged.merge.id),
                    metadata=marketing, timeout=T)
    assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION


# The change feed


def test_a_listing_says_where_to_follow_the_change_feed_from(pb, stubs, marketing):
    page = stubs.customers.ListCustomers(pb.customers.ListCustomersRequest(page_size=1), metadata=marketing, timeout=T)
    assert page.change_cursor > 0
    created = create(pb, stubs, marketing, given_name="After the listing", identities=[email(pb, f"{unique()}@example.com")])
    call = stubs.changes.WatchChanges(pb.changes.WatchChangesRequest(after_cursor=page.change_cursor), metadata=marketing, timeout=20)
    try:
        # Other tests may write meanwhile: the new customer is among the first changes after the listing's cursor.
        for change in call:
            assert change.cursor > page.change_cursor
            if change.customer_id == created.id:
                assert change.kind == pb.changes.CHANGE_KIND_CUSTOMER_CREATED
                break
    finally:
        call.cancel()

def test_watch_changes_reads_the_backlog_then_a_live_change(pb, stubs, marketing):
    customer = create(pb, stubs, marketing, given_name="Watched", identities=[email(pb, f"{unique()}@example.com")])
    call = stubs.changes.WatchChanges(pb.changes.WatchChangesRequest(after_cursor=0), metadata=marketing, timeout=20)
    try:
        backlog = []
        for change in call:  # bounded by the call's timeout and the count below
            backlog.append(change)
            if change.kind == pb.changes.CHANGE_KIND_CUSTOMER_CREATED and change.customer_id == customer.id:
                break
            assert len(backlog) < 10_000
        cursors = [c.cursor for c in backlog]
        assert cursors[0] >= 1 and cursors == sorted(set(cursors)), "cursors strictly increase"
        assert backlog[-1].customer_id == customer.id

        stubs.customers.UpdateCustomer(
            pb.customers.UpdateCustomerRequest(
                customer=pb.customers.Customer(id=customer.id, given_name="Changed"),
                update_mask=field_mask_pb2.FieldMask(paths=["given_name"])),
            metadata=marketing, timeout=T)
        live = next(call)
        assert live.kind == pb.changes.CHANGE_KIND_CUSTOMER_UPDATED and live.customer_id == customer.id, live
        assert live.cursor > cursors[-1]
    finally:
        call.cancel()
    # A cursor this store never made is refused rather than left waiting for changes that are not coming.
    beyond = stubs.changes.WatchChanges(pb.changes.WatchChangesRequest(after_cursor=live.cursor + 1_000_000),
                                        metadata=marketing, timeout=T)
    error = code_of(next, beyond)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "beyond the latest change" in error.details()


def test_watch_changes_of_one_customer(pb, stubs, marketing):
    first = create(pb, stubs, marketing, given_name="One", identities=[email(pb, f"{unique()}@example.com")])
    create(pb, stubs, marketing, given_name="Other", identities=[email(pb, f"{unique()}@example.com")])
    call = stubs.changes.WatchChanges(pb.changes.WatchChangesRequest(after_cursor=0, customer_id=first.id),
                                      metadata=marketing, timeout=20)
    try:
        change = next(call)
        assert (change.kind, change.customer_id) == (pb.changes.CHANGE_KIND_CUSTOMER_CREATED, first.id)
    finally:
        call.cancel()


# Errors, auth and masking


def test_not_found(pb, stubs, marketing):
    error = code_of(stubs.customers.GetCustomer, pb.customers.GetCustomerRequest(id="cus_" + "0" * 26),
                    metadata=marketing, timeout=T)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = code_of(stubs.merges.GetMerge, pb.merges.GetMergeRequest(id="mrg_" + "0" * 26),
                    metadata=marketing, timeout=T)
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_only_admins_erase_customers(pb, stubs, marketing, admin):
    customer = create(pb, stubs, marketing, given_name="Ada")
    error = code_of(stubs.customers.DeleteCustomer, pb.customers.DeleteCustomerRequest(id=customer.id),
                    metadata=marketing, timeout=T)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, "erasure is final: admins only"
    stubs.customers.DeleteCustomer(pb.customers.DeleteCustomerRequest(id=customer.id), metadata=admin, timeout=T)
    gone = code_of(stubs.customers.GetCustomer, pb.customers.GetCustomerRequest(id=customer.id), metadata=marketing,
                   timeout=T)
    assert gone.code() == grpc.StatusCode.NOT_FOUND


def test_every_answer_names_its_call_for_the_server_log(pb, stubs, marketing):
    created, call = stubs.customers.CreateCustomer.with_call(
        pb.customers.CreateCustomerRequest(customer=pb.customers.Customer(given_name="Ada")),
        metadata=marketing + (("x-request-id", "py-order-1"),), timeout=T)
    assert ("x-request-id", "py-order-1") in list(call.initial_metadata())
    _, call = stubs.customers.GetCustomer.with_call(pb.customers.GetCustomerRequest(id=created.id), metadata=marketing, timeout=T)
    assert [v for k, v in call.initial_metadata() if k == "x-request-id"], "the server names a call it was not told"
    error = code_of(stubs.customers.GetCustomer, pb.customers.GetCustomerRequest(id="cus_nobody"),
                    metadata=marketing + (("x-request-id", "py-order-2"),), timeout=T)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert ("x-request-id", "py-order-2") in list(error.trailing_metadata())


def test_admins_export_everything_about_a_customer(pb, stubs, marketing, admin):
    address = f"{unique()}@example.com"
    customer = create(pb, stubs, marketing, given_name="Ada", identities=[email(pb, address)])
    stubs.ingest.IngestEvents(pb.ingest.IngestEventsRequest(items=[event_item(pb, unique("evt-"), address)]),
                              metadata=marketing, timeout=T)
    error = code_of(stubs.privacy.ExportCustomer, pb.privacy.ExportCustomerRequest(customer_id=customer.id),
                    metadata=marketing, timeout=T)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, "a complete, unmasked export: admins only"
    export = stubs.privacy.ExportCustomer(pb.privacy.ExportCustomerRequest(customer_id=customer.id), metadata=admin,
                                          timeout=T)
    assert export.customer.id == customer.id and export.customer.given_name == "Ada"
    assert [i.value for i in export.customer.identities] == [address]
    assert len(export.events) == 1 and export.stats.event_count == 1 and export.HasField("export_time")

    # A merge remembers both profiles, and an edit while merged is logged: the export holds them.
    other = create(pb, stubs, marketing, given_name="Augusta", family_name="King")
    merge = stubs.merges.MergeCustomers(pb.merges.MergeCustomersRequest(customer_ids=[customer.id, other.id]),
                                        metadata=marketing, timeout=T).merge
    stubs.customers.UpdateCustomer(
        pb.customers.UpdateCustomerRequest(customer=pb.customers.Customer(id=customer.id, locale="en-GB"),
                                           update_mask=field_mask_pb2.FieldMask(paths=["locale"])),
        metadata=marketing, timeout=T)
    export = stubs.privacy.ExportCustomer(pb.privacy.ExportCustomerRequest(customer_id=other.id), metadata=admin,
                                          timeout=T)
    assert [m.id for m in export.merges] == [merge.id]
    assert [p.merge_id for p in export.merge_profiles] == [merge.id]
    assert export.merge_profiles[0].survivor_before.given_name == "Ada"
    assert export.merge_profiles[0].absorbed_before.family_name == "King"
    assert [(c.customer_id, list(c.fields), c.values.locale) for c in export.profile_changes] == \
        [(customer.id, ["locale"], "en-GB")]


def test_invalid_argument_carries_field_violations(pb, stubs, marketing):
    address = f"{unique()}@example.com"
    error = code_of(create, pb, stubs, marketing, given_name="Ada",
                    identities=[email(pb, address), phone(pb, "12")])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = bad_request(error)
    assert set(fields) <= {"identities[1].value", "customer.identities[1].value"} and fields, fields
    missing = code_of(stubs.customers.FindCustomer, pb.customers.FindCustomerRequest(identity=email(pb, address)),
                      metadata=marketing, timeout=T)
    assert missing.code() == grpc.StatusCode.NOT_FOUND, "a failed create changes nothing"

    customer = create(pb, stubs, marketing, given_name="Ada")
    error = code_of(stubs.customers.UpdateCustomer, pb.customers.UpdateCustomerRequest(
        customer=pb.customers.Customer(id=customer.id, given_name="X", time_zone="Mars/Olympus"),
        update_mask=field_mask_pb2.FieldMask(paths=["given_name", "time_zone", "no_such_field"])),
        metadata=marketing, timeout=T)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "update_mask.paths[2]" in bad_request(error)

    error = code_of(stubs.customers.GetCustomer, pb.customers.GetCustomerRequest(id="not-an-id"),
                    metadata=marketing, timeout=T)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(bad_request(error)) == ["id"]


def test_bad_request_names_every_bad_field(pb, stubs, marketing):
    """common.proto: INVALID_ARGUMENT carries a BadRequest naming every bad field, not only the first kind found."""
    error = code_of(create, pb, stubs, marketing, given_name="Ada", time_zone="Mars/Olympus",
                    identities=[phone(pb, "12")])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {f.removeprefix("customer.") for f in bad_request(error)}
    assert fields == {"time_zone", "identities[0].value"}


def test_unauthenticated_without_a_key_or_with_a_wrong_one(pb, stubs, make_key, admin):
    request = pb.customers.ListCustomersRequest(page_size=1)
    for metadata in [None, (("authorization", "Bearer rpk_wrongwrongwrong"),), (("authorization", "Basic abc"),)]:
        error = code_of(stubs.customers.ListCustomers, request, metadata=metadata, timeout=T)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
    revocable, created = make_key(pb.api_keys.ROLE_SALES, "revoked-soon")
    stubs.customers.ListCustomers(request, metadata=revocable, timeout=T)
    revoked = stubs.keys.RevokeApiKey(pb.api_keys.RevokeApiKeyRequest(id=created.api_key.id), metadata=admin,
                                      timeout=T)
    assert revoked.HasField("revoke_time")
    error = code_of(stubs.customers.ListCustomers, request, metadata=revocable, timeout=T)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_analyst_may_read_masked_but_not_write(pb, stubs, marketing, analyst):
    local = unique("ada")
    customer = create(pb, stubs, marketing, given_name="Ada",
                      identities=[email(pb, f"{local}@example.com"), phone(pb, "+14155550199")])
    error = code_of(create, pb, stubs, analyst, given_name="Nope")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = code_of(stubs.ingest.IngestEvents,
                    pb.ingest.IngestEventsRequest(items=[event_item(pb, unique("evt-"), f"{local}@example.com")]),
                    metadata=analyst, timeout=T)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED

    seen = stubs.customers.GetCustomer(pb.customers.GetCustomerRequest(id=customer.id), metadata=analyst, timeout=T)
    assert seen.given_name == "Ada"
    values = {i.kind: i.value for i in seen.identities}
    assert values[pb.common.IDENTITY_KIND_EMAIL] == f"{local[0]}***@example.com"
    assert local not in values[pb.common.IDENTITY_KIND_EMAIL]
    assert "5550199" not in values[pb.common.IDENTITY_KIND_PHONE]
    listed = stubs.customers.ListCustomers(pb.customers.ListCustomersRequest(page_size=1000), metadata=analyst,
                                           timeout=T)
    assert all("@" not in i.value or "***@" in i.value for c in listed.customers for i in c.identities)
    clear = stubs.customers.GetCustomer(pb.customers.GetCustomerRequest(id=customer.id), metadata=marketing, timeout=T)
    assert {i.value for i in clear.identities} == {f"{local}@example.com", "+14155550199"}
    # A lookup by e-mail would confirm a guessed address that the masked view only hints at.
    error = code_of(stubs.customers.FindCustomer,
                    pb.customers.FindCustomerRequest(identity=email(pb, f"{local}@example.com")), metadata=analyst, timeout=T)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
