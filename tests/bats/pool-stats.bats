#!/usr/bin/env bats
# dbreg pool-stats: the configured pool of each connection beside what its server reports
# now in pg_stat_activity (SPEC §7, §12).  Sessions are held open on a target database of
# this file's own (idle, active, idle in transaction, blocked on a lock) so there is
# something to count; the per-server sums against max_connections minus the reserved
# slots, an over-committed server, the pg_monitor-only server-wide count, an unreachable
# target beside measured ones, --watch on a terminal, and the exact JSON shape.  No secret
# in any output.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

CONN_KEYS='["backends","connection_name","error","oldest_xact_seconds","pool_max_size","pool_min_size","pool_recycle_seconds","pool_timeout_seconds","saturation"]'
BACKEND_KEYS='["active","idle","idle_in_transaction","total","waiting"]'
SERVER_KEYS='["backends","host","max_connections","overcommitted","port","reserved_connections","sum_pool_max_size"]'

# psql_super_on DB [PSQL-ARG...]: psql_super on database DB instead of postgres.
psql_super_on() {
	local db=$1
	shift
	_psql -X -qAt -v ON_ERROR_STOP=1 -d "${PGSANDBOX_SUPERUSER_URL%/*}/$db" "$@"
}

# reg NAME DB USER PASSWORD|- [REGISTER-OPTION...]: a connection to the sandbox.
reg() {
	local name=$1 db=$2 user=$3 pw=$4
	shift 4
	if [ "$pw" = - ]; then
		"$DBREG" register "$name" --host 127.0.0.1 --port "$PGSANDBOX_PORT" --database "$db" \
			--user "$user" --no-password "$@" >/dev/null
	else
		printf '%s\n' "$pw" | "$DBREG" register "$name" --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
			--database "$db" --user "$user" --password-stdin "$@" >/dev/null
	fi
}

setup_file() {
	fresh_registry
	have_sandbox || return 0
	make_key
	"$DBREG" init >/dev/null
	local suffix admin_pw
	suffix=$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
	admin_pw=$(sandbox_admin_password)
	# The database whose pool is measured: nobody else uses it, not even dbreg's own
	# registry connection.
	export POOL_DB=pooltgt_$suffix
	psql_super -v "db=$POOL_DB" -v "owner=$DBREG_ADMIN_ROLE" <<<'CREATE DATABASE :"db" OWNER :"owner";'
	psql_super_on "$POOL_DB" <<-EOF
		SET ROLE $DBREG_ADMIN_ROLE;
		CREATE TABLE hold_t (x int);
	EOF
	# A role with pg_monitor, for the server-wide breakdown.
	MON_ROLE=pool_mon_$suffix
	MON_PW=mon-$suffix-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
	export MON_ROLE MON_PW
	psql_super -v "role=$MON_ROLE" -v "pw=$MON_PW" <<<'CREATE ROLE :"role" LOGIN PASSWORD :'"'pw'"' IN ROLE pg_monitor;'

	reg pool-main "$POOL_DB" "$DBREG_ADMIN_ROLE" "$admin_pw" \
		--pool-min 2 --pool-max 10 --pool-timeout 15 --pool-recycle 600
	reg pool-zero "$POOL_DB" "$DBREG_ADMIN_ROLE" "$admin_pw" --pool-min 0 --pool-max 0
	reg pool-mon "$POOL_DB" "$MON_ROLE" "$MON_PW" --pool-min 0 --pool-max 1
	reg pool-asleep "$POOL_DB" "$DBREG_ADMIN_ROLE" "$admin_pw" --inactive
	reg pool-retired "$POOL_DB" "$DBREG_ADMIN_ROLE" "$admin_pw"
	"$DBREG" deregister pool-retired >/dev/null
}

teardown_file() {
	drop_registry
	have_sandbox || return 0
	psql_super -v "db=$POOL_DB" <<<'DROP DATABASE IF EXISTS :"db" WITH (FORCE);'
	psql_super -v "role=$MON_ROLE" <<<'DROP ROLE IF EXISTS :"role";'
}

