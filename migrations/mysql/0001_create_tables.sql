-- The three tables of the MySQL store. Runs unchanged on MySQL 8.0 and MariaDB 10.11.
--
-- Times are DATETIME(6) holding UTC: unlike TIMESTAMP, DATETIME is never converted by
-- the session time zone. Ids use utf8mb4_bin so they compare byte for byte and sort in
-- code point order, the same order as SQLite's default collation.
--
-- The event tables are RANGE COLUMNS partitioned by day on occurred_at. This migration
-- creates only the catch-all partition; `oplog migrate` and `oplog partitions` split
-- day partitions off it. MySQL requires every unique key of a partitioned table to
-- include the partition column, so the primary key is (occurred_at, event_id).

CREATE TABLE IF NOT EXISTS oplog_events (
    occurred_at DATETIME(6) NOT NULL,
    event_id VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    service VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    tenant VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    actor_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
    actor_type SMALLINT NOT NULL,
    impersonator_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    impersonator_type SMALLINT NOT NULL DEFAULT 0,
    action VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    action_type SMALLINT NOT NULL,
    target_type VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    target_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    result SMALLINT NOT NULL,
    error_code VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    trace_id CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    span_id CHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    request_id VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    schema_version SMALLINT NOT NULL DEFAULT 1,
    -- First 16 bytes of the SHA-256 of the event's content, which tells a redelivery
    -- (same hash) from a different event reusing the id and time.
    content_hash BINARY(16) NOT NULL,
    PRIMARY KEY (occurred_at, event_id),
    -- One index per documented filter, each ending in (occurred_at, event_id) so that
    -- the time range and the keyset order (newest first, event_id as tie-break) are
    -- read from the index. InnoDB appends those primary key columns anyway, but
    -- MariaDB 10.11 sorts the rows unless the index names them.
    KEY idx_events_event_id (event_id),
    KEY idx_events_actor (actor_id, occurred_at, event_id),
    KEY idx_events_action_type (action_type, occurred_at, event_id),
    KEY idx_events_action (action, occurred_at, event_id),
    KEY idx_events_service (service, occurred_at, event_id),
    KEY idx_events_target (target_type, target_id, occurred_at, event_id),
    KEY idx_events_result (result, occurred_at, event_id),
    KEY idx_events_trace (trace_id, occurred_at, event_id),
    KEY idx_events_tenant (tenant, occurred_at, event_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
PARTITION BY RANGE COLUMNS (occurred_at) (
    PARTITION p_future VALUES LESS THAN (MAXVALUE)
);

CREATE TABLE IF NOT EXISTS oplog_event_details (
    occurred_at DATETIME(6) NOT NULL,
    event_id VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    actor_display_name VARCHAR(255) NOT NULL DEFAULT '',
    actor_ip VARCHAR(45) CHARACTER SET ascii NOT NULL DEFAULT '',
    actor_user_agent VARCHAR(1024) NOT NULL DEFAULT '',
    target_name VARCHAR(255) NOT NULL DEFAULT '',
    outcome_message TEXT NOT NULL,
    -- JSON text kept byte for byte; MySQL's JSON type would reorder keys.
    metadata MEDIUMTEXT NOT NULL,
    changes MEDIUMTEXT NOT NULL,
    PRIMARY KEY (occurred_at, event_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci
PARTITION BY RANGE COLUMNS (occurred_at) (
    PARTITION p_future VALUES LESS THAN (MAXVALUE)
);

CREATE TABLE IF NOT EXISTS oplog_consumer_offsets (
    consumer_group VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
    topic VARCHAR(249) COLLATE utf8mb4_bin NOT NULL,
    kafka_partition INT NOT NULL,
    -- Offset of the next message to consume, as Kafka commits it; NULL while the
    -- partition is claimed but nothing of it is stored yet.
    next_offset BIGINT NULL,
    -- Token of the consumer that owns the partition. An offset update must name it,
    -- so a consumer that lost the partition cannot move its offset any more.
    owner VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (consumer_group, topic, kafka_partition)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
