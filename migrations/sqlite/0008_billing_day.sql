-- The billing day a service keeps beside its anniversary (keel_domain::billing::Anniversary).
-- Paired with migrations/postgres/0008_billing_day.sql.
--
-- billing_day: the day of the month the service's due dates fall on, or the month's last day
-- when the month is shorter; the anniversary itself is on it (clamped). NULL: due dates keep
-- the anniversary's own day. An order sets it when it aligns the service to the client's
-- billing day (keel_domain::proration::align_to_billing_day).
ALTER TABLE services ADD COLUMN billing_day INTEGER CHECK (billing_day IS NULL OR billing_day BETWEEN 1 AND 31);

-- Existing rows. Before this column a service aligned to billing day 29, 30 or 31 in a shorter
-- month kept only its clamped anniversary (billing day 31 aligned in February: 2027-02-28) and
-- renewed on that clamped day for good (03-28, 04-28, …). Such a service is recognised as a
-- recurring service whose client has a billing day (its own, else its group's) later than the
-- anniversary's day while the anniversary is its month's last day; it gets that billing day.
-- (A service that merely started on a month's last day before its client chose a later billing
-- day looks the same and is treated the same: it renews on the billing day from now on.)
UPDATE services
SET billing_day = terms.billing_day
FROM (
    SELECT c.id AS client_id, COALESCE(c.billing_day, g.billing_day) AS billing_day
    FROM clients c LEFT JOIN client_groups g ON g.id = c.group_id
) AS terms
WHERE terms.client_id = services.client_id
  AND terms.billing_day IS NOT NULL
  AND services.cycle NOT IN ('one_time', 'free')
  AND services.anniversary = date(services.anniversary, 'start of month', '+1 month', '-1 day')
  AND CAST(strftime('%d', services.anniversary) AS INTEGER) < terms.billing_day;

-- Their next due date moves to the billing day of the same month (the month's last day when
-- it is shorter), where the billing run now starts that period. Periods already invoiced keep
-- the dates they were invoiced with, so the days from the end of the last one to the billing
-- day (at most three) go unbilled, once, and a downgrade inside the period in flight finds no
-- invoice line with the period's new dates to take its credit from.
UPDATE services
SET next_due_date = date(
    next_due_date, 'start of month',
    '+' || (MIN(billing_day, CAST(strftime('%d', date(next_due_date, 'start of month', '+1 month', '-1 day')) AS INTEGER)) - 1) || ' days'
)
WHERE billing_day IS NOT NULL AND next_due_date IS NOT NULL;