setup() {
	require_sandbox
	command -v jq >/dev/null || skip "jq is not installed"
	unset DB_ENCRYPTION_OLD_KEYS DB_ENCRYPTION_KEY_FILE
	ADMIN_PW=$(sandbox_admin_password)
	HOLD_PIDS=$BATS_TEST_TMPDIR/hold.pids
	EXTRA_ROWS=()
}

teardown() {
	release_sessions
	local name
	for name in "${EXTRA_ROWS[@]}"; do
		"$DBREG" deregister "$name" --purge >/dev/null 2>&1 || true
	done
	drop_scratch_registry
}

# ---- sessions held open -------------------------------------------------------------------

# hold NAME SQL: a psql session as dbreg_admin on POOL_DB, application_name hold-NAME,
# running SQL from its own session (so that teardown can end it and its `\!` child).
hold() {
	local name=$1 sql=$2
	printf '%s\n' "$sql" >"$BATS_TEST_TMPDIR/hold-$name.sql"
	PGAPPNAME=hold-$name setsid "${PGSANDBOX_BINDIR:-/usr/bin}/psql" -X -q \
		-d "postgresql://$DBREG_ADMIN_ROLE@127.0.0.1:$PGSANDBOX_PORT/$POOL_DB" \
		-f "$BATS_TEST_TMPDIR/hold-$name.sql" </dev/null >/dev/null 2>&1 3>&- &
	echo $! >>"$HOLD_PIDS"
}

# wait_for SQL-CONDITION: poll pg_stat_activity of POOL_DB until CONDITION (over the
# aggregate `count(*) FILTER ...`, etc.) is true, for up to 15 seconds.
wait_for() {
	local i
	for ((i = 0; i < 150; i++)); do
		[ "$(psql_super -v "db=$POOL_DB" <<<"SELECT $1 FROM pg_stat_activity WHERE datname = :'db';")" = t ] &&
			return 0
		sleep 0.1
	done
	psql_super <<<"SELECT application_name, state, wait_event_type FROM pg_stat_activity
		WHERE application_name LIKE 'hold-%';" >&2
	fail "the held sessions never reached: $1"
}

# hold_sessions: six sessions as dbreg_admin on POOL_DB: two idle, one active, one idle in
# a transaction, one holding a lock in a transaction, one waiting for that lock.
hold_sessions() {
	hold idle-1 '\! sleep 120'
	hold idle-2 '\! sleep 120'
	hold active 'SELECT pg_sleep(120);'
	hold iit "BEGIN;
SELECT txid_current();
\\! sleep 120"
	hold lock-a "BEGIN;
LOCK TABLE hold_t IN ACCESS EXCLUSIVE MODE;
\\! sleep 120"
	wait_for "bool_or(application_name = 'hold-lock-a' AND state = 'idle in transaction')"
	hold lock-b "BEGIN;
LOCK TABLE hold_t IN ACCESS EXCLUSIVE MODE;
COMMIT;"
	wait_for "count(*) FILTER (WHERE application_name IN ('hold-idle-1', 'hold-idle-2') AND state = 'idle') = 2
		AND bool_or(application_name = 'hold-active' AND state = 'active')
		AND bool_or(application_name = 'hold-iit' AND state = 'idle in transaction')
		AND bool_or(application_name = 'hold-lock-b' AND wait_event_type = 'Lock')"
	# Let the oldest transaction grow older than a rounding error.
	sleep 1
}

# release_sessions: end the held sessions (and their `sleep` children) and their backends.
release_sessions() {
	local pid
	if [ -f "${HOLD_PIDS-}" ]; then
		while read -r pid; do
			kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		done <"$HOLD_PIDS"
		while read -r pid; do
			wait "$pid" 2>/dev/null || true
		done <"$HOLD_PIDS"
		rm -f "$HOLD_PIDS"
	fi
	if [ -n "${POOL_DB-}" ]; then
		psql_super -v "db=$POOL_DB" <<-'EOF' >/dev/null || true
			SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = :'db' AND application_name LIKE 'hold-%';
		EOF
		local i
		for ((i = 0; i < 100; i++)); do
			[ "$(psql_super -v "db=$POOL_DB" <<<"SELECT count(*) FROM pg_stat_activity
				WHERE datname = :'db' AND application_name LIKE 'hold-%';")" = 0 ] && break
			sleep 0.1
		done
	fi
}

