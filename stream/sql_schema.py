"""The online store's tables on SQL, one schema for SQLite and PostgreSQL: each lead's state,
the applied event ids, the events held for a lead not yet known, the hand-off outbox and its
delivered ledger, the rescores queued for the score history, the store's own settings, and the
count of held events dropped per lead that has not come."""

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS ls_leads (lead_id TEXT PRIMARY KEY, state TEXT NOT NULL, "
    "updated_us BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ls_events (event_id TEXT PRIMARY KEY, lead_id TEXT NOT NULL, "
    "applied_us BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ls_held (event_id TEXT PRIMARY KEY, lead_id TEXT NOT NULL, "
    "body TEXT NOT NULL, n BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ls_held_lead ON ls_held (lead_id)",
    "CREATE TABLE IF NOT EXISTS ls_outbox (event_id TEXT PRIMARY KEY, batch TEXT NOT NULL, "
    "body TEXT NOT NULL, n BIGINT NOT NULL, due_us BIGINT NOT NULL, owner TEXT)",
    "CREATE INDEX IF NOT EXISTS ls_outbox_due ON ls_outbox (due_us)",
    "CREATE TABLE IF NOT EXISTS ls_delivered (event_id TEXT PRIMARY KEY, "
    "delivered_us BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ls_history (as_of_us BIGINT NOT NULL, lead_id TEXT NOT NULL, "
    "row TEXT NOT NULL, PRIMARY KEY (as_of_us, lead_id))",
    "CREATE TABLE IF NOT EXISTS ls_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # events held too long for a lead that had not come: how many were dropped, per lead
    "CREATE TABLE IF NOT EXISTS ls_dropped (lead_id TEXT PRIMARY KEY, n BIGINT NOT NULL)",
]
