-- The provider's own time of a message's latest delivery receipt (keel:plugin 0.2's
-- status-update.at), beside delivery_at (when Keel recorded it). Receipts that both carry
-- one are ordered by it, the delivery rank breaking ties (a sent, delivered and read in the
-- same second); a receipt without one (an older plugin's, or the send's own "accepted")
-- is ordered by rank alone. keel_store::notifications::record_delivery.
ALTER TABLE notifications ADD COLUMN delivery_reported_at TEXT;