# ---- helpers -----------------------------------------------------------------------------

# stats [ARG...]: pool-stats -o json with stdout and stderr apart; the JSON must parse.
stats() {
	run --separate-stderr "$DBREG" pool-stats -o json "$@"
	if [ -n "$output" ]; then
		jq -e . >/dev/null <<<"$output" || fail "not JSON: $output"
	fi
}

# conn NAME FILTER: FILTER applied to NAME's entry of the last stats output, compact.
conn() {
	jq -c --arg n "$1" ".connections[] | select(.connection_name == \$n) | $2" <<<"$output"
}

# server_limits: "MAX RESERVED" as the sandbox reports them (reserved_connections from 16).
server_limits() {
	psql_super <<-'EOF'
		SELECT current_setting('max_connections') || ' ' ||
		       (current_setting('superuser_reserved_connections')::int
		        + CASE WHEN current_setting('server_version_num')::int >= 160000
		               THEN current_setting('reserved_connections')::int ELSE 0 END);
	EOF
}

no_secrets() {
	assert_no_secret "$ADMIN_PW"
	assert_no_secret "$MON_PW"
	[ -z "${DB_ENCRYPTION_KEY-}" ] || assert_no_secret "$DB_ENCRYPTION_KEY"
	assert_no_secret "dbreg:v"
}

# ---- json shape ---------------------------------------------------------------------------

@test "pool-stats: --tag selects, every tag given must be there" {
	reg pool-tagged "$POOL_DB" "$DBREG_ADMIN_ROLE" "$(sandbox_admin_password)" --tag pools --tag eu
	stats --tag pools
	assert_success
	assert_equal "$(jq -c '[.connections[].connection_name]' <<<"$output")" '["pool-tagged"]'
	stats --tag pools --tag us
	assert_equal "$(jq -c '[.connections[].connection_name]' <<<"$output")" '[]'
	"$DBREG" deregister pool-tagged --purge >/dev/null
}

@test "pool-stats: --timeout bounds a server that never answers; --jobs 1 still asks them all" {
	local portfile=$BATS_TEST_TMPDIR/silent.port pid t0 ms
	# A local listener that accepts and never says a word (fd 3 is bats' own: closed).
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write("%d\n" % s.getsockname()[1])
time.sleep(120)' "$portfile" 3>&- &
	pid=$!
	for _ in $(seq 50); do [ -s "$portfile" ] && break; sleep 0.1; done
	"$DBREG" register pool-silent --host 127.0.0.1 --port "$(cat "$portfile")" --database d --user u \
		--no-password >/dev/null
	t0=${EPOCHREALTIME/./}
	stats pool-silent pool-main --timeout 1 --jobs 1
	ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	kill "$pid" 2>/dev/null || true
	"$DBREG" deregister pool-silent --purge >/dev/null
	assert_failure 1  # one server could not be measured
	assert_equal "$(jq -c '[.connections[].connection_name]' <<<"$output")" '["pool-main","pool-silent"]'
	[ "$(conn pool-silent .error)" != null ] || fail "no error for the silent server: $output"
	assert_equal "$(conn pool-main .error)" null
	# Well inside the default deadline of 5 s.
	[ "$ms" -lt 4500 ] || fail "took $ms ms with --timeout 1"
	run --separate-stderr "$DBREG" pool-stats --timeout 0
	assert_failure 2
	run --separate-stderr "$DBREG" pool-stats --jobs many
	assert_failure 2
}

