#!/usr/bin/env bash
# Installs, starts and stops the MariaDB and Kafka servers that oplog's
# integration tests connect to. Both run as private processes bound to
# 127.0.0.1 (never as the system's service), with data, logs, pid files and
# downloaded Kafka jars under $OPLOG_SERVICES_HOME, so a second `start` finds
# them running or restarts them from the same data.
#
# Usage: scripts/services.sh start|stop|status|env|reset|sql
#        scripts/services.sh kafka-run MAIN_CLASS [ARGS...]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# CI may run with a stripped environment, and Maven needs HOME for ~/.m2 too.
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME
SERVICES_HOME=${OPLOG_SERVICES_HOME:-$HOME/.cache/oplog-services}
LOG_DIR=$SERVICES_HOME/logs

BIND_HOST=127.0.0.1

MYSQL_PORT=33306
MYSQL_DATABASE=oplog
MYSQL_USER=oplog
MYSQL_PASSWORD=oplog
MYSQL_URL=mysql://$MYSQL_USER:$MYSQL_PASSWORD@$BIND_HOST:$MYSQL_PORT/$MYSQL_DATABASE
MYSQL_DATADIR=$SERVICES_HOME/mysql/data
MYSQL_SOCKET=$SERVICES_HOME/mysql.sock
MYSQL_PIDFILE=$SERVICES_HOME/mysql.pid
MYSQL_LOG=$LOG_DIR/mariadb.log
MYSQL_START_TIMEOUT_SECONDS=60
MYSQL_STOP_TIMEOUT_SECONDS=60

KAFKA_PORT=39092
KAFKA_CONTROLLER_PORT=39093
KAFKA_BROKERS=$BIND_HOST:$KAFKA_PORT
KAFKA_POM=$SCRIPT_DIR/kafka/pom.xml
KAFKA_LOG4J_CONFIG=$SCRIPT_DIR/kafka/log4j2.properties
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' "$KAFKA_POM")
# Libraries and data sit in a per-version directory, so changing the version
# in the pom starts from freshly formatted storage instead of upgrading it.
KAFKA_DIR=$SERVICES_HOME/kafka-$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_DIR/libs
KAFKA_LIBS_STAMP=$KAFKA_DIR/libs.pom.sha256
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_CONFIG=$KAFKA_DIR/server.properties
KAFKA_PIDFILE=$SERVICES_HOME/kafka.pid
KAFKA_OUT=$LOG_DIR/kafka.out
KAFKA_START_TIMEOUT_SECONDS=90
KAFKA_STOP_TIMEOUT_SECONDS=60

# mariadbd lives in /usr/sbin, which is missing from PATH in some non-login
# shells.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

APT_UPDATED=0

log() {
  printf 'services: %s\n' "$*" >&2
}

die() {
  log "error: $*"
  exit 1
}

usage() {
  cat >&2 <<EOF
Usage: $0 start|stop|status|env|reset|sql
       $0 kafka-run MAIN_CLASS [ARGS...]

  start      install what is missing, then start MariaDB on $BIND_HOST:$MYSQL_PORT
             and Kafka $KAFKA_VERSION on $KAFKA_BROKERS (no-op for a server already running)
  stop       stop both servers, keeping their data
  status     report which servers run; exits 3 unless both run and respond
  env        print export lines for OPLOG_TEST_MYSQL_URL and OPLOG_TEST_KAFKA_BROKERS
  reset      stop both servers and delete their data (keeps downloaded jars)
  sql        run the SQL on standard input as MariaDB's admin account, e.g.
             echo 'SET GLOBAL innodb_buffer_pool_size = 8 << 30' | $0 sql
  kafka-run  run a Java main class from the Kafka jars, e.g.
             org.apache.kafka.tools.TopicCommand --bootstrap-server $KAFKA_BROKERS --list

State directory: $SERVICES_HOME (set OPLOG_SERVICES_HOME to move it)
EOF
}

# Print the last lines of each log file given, for start-up failures.
show_log_tail() {
  local file
  for file in "$@"; do
    if [[ -s $file ]]; then
      log "last lines of $file:"
      tail -n 40 "$file" >&2
    fi
  done
}

apt_install() {
  [[ $EUID -eq 0 ]] || die "missing packages $*: install them with apt-get (needs root)"
  local apt_log=$LOG_DIR/apt-get.log
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update (log: $apt_log)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get update >>"$apt_log" 2>&1; then
      show_log_tail "$apt_log"
      die "apt-get update failed"
    fi
    APT_UPDATED=1
  fi
  log "apt-get install $* (log: $apt_log)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$apt_log" 2>&1; then
    show_log_tail "$apt_log"
    return 1
  fi
}

