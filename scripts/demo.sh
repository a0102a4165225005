#!/usr/bin/env bash
# Runs oplog's embedded default end to end: builds the binary, starts `oplog`
# (all-in-one on a temporary SQLite file, no Kafka or MySQL), imports the sample
# audit log in scripts/demo/, prints a few queries over it, and stops the server.
# Ports: OPLOG_DEMO_GRPC_PORT (default 50051) and OPLOG_DEMO_HTTP_PORT (9464).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
grpc_port=${OPLOG_DEMO_GRPC_PORT:-50051}
http_port=${OPLOG_DEMO_HTTP_PORT:-9464}
endpoint="http://127.0.0.1:$grpc_port"

echo "==> cargo build --bin oplog" >&2
cargo build --quiet --bin oplog
# cargo builds into CARGO_TARGET_DIR when it is set.
oplog=${CARGO_TARGET_DIR:-target}/debug/oplog

workdir=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

echo "==> oplog (all-in-one, SQLite at $workdir/oplog.db)" >&2
OPLOG_SQLITE_PATH="$workdir/oplog.db" \
  OPLOG_GRPC_LISTEN="127.0.0.1:$grpc_port" \
  OPLOG_HTTP_LISTEN="127.0.0.1:$http_port" \
  "$oplog" >"$workdir/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "oplog exited during start-up; its log:" >&2
    cat "$workdir/server.log" >&2
    exit 1
  fi
  if curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null; then
    break
  fi
  sleep 0.1
done

echo "==> oplog import scripts/demo/sample-audit.jsonl" >&2
"$oplog" import --endpoint "$endpoint" scripts/demo/sample-audit.jsonl

echo
echo "==> the 10 newest events"
"$oplog" query --endpoint "$endpoint" list --limit 10
echo
echo "==> what was denied or failed"
"$oplog" query --endpoint "$endpoint" list --outcome denied
"$oplog" query --endpoint "$endpoint" list --outcome failure
echo
echo "==> updates by actor u-1001 (Alice), as JSON"
"$oplog" query --endpoint "$endpoint" --output json list --actor u-1001 --action-type update --limit 3
