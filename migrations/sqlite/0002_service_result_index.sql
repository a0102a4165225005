-- Service and outcome are often asked for together; this index answers both at once.
CREATE INDEX IF NOT EXISTS idx_events_service_result
    ON oplog_events (service, result, occurred_at, event_id);
