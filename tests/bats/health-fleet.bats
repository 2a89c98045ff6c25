#!/usr/bin/env bats
# dbreg health across a fleet of checkers: --claim splits the due rows between runs on one
# registry (each row checked once per interval, no coordinator), overlapping runs without
# --claim count one outage once, every result goes into admin.dbreg_health_history (with
# its checker) and --keep prunes it, and --history answers "how did it do this week".
# Real PostgreSQL (the sandbox); a listener that never answers keeps runs in flight.

load helper
load servers

setup_file() { fresh_initialized_registry; }

teardown_file() {
	drop_registry
}

setup() {
	require_sandbox
	command -v jq >/dev/null || skip "jq is not installed"
	command -v python3 >/dev/null || skip "python3 is not installed"
	psql_admin <<<"DELETE FROM admin.database_connections; DELETE FROM admin.dbreg_health_history;
		DELETE FROM admin.dbreg_health_claims;"
	make_key
	ADMIN_PW=$(sandbox_admin_password)
	BG_PIDS=$BATS_TEST_TMPDIR/background.pids
}

teardown() {
	stop_background
}

# ok NAME...: targets on the sandbox, with the right password.
ok() {
	local n
	for n in "$@"; do
		register_sandbox "$n"
	done
}

# refused NAME...: targets on a loopback port nothing listens on.
refused() {
	local n
	for n in "$@"; do
		"$DBREG" register "$n" --host 127.0.0.1 --port 1 --database d --user u --no-password >/dev/null
	done
}

# sql QUERY: one value from the test registry.
sql() {
	psql_admin -At <<<"$1"
}

# history_of NAME: the checkers of NAME's history rows, oldest first, one per line.
history_of() {
	sql "SELECT h.checker || ' ' || h.status FROM admin.dbreg_health_history h
		JOIN admin.database_connections d ON d.id::text = h.connection_id
		WHERE d.connection_name = '$1' ORDER BY h.checked_at"
}

@test "health-fleet: every result goes into the history with its checker, UNKNOWN ones too; --no-update writes none" {
	ok good
	refused down
	"$DBREG" register nokey --host 127.0.0.1 --port "$PGSANDBOX_PORT" --database d --user u --no-password >/dev/null
	sql "UPDATE admin.database_connections SET encrypted_password = 'dbreg:v2:garbage' WHERE connection_name = 'nokey'"
	run --separate-stderr "$DBREG" health --checker-id cron-a -o json
	assert_failure 2
	assert_equal "$(jq -r '[.results[] | .connection_name + " " + .checker] | join(",")' <<<"$output")" \
		"down cron-a,good cron-a,nokey cron-a"
	assert_equal "$(history_of good)" "cron-a HEALTHY"
	assert_equal "$(history_of down)" "cron-a UNHEALTHY"
	assert_equal "$(history_of nokey)" "cron-a UNKNOWN"
	# The default checker is the host name.
	run --separate-stderr "$DBREG" health good
	assert_success
	assert_equal "$(history_of good | tail -n 1)" "$(hostname) HEALTHY"
	run --separate-stderr "$DBREG" health --no-update
	assert_equal "$(sql 'SELECT count(*) FROM admin.dbreg_health_history')" 4
	# What the history keeps of a check.
	assert_equal "$(sql "SELECT h.latency_ms > 0 AND h.error IS NULL FROM admin.dbreg_health_history h
		JOIN admin.database_connections d ON d.id::text = h.connection_id
		WHERE d.connection_name = 'good' LIMIT 1")" t
	[[ $(sql "SELECT error FROM admin.dbreg_health_history WHERE status = 'UNHEALTHY'") == *"Connection refused"* ]]
}

