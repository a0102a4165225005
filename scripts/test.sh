#!/usr/bin/env bash
# Runs every check the repository has: rustfmt, clippy with warnings as
# errors, and the whole test suite against the real MariaDB and Kafka that
# scripts/services.sh starts. Extra arguments go to `cargo test`, e.g.
# `scripts/test.sh -- --nocapture`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
  printf '\n==> %s\n' "$*" >&2
}

step "scripts/services.sh start"
bash scripts/services.sh start
eval "$(bash scripts/services.sh env)"
echo "OPLOG_TEST_MYSQL_URL=$OPLOG_TEST_MYSQL_URL" >&2
echo "OPLOG_TEST_KAFKA_BROKERS=$OPLOG_TEST_KAFKA_BROKERS" >&2

step "drop the test databases of earlier runs"
# Each integration test creates a database oplog_t_<pid>_<n>, named after its
# test process, and leaves it for inspection after a failure. Only databases
# whose process has exited are dropped, so a concurrent run keeps its own.
mysql_client=(mariadb --protocol=tcp -h 127.0.0.1 -P 33306 -u oplog -poplog -N -B)
"${mysql_client[@]}" -e "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'oplog\\_t\\_%'" |
  while read -r database; do
    pid=${database#oplog_t_}
    pid=${pid%%_*}
    if [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null; then
      "${mysql_client[@]}" -e "DROP DATABASE \`$database\`"
    fi
  done

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace $*"
# cargo prints one summary per test binary, and the last one (the doc tests) runs
# no test; the total at the end counts every binary.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

if [[ $status -eq 0 ]]; then
  # A run at a small size keeps the benchmark harness working; its figures are not
  # checked (BENCHMARKS.md has the real runs). cargo test built it already.
  step "scripts/bench.sh small"
  bash scripts/bench.sh small || status=$?
fi

awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
