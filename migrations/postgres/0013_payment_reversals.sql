-- A gateway payment the provider later reports refunded or disputed is reversed: a journal
-- entry mirrors the payment's own (`reversal_entry_id`), the invoice is reopened, and the
-- payment row says when. A payment is reversed at most once: the reversal entry is keyed
-- by the payment's entry (`ledger_entries_reverses_key`), and the row is only marked while
-- `reversed_at` is empty.
ALTER TABLE payments ADD COLUMN reversed_at TIMESTAMPTZ;
ALTER TABLE payments ADD COLUMN reversal_entry_id BIGINT REFERENCES ledger_entries (id);
