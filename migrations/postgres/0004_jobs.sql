-- The durable job queue (keel_store::jobs, run by keel-jobs). A job is enqueued in the
-- transaction of the change that needs it, so it exists exactly when that change committed.
-- States: ready (waiting for run_at) -> running (leased to a worker until lease_until) ->
-- done | ready again (retried with backoff) | parked (its last attempt failed; kept with the
-- error) ; cancelled by staff. A running job whose lease ran out is ready again (or parked
-- when it has no attempt left): a killed worker's jobs are picked up once.
CREATE TABLE jobs (
    id            BIGSERIAL PRIMARY KEY,
    queue         TEXT NOT NULL DEFAULT 'default',
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,                    -- JSON
    -- At most one job per key, ever (done jobs keep their key until the cleanup removes
    -- them): a schedule slot, a dunning step, an event delivery.
    unique_key    TEXT,
    priority      INTEGER NOT NULL DEFAULT 0,       -- higher runs first
    state         TEXT NOT NULL DEFAULT 'ready'
                  CHECK (state IN ('ready', 'running', 'done', 'parked', 'cancelled')),
    run_at        TIMESTAMPTZ NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts  INTEGER NOT NULL DEFAULT 10 CHECK (max_attempts >= 1),
    lease_owner   TEXT,
    lease_until   TIMESTAMPTZ,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    CHECK ((state = 'running') = (lease_owner IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key);
-- What a worker claims next: ready jobs of a queue, highest priority, then oldest run_at.
CREATE INDEX jobs_ready_idx ON jobs (queue, priority DESC, run_at, id) WHERE state = 'ready';
-- Leases to expire.
CREATE INDEX jobs_running_idx ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_state_idx ON jobs (state, id);

-- Schedules (keel-jobs `Scheduler`): one row per schedule named in keel.toml. A firing is a
-- job with the unique key `schedule:{name}:{slot}`; `next_slot` moves past `now` when a slot
-- fires, so slots missed while nothing ran fire once, not once each.
CREATE TABLE job_schedules (
    name           TEXT PRIMARY KEY,
    cron           TEXT NOT NULL,
    timezone       TEXT NOT NULL,
    next_slot      TIMESTAMPTZ NOT NULL,
    last_slot      TIMESTAMPTZ,
    last_job_id    BIGINT REFERENCES jobs (id) ON DELETE SET NULL,
    last_fired_at  TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL
);
