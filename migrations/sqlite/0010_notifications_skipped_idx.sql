-- The daily cleanup deletes skipped notifications older than [notifications]
-- keep_skipped_days (keel_store::notifications::delete_skipped). This index holds only the
-- skipped rows, by age, so the cleanup never reads the sent ones, which are kept for good.
CREATE INDEX notifications_skipped_idx ON notifications (created_at, id) WHERE state = 'skipped';
