-- Paired with migrations/sqlite/0009_job_schedules_name_not_null.sql, which makes SQLite's
-- job_schedules.name NOT NULL as PostgreSQL's primary key already is. Nothing to change
-- here; the statement below only states it (and fails should it ever not hold).
ALTER TABLE job_schedules ALTER COLUMN name SET NOT NULL;