# Install mariadb-server without letting its maintainer scripts start the
# system-wide server on port 3306, which the tests never use. invoke-rc.d
# skips every service start while /usr/sbin/policy-rc.d exits with 101.
install_mariadb_package() {
  local policy=/usr/sbin/policy-rc.d
  if [[ -e $policy ]]; then
    apt_install mariadb-server || die "installing mariadb-server failed"
    return
  fi
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  local installed=1
  apt_install mariadb-server || installed=0
  rm -f "$policy"
  trap - EXIT
  [[ $installed -eq 1 ]] || die "installing mariadb-server failed"
}

ensure_mariadb_installed() {
  if ! find_command mariadbd mysqld >/dev/null || ! find_command mariadb-install-db mysql_install_db >/dev/null; then
    install_mariadb_package
  fi
  find_command mariadbd mysqld >/dev/null || die "mariadbd not found after installing mariadb-server"
}

ensure_java_and_maven() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}" || die "installing ${missing[*]} failed"
  fi
}

# Print the path of the first command found among the names given.
find_command() {
  local name
  for name in "$@"; do
    if command -v "$name"; then
      return 0
    fi
  done
  return 1
}

# Succeed when the pid file names a live process whose command line contains
# the pattern, so a pid reused by an unrelated process is not mistaken for ours.
pid_alive() {
  local pidfile=$1 pattern=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

read_pid() {
  cat "$1" 2>/dev/null || true
}

port_open() {
  (exec 3<>"/dev/tcp/$BIND_HOST/$1") 2>/dev/null
}

require_port_free() {
  local port=$1 service=$2
  if port_open "$port"; then
    log "port $BIND_HOST:$port is already in use by another process:"
    ss -ltnp "sport = :$port" >&2 2>/dev/null || true
    die "cannot start $service: stop the process above, or run 'OPLOG_SERVICES_HOME=<its state dir> $0 stop' if it is another checkout's"
  fi
}

# Run the command given in a new session, detached from this script's
# terminal, pipes and lock file, so the server outlives the script and does
# not hold the lock. The pid written is the server's own, because bash
# replaces itself with the command.
launch_detached() {
  local pidfile=$1 logfile=$2
  shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$ and $@ expand in the child shell.
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
}

# Send SIGTERM, wait up to the timeout for a clean shutdown, then SIGKILL.
stop_process() {
  local name=$1 pidfile=$2 pattern=$3 timeout=$4 pid waited=0
  if ! pid_alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    log "$name: not running"
    return 0
  fi
  pid=$(<"$pidfile")
  log "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [[ $waited -ge $((timeout * 10)) ]]; then
      log "$name: still running after ${timeout}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$pidfile"
  log "$name: stopped"
}

# ---------------------------------------------------------------- MariaDB --

MYSQL_PATTERN='mariadbd\|mysqld'

# Name of the MariaDB account that mariadb-install-db creates for the OS user
# running this script. It authenticates through unix_socket, so it needs no
# password. NOTE: only runs as root have been tried, not as another OS user.
mysql_admin_user() {
  id -un
}

# Run the SQL on stdin as the MariaDB admin account.
mysql_admin_sql() {
  local client
  client=$(find_command mariadb mysql) || die "mariadb client not found"
  "$client" --no-defaults --protocol=socket --socket="$MYSQL_SOCKET" \
    --user="$(mysql_admin_user)" --connect-timeout=5
}

mysql_ping() {
  local admin
  admin=$(find_command mariadb-admin mysqladmin) || return 1
  "$admin" --no-defaults --protocol=socket --socket="$MYSQL_SOCKET" \
    --user="$(mysql_admin_user)" --connect-timeout=2 ping >/dev/null 2>&1
}

mysql_running() {
  pid_alive "$MYSQL_PIDFILE" "$MYSQL_PATTERN"
}

# Create the system tables in a scratch directory first, so an interrupted
# run never leaves a half-initialized datadir that looks usable.
init_mysql_datadir() {
  local install_db scratch=$MYSQL_DATADIR.init
  install_db=$(find_command mariadb-install-db mysql_install_db) || die "mariadb-install-db not found"
  local args=(--no-defaults "--datadir=$scratch" --skip-test-db --skip-name-resolve
    --auth-root-authentication-method=socket "--auth-root-socket-user=$(mysql_admin_user)")
  if [[ $EUID -eq 0 ]]; then
    args+=(--user=root)
  fi
  log "mariadb: creating datadir $MYSQL_DATADIR"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  if ! "$install_db" "${args[@]}" >"$LOG_DIR/mariadb-install-db.log" 2>&1; then
    show_log_tail "$LOG_DIR/mariadb-install-db.log"
    die "mariadb-install-db failed"
  fi
  mv "$scratch" "$MYSQL_DATADIR"
}

wait_for_mysql() {
  local deadline=$((SECONDS + MYSQL_START_TIMEOUT_SECONDS)) pid
  until mysql_ping; do
    pid=$(read_pid "$MYSQL_PIDFILE")
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      show_log_tail "$MYSQL_LOG"
      die "mariadbd (pid $pid) exited during start-up"
    fi
    if [[ $SECONDS -ge $deadline ]]; then
      show_log_tail "$MYSQL_LOG"
      die "mariadbd did not accept connections on $MYSQL_SOCKET within ${MYSQL_START_TIMEOUT_SECONDS}s"
    fi
    sleep 0.2
  done
}

# Create the database and the test account, again on every start so a changed
# password or grant is put back. Tests create and drop their own databases
# named oplog_*, hence the grant on `oplog\_%` (\_ is a literal underscore).
setup_mysql_schema() {
  mysql_admin_sql <<SQL
CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
ALTER USER '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
ALTER USER '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL PRIVILEGES ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'127.0.0.1', '$MYSQL_USER'@'localhost';
GRANT ALL PRIVILEGES ON \`${MYSQL_DATABASE}\\_%\`.* TO '$MYSQL_USER'@'127.0.0.1', '$MYSQL_USER'@'localhost';
SQL
}

start_mysql() {
  if mysql_running; then
    wait_for_mysql
    setup_mysql_schema
    log "mariadb: already running (pid $(read_pid "$MYSQL_PIDFILE")) on $BIND_HOST:$MYSQL_PORT"
    return 0
  fi

  ensure_mariadb_installed
  require_port_free "$MYSQL_PORT" mariadb
  # A Unix socket path longer than sun_path (108 bytes on Linux) fails at bind().
  [[ ${#MYSQL_SOCKET} -lt 108 ]] || die "socket path $MYSQL_SOCKET is too long (must be under 108 bytes). Set a shorter OPLOG_SERVICES_HOME"
  if [[ ! -d $MYSQL_DATADIR/mysql ]]; then
    init_mysql_datadir
  fi

  local server
  server=$(find_command mariadbd mysqld)
  # --no-defaults keeps /etc/mysql/my.cnf (the system service's port, socket
  # and datadir) out. Without that file the server default is latin1, so the
  # charset Debian's packaged config sets is repeated here. sql_mode and
  # InnoDB durability settings stay at the server defaults, as in production.
  local args=(--no-defaults
    "--datadir=$MYSQL_DATADIR"
    "--bind-address=$BIND_HOST"
    "--port=$MYSQL_PORT"
    "--socket=$MYSQL_SOCKET"
    --skip-name-resolve
    --max-connections=500
    --innodb-buffer-pool-size=1G
    --character-set-server=utf8mb4
    --collation-server=utf8mb4_general_ci)
  if [[ $EUID -eq 0 ]]; then
    args+=(--user=root)
  fi

  log "mariadb: starting on $BIND_HOST:$MYSQL_PORT (log: $MYSQL_LOG)"
  launch_detached "$MYSQL_PIDFILE" "$MYSQL_LOG" "$server" "${args[@]}"
  wait_for_mysql
  setup_mysql_schema
  log "mariadb: ready (pid $(read_pid "$MYSQL_PIDFILE"))"
}

stop_mysql() {
  stop_process mariadb "$MYSQL_PIDFILE" "$MYSQL_PATTERN" "$MYSQL_STOP_TIMEOUT_SECONDS"
}

# ------------------------------------------------------------------ Kafka --

KAFKA_PATTERN='kafka\.Kafka'

kafka_running() {
  pid_alive "$KAFKA_PIDFILE" "$KAFKA_PATTERN"
}

# Succeed when the running broker uses this checkout's Kafka version.
kafka_running_this_version() {
  pid_alive "$KAFKA_PIDFILE" "$KAFKA_LIBS/"
}

kafka_libs_current() {
  [[ -d $KAFKA_LIBS && -s $KAFKA_LIBS_STAMP ]] || return 1
  [[ $(<"$KAFKA_LIBS_STAMP") == "$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)" ]]
}

# Copy the broker's jars from Maven Central (through ~/.m2) into a scratch
# directory and rename it into place, so an interrupted download is never
# taken for a complete one. The stamp ties the directory to the pom's content.
fetch_kafka_libs() {
  local scratch=$KAFKA_DIR/libs.download
  ensure_java_and_maven
  log "kafka: downloading Kafka $KAFKA_VERSION jars with Maven (log: $LOG_DIR/kafka-download.log)"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
    -DincludeScope=runtime "-DoutputDirectory=$scratch" >"$LOG_DIR/kafka-download.log" 2>&1; then
    show_log_tail "$LOG_DIR/kafka-download.log"
    die "downloading the Kafka jars with Maven failed"
  fi
  [[ -f $scratch/kafka_2.13-$KAFKA_VERSION.jar ]] || die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing from $scratch"
  rm -rf "$KAFKA_LIBS" "$KAFKA_LIBS_STAMP"
  mv "$scratch" "$KAFKA_LIBS"
  sha256sum "$KAFKA_POM" | cut -d' ' -f1 >"$KAFKA_LIBS_STAMP"
}

# Run a main class from the Kafka jars. Without a log4j2 config, log4j
# prints only errors, to the console, which suits command-line tools.
kafka_java() {
  java -Xmx512m -cp "$KAFKA_LIBS/*" "$@"
}

write_kafka_config() {
  cat >"$KAFKA_CONFIG" <<EOF
# Written by scripts/services.sh on every start, so edits here are lost.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$BIND_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$BIND_HOST:$KAFKA_PORT,CONTROLLER://$BIND_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$BIND_HOST:$KAFKA_PORT,CONTROLLER://$BIND_HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

# Format the KRaft metadata log once, as a single-voter (standalone)
# controller quorum. Formatting goes to a scratch directory renamed into
# place, so an interrupted format is redone rather than half-used.
format_kafka_storage() {
  local scratch=$KAFKA_DATA.format scratch_config=$KAFKA_DIR/server.format.properties cluster_id
  log "kafka: formatting storage in $KAFKA_DATA"
  rm -rf "$scratch"
  sed "s|^log.dirs=.*|log.dirs=$scratch|" "$KAFKA_CONFIG" >"$scratch_config"
  cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$KAFKA_OUT") ||
    die "kafka.tools.StorageTool random-uuid failed (see $KAFKA_OUT)"
  if ! kafka_java kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$scratch_config" >>"$KAFKA_OUT" 2>&1; then
    show_log_tail "$KAFKA_OUT"
    die "formatting Kafka storage failed"
  fi
  rm -f "$scratch_config"
  mv "$scratch" "$KAFKA_DATA"
}

# Send an ApiVersions v0 request over bash's /dev/tcp and succeed when a
# response with the same correlation id (7) comes back. Kafka 4.3 enables
# request processing on the broker listener only once the broker is unfenced
# (see "Enabling request processing" in kafka.log), so this checks readiness
# without starting a JVM. Request bytes: length 14, api_key 18, api_version 0,
# correlation_id 7, client_id "oplg".
kafka_api_versions_ok() {
  local reply
  # shellcheck disable=SC2016 # $1 expands in the child shell.
  reply=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1"
    printf "\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x07\x00\x04oplg" >&3
    head -c 8 <&3 | od -An -tx1
  ' bash "$BIND_HOST/$KAFKA_PORT" 2>/dev/null) || return 1
  reply=${reply//[[:space:]]/}
  [[ ${#reply} -eq 16 && ${reply:8:8} == 00000007 ]]
}

wait_for_kafka() {
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT_SECONDS)) pid
  until kafka_api_versions_ok; do
    pid=$(read_pid "$KAFKA_PIDFILE")
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      show_log_tail "$KAFKA_OUT" "$LOG_DIR/kafka.log"
      die "the Kafka broker (pid $pid) exited during start-up"
    fi
    if [[ $SECONDS -ge $deadline ]]; then
      show_log_tail "$KAFKA_OUT" "$LOG_DIR/kafka.log"
      die "the Kafka broker did not respond to an ApiVersions request on $KAFKA_BROKERS within ${KAFKA_START_TIMEOUT_SECONDS}s"
    fi
    sleep 0.5
  done
}

# List topics through the Admin client: a metadata request that fails unless
# the broker and its controller both work.
check_kafka_metadata() {
  if ! timeout 60 java -Xmx256m -cp "$KAFKA_LIBS/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$KAFKA_BROKERS" --list >/dev/null 2>>"$KAFKA_OUT"; then
    show_log_tail "$KAFKA_OUT" "$LOG_DIR/kafka.log"
    die "the Kafka broker accepts connections but listing topics failed"
  fi
}

start_kafka() {
  if ! kafka_libs_current; then
    if kafka_running_this_version; then
      stop_kafka
    fi
    mkdir -p "$KAFKA_DIR"
    fetch_kafka_libs
  fi

  if kafka_running; then
    if kafka_running_this_version; then
      wait_for_kafka
      log "kafka: already running (pid $(read_pid "$KAFKA_PIDFILE")) on $KAFKA_BROKERS"
      return 0
    fi
    log "kafka: the running broker is not Kafka $KAFKA_VERSION; restarting it"
    stop_kafka
  fi

  ensure_java_and_maven
  require_port_free "$KAFKA_PORT" kafka
  require_port_free "$KAFKA_CONTROLLER_PORT" kafka
  write_kafka_config
  if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
    format_kafka_storage
  fi

  local jvm_args=(-Xms256m -Xmx1g
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -Djava.awt.headless=true
    "-Dkafka.logs.dir=$LOG_DIR"
    "-Dlog4j2.configurationFile=$KAFKA_LOG4J_CONFIG")
  log "kafka: starting Kafka $KAFKA_VERSION on $KAFKA_BROKERS (log: $LOG_DIR/kafka.log)"
  launch_detached "$KAFKA_PIDFILE" "$KAFKA_OUT" \
    java "${jvm_args[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONFIG"
  wait_for_kafka
  check_kafka_metadata
  log "kafka: ready (pid $(read_pid "$KAFKA_PIDFILE"))"
}

stop_kafka() {
  stop_process kafka "$KAFKA_PIDFILE" "$KAFKA_PATTERN" "$KAFKA_STOP_TIMEOUT_SECONDS"
}

# --------------------------------------------------------------- commands --

# Serialize start, stop and reset, so two test runs starting at once do not
# both launch a server on the same port.
take_lock() {
  mkdir -p "$SERVICES_HOME" "$LOG_DIR"
  exec 9>"$SERVICES_HOME/lock"
  flock -w 600 9 || die "timed out after 600s waiting for another services.sh to release $SERVICES_HOME/lock"
}

cmd_start() {
  [[ -n $KAFKA_VERSION ]] || die "no <kafka.version> found in $KAFKA_POM"
  take_lock
  start_mysql
  start_kafka
}

cmd_stop() {
  take_lock
  stop_kafka
  stop_mysql
}

cmd_reset() {
  take_lock
  stop_kafka
  stop_mysql
  log "deleting $MYSQL_DATADIR and $KAFKA_DATA"
  rm -rf "$MYSQL_DATADIR" "$KAFKA_DATA"
}

cmd_status() {
  local ok=0
  if mysql_running; then
    if mysql_ping; then
      echo "mariadb: running, pid $(read_pid "$MYSQL_PIDFILE"), $MYSQL_URL"
    else
      echo "mariadb: process $(read_pid "$MYSQL_PIDFILE") is running but does not accept connections"
      ok=3
    fi
  else
    echo "mariadb: stopped"
    ok=3
  fi
  if kafka_running; then
    if kafka_api_versions_ok; then
      echo "kafka: running, pid $(read_pid "$KAFKA_PIDFILE"), $KAFKA_BROKERS"
    else
      echo "kafka: process $(read_pid "$KAFKA_PIDFILE") is running but does not answer on $KAFKA_BROKERS"
      ok=3
    fi
    if ! kafka_running_this_version; then
      echo "kafka: the running broker is not Kafka $KAFKA_VERSION; 'start' restarts it"
    fi
  else
    echo "kafka: stopped"
    ok=3
  fi
  echo "state: $SERVICES_HOME"
  return "$ok"
}

cmd_env() {
  echo "export OPLOG_TEST_MYSQL_URL=$MYSQL_URL"
  echo "export OPLOG_TEST_KAFKA_BROKERS=$KAFKA_BROKERS"
}

cmd_sql() {
  mysql_running || die "MariaDB is not running: run '$0 start' first"
  mysql_admin_sql
}

cmd_kafka_run() {
  [[ $# -ge 1 ]] || die "kafka-run needs a main class"
  kafka_libs_current || die "Kafka jars are not downloaded yet: run '$0 start' first"
  kafka_java "$@"
}

main() {
  local command=${1:-}
  [[ $# -gt 0 ]] && shift
  case $command in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    reset) cmd_reset ;;
    sql) cmd_sql ;;
    kafka-run) cmd_kafka_run "$@" ;;
    -h | --help | help)
      usage
      ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"