@test "pool-stats: json has exactly SPEC's keys, with the right types" {
	stats pool-main
	assert_success
	assert_equal "$(jq -c keys <<<"$output")" '["connections","servers"]'
	assert_equal "$(jq -c '.connections | length' <<<"$output")" 1
	assert_equal "$(jq -c '.connections[0] | keys' <<<"$output")" "$CONN_KEYS"
	assert_equal "$(jq -c '.connections[0].backends | keys' <<<"$output")" "$BACKEND_KEYS"
	assert_equal "$(jq -c '.servers | length' <<<"$output")" 1
	assert_equal "$(jq -c '.servers[0] | keys' <<<"$output")" "$SERVER_KEYS"
	local json=$output check
	# shellcheck disable=SC2016
	for check in \
		'.connections[0] | [.pool_min_size, .pool_max_size, .pool_timeout_seconds, .pool_recycle_seconds] == [2, 10, 15, 600]' \
		'.connections[0].connection_name == "pool-main"' \
		'.connections[0].backends | to_entries | all(.value | type == "number")' \
		'.connections[0].saturation | type == "number"' \
		'.connections[0].error == null' \
		'.servers[0].host == "127.0.0.1"' \
		'.servers[0].port == ($port | tonumber)' \
		'.servers[0] | [.max_connections, .reserved_connections, .sum_pool_max_size] | all(type == "number")' \
		'.servers[0].overcommitted | type == "boolean"'; do
		run jq --arg port "$PGSANDBOX_PORT" "$check" <<<"$json"
		[ "$output" = true ] || fail "not true: $check"$'\n'"$json"
	done
}

@test "pool-stats: an idle pool is all zeros, no open transaction, saturation 0" {
	stats pool-main
	assert_success
	assert_equal "$(conn pool-main .backends)" \
		'{"total":0,"active":0,"idle":0,"idle_in_transaction":0,"waiting":0}'
	assert_equal "$(conn pool-main .oldest_xact_seconds)" null
	assert_equal "$(conn pool-main .saturation)" 0
	assert_equal "$stderr" ""
}

# ---- counting held sessions ------------------------------------------------------------------

@test "pool-stats: counts the sessions of that database and user by state" {
	hold_sessions
	stats pool-main
	assert_success
	# Two idle; active: pg_sleep and the one waiting for the lock; idle in transaction:
	# the plain one and the lock holder; waiting: one.
	assert_equal "$(conn pool-main .backends)" \
		'{"total":6,"active":2,"idle":2,"idle_in_transaction":2,"waiting":1}'
	assert_equal "$(conn pool-main .saturation)" 0.6
	run jq -e '.connections[0].oldest_xact_seconds | type == "number" and . >= 1 and . < 120' <<<"$output"
	assert_success
	no_secrets
}

@test "pool-stats: another user's pool on the same database counts none of them" {
	hold_sessions
	stats pool-mon
	assert_success
	assert_equal "$(conn pool-mon '.backends.total')" 0
	assert_equal "$(conn pool-mon '.error')" null
	# pool_max_size 1, nothing in use.
	assert_equal "$(conn pool-mon '.saturation')" 0
}

@test "pool-stats: the server-wide count needs pg_monitor, else it is null" {
	hold_sessions
	stats pool-main
	assert_success
	assert_equal "$(jq -c '.servers[0].backends' <<<"$output")" null
	# pool-mon's user has pg_monitor: the server's every client backend, ours included.
	stats pool-main pool-mon
	assert_success
	run jq -e '.servers | length == 1 and (.[0].backends | type == "number" and . >= 7)' <<<"$output"
	assert_success
	stats pool-mon
	run jq -e '.servers[0].backends >= 7' <<<"$output"
	assert_success
}

@test "pool-stats: the table shows each pool and each server" {
	hold_sessions
	run --separate-stderr "$DBREG" pool-stats pool-main
	assert_success
	assert_line --index 0 --regexp '^NAME +MIN +MAX +'
	assert_line --regexp '^pool-main +2 +10 +6 +2 +2 +2 +1 +'
	assert_line --regexp '^SERVER +'
	assert_line --regexp "^127\\.0\\.0\\.1:$PGSANDBOX_PORT +"
	# No pg_monitor: the server-wide count is marked unavailable, not shown as 0.
	assert_line --regexp "^127\\.0\\.0\\.1:$PGSANDBOX_PORT .*unavailable"
	run --separate-stderr "$DBREG" pool-stats pool-main -o table
	assert_success
	assert_line --regexp '^pool-main +2 +10 +6 +'
	no_secrets
}

# ---- dbreg's own sessions ---------------------------------------------------------------------

