-- The SQLite store of the embedded mode: the MySQL schema without partitions.
-- Times are INTEGER microseconds since the Unix epoch, UTC. Text compares with SQLite's
-- default BINARY collation, the same order as utf8mb4_bin in MySQL.

CREATE TABLE IF NOT EXISTS oplog_events (
    occurred_at INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    service TEXT NOT NULL,
    tenant TEXT NOT NULL DEFAULT '',
    actor_id TEXT NOT NULL,
    actor_type INTEGER NOT NULL,
    impersonator_id TEXT NOT NULL DEFAULT '',
    impersonator_type INTEGER NOT NULL DEFAULT 0,
    action TEXT NOT NULL,
    action_type INTEGER NOT NULL,
    target_type TEXT NOT NULL DEFAULT '',
    target_id TEXT NOT NULL DEFAULT '',
    result INTEGER NOT NULL,
    error_code TEXT NOT NULL DEFAULT '',
    trace_id TEXT NOT NULL DEFAULT '',
    span_id TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    schema_version INTEGER NOT NULL DEFAULT 1,
    content_hash BLOB NOT NULL,
    PRIMARY KEY (occurred_at, event_id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS idx_events_event_id ON oplog_events (event_id);
CREATE INDEX IF NOT EXISTS idx_events_actor ON oplog_events (actor_id, occurred_at, event_id);
CREATE INDEX IF NOT EXISTS idx_events_action_type ON oplog_events (action_type, occurred_at, event_id);
CREATE INDEX IF NOT EXISTS idx_events_action ON oplog_events (action, occurred_at, event_id);
CREATE INDEX IF NOT EXISTS idx_events_service ON oplog_events (service, occurred_at, event_id);
CREATE INDEX IF NOT EXISTS idx_events_target ON oplog_events (target_type, target_id, occurred_at, event_id);
CREATE INDEX IF NOT EXISTS idx_events_result ON oplog_events (result, occurred_at, event_id);
CREATE INDEX IF NOT EXISTS idx_events_trace ON oplog_events (trace_id, occurred_at, event_id);
CREATE INDEX IF NOT EXISTS idx_events_tenant ON oplog_events (tenant, occurred_at, event_id);

CREATE TABLE IF NOT EXISTS oplog_event_details (
    occurred_at INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    actor_display_name TEXT NOT NULL DEFAULT '',
    actor_ip TEXT NOT NULL DEFAULT '',
    actor_user_agent TEXT NOT NULL DEFAULT '',
    target_name TEXT NOT NULL DEFAULT '',
    outcome_message TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '',
    changes TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (occurred_at, event_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS oplog_consumer_offsets (
    consumer_group TEXT NOT NULL,
    topic TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    next_offset INTEGER,
    owner TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (consumer_group, topic, kafka_partition)
) WITHOUT ROWID;
