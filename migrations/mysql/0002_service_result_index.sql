-- Service and outcome are often asked for together ("what failed in service X this
-- week"). With only the separate indexes, the server reads every row of the service
-- or of the outcome in the range to check the other column, which for a rare pair
-- means thousands of rows per page. MariaDB uses no index condition pushdown on
-- partitioned tables, so a column appended to either index would not help.
ALTER TABLE oplog_events
    ADD INDEX idx_events_service_result (service, result, occurred_at, event_id);
