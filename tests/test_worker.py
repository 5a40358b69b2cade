"""The generic worker: relay, consumers, request/reply and scheduler wired from a spec."""

import asyncio
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import rpc
from shared.events.dead_letters import list_dead_letters
from shared.events.envelope import stream_name
from shared.events.outbox import record_event
from shared.events.relay import Relay
from shared.events.streams import connect
from shared.models import BackgroundJob, Event, InboxEntry, PendingEvent
from shared.scheduler import schedule_job
from shared.worker import ConsumerSpec, WorkerSpec, provision, run_worker

from .support.procs import NatsServer
from .support.wait import eventually


async def test_a_worker_relays_consumes_answers_and_runs_jobs(
    committed, service_settings, nats_url, nats_prefix
):
    seen: list[str] = []
    jobs_run: list[dict] = []

    async def on_created(session, envelope):
        seen.append(envelope.data["clerk_user_id"])

    async def echo(data):
        return {"echo": data["say"]}

    async def job(session, job):
        jobs_run.append(job.payload)

    def build(ctx):
        return WorkerSpec(
            consumers=[ConsumerSpec("probe", {"identity.user.created.v1": on_created})],
            rpc={"test.echo": echo},
            jobs={"probe": job},
            scheduler_options={"poll_interval": 0.05},
        )

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_worker("identity", settings=service_settings, build=build, stop=stop, ready=ready)
    )
    await asyncio.wait_for(ready.wait(), 20)
    async with committed.begin() as conn:
        await schedule_job(conn, "identity", "probe", {"n": 1})

    async with AsyncSession(committed) as session, session.begin():
        await record_event(
            session,
            service="identity",
            type="identity.user.created",
            aggregate_type="user",
            aggregate_id=uuid.uuid4(),
            data={"user_id": str(uuid.uuid4()), "clerk_user_id": "user_w1"},
        )
    nc = await connect(nats_url, name="probe")
    try:
        assert await rpc.request(nc, "test.echo", {"say": "hi"}, prefix=nats_prefix) == {
            "echo": "hi"
        }
    finally:
        await nc.close()

    async def done() -> bool:  # the handler ran AND its transaction (with the inbox) committed
        async with committed.connect() as conn:
            applied = await conn.scalar(sa.select(sa.func.count()).select_from(InboxEntry))
        return seen == ["user_w1"] and jobs_run == [{"n": 1}] and applied == 1

    try:
        await eventually(done)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    async with committed.connect() as conn:
        published = sa.select(Event.id).where(~sa.exists().where(PendingEvent.id == Event.id))
        assert await conn.scalar(published)
        jobs = (await conn.execute(sa.select(BackgroundJob.job_type, BackgroundJob.status))).all()
    assert ("probe", "completed") in jobs
    # The kernel registers every worker's retention job beside the service's own.
    assert ("retention.prune", "pending") in jobs


async def test_a_worker_takes_its_delivery_limits_from_settings(
    committed, service_settings, nats_prefix
):
    """EVENTS_MAX_ATTEMPTS and EVENTS_RETRY_MAX_SECONDS reach every consumer: a poison event
    is dead-lettered after exactly that many attempts, retried no slower than the cap."""
    settings = service_settings.model_copy(
        update={"events_max_attempts": 3, "events_retry_max_seconds": 0.2}
    )
    calls = 0

    async def poison(session, envelope):
        nonlocal calls
        calls += 1
        raise ValueError("this event can never be applied")

    def build(ctx):
        return WorkerSpec(consumers=[ConsumerSpec("poison", {"identity.user.created.v1": poison})])

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_worker("billing", settings=settings, build=build, stop=stop, ready=ready)
    )
    await asyncio.wait_for(ready.wait(), 20)
    async with AsyncSession(committed) as session, session.begin():
        await record_event(
            session, service="identity", type="identity.user.created", aggregate_type="user",
            aggregate_id=uuid.uuid4(),
            data={"user_id": str(uuid.uuid4()), "clerk_user_id": "user_poison"},
        )  # fmt: skip
    # Billing's worker does not relay identity's outbox: publish it as identity's relay would.
    nc = await connect(service_settings.nats_url, name="poison")
    try:
        await Relay(committed, nc.jetstream(), "identity", prefix=nats_prefix).drain()

        async def dead_lettered() -> bool:
            return len(await list_dead_letters(committed)) == 1

        await eventually(dead_lettered, within=10)
    finally:
        await nc.close()
        stop.set()
        await asyncio.wait_for(task, 20)
    [letter] = await list_dead_letters(committed)
    assert (letter.deliveries, calls) == (3, 3) and "can never be applied" in letter.error