@test "pool-stats: dbreg's registry session is not counted in the registry database's pool" {
	reg pool-registry "$DBREG_TEST_REGISTRY" "$DBREG_ADMIN_ROLE" "$ADMIN_PW"
	EXTRA_ROWS+=(pool-registry)
	stats pool-registry
	assert_success
	if [ "$(conn pool-registry .backends.total)" != 0 ]; then
		fail "unexpected: [ \"\$(conn pool-registry .backends.total)\" != 0 ]"
	fi
	assert_equal "$(conn pool-registry .backends)" \
		'{"total":0,"active":0,"idle":0,"idle_in_transaction":0,"waiting":0}'
}

@test "pool-stats: two connections to the same database and user do not count each other's probe" {
	reg pool-twin "$POOL_DB" "$DBREG_ADMIN_ROLE" "$ADMIN_PW"
	EXTRA_ROWS+=(pool-twin)
	local _
	for _ in 1 2 3; do
		stats pool-main pool-twin
		assert_success
		if [ "$(conn pool-main .backends.total) $(conn pool-twin .backends.total)" != "0 0" ]; then
			fail "unexpected: [ \"\$(conn pool-main .backends.total) \$(conn pool-twin .backends.total)\" != \"0 0\" ]"
		fi
	done
}

# ---- selection -------------------------------------------------------------------------------

@test "pool-stats: without NAME, every active live connection" {
	stats
	assert_success
	run jq -c '[.connections[].connection_name] | sort' <<<"$output"
	assert_output '["pool-main","pool-mon","pool-zero"]'
}

@test "pool-stats: NAMEs select those connections only" {
	stats pool-zero pool-main
	assert_success
	run jq -c '[.connections[].connection_name] | sort' <<<"$output"
	assert_output '["pool-main","pool-zero"]'
	stats pool-main pool-main
	assert_success
	run jq -c '[.connections[].connection_name]' <<<"$output"
	assert_output '["pool-main"]'
}

