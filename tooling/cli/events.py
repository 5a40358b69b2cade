"""``scout events``: watch live events and list or replay dead letters."""

import asyncio
import contextlib
import uuid
from typing import Annotated

import orjson
import typer
from nats.js.api import DeliverPolicy
from rich.text import Text

from shared.db import make_engine
from shared.events.dead_letters import list_dead_letters, replay_dead_letter, replay_dead_letters
from shared.events.envelope import prefixed, stream_name, unprefixed
from shared.events.streams import STREAMS, connect
from shared.settings import get_settings
from tooling.cli.output import console, err_console, print_json, print_table

app = typer.Typer(help="Watch live events and manage dead letters.", no_args_is_help=True)

_COLOURS = {"identity": "cyan", "billing": "green", "campaign": "magenta", "scraping": "yellow"}

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document per line/result.")]


@app.command()
def tail(
    as_json: JsonOpt = False,
    limit: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    from_start: Annotated[
        bool, typer.Option("--all", help="Start from the oldest retained event, not from now.")
    ] = False,
    only: Annotated[
        str | None, typer.Option("--type", help="Only types starting with this, e.g. identity.user")
    ] = None,
) -> None:
    """Print events as they are published on every Scout stream (under SCOUT_NATS_PREFIX)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(as_json, limit, from_start, only))


async def _tail(as_json: bool, limit: int | None, from_start: bool, only: str | None) -> None:
    settings = get_settings()
    prefix = settings.scout_nats_prefix
    try:
        nc = await connect(settings.nats_url, name="scout-events-tail")
    except Exception as exc:
        err_console.print(f"[red]✗[/] cannot connect to NATS at {settings.nats_url}: {exc}")
        raise typer.Exit(1) from exc
    js = nc.jetstream()
    queue: asyncio.Queue = asyncio.Queue()
    policy = DeliverPolicy.ALL if from_start else DeliverPolicy.NEW
    try:
        for spec in STREAMS.values():
            if spec.work_queue:  # work items belong to one worker; a tail would steal them
                continue
            for subject in spec.subjects:
                await js.subscribe(
                    prefixed(subject, prefix),
                    stream=stream_name(spec.name, prefix),
                    ordered_consumer=True,
                    deliver_policy=policy,
                    cb=queue.put,
                )
        shown = 0
        while limit is None or shown < limit:
            msg = await queue.get()
            subject = unprefixed(msg.subject, prefix)
            if only and not subject.startswith(only):
                continue
            _show(msg.data, subject, as_json)
            shown += 1
    finally:
        await nc.close()


def _show(raw: bytes, subject: str, as_json: bool) -> None:
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError:
        envelope = {"invalid": raw.decode("utf-8", errors="replace")}
    if as_json:
        print(orjson.dumps(envelope).decode(), flush=True)
        return
    aggregate = envelope.get("aggregate") or {}
    line = Text()
    line.append(f"{str(envelope.get('occurred_at', ''))[:23]} ", style="dim")
    line.append(subject, style=f"bold {_COLOURS.get(subject.split('.')[0], 'white')}")
    line.append(f"  {aggregate.get('type')}:{aggregate.get('id')}")
    line.append(f"  corr={str(envelope.get('correlation_id'))[:8]}", style="dim")
    data = orjson.dumps(envelope.get("data", envelope)).decode()
    line.append(f"  {data[:160]}{'…' if len(data) > 160 else ''}")
    console.print(line, soft_wrap=True)


@app.command("dead-letters")
def dead_letters(
    as_json: JsonOpt = False,
    replay: Annotated[bool, typer.Option("--replay", help="Re-deliver them.")] = False,
    letter_id: Annotated[
        uuid.UUID | None, typer.Option("--id", help="Only this dead letter.")
    ] = None,
    service: Annotated[str | None, typer.Option(help="Only this service's.")] = None,
    status: Annotated[str, typer.Option(help="pending, replayed or discarded.")] = "pending",
    limit: Annotated[int, typer.Option(help="List at most this many.")] = 100,
) -> None:
    """List messages consumers gave up on (oldest first); with --replay, re-deliver them."""
    asyncio.run(_dead_letters(as_json, replay, letter_id, service, status, limit))


async def _dead_letters(
    as_json: bool,
    replay: bool,
    letter_id: uuid.UUID | None,
    service: str | None,
    status: str,
    limit: int,
) -> None:
    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=1, application_name="scout-cli")
    try:
        if replay:
            await _replay(engine, settings.nats_url, letter_id, service, as_json)
            return
        letters = await list_dead_letters(engine, status=status, service=service, limit=limit)
        if letter_id:
            letters = [d for d in letters if d.id == letter_id]
    finally:
        await engine.dispose()
    if as_json:
        print_json([d.as_dict() for d in letters])
        return
    print_table(
        f"Dead letters ({status})",
        ["id", "created", "service", "consumer", "subject", "deliveries", "error"],
        [
            (d.id, f"{d.created_at:%Y-%m-%d %H:%M:%S}", d.service, d.consumer, d.subject,
             d.deliveries, d.error.strip().splitlines()[-1][:80] if d.error.strip() else "")
            for d in letters
        ],
    )  # fmt: skip


async def _replay(engine, nats_url: str, letter_id, service, as_json: bool) -> None:
    nc = await connect(nats_url, name="scout-events-replay")
    try:
        js = nc.jetstream()
        if letter_id:
            if not await replay_dead_letter(engine, js, letter_id):
                err_console.print(f"[red]✗[/] no pending dead letter {letter_id}")
                raise typer.Exit(1)
            count = 1
        else:
            count = await replay_dead_letters(engine, js, service=service)
    finally:
        await nc.close()
    if as_json:
        print_json({"replayed": count})
    else:
        console.print(f"[green]✓[/] replayed {count} dead letter(s)")
