-- job_schedules.name was created `TEXT PRIMARY KEY` (0004). PostgreSQL makes a primary key
-- NOT NULL; SQLite does not (only an INTEGER PRIMARY KEY is), so SQLite took a schedule
-- without a name. Found by store/tests/migrations.rs, which compares the two dialects.
-- Applied migrations are never edited (sqlx refuses a changed checksum), so the table is
-- rebuilt, SQLite's way to add NOT NULL. Paired with migrations/postgres/0009, which has
-- nothing to change. No table refers to job_schedules. A row without a name could not be
-- any configured schedule, so it is not copied.
CREATE TABLE job_schedules_new (
    name           TEXT NOT NULL PRIMARY KEY,
    cron           TEXT NOT NULL,
    timezone       TEXT NOT NULL,
    next_slot      TEXT NOT NULL,
    last_slot      TEXT,
    last_job_id    BIGINT REFERENCES jobs (id) ON DELETE SET NULL,
    last_fired_at  TEXT,
    updated_at     TEXT NOT NULL
);
INSERT INTO job_schedules_new (name, cron, timezone, next_slot, last_slot, last_job_id, last_fired_at, updated_at)
SELECT name, cron, timezone, next_slot, last_slot, last_job_id, last_fired_at, updated_at
FROM job_schedules WHERE name IS NOT NULL;
DROP TABLE job_schedules;
ALTER TABLE job_schedules_new RENAME TO job_schedules;