@test "health-fleet: --checker-id and the DURATION options refuse bad values (exit 3), and --claim its misuses" {
	local bad
	for bad in "--checker-id=" "--keep 0" "--keep 5x" "--keep -3d" "--keep 1.5h" "--every 10m" "--batch 5" \
		"--claim" "--claim --every 0" "--claim --every 1m --no-update" "--since 7d"; do
		# shellcheck disable=SC2086
		run --separate-stderr "$DBREG" health $bad
		assert_failure 3
		assert_equal "$output" ""
		[[ $stderr == *"dbreg: "* ]] || fail "$bad: $stderr"
	done
	run --separate-stderr "$DBREG" health --keep 5x
	[[ $stderr == *"--keep: '5x' is not a duration"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" health --claim
	[[ $stderr == *"--claim needs --every DURATION"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" health --checker-id "$(printf 'a\tb')"
	[[ $stderr == *"no control characters"* ]] || fail "$stderr"
	assert_equal "$(sql 'SELECT count(*) FROM admin.dbreg_health_history')" 0
}

@test "health-fleet: four --claim runs at once check each row once, split the rows, and leave no claim" {
	local i names=() pids=()
	for i in $(seq -w 1 24); do names+=("t$i"); done
	ok "${names[@]}"
	for i in 1 2 3 4; do
		"$DBREG" health --claim --every 10m --batch 2 --jobs 2 --checker-id "c$i" -o json \
			>"$BATS_TEST_TMPDIR/c$i.json" 2>"$BATS_TEST_TMPDIR/c$i.err" 3>&- &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in 1 2 3 4; do
		[ ! -s "$BATS_TEST_TMPDIR/c$i.err" ] || fail "c$i: $(cat "$BATS_TEST_TMPDIR/c$i.err")"
	done
	assert_equal "$(sql 'SELECT count(*), count(DISTINCT connection_id) FROM admin.dbreg_health_history')" "24|24"
	assert_equal "$(sql 'SELECT count(*) FROM admin.dbreg_health_claims')" 0
	# What each run reported is what it wrote, and together they are the fleet.
	assert_equal "$(cat "$BATS_TEST_TMPDIR"/c?.json | jq -r '.results[].connection_name' | sort | tr '\n' ' ')" \
		"${names[*]} "
	for i in 1 2 3 4; do
		# A run that found nothing due printed nothing.
		assert_equal "$(jq -s 'map(.results | length) | add // 0' "$BATS_TEST_TMPDIR/c$i.json")" \
			"$(sql "SELECT count(*) FROM admin.dbreg_health_history WHERE checker = 'c$i'")"
	done
	# More than one checker took part.
	[ "$(sql 'SELECT count(DISTINCT checker) FROM admin.dbreg_health_history')" -ge 2 ]
}

@test "health-fleet: with nothing due --claim exits 0 and says nothing, and leaves --output as it was" {
	ok a b
	run --separate-stderr "$DBREG" health --claim --every 1h -o prometheus --output "$BATS_TEST_TMPDIR/h.prom"
	assert_success
	grep -q '^dbreg_up{connection="a"' "$BATS_TEST_TMPDIR/h.prom"
	echo sentinel >"$BATS_TEST_TMPDIR/h.prom"
	run --separate-stderr "$DBREG" health --claim --every 1h -o prometheus --output "$BATS_TEST_TMPDIR/h.prom"
	assert_success
	assert_equal "$output" ""
	assert_equal "$stderr" ""
	assert_equal "$(cat "$BATS_TEST_TMPDIR/h.prom")" sentinel
	for fmt in table json nagios; do
		run --separate-stderr "$DBREG" health --claim --every 1h -o "$fmt"
		assert_success
		assert_equal "$output$stderr" ""
	done
	assert_equal "$(sql 'SELECT count(*) FROM admin.dbreg_health_history')" 2
	# Once the interval has passed, the rows are due again (on the admin server's clock).
	sql "UPDATE admin.dbreg_health_history SET checked_at = now() - interval '2 hours'"
	run --separate-stderr "$DBREG" health --claim --every 1h -o json
	assert_success
	assert_equal "$(jq '.results | length' <<<"$output")" 2
}

@test "health-fleet: a live claim of another checker is skipped; an expired one (a checker that died) is taken" {
	ok live dead free
	sql "INSERT INTO admin.dbreg_health_claims (connection_id, checker, claimed_at, expires_at)
		SELECT id::text, 'other', now(), now() + interval '1 hour' FROM admin.database_connections
		WHERE connection_name = 'live'
		UNION ALL SELECT id::text, 'gone', now() - interval '2 hours', now() - interval '1 hour'
		FROM admin.database_connections WHERE connection_name = 'dead'"
	run --separate-stderr "$DBREG" health --claim --every 10m --checker-id me -o json
	assert_success
	assert_equal "$(jq -r '[.results[].connection_name] | join(",")' <<<"$output")" "dead,free"
	assert_equal "$(sql 'SELECT checker FROM admin.dbreg_health_claims')" other
	# --claim takes the selection too.
	sql "DELETE FROM admin.dbreg_health_history"
	run --separate-stderr "$DBREG" health --claim --every 10m free -o json
	assert_equal "$(jq -r '[.results[].connection_name] | join(",")' <<<"$output")" "free"
}

@test "health-fleet: two overlapping runs without --claim count one outage once" {
	start_blackhole
	"$DBREG" register silent --host 127.0.0.1 --port "$BLACKHOLE_PORT" --database d --user u --no-password >/dev/null
	refused down
	local one two
	"$DBREG" health --timeout 2 >/dev/null 2>&1 3>&- &
	one=$!
	"$DBREG" health --timeout 2 >/dev/null 2>&1 3>&- &
	two=$!
	wait "$one" "$two" || true
	assert_equal "$(sql "SELECT string_agg(connection_name || '=' || consecutive_failures, ',' ORDER BY connection_name)
		FROM admin.database_connections")" "down=1,silent=1"
	# Both runs are in the history: they did check.
	assert_equal "$(sql 'SELECT count(*) FROM admin.dbreg_health_history')" 4
	# A run that begins after them counts again.
	run --separate-stderr "$DBREG" health --timeout 2
	assert_equal "$(sql "SELECT string_agg(connection_name || '=' || consecutive_failures, ',' ORDER BY connection_name)
		FROM admin.database_connections")" "down=2,silent=2"
}

@test "health-fleet: --keep prunes the history older than it (default 14 days), on the admin server's clock" {
	ok a
	"$DBREG" health >/dev/null
	sql "INSERT INTO admin.dbreg_health_history (connection_id, checked_at, status, checker)
		SELECT id::text, now() - (n || ' days')::interval, 'HEALTHY', 'old' FROM admin.database_connections,
		generate_series(10, 40) AS n"
	run --separate-stderr "$DBREG" health --keep 30d
	assert_success
	# 10..29 days old stay (20), 30..40 go; the two fresh ones stay.
	assert_equal "$(sql 'SELECT count(*) FROM admin.dbreg_health_history')" 22
	run --separate-stderr "$DBREG" health
	assert_equal "$(sql 'SELECT count(*) FROM admin.dbreg_health_history')" 7
	run --separate-stderr "$DBREG" health --keep 1d --no-update
	assert_equal "$(sql 'SELECT count(*) FROM admin.dbreg_health_history')" 7
}

@test "health-fleet: --history gives checks, failures, uptime, latency percentiles, status changes and the last failure" {
	ok steady
	refused never
	# Without a password of its own (a password file has it), so that its port can change.
	printf '127.0.0.1:%s:*:%s:%s\n' "$PGSANDBOX_PORT" "$DBREG_ADMIN_ROLE" "$ADMIN_PW" >"$BATS_TEST_TMPDIR/pgpass"
	chmod 600 "$BATS_TEST_TMPDIR/pgpass"
	export PGPASSFILE=$BATS_TEST_TMPDIR/pgpass
	"$DBREG" register flappy --host 127.0.0.1 --port "$PGSANDBOX_PORT" --database "$DBREG_TEST_REGISTRY" \
		--user "$DBREG_ADMIN_ROLE" --no-password >/dev/null
	"$DBREG" health >/dev/null 2>&1 || true
	sql "UPDATE admin.database_connections SET port = 1 WHERE connection_name = 'flappy'"
	"$DBREG" health >/dev/null 2>&1 || true
	sql "UPDATE admin.database_connections SET port = $PGSANDBOX_PORT WHERE connection_name = 'flappy'"
	"$DBREG" health >/dev/null 2>&1 || true
	# A check from before the window, which --since leaves out.
	sql "INSERT INTO admin.dbreg_health_history (connection_id, checked_at, status, checker)
		SELECT id::text, now() - interval '10 days', 'UNHEALTHY', 'old' FROM admin.database_connections
		WHERE connection_name = 'steady'"
	run --separate-stderr "$DBREG" health --history -o json
	assert_success
	assert_equal "$stderr" ""
	jq -e 'all(.[]; keys == ["checks", "connection_name", "failures", "last_failure", "latency_p50_ms",
		"latency_p95_ms", "status_changes", "uptime_pct"])' <<<"$output"
	assert_equal "$(jq -c '[.[] | [.connection_name, .checks, .failures, .uptime_pct, .status_changes]]' <<<"$output")" \
		'[["flappy",3,1,66.67,2],["never",3,3,0,0],["steady",3,0,100,0]]'
	assert_equal "$(jq -r '.[] | select(.connection_name == "steady") | .last_failure' <<<"$output")" null
	jq -e '.[] | select(.connection_name == "flappy") | .last_failure
		| test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")' <<<"$output"
	jq -e '.[] | select(.connection_name == "steady") | .latency_p50_ms > 0 and .latency_p95_ms >= .latency_p50_ms' \
		<<<"$output"
	jq -e '.[] | select(.connection_name == "never") | .latency_p50_ms == null and .latency_p95_ms == null' <<<"$output"
	# --since widens the window; names choose.
	run --separate-stderr "$DBREG" health --history steady --since 30d -o json
	assert_equal "$(jq -c '[.[] | [.connection_name, .checks, .failures]]' <<<"$output")" '[["steady",4,1]]'
	run --separate-stderr "$DBREG" health --history
	assert_success
	assert_line --index 0 --regexp '^NAME +CHECKS +FAILURES +UPTIME +P50 +P95 +CHANGES +LAST FAILURE$'
	assert_line --index 3 --regexp '^steady +3 +0 +100\.0 % +[0-9.]+ ms +[0-9.]+ ms +0 +-$'
}

@test "health-fleet: --history follows SPEC's exit codes: 2 for usage, 1 for an unknown name, 69 with the admin database down" {
	run --separate-stderr "$DBREG" health --history --since 2x
	assert_failure 2
	run --separate-stderr "$DBREG" health --history -o prometheus
	assert_failure 2
	[[ $stderr == *"--history prints a table or JSON"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" health --history --no-update
	assert_failure 2
	run --separate-stderr "$DBREG" health --history --claim --every 1m
	assert_failure 2
	run --separate-stderr "$DBREG" health --history nosuch
	assert_failure 1
	[[ $stderr == *"no connection named 'nosuch'"* ]] || fail "$stderr"
	ADMIN_DATABASE_URL="postgresql://u@127.0.0.1:1/x" run --separate-stderr "$DBREG" health --history
	assert_failure 69
	run --separate-stderr "$DBREG" health --history -o json
	assert_success
	assert_equal "$output" "[]"
}

@test "health-fleet: a run of more rows than one write-back statement carries writes them all, in one transaction" {
	psql_admin <<<"INSERT INTO admin.database_connections
		(connection_name, connection_type, host, port, database_name, username)
		SELECT 'many-' || lpad(g::text, 5, '0'), 'SHARED', '127.0.0.1', 1, 'd', 'u'
		FROM generate_series(1, 12001) AS g;" >/dev/null
	run --separate-stderr "$DBREG" health --jobs 256 -o json
	assert_failure 2
	assert_equal "$(jq '.results | length' <<<"$output")" 12001
	assert_equal "$(sql "SELECT count(*) FROM admin.database_connections
		WHERE consecutive_failures = 1 AND last_health_check IS NOT NULL")" 12001
	assert_equal "$(sql "SELECT count(*) FROM admin.dbreg_health_history")" 12001
	# One transaction: every row's check has the same time.
	assert_equal "$(sql "SELECT count(DISTINCT last_health_check) FROM admin.database_connections")" 1
}

@test "health-fleet: 20,000 refused targets stay under 40 MB: a run holds the checks in flight, not one per row" {
	[ -x /usr/bin/time ] || skip "GNU time is not installed"
	# ASan's shadow memory makes any ceiling meaningless.
	if ldd "$DBREG" | grep -q libasan; then skip "an ASan build"; fi
	psql_admin <<<"INSERT INTO admin.database_connections
		(connection_name, connection_type, host, port, database_name, username)
		SELECT 'many-' || lpad(g::text, 5, '0'), 'SHARED', '127.0.0.1', 1, 'd', 'u'
		FROM generate_series(1, 20000) AS g;" >/dev/null
	# Two loops, as on the 2-CPU machine the ceiling was set on (each thread has its own malloc arena).
	run /usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" "$DBREG" health --jobs 256 --threads 2 --no-update -o json \
		--output "$BATS_TEST_TMPDIR/out.json"
	assert_failure 2
	assert_equal "$(jq '.results | length' "$BATS_TEST_TMPDIR/out.json")" 20000
	rss=$(tail -n1 "$BATS_TEST_TMPDIR/rss")
	((rss < 40 * 1024)) || fail "peak RSS $rss KB for 20,000 targets"
}