async def test_a_worker_that_starts_before_jetstream_answers_waits_for_it(
    committed, service_settings, tmp_path, caplog
):
    """A worker whose NATS has no JetStream yet (a cluster still electing its leaders) keeps
    retrying its streams and durables instead of dying, and is ready once JetStream answers."""
    nats = NatsServer(tmp_path / "js", tmp_path, jetstream=False)
    await nats.start()
    settings = service_settings.model_copy(update={"nats_url": nats.url})

    async def on_created(session, envelope):
        pass

    def build(ctx):
        return WorkerSpec(
            consumers=[ConsumerSpec("late", {"identity.user.created.v1": on_created})]
        )

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_worker("billing", settings=settings, build=build, stop=stop, ready=ready)
    )
    try:

        async def retrying() -> bool:
            return any(r.msg == "worker.provision_retry" for r in caplog.records)

        with caplog.at_level("WARNING", logger="scout.worker"):
            await eventually(retrying, within=10)
        assert not task.done() and not ready.is_set()
        nats.stop()
        nats.jetstream = True
        await nats.start()  # the same address, JetStream on: the worker reconnects
        await asyncio.wait_for(ready.wait(), 30)
        nc = await connect(nats.url, name="probe")
        try:
            js = nc.jetstream()
            info = await js.consumer_info(
                stream_name("IDENTITY", settings.scout_nats_prefix), "billing_late"
            )
            assert info.config.durable_name == "billing_late"
        finally:
            await nc.close()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        nats.stop()


async def test_provisioning_stops_when_asked_and_raises_what_will_not_pass(nats_url):
    """Retries end when the worker is asked to stop; an error other than JetStream not
    answering (a refused configuration) is raised at once."""
    nc = await connect(nats_url, name="provision")
    attempts = 0

    async def nobody_answers():
        nonlocal attempts
        attempts += 1
        await nc.request(f"provision.{uuid.uuid4().hex}", b"", timeout=1)

    try:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, stop.set)
        # Never stopping would hang here: wait_for turns that into a failure.
        stopped = provision(nobody_answers, "nobody", stop, first_delay=0.05)
        assert not await asyncio.wait_for(stopped, 10)
        assert attempts > 1

        async def refused():
            raise ValueError("replicas exceed the cluster size")

        try:
            await provision(refused, "refused", asyncio.Event())
        except ValueError as exc:
            assert "replicas" in str(exc)
        else:
            raise AssertionError("a refused step was retried instead of raised")
    finally:
        await nc.close()


async def test_a_part_that_leaves_its_loop_unasked_fails_the_worker(service_settings):
    """A worker missing a part (its relay, a consumer, a loop) is not left running quietly: it
    fails, so whatever supervises it restarts the whole process."""

    async def ends_early() -> None:
        await asyncio.sleep(0.1)

    def build(ctx) -> WorkerSpec:
        return WorkerSpec(tasks=[ends_early], relay=False)

    stop = asyncio.Event()
    try:
        await asyncio.wait_for(
            run_worker("campaign", settings=service_settings, build=build, stop=stop), 30
        )
    except RuntimeError as exc:
        assert "ends_early ended without a stop" in str(exc)
    else:
        raise AssertionError("the worker went on without one of its parts")
    assert not stop.is_set()
