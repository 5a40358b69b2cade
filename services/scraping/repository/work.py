"""The statements of one search work item (``JobService.handle_search``), on the driver path.

A page costs three statements: the job read before the provider call, the job lock, and one
statement for everything the page implies.
"""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import DriverQuery
from shared.events.outbox import NOTIFY_CHANNEL

from .jobs import STORE_CTES

# A work item's read before the provider call: what the query needs and the chain's state.
_WORK_LOOKUP = DriverQuery(
    sa.text(
        "SELECT status, platform, search_type, region, search_params -> 'chains' -> :chain"
        " FROM scraping_jobs WHERE id = :job_id"
    ).bindparams(sa.bindparam("job_id", type_=sa.Uuid), sa.bindparam("chain", type_=sa.Text))
)
# The job row locked, on its own: a statement's snapshot is taken before it waits for a lock,
# so the step below must start after the lock is held to see the batches and keys the last
# holder committed (its next batch position and stored count depend on them).
_WORK_LOCK = DriverQuery(
    sa.text(
        "SELECT status, search_params -> 'chains', processed_results, target_results, user_id,"
        " campaign_id, reservation_id FROM scraping_jobs WHERE id = :job_id FOR UPDATE"
    ).bindparams(sa.bindparam("job_id", type_=sa.Uuid))
)
# One work item's page in one statement, under the job lock: the store (as ``_STORE``), the
# chain's next state (``added`` picks the fresh or the barren variant the caller computed),
# the job's counters, progress and (target reached, or this chain ended the last one)
# completion, and the outbox rows that follow: the chain's next work item, the progress event
# or the terminal event, each only when it applies, with their NOTIFY. ``progress`` rounds
# half up to 2 places, as ``numeric(5,2)`` does.
_WORK_STEP = DriverQuery(
    sa.text(
        f"""
WITH{STORE_CTES},
  step AS MATERIALIZED (
    SELECT counts.added, counts.stored, s.state, s.done,
           counts.stored >= :target OR (CAST(:others_done AS boolean) AND s.done) AS complete,
           least(100, round(counts.stored * 100.0 / :target, 2)) AS progress
    FROM counts CROSS JOIN LATERAL (
      SELECT CASE WHEN counts.added > 0 THEN CAST(:state_fresh AS jsonb)
                  ELSE CAST(:state_barren AS jsonb) END AS state,
             CASE WHEN counts.added > 0 THEN CAST(:done_fresh AS boolean)
                  ELSE CAST(:done_barren AS boolean) END AS done
    ) AS s
  ),
  job AS (
    UPDATE scraping_jobs AS j SET
      search_params = jsonb_set(j.search_params, ARRAY['chains', CAST(:chain AS text)], step.state),
      processed_runs = j.processed_runs + 1,
      processed_results = step.stored,
      progress = CASE WHEN step.complete THEN 100 ELSE step.progress END,
      status = CASE WHEN step.complete THEN 'completed' ELSE 'processing' END,
      started_at = CASE WHEN j.status = 'pending' THEN CAST(:now AS timestamptz)
                        ELSE j.started_at END,
      completed_at = CASE WHEN step.complete THEN CAST(:now AS timestamptz)
                          ELSE j.completed_at END,
      error = CASE WHEN step.complete THEN NULL ELSE j.error END,
      updated_at = now()
    FROM step
    WHERE j.id = :job_id
  ),
  outbox AS (
    INSERT INTO events (id, service, type, version, aggregate_type, aggregate_id, user_id,
                        correlation_id, causation_id, data)
    SELECT e.id, :service, e.type, 1, 'scraping_job', CAST(:job_id AS text),
           CAST(:user_id AS uuid), coalesce(CAST(:correlation_id AS text), CAST(e.id AS text)),
           CAST(:causation_id AS text), e.data
    FROM step CROSS JOIN LATERAL (VALUES
      (1, CAST(:work_id AS uuid), CAST(:work_type AS text), CAST(:work_data AS jsonb),
       NOT step.complete AND NOT step.done),
      (2, CAST(:progress_id AS uuid), CAST(:progress_type AS text),
       CAST(:progress_data AS jsonb) || jsonb_build_object(
         'processed_results', step.stored, 'progress', CAST(step.progress AS float8)),
       NOT step.complete AND step.added > 0),
      (3, CAST(:ended_id AS uuid), CAST(:ended_type AS text),
       CAST(:ended_data AS jsonb) || jsonb_build_object('processed_results', step.stored),
       step.complete)
    ) AS e(ord, id, type, data, wanted)
    WHERE e.wanted
    ORDER BY e.ord
    RETURNING id
  )
SELECT step.added, step.stored, step.complete,
       (SELECT count(pg_notify('{NOTIFY_CHANNEL}', :service)) FROM outbox) AS events
FROM step
"""
    ).bindparams(
        sa.bindparam("job_id", type_=sa.Uuid),
        sa.bindparam("keys", type_=ARRAY(sa.String)),
        sa.bindparam("limit", type_=sa.Integer),
        sa.bindparam("target", type_=sa.Integer),
    )
)


class WorkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lookup(self, job_id: uuid.UUID, chain: str) -> tuple | None:
        """``(status, platform, search_type, region, chain state)`` of a job, no lock."""
        return await _WORK_LOOKUP.first(self.session, {"job_id": job_id, "chain": chain})

    async def lock(self, job_id: uuid.UUID) -> tuple | None:
        """The job row under ``FOR UPDATE``, as ``(status, chains, processed_results,
        target_results, user_id, campaign_id, reservation_id)``."""
        return await _WORK_LOCK.first(self.session, {"job_id": job_id})

    async def step(self, params: dict[str, Any]) -> tuple[int, int, bool]:
        """Run :data:`_WORK_STEP` (call under :meth:`lock`): ``(added, stored, complete)``."""
        added, stored, complete, _ = await _WORK_STEP.first(self.session, params)
        return int(added), int(stored), bool(complete)
