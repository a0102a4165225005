#!/usr/bin/env bash
# Runs oplog's benchmarks against the MariaDB and Kafka of scripts/services.sh and
# keeps their output. BENCHMARKS.md explains each figure and records the full run.
#
# Usage: scripts/bench.sh [small|ingest|query|full] [OUT_DIR]
#
#   small   every harness at a tiny size, in a debug build, in under a minute; the
#           test command runs it so the harness cannot rot. Its figures mean nothing.
#   ingest  in a release build: the ingest ceiling, and the consumer against batch
#           size, writers and secondary indexes; about 8 minutes.
#   query   in a release build: the query mix over 1 million and 10 million events,
#           each right after loading and again after a restart with an empty buffer
#           pool. It takes about 20 minutes (30 when the 10-million-event database
#           must be loaded) and 30 GB of disk.
#   full    ingest, then query: the recorded run.
#
# The release runs set MariaDB's buffer pool to 8 GiB and its redo log to 1 GiB.
#
# OUT_DIR defaults to target/bench/<UTC time>; each harness writes one file there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

size=${1:-small}
out=${2:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)}
case $size in
  small) profile=debug ;;
  ingest | query | full) profile=release ;;
  *)
    echo "usage: $0 [small|ingest|query|full] [OUT_DIR]" >&2
    exit 2
    ;;
esac

bash scripts/services.sh start >&2
eval "$(bash scripts/services.sh env)"
mkdir -p "$out"

# The server settings of the recorded run. scripts/services.sh starts MariaDB with a
# 1 GiB buffer pool and a 96 MiB redo log, which suit the tests. A 96 MiB redo log
# makes bulk writes wait for checkpoints.
server_settings() {
  printf '%s\n' \
    'SET GLOBAL innodb_buffer_pool_size = 8 << 30;' \
    'SET GLOBAL innodb_log_file_size = 1 << 30;' |
    bash scripts/services.sh sql
}

# Restarts the servers with an empty buffer pool, so that the query benchmark's first
# pass reads from disk what a long-running server would not have cached.
restart_cold() {
  echo 'SET GLOBAL innodb_buffer_pool_dump_at_shutdown = OFF;' | bash scripts/services.sh sql
  bash scripts/services.sh stop >&2
  bash scripts/services.sh start >&2
  server_settings
}

if [[ $profile == release ]]; then
  cargo build --release --bins --examples
  server_settings
else
  cargo build --bins --examples
fi
bin=${CARGO_TARGET_DIR:-target}/$profile/examples

# Runs one harness, printing its figures and appending them to OUT_DIR/NAME.txt.
run() {
  local name=$1
  shift
  echo "==> $name $*" | tee -a "$out/$name.txt" >&2
  "$bin/$name" "$@" 2>&1 | grep -v ' INFO ' | tee -a "$out/$name.txt"
  return "${PIPESTATUS[0]}"
}

if [[ $size == small ]]; then
  run ingest_ceiling 2000
  run pipeline_bench --events 2000 --queries 50 --batch 500
  run query_bench 5000 30 10
  exit 0
fi

if [[ $size == ingest || $size == full ]]; then
  run ingest_ceiling 100000
  for batch in 250 500 1000 2000 4000 8000; do
    run pipeline_bench --events 100000 --queries 0 --batch "$batch"
  done
  for writers in 1 2 3 4; do
    run pipeline_bench --events 100000 --queries 0 --writers "$writers"
  done
  for indexes in 10 9 7 5 3 1 0; do
    run pipeline_bench --events 100000 --queries 0 --indexes "$indexes"
  done
  run pipeline_bench --events 100000 --queries 2000
fi
if [[ $size == query || $size == full ]]; then
  # Both databases are kept and reused by later runs; loading 10 million events
  # takes about 6 minutes.
  OPLOG_BENCH_DB=oplog_query_1m run query_bench 1000000 30 500
  restart_cold
  OPLOG_BENCH_DB=oplog_query_1m run query_bench 1000000 30 500
  OPLOG_BENCH_DB=oplog_query_10m run query_bench 10000000 30 500
  restart_cold
  OPLOG_BENCH_DB=oplog_query_10m run query_bench 10000000 30 500
fi
echo "results: $out" >&2