@test "pool-stats: an unknown NAME is exit 1, naming it" {
	run --separate-stderr "$DBREG" pool-stats pool-main no-such-pool
	assert_failure 1
	assert_output ""
	[[ $stderr == *no-such-pool* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" pool-stats pool-retired
	assert_failure 1
	[[ $stderr == *pool-retired* ]] || fail "stderr: $stderr"
}

@test "pool-stats: an invalid NAME is a usage error" {
	run --separate-stderr "$DBREG" pool-stats "x'; DROP TABLE admin.database_connections; --"
	assert_failure 2
	assert_output ""
	[[ $stderr == *"rule pattern"* ]] || fail "stderr: $stderr"
	assert_equal "$(registry_count "connection_name = 'pool-main'")" 1
}

# ---- saturation --------------------------------------------------------------------------------

@test "pool-stats: saturation is null when pool_max_size is 0" {
	stats pool-zero
	assert_success
	assert_equal "$(conn pool-zero .pool_max_size)" 0
	assert_equal "$(conn pool-zero .saturation)" null
	assert_equal "$(conn pool-zero .error)" null
	assert_equal "$(conn pool-zero '.backends.total | type')" '"number"'
}

# ---- servers -----------------------------------------------------------------------------------

@test "pool-stats: entries on the same host and port make one server, pools summed" {
	local max reserved
	read -r max reserved < <(server_limits)
	stats pool-main pool-zero pool-mon
	assert_success
	assert_equal "$(jq -c '.servers | length' <<<"$output")" 1
	run jq -c '.servers[0] | [.max_connections, .reserved_connections, .sum_pool_max_size, .overcommitted]' <<<"$output"
	assert_output "[$max,$reserved,11,false]"
}

@test "pool-stats: a server is over-committed when the pools exceed max_connections minus reserved" {
	local max reserved cap
	read -r max reserved < <(server_limits)
	cap=$((max - reserved))
	[ "$cap" -gt 10 ] || skip "max_connections $max is too small for this test"
	# pool-main has 10: exactly at the limit is fine, one more is over.
	reg pool-edge "$POOL_DB" "$DBREG_ADMIN_ROLE" "$ADMIN_PW" --pool-min 0 --pool-max $((cap - 10))
	reg pool-over "$POOL_DB" "$DBREG_ADMIN_ROLE" "$ADMIN_PW" --pool-min 0 --pool-max $((cap - 9))
	reg pool-big "$POOL_DB" "$DBREG_ADMIN_ROLE" "$ADMIN_PW" --pool-min 5 --pool-max $((max * 2))
	EXTRA_ROWS+=(pool-edge pool-over pool-big)
	stats pool-main pool-edge
	assert_success
	run jq -c '.servers[0] | [.sum_pool_max_size, .overcommitted]' <<<"$output"
	assert_output "[$cap,false]"
	stats pool-main pool-over
	assert_success
	run jq -c '.servers[0] | [.sum_pool_max_size, .overcommitted]' <<<"$output"
	assert_output "[$((cap + 1)),true]"
	# A single pool bigger than the whole server.
	stats pool-big
	assert_success
	run jq -c '.servers[0] | [.max_connections, .sum_pool_max_size, .overcommitted]' <<<"$output"
	assert_output "[$max,$((max * 2)),true]"
	# Over-committed is a finding in the report, not a failure of the command.
	run --separate-stderr "$DBREG" pool-stats pool-big
	assert_success
	assert_line --regexp "^127\\.0\\.0\\.1:$PGSANDBOX_PORT +$max +$reserved +$((max * 2)) +YES"
}

# ---- unreachable and failing targets -------------------------------------------------------

@test "pool-stats: an unreachable target is reported in its row, the others still measured" {
	"$DBREG" register pool-far --host 127.0.0.1 --port 1 --database nowhere --user nobody \
		--pool-max 7 --no-password >/dev/null
	EXTRA_ROWS+=(pool-far)
	stats pool-main pool-far
	assert_failure 1
	[ -n "$(conn pool-far .error | jq -r .)" ] || fail "no error for pool-far: $output"
	[[ $(conn pool-far .error) == *"127.0.0.1"* ]] || fail "error: $(conn pool-far .error)"
	assert_equal "$(conn pool-far .backends)" \
		'{"total":null,"active":null,"idle":null,"idle_in_transaction":null,"waiting":null}'
	assert_equal "$(conn pool-far '[.oldest_xact_seconds, .saturation]')" '[null,null]'
	# Its configuration is still reported.
	assert_equal "$(conn pool-far '[.pool_max_size, .pool_min_size]')" '[7,5]'
	# The reachable one is measured.
	assert_equal "$(conn pool-main .error)" null
	assert_equal "$(conn pool-main '.backends.total | type')" '"number"'
	# Two servers; the unreachable one's limits are unknown.
	assert_equal "$(jq '.servers | length' <<<"$output")" 2
	run jq -c '.servers[] | select(.port == 1) | [.host, .max_connections, .reserved_connections,
		.sum_pool_max_size, .overcommitted, .backends]' <<<"$output"
	assert_output '["127.0.0.1",null,null,7,null,null]'
}

@test "pool-stats: the table shows the unreachable target's error, exit 1" {
	"$DBREG" register pool-far --host 127.0.0.1 --port 1 --database nowhere --user nobody \
		--no-password >/dev/null
	EXTRA_ROWS+=(pool-far)
	run --separate-stderr "$DBREG" pool-stats pool-far pool-main
	assert_failure 1
	assert_line --regexp '^pool-far +.*refused'
	assert_line --regexp '^pool-main +2 +10 +[0-9]+ '
}

@test "pool-stats: a refused password is reported in the row, without the password" {
	local wrong
	wrong=wrong-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
	reg pool-badpw "$POOL_DB" "$DBREG_ADMIN_ROLE" "$wrong"
	EXTRA_ROWS+=(pool-badpw)
	stats pool-badpw pool-main
	assert_failure 1
	[[ $(conn pool-badpw .error) == *password* ]] || fail "error: $(conn pool-badpw .error)"
	assert_equal "$(conn pool-main .error)" null
	assert_no_secret "$wrong"
	no_secrets
	run --separate-stderr "$DBREG" pool-stats pool-badpw pool-main
	assert_failure 1
	assert_no_secret "$wrong"
	no_secrets
}

@test "pool-stats: without a key, rows with a password report it; rows without one are measured" {
	reg pool-nopw "$POOL_DB" "$DBREG_ADMIN_ROLE" -
	EXTRA_ROWS+=(pool-nopw)
	unset DB_ENCRYPTION_KEY
	stats pool-main pool-nopw
	assert_failure 1
	[[ $(conn pool-main .error) == *key* ]] || fail "error: $(conn pool-main .error)"
	assert_equal "$(conn pool-nopw .error)" null
	assert_equal "$(conn pool-nopw '.backends.total | type')" '"number"'
	no_secrets
}

@test "pool-stats: a key that is set but unusable is a configuration error" {
	export DB_ENCRYPTION_KEY=not-a-key
	run --separate-stderr "$DBREG" pool-stats pool-main
	assert_failure 78
	assert_output ""
	[[ $stderr == *DB_ENCRYPTION_KEY* ]] || fail "stderr: $stderr"
	assert_no_secret not-a-key
}

# ---- --watch ---------------------------------------------------------------------------------

@test "pool-stats: --watch needs a terminal on standard output" {
	run --separate-stderr timeout 10 "$DBREG" pool-stats --watch 1
	assert_failure 2
	assert_output ""
	[[ $stderr == *terminal* ]] || fail "stderr: $stderr"
}

@test "pool-stats: --watch takes a whole number of seconds" {
	local bad
	for bad in 0 -1 abc 1.5 ''; do
		run --separate-stderr timeout 10 "$DBREG" pool-stats --watch "$bad"
		[ "$status" -eq 2 ] || fail "--watch '$bad': exit $status, not 2"
	done
	run --separate-stderr "$DBREG" pool-stats --watch
	assert_failure 2
}

@test "pool-stats: --watch redraws on a terminal until Ctrl-C" {
	command -v script >/dev/null || skip "script (util-linux) is not installed"
	local log=$BATS_TEST_TMPDIR/watch.log cmd
	printf -v cmd '%q ' timeout --preserve-status -k 5 -s INT 3.5 "$DBREG" pool-stats pool-main --watch 1
	run script -qefc "$cmd" "$log" </dev/null
	# Stopped by the interrupt (0, or 130 for "killed by SIGINT"), not by the kill.
	[[ $status -eq 0 || $status -eq 130 ]] || fail "exit $status"
	local redraws
	redraws=$(grep -o 'dbreg pool-stats' "$log" | wc -l)
	[ "$redraws" -ge 2 ] || fail "redrawn $redraws times in 3.5 s: $(cat -v "$log")"
	grep -q 'pool-main' "$log" || fail "no pool-main row: $(cat -v "$log")"
	grep -q "$(printf '\033\\[2J')" "$log" || fail "the screen is not cleared: $(cat -v "$log")"
	run cat "$log"
	no_secrets
}

# ---- formats, usage, the registry ---------------------------------------------------------

@test "pool-stats: unknown formats are usage errors" {
	local fmt
	for fmt in text csv sql; do
		run --separate-stderr "$DBREG" pool-stats -o "$fmt"
		[ "$status" -eq 2 ] || fail "-o $fmt: exit $status, not 2"
		assert_output ""
	done
	run --separate-stderr "$DBREG" pool-stats --bogus
	assert_failure 2
}

@test "pool-stats: --help prints the usage and exits 0" {
	run --separate-stderr "$DBREG" pool-stats --help
	assert_success
	assert_output --partial pool-stats
	assert_output --partial --watch
}

@test "pool-stats: an empty registry is an empty report, exit 0" {
	scratch_registry
	"$DBREG" init >/dev/null
	stats
	assert_success
	assert_equal "$(jq -c . <<<"$output")" '{"connections":[],"servers":[]}'
}

@test "pool-stats: a registry without the schema is a configuration error" {
	scratch_registry
	run --separate-stderr "$DBREG" pool-stats
	assert_failure 78
	[[ $stderr == *"dbreg init"* ]] || fail "stderr: $stderr"
}

@test "pool-stats: an unreachable admin database is exit 69" {
	export ADMIN_DATABASE_URL="postgresql://$DBREG_ADMIN_ROLE@127.0.0.1:1/nowhere?connect_timeout=3"
	run --separate-stderr "$DBREG" pool-stats
	assert_failure 69
	assert_output ""
}

@test "pool-stats: no secret in any format" {
	local fmt
	for fmt in table json; do
		run --separate-stderr "$DBREG" pool-stats -o "$fmt"
		assert_success
		no_secrets
	done
}
