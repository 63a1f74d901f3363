"""Certificates by reference (claim check) and the event-size bound, against real databases (SQLite and
PostgreSQL): the centre keeps the document in the same transaction as the completion and announces only a
reference with its digest; the gateway keeps the reference; a change whose event would be too big for
the broker is refused before anything is written."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from sqlalchemy import func, select

from gateway.app import GatewayApp
from gateway.grpc_api import request_to_proto
from gateway.models import RequestRow
from metrofed.bus import topics
from metrofed.bus.envelope import unwrap, wrap
from metrofed.bus.event_size import MAX_EVENT_BYTES
from metrofed.db.outbox import EventTooLarge
from metrofed.domain.capability import DomainError
from metrofed.domain.lifecycle import RequestState
from metrofed.errors import NotFound
from metrofed.protoconv import state_to_proto
from metrofed.seed import seed_catalog
from metrofed.v1 import events_pb2, request_pb2
from services.centre.app import MAX_CERTIFICATE_BYTES, CentreApp
from services.centre.models import CapabilityRow, CertificateRow, InboxRow, Outbox
from tests.integration.conftest import record_for
from tests.integration.test_centre_store import CAP, CENTRE, deliver, routed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def big_certificate(request_id: str, size: int) -> str:
    head = f'<dcc:digitalCalibrationCertificate id="{request_id}">'
    tail = "</dcc:digitalCalibrationCertificate>"
    return head + "<dcc:result>" + "7" * (size - len(head) - len(tail) - 25) + "</dcc:result>" + tail


def outbox_rows(sessions) -> list[Outbox]:
    with sessions() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


@pytest.fixture
def centre(centre_db, seed_by_id):
    app = CentreApp(seed_by_id[CENTRE].profile, centre_db)
    app.publish({c.capability_id: c for c in seed_by_id[CENTRE].capabilities}[CAP])
    return app


def accepted_request(app: CentreApp) -> str:
    env = routed(CENTRE, CAP)
    deliver(app, env)
    return unwrap(env.SerializeToString()).event.request_id


def test_completion_keeps_a_large_certificate_and_announces_only_its_reference(centre, centre_db):
    request_id = accepted_request(centre)
    document = big_certificate(request_id, 1_500_000)
    before = len(outbox_rows(centre_db))

    row = centre.complete(request_id, document, note="5 points")
    assert row.state == RequestState.COMPLETED.value

    body = document.encode()
    stored = centre.certificate(request_id)
    assert stored.body == body
    assert (stored.sha256, stored.size_bytes, stored.media_type) == (hashlib.sha256(body).hexdigest(), len(body),
                                                                     "application/xml")
    new = outbox_rows(centre_db)[before:]
    assert [r.topic for r in new] == [topics.REQUEST_STATUS]
    assert len(new[0].value) < 2_000  # the event carries a reference, not the 1.5 MB document
    event = unwrap(new[0].value).event
    assert event.result_certificate == ""
    assert event.certificate == centre.certificate_ref(stored)
    assert (event.certificate.centre_id, event.certificate.sha256, event.certificate.size_bytes) == (
        CENTRE, stored.sha256, len(body))


def test_a_certificate_over_the_bound_is_refused_and_nothing_changes(centre, centre_db):
    request_id = accepted_request(centre)
    before = len(outbox_rows(centre_db))
    with pytest.raises(DomainError) as err:
        centre.complete(request_id, big_certificate(request_id, MAX_CERTIFICATE_BYTES + 1))
    assert err.value.field == "result_certificate"
    assert str(err.value).startswith("result_certificate: ")
    with centre_db() as s:
        assert s.get(InboxRow, request_id).state == RequestState.ACCEPTED.value
        assert s.scalar(select(func.count()).select_from(CertificateRow)) == 0
    assert len(outbox_rows(centre_db)) == before
    with pytest.raises(NotFound):
        centre.certificate(request_id)


def test_a_generated_certificate_is_kept_the_same_way(centre):
    request_id = accepted_request(centre)
    centre.complete(request_id)
    stored = centre.certificate(request_id)
    assert b"digitalCalibrationCertificate" in stored.body and request_id.encode() in stored.body
    assert stored.sha256 == hashlib.sha256(stored.body).hexdigest()


def test_a_capability_too_big_for_an_event_is_refused_naming_the_field_and_nothing_is_written(
        centre_db, seed_by_id):
    app = CentreApp(seed_by_id[CENTRE].profile, centre_db)
    cap = {c.capability_id: c for c in seed_by_id[CENTRE].capabilities}[CAP]
    band = cap.bands[0]
    huge = dataclasses.replace(cap, capability_id="thirty-thousand-bands", bands=(band,) * 30_000)
    with pytest.raises(DomainError) as err:
        app.publish(huge)
    assert err.value.field == "capability.bands"
    if isinstance(err.value, EventTooLarge):  # (unless an API-level band limit refused it first)
        assert f"{MAX_EVENT_BYTES:,}" in err.value.reason
    with centre_db() as s:
        assert s.get(CapabilityRow, "thirty-thousand-bands") is None
    assert outbox_rows(centre_db) == []


def test_the_gateway_keeps_the_reference_and_returns_it_with_the_request(seed, gateway_db):
    gw = GatewayApp(seed_catalog(seed), gateway_db, load_ttl_seconds=0)
    need = request_pb2.Need(measurand="pressure transmitter",
                            range=request_pb2.MeasuringRange(min=0, max=10, unit="MPa"),
                            tolerance=request_pb2.Tolerance(kind=request_pb2.TOLERANCE_KIND_PERCENT_OF_FULL_SCALE,
                                                            value=0.5), service_kind=2, quantity=1)
    row = gw.submit("ent-claim", need)
    centre_id = row.assigned_centre_id
    ref = request_pb2.CertificateRef(centre_id=centre_id, certificate_id="c-1", sha256="ab" * 32,
                                     size_bytes=1_500_000, media_type="application/xml")
    for state, extra in ((RequestState.ACCEPTED, {}), (RequestState.COMPLETED, {"certificate": ref})):
        env = wrap(events_pb2.RequestStatusChanged(request_id=row.request_id, centre_id=centre_id,
                                                   state=state_to_proto(state), attempt=1, **extra), centre_id)
        gw.on_status_event(record_for(topics.REQUEST_STATUS, env, key=row.request_id),
                           unwrap(env.SerializeToString()))
    got, history = gw.get(row.request_id)
    assert got.state == RequestState.COMPLETED.value
    with gateway_db() as s:
        assert request_pb2.CertificateRef.FromString(s.get(RequestRow, row.request_id).certificate_ref) == ref
    wire = request_to_proto(got, history)
    assert wire.certificate == ref and wire.result_certificate == ""
