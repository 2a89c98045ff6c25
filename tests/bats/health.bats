#!/usr/bin/env bats
# dbreg health: every kind of target gets the right status within its deadline, the exit
# status follows the monitoring-plugin convention, the results are written back (or not),
# and every format is parsed (JSON with jq, Prometheus against the exposition grammar,
# the Nagios line against its pattern), never just grepped.  No secret in any output.
#
# Targets are the sandbox itself (healthy), a closed port, a name that does not resolve,
# and two small python3 servers started per test and killed in teardown: a listener that
# accepts TCP and never answers, and a proxy that delays each new connection.

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
	# Every test starts from an empty registry and the same key settings.
	psql_admin <<<"DELETE FROM admin.database_connections;"
	make_key
	unset DB_ENCRYPTION_OLD_KEYS
	ADMIN_PW=$(sandbox_admin_password)
	WRONG_PW=wrong-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
	# Everything that must never appear in an output or on stderr.
	SECRETS=("$ADMIN_PW" "$WRONG_PW" "$DB_ENCRYPTION_KEY")
	BG_PIDS=$BATS_TEST_TMPDIR/background.pids
}

teardown() {
	stop_background
	if [ -n "${OWN_ADMIN-}" ]; then
		"$DBREG_SOURCE_ROOT/scripts/pg-sandbox" stop "$OWN_ADMIN/cluster" >/dev/null 2>&1 3>&- || true
		rm -rf "$OWN_ADMIN"
	fi
	if [ -n "${REVOKED-}" ]; then
		psql_super_on "$DBREG_TEST_REGISTRY" <<<"GRANT UPDATE ON admin.database_connections TO $DBREG_ADMIN_ROLE;"
	fi
	if [ -n "${EXTRA_DB-}" ]; then
		psql_super -v "db=$EXTRA_DB" <<<'DROP DATABASE IF EXISTS :"db" WITH (FORCE);'
	fi
	drop_scratch_registry
}

# ---- targets ---------------------------------------------------------------------------

# reg NAME HOST PORT PASSWORD|- [REGISTER-OPTION...]: register a target on the test
# registry's database as dbreg_admin; "-" registers it without a password.
reg() {
	local name=$1 host=$2 port=$3 pw=$4
	shift 4
	if [ "$pw" = - ]; then
		"$DBREG" register "$name" --host "$host" --port "$port" --database "$DBREG_TEST_REGISTRY" \
			--user "$DBREG_ADMIN_ROLE" --no-password "$@" >/dev/null
	else
		printf '%s\n' "$pw" | "$DBREG" register "$name" --host "$host" --port "$port" \
			--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --password-stdin "$@" >/dev/null
	fi
}

# reg_ok NAME [OPTION...]: the sandbox, with the right password.
reg_ok() {
	local name=$1
	shift
	reg "$name" 127.0.0.1 "$PGSANDBOX_PORT" "$ADMIN_PW" "$@"
}

# use_pgpass: a password file of this test's own with dbreg_admin's password for the
# sandbox, so that a target registered without a password can log in (libpq reads it).
use_pgpass() {
	printf '127.0.0.1:%s:*:%s:%s\n' "$PGSANDBOX_PORT" "$DBREG_ADMIN_ROLE" "$ADMIN_PW" \
		>"$BATS_TEST_TMPDIR/pgpass"
	chmod 600 "$BATS_TEST_TMPDIR/pgpass"
	export PGPASSFILE=$BATS_TEST_TMPDIR/pgpass
}

# ---- running health --------------------------------------------------------------------

# health [ARG...]: run dbreg health with stdout and stderr apart; HEALTH_MS is the wall
# time in milliseconds.  Fails if any secret shows up.
health() {
	local t0=${EPOCHREALTIME/./} s
	run --separate-stderr "$DBREG" health "$@"
	HEALTH_MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
	for s in "${SECRETS[@]}"; do
		[ -n "$s" ] && assert_no_secret "$s"
	done
	return 0
}

# health_json [ARG...]: health -o json, and the output checked against the documented
# shape (check_json).
health_json() {
	health -o json "$@"
	check_json
}

# The shape of the JSON report (SPEC §12), on $output.
check_json() {
	jq -e '
		def int: type == "number" and floor == .;
		def nullor(f): . == null or f;
		(keys == ["checked_at", "results", "summary"])
		and (.checked_at | type == "string"
			and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$"))
		and (.checked_at | sub("\\.[0-9]+"; "") | fromdateiso8601 - now | . < 300 and . > -300)
		and (.summary | keys == ["degraded", "healthy", "unhealthy", "unknown"]
			and all(.[]; int and . >= 0))
		and (.results | type == "array")
		and ((.summary | add) == (.results | length))
		and (.summary.healthy == ([.results[] | select(.status == "HEALTHY")] | length))
		and (.summary.degraded == ([.results[] | select(.status == "DEGRADED")] | length))
		and (.summary.unhealthy == ([.results[] | select(.status == "UNHEALTHY")] | length))
		and (.summary.unknown == ([.results[] | select(.status == "UNKNOWN")] | length))
		and ([.results[].connection_name] | length == (unique | length))
		and all(.results[];
			keys == ["backends", "cert_not_after", "checker", "connection_name", "error", "expected_role",
				"in_recovery", "latency_ms", "max_connections", "replay_lag_bytes", "replay_lag_seconds",
				"server_version", "status", "tls_cipher", "tls_in_use", "tls_protocol"]
			and (.connection_name | type == "string")
			and (.status | IN("HEALTHY", "DEGRADED", "UNHEALTHY", "UNKNOWN"))
			and (.latency_ms | nullor(type == "number" and . >= 0))
			and (.error | nullor(type == "string" and length > 0))
			and (.server_version | nullor(type == "string" and length > 0))
			and (.in_recovery | nullor(type == "boolean"))
			and (.backends | nullor(int and . >= 0))
			and (.max_connections | nullor(int and . > 0))
			and (.expected_role | nullor(type == "string" and length > 0))
			and (.replay_lag_seconds | nullor(type == "number" and . >= 0))
			and (.replay_lag_bytes | nullor(int and . >= 0))
			and (.tls_in_use | nullor(type == "boolean"))
			and (.tls_protocol | nullor(type == "string" and length > 0))
			and (.tls_cipher | nullor(type == "string" and length > 0))
			and (.cert_not_after | nullor(type == "string"
				and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")))
			and (.checker | nullor(type == "string"))
			and ((.tls_in_use != true) == (.tls_protocol == null and .cert_not_after == null))
			and ((.status == "HEALTHY") == (.error == null))
			and ((.status == "UNKNOWN") == (.latency_ms == null)))
		and all(.results[] | select(.status == "UNHEALTHY" or .status == "UNKNOWN");
			.server_version == null and .in_recovery == null and .backends == null
			and .max_connections == null and .replay_lag_seconds == null and .replay_lag_bytes == null)
	' <<<"$output" >/dev/null || fail "the JSON report does not have the documented shape: $output"
}

# field NAME KEY: one key of NAME's result in the JSON report on $output (jq -c).
field() {
	jq -c --arg n "$1" --arg k "$2" '.results[] | select(.connection_name == $n) | .[$k]' <<<"$output"
}

# statuses: "name STATUS" per result, in report order.
statuses() {
	jq -r '.results[] | "\(.connection_name) \(.status)"' <<<"$output"
}

# Parses the Prometheus text exposition format on stdin: every sample line must match the
# grammar, HELP and TYPE must come (once) before each family's samples, a family's samples
# must be together, no series twice, label escapes valid.  Then dbreg's own rules: the four
# families, one-hot dbreg_status, dbreg_up only and exactly for checked connections.
# Prints {"connection": {"status", "up", "labels"}} as JSON; problems on stderr, exit 1.
PROM_CHECK_PY=$(cat <<'EOF'
import json, re, sys, time

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? -?[0-9.eE+-]+$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')
HELP = re.compile(r'^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$')
TYPE = re.compile(r'^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$')
ESC = {'\\': '\\', '"': '"', 'n': '\n'}
RUN = ['dbreg_health_run_success', 'dbreg_health_run_timestamp_seconds']
WANT = ['dbreg_up', 'dbreg_status', 'dbreg_check_duration_seconds',
        'dbreg_last_check_timestamp_seconds'] + RUN
# Families of the extended and deep levels: present when something measured them.
LEVELS = ['dbreg_in_recovery', 'dbreg_backends', 'dbreg_max_connections']
# The deep level's figures that are not counts: present when something measured them.
FIGURES = ['dbreg_cert_expiry_timestamp_seconds', 'dbreg_replication_lag_seconds']
errors = []

def err(n, msg):
    errors.append('line %d: %s' % (n, msg))

def unescape(n, v):
    def rep(m):
        if m.group(1) not in ESC:
            err(n, 'bad escape \\' + m.group(1))
            return m.group(1)
        return ESC[m.group(1)]
    return re.sub(r'\\(.)', rep, v)

text = sys.stdin.read()
if text and not text.endswith('\n'):
    errors.append('no newline at the end')
helps, types, families, series, samples = {}, {}, [], set(), []
for n, line in enumerate(text.splitlines(), 1):
    if line.startswith('#'):
        for rx, seen, what in ((HELP, helps, 'HELP'), (TYPE, types, 'TYPE')):
            if line.startswith('# ' + what + ' '):
                m = rx.match(line)
                if not m:
                    err(n, 'malformed ' + what + ': ' + line)
                elif m.group(1) in seen:
                    err(n, what + ' twice for ' + m.group(1))
                elif m.group(1) in families:
                    err(n, what + ' after the samples of ' + m.group(1))
                else:
                    seen[m.group(1)] = n
        continue
    if not line.strip():
        continue
    if not SAMPLE.match(line):
        err(n, 'not a sample line: ' + line)
        continue
    name = re.match(r'[a-zA-Z_:][a-zA-Z0-9_:]*', line).group(0)
    rest, value = line[len(name):].rsplit(' ', 1)
    labels = {}
    if rest:
        body, pos = rest[1:-1], 0
        for m in LABEL.finditer(body):
            if m.start() != pos:
                break
            pos = m.end()
            if m.group(1) in labels:
                err(n, 'label twice: ' + m.group(1))
            labels[m.group(1)] = unescape(n, m.group(2))
        if pos != len(body):
            err(n, 'cannot split the labels: ' + rest)
    try:
        value = float(value)
    except ValueError:
        err(n, 'not a number: ' + value)
        continue
    if name not in helps:
        err(n, 'no HELP before ' + name)
    if name not in types:
        err(n, 'no TYPE before ' + name)
    if not families or families[-1] != name:
        if name in families:
            err(n, 'the samples of ' + name + ' are not together')
        families.append(name)
    key = (name, tuple(sorted(labels.items())))
    if key in series:
        err(n, 'series twice: ' + line)
    series.add(key)
    samples.append((n, name, labels, value))

measured = [f for f in LEVELS + FIGURES if f in helps]
if sorted(helps) != sorted(WANT + measured) or sorted(types) != sorted(WANT + measured):
    errors.append('families with HELP / TYPE: %s / %s' % (sorted(helps), sorted(types)))
conns = {}
for n, name, labels, value in samples:
    if name in LEVELS:
        if value < 0 or value != int(value) or (name == 'dbreg_in_recovery' and value > 1):
            err(n, 'not a count: ' + name)
        continue
    if name in FIGURES:
        if value < 0:
            err(n, 'negative: ' + name)
        continue
    if name not in WANT:
        err(n, 'unexpected metric ' + name)
        continue
    if name in RUN:
        # The run's own gauges: no labels; it could check, and it ran now.
        if labels:
            err(n, 'labels on ' + name)
        elif name == 'dbreg_health_run_success' and value != 1:
            err(n, 'dbreg_health_run_success is not 1')
        elif name == 'dbreg_health_run_timestamp_seconds' and abs(value - time.time()) > 300:
            err(n, 'the run timestamp is not now')
        continue
    expect = sorted(['connection', 'region', 'type'] + (['status'] if name == 'dbreg_status' else []))
    if sorted(labels) != expect:
        err(n, 'labels %s, want %s' % (sorted(labels), expect))
        continue
    ident = {k: labels[k] for k in ('type', 'region')}
    c = conns.setdefault(labels['connection'], {'labels': ident, 'status': {}, 'up': None})
    if ident != c['labels']:
        err(n, 'type or region differ within one connection')
    if name == 'dbreg_status':
        if value not in (0, 1):
            err(n, 'dbreg_status is not 0 or 1')
        c['status'][labels['status']] = value
    elif name == 'dbreg_up':
        if value not in (0, 1):
            err(n, 'dbreg_up is not 0 or 1')
        c['up'] = int(value)
    elif name == 'dbreg_check_duration_seconds':
        if not 0 <= value <= 3600:
            err(n, 'odd duration')
    elif abs(value - time.time()) > 300:
        err(n, 'the timestamp is not now')

out = {}
for name, c in conns.items():
    if sorted(c['status']) != ['DEGRADED', 'HEALTHY', 'UNHEALTHY', 'UNKNOWN']:
        errors.append('%s: dbreg_status for %s' % (name, sorted(c['status'])))
        continue
    ones = [s for s, v in c['status'].items() if v == 1]
    if len(ones) != 1:
        errors.append('%s: dbreg_status is not one-hot: %s' % (name, c['status']))
        continue
    status = ones[0]
    if status == 'UNKNOWN' and c['up'] is not None:
        errors.append('%s: dbreg_up present for an UNKNOWN connection' % name)
    if status != 'UNKNOWN' and c['up'] != (1 if status in ('HEALTHY', 'DEGRADED') else 0):
        errors.append('%s: dbreg_up is %s for %s' % (name, c['up'], status))
    out[name] = {'status': status, 'up': c['up'], 'labels': c['labels']}
if errors:
    sys.stderr.write('\n'.join(errors) + '\n')
    sys.exit(1)
print(json.dumps(out, sort_keys=True))
EOF
)

# check_prometheus: parse $output as the exposition format; PROM is the parsed JSON.
check_prometheus() {
	PROM=$(python3 -c "$PROM_CHECK_PY" <<<"$output" 2>"$BATS_TEST_TMPDIR/prom.err") ||
		fail "not valid Prometheus text: $(cat "$BATS_TEST_TMPDIR/prom.err")
--- output:
$output"
}

# prom_status NAME: the status dbreg_status says for NAME.
prom_status() {
	jq -r --arg n "$1" '.[$n].status // "absent"' <<<"$PROM"
}

NAGIOS_RE="^DBREG (OK|WARNING|CRITICAL|UNKNOWN) - .* \\| healthy=[0-9]+ degraded=[0-9]+ unhealthy=[0-9]+ unknown=[0-9]+( '[^']+'=([0-9]+\\.[0-9]ms|U);[0-9]+;[0-9]*)*\$"

# check_nagios [H D U K]: line 1 of $output is the one status line of the plugin format,
# its state agrees with $status and its perfdata with the counts H D U K given; each
# later line names a target that is not HEALTHY and why (one per such target).
check_nagios() {
	local states=(OK WARNING CRITICAL UNKNOWN)
	[[ ${lines[0]} =~ $NAGIOS_RE ]] || fail "not a Nagios status line: ${lines[0]}"
	[ "${BASH_REMATCH[1]}" = "${states[$status]}" ] ||
		fail "state ${BASH_REMATCH[1]} but exit status $status"
	local l
	for l in "${lines[@]:1}"; do
		[[ $l =~ ^[^\ ]+\ (DEGRADED|UNHEALTHY|UNKNOWN):\ .+ ]] || fail "not a long-output line: $l"
	done
	if [ $# -eq 4 ]; then
		[[ ${lines[0]} == *"| healthy=$1 degraded=$2 unhealthy=$3 unknown=$4"* ]] ||
			fail "perfdata, want healthy=$1 degraded=$2 unhealthy=$3 unknown=$4: ${lines[0]}"
		[ "${#lines[@]}" -eq $((1 + $2 + $3 + $4)) ] || fail "want $(($2 + $3 + $4)) long-output lines: $output"
	fi
}

# psql_super_on DB [PSQL-ARG...]: psql_super on database DB instead of postgres.
psql_super_on() {
	local db=$1
	shift
	_psql -X -qAt -v ON_ERROR_STOP=1 -d "${PGSANDBOX_SUPERUSER_URL%/*}/$db" "$@"
}

# snapshot: every registry row in full, to compare before and after.
snapshot() {
	psql_admin <<<"SELECT to_jsonb(d) FROM admin.database_connections d ORDER BY id;"
}

# ---- statuses and deadlines ------------------------------------------------------------

@test "health: healthy targets are HEALTHY, exit 0" {
	reg_ok ok-a
	reg_ok ok-b --type ANALYTICS
	health_json
	assert_success
	assert_equal "$(statuses)" "$(printf '%s\n' 'ok-a HEALTHY' 'ok-b HEALTHY')"
	assert_equal "$(jq -c .summary <<<"$output")" '{"healthy":2,"degraded":0,"unhealthy":0,"unknown":0}'
	[ -z "$stderr" ] || fail "stderr: $stderr"
}

@test "health: the table names each connection and its status" {
	reg_ok ok-a
	reg 'bad-pw' 127.0.0.1 "$PGSANDBOX_PORT" "$WRONG_PW"
	health
	assert_failure 2
	assert_line --index 0 --regexp '^NAME +STATUS'
	assert_line --regexp '^ok-a +HEALTHY '
	assert_line --regexp '^bad-pw +UNHEALTHY .*password authentication failed'
}

@test "health: a wrong password is UNHEALTHY, exit 2" {
	reg_ok ok-a
	reg bad-pw 127.0.0.1 "$PGSANDBOX_PORT" "$WRONG_PW"
	health_json
	assert_failure 2
	assert_equal "$(field bad-pw status)" '"UNHEALTHY"'
	[[ $(field bad-pw error) == *"password authentication failed"* ]] || fail "$(field bad-pw error)"
	assert_equal "$(field ok-a status)" '"HEALTHY"'
}

@test "health: a closed port is UNHEALTHY at once" {
	reg closed 127.0.0.1 1 -
	health_json --timeout 5
	assert_failure 2
	assert_equal "$(field closed status)" '"UNHEALTHY"'
	[[ $(field closed error) == *"refused"* ]] || fail "$(field closed error)"
	[ "$HEALTH_MS" -lt 3000 ] || fail "took $HEALTH_MS ms"
}

@test "health: a listener that never answers is UNHEALTHY within the deadline" {
	start_blackhole
	reg silent 127.0.0.1 "$BLACKHOLE_PORT" "$ADMIN_PW"
	reg_ok ok-a
	health_json --timeout 2
	assert_failure 2
	assert_equal "$(field silent status)" '"UNHEALTHY"'
	[[ $(field silent error) == *"no answer within 2000 ms"* ]] || fail "$(field silent error)"
	assert_equal "$(field ok-a status)" '"HEALTHY"'
	[ "$HEALTH_MS" -ge 1900 ] || fail "ended after $HEALTH_MS ms, before the deadline"
	[ "$HEALTH_MS" -lt 4000 ] || fail "took $HEALTH_MS ms with --timeout 2"
	# No progress line when standard error is not a terminal.
	[ -z "$stderr" ] || fail "stderr: $stderr"
}

@test "health: several silent listeners cost one deadline, not one each" {
	start_blackhole
	local i
	for i in 1 2 3 4 5; do
		reg "silent-$i" 127.0.0.1 "$BLACKHOLE_PORT" "$ADMIN_PW"
	done
	health_json --timeout 2
	assert_failure 2
	assert_equal "$(jq .summary.unhealthy <<<"$output")" 5
	[ "$HEALTH_MS" -lt 4000 ] || fail "took $HEALTH_MS ms for 5 targets with --timeout 2"
}

@test "health: --jobs 1 checks one at a time" {
	start_blackhole
	reg silent-1 127.0.0.1 "$BLACKHOLE_PORT" "$ADMIN_PW"
	reg silent-2 127.0.0.1 "$BLACKHOLE_PORT" "$ADMIN_PW"
	health_json --timeout 1 --jobs 1
	assert_failure 2
	assert_equal "$(jq .summary.unhealthy <<<"$output")" 2
	[ "$HEALTH_MS" -ge 1900 ] || fail "two 1 s deadlines one after the other took only $HEALTH_MS ms"
}

@test "health: --jobs 1 with several targets still checks them all" {
	reg_ok ok-a
	reg_ok ok-b
	reg_ok ok-c
	reg closed 127.0.0.1 1 -
	reg bad-pw 127.0.0.1 "$PGSANDBOX_PORT" "$WRONG_PW"
	health_json --jobs 1
	assert_failure 2
	assert_equal "$(statuses)" "$(printf '%s\n' 'bad-pw UNHEALTHY' 'closed UNHEALTHY' \
		'ok-a HEALTHY' 'ok-b HEALTHY' 'ok-c HEALTHY')"
}

@test "health: --threads 1, 2 and more than --jobs judge every target alike" {
	reg_ok ok-a
	reg_ok ok-b
	reg_ok ok-c
	reg closed 127.0.0.1 1 -
	reg bad-pw 127.0.0.1 "$PGSANDBOX_PORT" "$WRONG_PW"
	reg nowhere nonexistent.invalid 5432 "$ADMIN_PW"
	local want threads
	want=$(printf '%s\n' 'bad-pw UNHEALTHY' 'closed UNHEALTHY' 'nowhere UNHEALTHY' \
		'ok-a HEALTHY' 'ok-b HEALTHY' 'ok-c HEALTHY')
	for threads in 1 2 64; do
		health_json --threads "$threads" --jobs 3 --timeout 3
		assert_failure 2
		assert_equal "$(statuses)" "$want"
	done
	# Each run wrote each target's result once.
	assert_equal "$(psql_admin <<<"SELECT count(*) FROM admin.dbreg_health_history h
		JOIN admin.database_connections d ON d.id::text = h.connection_id")" 18
}

@test "health: a name that does not resolve is UNHEALTHY" {
	reg nowhere nonexistent.invalid 5432 "$ADMIN_PW"
	reg_ok ok-a
	health_json --timeout 3
	assert_failure 2
	assert_equal "$(field nowhere status)" '"UNHEALTHY"'
	[[ $(field nowhere error) == *"nonexistent.invalid"* ]] || fail "$(field nowhere error)"
	assert_equal "$(field ok-a status)" '"HEALTHY"'
	[ "$HEALTH_MS" -lt 5000 ] || fail "took $HEALTH_MS ms"
}

@test "health: a host name that resolves is checked (host and hostaddr)" {
	getent hosts localhost >/dev/null || skip "localhost does not resolve here"
	reg by-name localhost "$PGSANDBOX_PORT" "$ADMIN_PW"
	health_json
	assert_success
	assert_equal "$(field by-name status)" '"HEALTHY"'
}

@test "health: a Unix-socket directory as host is checked" {
	[ -n "${PGSANDBOX_DIR-}" ] && [ -S "$PGSANDBOX_DIR/.s.PGSQL.$PGSANDBOX_PORT" ] ||
		skip "the sandbox's socket directory is not known"
	reg by-socket "$PGSANDBOX_DIR" "$PGSANDBOX_PORT" "$ADMIN_PW"
	health_json
	assert_success
	assert_equal "$(field by-socket status)" '"HEALTHY"'
}

@test "health: a slow target trips --warn-ms: DEGRADED, exit 1" {
	start_slow_proxy 300
	reg slow 127.0.0.1 "$PROXY_PORT" "$ADMIN_PW"
	reg_ok ok-a
	health_json --warn-ms 100
	assert_failure 1
	assert_equal "$(field slow status)" '"DEGRADED"'
	jq -e '.results[] | select(.connection_name == "slow") | .latency_ms >= 300' <<<"$output" >/dev/null ||
		fail "latency: $(field slow latency_ms)"
	[[ $(field slow error) == *"100 ms"* ]] || fail "$(field slow error)"
	assert_equal "$(field ok-a status)" '"HEALTHY"'
	# The same target is HEALTHY under the default threshold (1000 ms).
	health_json slow
	assert_success
	assert_equal "$(field slow status)" '"HEALTHY"'
}

@test "health: an extended query that fails after a good login is DEGRADED" {
	EXTRA_DB=hc_$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
	psql_super -v "db=$EXTRA_DB" <<<'CREATE DATABASE :"db";'
	psql_super_on "$EXTRA_DB" <<<'REVOKE EXECUTE ON FUNCTION pg_is_in_recovery() FROM PUBLIC;'
	printf '%s\n' "$ADMIN_PW" | "$DBREG" register restricted --host 127.0.0.1 \
		--port "$PGSANDBOX_PORT" --database "$EXTRA_DB" --user "$DBREG_ADMIN_ROLE" --password-stdin >/dev/null
	health_json --level basic
	assert_success
	health_json --level extended
	assert_failure 1
	assert_equal "$(field restricted status)" '"DEGRADED"'
	[[ $(field restricted error) == *"permission denied"* ]] || fail "$(field restricted error)"
	# A degraded check is still a successful login: it resets the failure count.
	assert_equal "$(registry_field restricted consecutive_failures)" 0
	assert_equal "$(registry_field restricted is_healthy)" t
}

# ---- levels ----------------------------------------------------------------------------

@test "health: --level basic measures latency only" {
	reg_ok ok-a
	health_json --level basic
	assert_success
	assert_equal "$(jq -c '.results[0] | [.server_version, .in_recovery, .backends, .max_connections]' <<<"$output")" \
		'[null,null,null,null]'
	jq -e '.results[0].latency_ms | type == "number"' <<<"$output" >/dev/null
}

@test "health: --level extended sets server_version and in_recovery" {
	reg_ok ok-a
	health_json --level extended
	assert_success
	local version
	version=$(psql_admin <<<"SHOW server_version;")
	assert_equal "$(field ok-a server_version)" "\"$version\""
	assert_equal "$(field ok-a in_recovery)" false
	assert_equal "$(field ok-a backends)" null
	assert_equal "$(field ok-a max_connections)" null
}

@test "health: --level deep sets backends and max_connections" {
	reg_ok ok-a
	health_json --level deep
	assert_success
	local max
	max=$(psql_admin <<<"SHOW max_connections;")
	assert_equal "$(field ok-a max_connections)" "$max"
	jq -e '.results[0] | (.backends | type == "number" and . >= 1) and .backends <= .max_connections
		and (.server_version | type == "string") and .in_recovery == false' <<<"$output" >/dev/null ||
		fail "deep result: $output"
}

@test "health: levels leave what they cannot measure null on a failed check" {
	reg closed 127.0.0.1 1 -
	health_json --level deep
	assert_failure 2
	assert_equal "$(jq -c '.results[0] | [.server_version, .in_recovery, .backends, .max_connections]' <<<"$output")" \
		'[null,null,null,null]'
}

# ---- selection -------------------------------------------------------------------------

@test "health: an inactive row not named is not checked" {
	reg_ok ok-a
	reg_ok sleeping --inactive
	health_json
	assert_success
	assert_equal "$(statuses)" 'ok-a HEALTHY'
	assert_equal "$(registry_field sleeping 'last_health_check IS NULL')" t
}

@test "health: an inactive row named is UNKNOWN, exit 3 when alone" {
	reg_ok sleeping --inactive
	health_json sleeping
	assert_failure 3
	assert_equal "$(field sleeping status)" '"UNKNOWN"'
	assert_equal "$(field sleeping error)" '"inactive: not checked"'
	assert_equal "$(field sleeping latency_ms)" null
	# Named beside a healthy one: still UNKNOWN, and UNKNOWN beats OK.
	reg_ok ok-a
	health_json sleeping ok-a
	assert_failure 3
	assert_equal "$(statuses)" "$(printf '%s\n' 'ok-a HEALTHY' 'sleeping UNKNOWN')"
}

@test "health: NAMEs select only those rows" {
	reg_ok ok-a
	reg_ok ok-b
	reg closed 127.0.0.1 1 -
	health_json ok-b ok-a
	assert_success
	assert_equal "$(statuses)" "$(printf '%s\n' 'ok-a HEALTHY' 'ok-b HEALTHY')"
}

@test "health: a NAME given twice is checked once" {
	reg_ok ok-a
	health_json ok-a ok-a
	assert_success
	assert_equal "$(statuses)" 'ok-a HEALTHY'
}

@test "health: --type and --region select" {
	reg_ok ok-shared --type SHARED --region eu-west-1
	reg_ok ok-analytics --type ANALYTICS --region us-east-1
	reg closed 127.0.0.1 1 - --type ANALYTICS --region eu-west-1
	health_json --type ANALYTICS
	assert_failure 2
	assert_equal "$(statuses)" "$(printf '%s\n' 'closed UNHEALTHY' 'ok-analytics HEALTHY')"
	health_json --region us-east-1
	assert_success
	assert_equal "$(statuses)" 'ok-analytics HEALTHY'
	health_json --type SHARED --region eu-west-1
	assert_success
	assert_equal "$(statuses)" 'ok-shared HEALTHY'
}

@test "health: --tag selects, every tag given must be there" {
	reg_ok ok-tagged --tag eu --tag prod
	reg_ok ok-half --tag eu
	reg closed 127.0.0.1 1 - --tag prod
	health_json --tag eu
	assert_success
	assert_equal "$(statuses)" "$(printf '%s\n' 'ok-half HEALTHY' 'ok-tagged HEALTHY')"
	health_json --tag eu --tag prod
	assert_success
	assert_equal "$(statuses)" 'ok-tagged HEALTHY'
	health_json --tag prod
	assert_failure 2
	assert_equal "$(statuses)" "$(printf '%s\n' 'closed UNHEALTHY' 'ok-tagged HEALTHY')"
}

@test "health: deregistered rows are not checked" {
	reg_ok ok-a
	reg_ok gone
	"$DBREG" deregister gone >/dev/null 2>&1
	health_json
	assert_success
	assert_equal "$(statuses)" 'ok-a HEALTHY'
	health gone
	assert_failure 3
	assert_output ""
	assert_equal "$stderr" "dbreg: error: no connection named 'gone'"
}

@test "health: an empty selection is UNKNOWN (3), 'no connection matches', in every format" {
	health_json
	assert_failure 3
	assert_equal "$(jq -c '[.summary, .results]' <<<"$output")" \
		'[{"healthy":0,"degraded":0,"unhealthy":0,"unknown":0},[]]'
	assert_equal "$stderr" "dbreg: error: no connection matches the selection"
	health -o nagios
	assert_failure 3
	assert_line --index 0 --regexp '^DBREG UNKNOWN - no connection matches the selection \| healthy=0 degraded=0 unhealthy=0 unknown=0$'
	health
	assert_failure 3
	assert_output ""
	assert_equal "$stderr" "dbreg: error: no connection matches the selection"
}

@test "health: a filter that matches nothing (--type, --region) is UNKNOWN (3), never OK" {
	reg_ok matched --region here
	health --type DEDICATED -o nagios
	assert_failure 3
	assert_output --partial 'DBREG UNKNOWN - no connection matches'
	refute_output --partial 'DBREG OK'
	# A type the registry cannot hold is a mistake, named with the ones it can.
	health --type NOSUCH -o nagios
	assert_failure 3
	assert_output --regexp "^DBREG UNKNOWN - cannot check: --type: no type 'NOSUCH' in this registry; its types: ADMIN, SHARED, ANALYTICS, DEDICATED \\|"
	health --type shared
	assert_failure 3
	assert_equal "$stderr" "dbreg: error: --type: no type 'shared' in this registry; its types: ADMIN, SHARED, ANALYTICS, DEDICATED"
	health --region nowhere
	assert_failure 3
	assert_equal "$stderr" "dbreg: error: no connection matches the selection"
}

@test "health: a failed write to standard output is UNKNOWN (3), as a failed --output is" {
	reg_ok written
	run --separate-stderr bash -c '"$DBREG" health -o json >/dev/full'
	assert_failure 3
	assert_equal "$stderr" "dbreg: error: write failure on standard output: No space left on device"
	run --separate-stderr bash -c '"$DBREG" health -o nagios >/dev/full'
	assert_failure 3
	assert_equal "$stderr" "dbreg: error: write failure on standard output: No space left on device"
}

# ---- keys ------------------------------------------------------------------------------

@test "health: a password under another key is UNKNOWN naming the key id; OLD_KEYS fixes it" {
	local key_a key_b key_a_id
	reg_ok under-a
	key_a=$DB_ENCRYPTION_KEY
	key_a_id=$("$DBREG" show under-a -o json | jq -r .key_id)
	[[ $key_a_id =~ ^[0-9a-f]{8}$ ]] || fail "key id: $key_a_id"
	reg closed 127.0.0.1 1 -
	make_key
	key_b=$DB_ENCRYPTION_KEY
	SECRETS+=("$key_a" "$key_b")

	health_json under-a
	assert_failure 3
	assert_equal "$(field under-a status)" '"UNKNOWN"'
	[[ $(field under-a error) == *"$key_a_id"* ]] || fail "the error does not name key $key_a_id: $(field under-a error)"
	assert_equal "$(registry_field under-a 'last_health_check IS NULL')" t
	# The run goes on: the other rows are checked.
	health_json
	assert_failure 2
	assert_equal "$(statuses)" "$(printf '%s\n' 'closed UNHEALTHY' 'under-a UNKNOWN')"

	export DB_ENCRYPTION_OLD_KEYS=$key_a
	health_json under-a
	assert_success
	assert_equal "$(field under-a status)" '"HEALTHY"'
}

@test "health: a stored password altered by one character is UNKNOWN" {
	reg_ok altered
	reg_ok ok-a
	# One character of the base64 payload (after "dbreg:v1:<8 hex>:") changed.
	psql_admin <<-'EOF'
		UPDATE admin.database_connections
		   SET encrypted_password = overlay(encrypted_password PLACING
		       CASE WHEN substr(encrypted_password, 30, 1) = 'A' THEN 'B' ELSE 'A' END FROM 30 FOR 1)
		 WHERE connection_name = 'altered';
	EOF
	health_json
	assert_failure 3
	assert_equal "$(field altered status)" '"UNKNOWN"'
	[[ $(field altered error) == *"altered"* ]] || fail "$(field altered error)"
	assert_equal "$(field ok-a status)" '"HEALTHY"'
	assert_equal "$(registry_field altered 'last_health_check IS NULL')" t
}

@test "health: without a key, rows with a password are UNKNOWN, rows without one are checked" {
	reg_ok with-pw
	reg closed 127.0.0.1 1 -
	reg no-pw 127.0.0.1 "$PGSANDBOX_PORT" -
	use_pgpass
	unset DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE

	health_json
	assert_failure 2
	assert_equal "$(statuses)" "$(printf '%s\n' 'closed UNHEALTHY' 'no-pw HEALTHY' 'with-pw UNKNOWN')"
	[[ $(field with-pw error) == '"no key'* ]] || fail "$(field with-pw error)"
	health_json with-pw no-pw
	assert_failure 3
}

@test "health: a malformed key is a configuration error (exit 3, reason on stderr)" {
	reg no-pw 127.0.0.1 "$PGSANDBOX_PORT" -
	reg_ok with-pw
	use_pgpass
	export DB_ENCRYPTION_KEY=garbage
	health no-pw
	assert_failure 3
	[[ $stderr == *DB_ENCRYPTION_KEY* ]] || fail "stderr: $stderr"
	health
	assert_failure 3
	[[ $stderr == *DB_ENCRYPTION_KEY* ]] || fail "stderr: $stderr"
}

# ---- write-back ------------------------------------------------------------------------

@test "health: three failures make a row unhealthy; a success makes it healthy again" {
	reg flaky 127.0.0.1 1 "$ADMIN_PW"
	assert_equal "$(registry_field flaky max_consecutive_failures)" 3
	assert_equal "$(registry_field flaky 'last_health_check IS NULL')" t
	local updated run
	updated=$(registry_field flaky updated_at)
	for run in 1 2 3; do
		health flaky
		assert_failure 2
		assert_equal "$(registry_field flaky consecutive_failures)" "$run"
		if [ "$run" -lt 3 ]; then
			assert_equal "$(registry_field flaky is_healthy)" t
		fi
	done
	assert_equal "$(registry_field flaky is_healthy)" f
	assert_equal "$(registry_field flaky 'last_health_check > now() - interval '\''1 minute'\''')" t
	assert_equal "$(registry_field flaky updated_at)" "$updated"

	"$DBREG" update flaky --port "$PGSANDBOX_PORT" >/dev/null
	updated=$(registry_field flaky updated_at)
	psql_admin <<<"UPDATE admin.database_connections SET last_health_check = now() - interval '1 hour'
		WHERE connection_name = 'flaky';"
	health flaky
	assert_success
	assert_equal "$(registry_field flaky consecutive_failures)" 0
	assert_equal "$(registry_field flaky is_healthy)" t
	assert_equal "$(registry_field flaky 'last_health_check > now() - interval '\''1 minute'\''')" t
	assert_equal "$(registry_field flaky updated_at)" "$updated"
}

@test "health: max_consecutive_failures 1 marks a row unhealthy after one failure" {
	reg flaky 127.0.0.1 1 -
	psql_admin <<<"UPDATE admin.database_connections SET max_consecutive_failures = 1
		WHERE connection_name = 'flaky';"
	health flaky
	assert_failure 2
	assert_equal "$(registry_field flaky consecutive_failures)" 1
	assert_equal "$(registry_field flaky is_healthy)" f
}

@test "health: a DEGRADED answer counts as a success in the registry" {
	start_slow_proxy 300
	reg slow 127.0.0.1 "$PROXY_PORT" "$ADMIN_PW"
	psql_admin <<<"UPDATE admin.database_connections SET consecutive_failures = 5, is_healthy = false
		WHERE connection_name = 'slow';"
	health slow --warn-ms 100
	assert_failure 1
	assert_equal "$(registry_field slow consecutive_failures)" 0
	assert_equal "$(registry_field slow is_healthy)" t
}

@test "health: runs do not bump updated_at, and UNKNOWN rows are not written" {
	reg_ok ok-a
	reg closed 127.0.0.1 1 -
	reg_ok sleeping --inactive
	reg_ok altered
	psql_admin <<<"UPDATE admin.database_connections
		SET encrypted_password = overlay(encrypted_password PLACING
		    CASE WHEN substr(encrypted_password, 30, 1) = 'A' THEN 'B' ELSE 'A' END FROM 30 FOR 1)
		WHERE connection_name = 'altered';"
	local before_unknown before_updated
	before_unknown=$(psql_admin <<<"SELECT to_jsonb(d) FROM admin.database_connections d
		WHERE connection_name IN ('sleeping', 'altered') ORDER BY connection_name;")
	before_updated=$(psql_admin <<<"SELECT connection_name, updated_at FROM admin.database_connections
		ORDER BY connection_name;")
	health_json ok-a closed sleeping altered
	assert_failure 2
	health_json ok-a closed sleeping altered --level deep
	assert_failure 2
	assert_equal "$(psql_admin <<<"SELECT to_jsonb(d) FROM admin.database_connections d
		WHERE connection_name IN ('sleeping', 'altered') ORDER BY connection_name;")" "$before_unknown"
	assert_equal "$(psql_admin <<<"SELECT connection_name, updated_at FROM admin.database_connections
		ORDER BY connection_name;")" "$before_updated"
	assert_equal "$(registry_field ok-a 'last_health_check IS NOT NULL')" t
	assert_equal "$(registry_field closed consecutive_failures)" 2
}

@test "health: --no-update leaves every row as it was" {
	reg_ok ok-a
	reg closed 127.0.0.1 1 -
	reg_ok sleeping --inactive
	psql_admin <<<"UPDATE admin.database_connections SET consecutive_failures = 2, is_healthy = false
		WHERE connection_name = 'ok-a';"
	local before
	before=$(snapshot)
	health_json --no-update
	assert_failure 2
	health_json --no-update ok-a closed sleeping --level deep
	assert_failure 2
	assert_equal "$(snapshot)" "$before"
}

@test "health: a failed write-back is reported, the report still printed, exit at least 1" {
	reg_ok ok-a
	reg closed 127.0.0.1 1 -
	psql_super_on "$DBREG_TEST_REGISTRY" <<<"REVOKE UPDATE ON admin.database_connections FROM $DBREG_ADMIN_ROLE;"
	REVOKED=1
	health_json ok-a
	assert_failure 1
	assert_equal "$(field ok-a status)" '"HEALTHY"'
	[[ $stderr == *"not written"* ]] || fail "stderr: $stderr"
	assert_equal "$(registry_field ok-a 'last_health_check IS NULL')" t
	# A worse status stays as it is.
	health -o nagios
	assert_failure 2
	check_nagios 1 0 1 0
	[[ $stderr == *"not written"* ]] || fail "stderr: $stderr"
	assert_equal "$(registry_field closed consecutive_failures)" 0
}

# ---- could not check at all: exit 3 ----------------------------------------------------

@test "health: an unregistered NAME is exit 3 with a message, nothing checked" {
	reg_ok ok-a
	health ok-a nope
	assert_failure 3
	assert_output ""
	assert_equal "$stderr" "dbreg: error: no connection named 'nope'"
	assert_equal "$(registry_field ok-a 'last_health_check IS NULL')" t
}

@test "health: a NAME that breaks the naming rules is exit 3" {
	health 'Not_A_Name'
	assert_failure 3
	assert_output ""
	[ -n "$stderr" ] || fail "no message"
}

@test "health: ADMIN_DATABASE_URL unset is exit 3" {
	unset ADMIN_DATABASE_URL
	health
	assert_failure 3
	assert_output ""
	[[ $stderr == *ADMIN_DATABASE_URL* ]] || fail "stderr: $stderr"
}

@test "health: an unparseable ADMIN_DATABASE_URL is exit 3" {
	export ADMIN_DATABASE_URL='host=127.0.0.1 bogus_keyword=1'
	health
	assert_failure 3
	assert_output ""
	[ -n "$stderr" ] || fail "no message"
}

@test "health: an unreachable admin database is exit 3" {
	export ADMIN_DATABASE_URL="postgresql://$DBREG_ADMIN_ROLE@127.0.0.1:1/none"
	health
	assert_failure 3
	assert_output ""
	[ -n "$stderr" ] || fail "no message"
	# A monitor still gets its answer: Nagios its one status line on stdout...
	health -o nagios
	assert_failure 3
	assert_equal "${#lines[@]}" 1
	assert_output --regexp '^DBREG UNKNOWN - cannot reach the admin database: .* \| healthy=0 degraded=0 unhealthy=0 unknown=0$'
	# ...and a Prometheus file is rewritten, so that a stale one shows the failure.
	local prom=$BATS_TEST_TMPDIR/dbreg.prom
	echo 'dbreg_up{connection="old"} 1' >"$prom"
	health -o prometheus --output "$prom"
	assert_failure 3
	assert_output ""
	grep -qx 'dbreg_health_run_success 0' "$prom" || fail "$(cat "$prom")"
	grep -q '^dbreg_health_run_timestamp_seconds [0-9]' "$prom" || fail "$(cat "$prom")"
	! grep -q 'connection="old"' "$prom" || fail "the stale file was kept"
	health -o nagios --output "$BATS_TEST_TMPDIR/nagios.txt"
	assert_failure 3
	grep -q '^DBREG UNKNOWN - cannot reach' "$BATS_TEST_TMPDIR/nagios.txt" || fail "no status line in the file"
}

@test "health: a registry without the schema is exit 3" {
	scratch_registry
	health
	assert_failure 3
	assert_output ""
	[[ $stderr == *"dbreg init"* ]] || fail "stderr: $stderr"
}

@test "health: bad --level, --timeout, --jobs, --threads, --warn-ms or -o is exit 3" {
	local args
	for args in '--level shallow' '--level' '--timeout 0' '--timeout -1' '--timeout 2s' \
		'--timeout abc' '--jobs 0' '--jobs x' '--threads 0' '--threads 65' '--threads 2x' '--warn-ms 0' '--warn-ms fast' '-o xml' \
		'-o csv' '--format yaml' '--bogus'; do
		# shellcheck disable=SC2086
		health $args
		[ "$status" -eq 3 ] || fail "health $args: exit $status, want 3"
		[ -z "$output" ] || fail "health $args printed: $output"
		[ -n "$stderr" ] || fail "health $args: no message"
	done
}

@test "health: --help exits 0 and names every option" {
	health --help
	assert_success
	local opt
	for opt in --type --region --level --timeout --jobs --warn-ms --no-update --format --output; do
		assert_output --partial -- "$opt"
	done
}

# ---- formats ---------------------------------------------------------------------------

@test "health: JSON has the documented keys, types and counts" {
	start_slow_proxy 300
	reg_ok ok-a
	reg slow 127.0.0.1 "$PROXY_PORT" "$ADMIN_PW"
	reg closed 127.0.0.1 1 -
	reg_ok sleeping --inactive
	health_json ok-a slow closed sleeping --warn-ms 100 --level extended
	assert_failure 2
	assert_equal "$(jq -c .summary <<<"$output")" '{"healthy":1,"degraded":1,"unhealthy":1,"unknown":1}'
	assert_equal "$(statuses)" "$(printf '%s\n' 'closed UNHEALTHY' 'ok-a HEALTHY' 'sleeping UNKNOWN' \
		'slow DEGRADED')"
}

@test "health: Prometheus output follows the exposition format" {
	reg_ok ok-a --type ANALYTICS --region eu-west-1
	reg closed 127.0.0.1 1 -
	reg_ok sleeping --inactive
	health -o prometheus ok-a closed sleeping
	assert_failure 2
	check_prometheus
	assert_equal "$(prom_status ok-a)" HEALTHY
	assert_equal "$(prom_status closed)" UNHEALTHY
	assert_equal "$(prom_status sleeping)" UNKNOWN
	assert_equal "$(jq -c '."ok-a"' <<<"$PROM")" \
		'{"labels":{"region":"eu-west-1","type":"ANALYTICS"},"status":"HEALTHY","up":1}'
	assert_equal "$(jq -c '.closed.up, .sleeping.up' <<<"$PROM")" "$(printf '0\nnull')"
	# Four dbreg_status lines per result, and no sample timestamps (the grammar allows one
	# value only).
	assert_equal "$(grep -c '^dbreg_status{' <<<"$output")" 12
}

@test "health: Prometheus label values are escaped" {
	reg_ok quoted --region 'us"east\1'
	health -o prometheus
	assert_success
	assert_output --partial 'region="us\"east\\1"'
	check_prometheus
	assert_equal "$(jq -r '.quoted.labels.region' <<<"$PROM")" 'us"east\1'
	assert_equal "$(prom_status quoted)" HEALTHY
}

@test "health: Prometheus with an empty selection still has HELP and TYPE" {
	health -o prometheus
	assert_failure 3
	check_prometheus
	assert_equal "$PROM" '{}'
}

@test "health: the table puts failing targets first, then by name, leaves out what the level did not measure, and sums up" {
	reg_ok a-ok
	reg_ok c-ok
	reg b-closed 127.0.0.1 1 -
	reg d-closed 127.0.0.1 1 -
	health
	assert_failure 2
	assert_line --index 0 --regexp '^NAME +STATUS +LATENCY +ERROR$'
	assert_line --index 1 --regexp '^b-closed +UNHEALTHY'
	assert_line --index 2 --regexp '^d-closed +UNHEALTHY'
	assert_line --index 3 --regexp '^a-ok +HEALTHY'
	assert_line --index 4 --regexp '^c-ok +HEALTHY'
	assert_line --index 5 --regexp '^4 checked in [0-9]+\.[0-9] s: 2 healthy, 2 unhealthy$'
	health --level deep
	assert_line --index 0 --regexp '^NAME +STATUS +LATENCY +VERSION +RECOVERY +BACKENDS +ROLE +LAG +CERT +ERROR$'
	health --level deep -o wide
	assert_line --index 0 --regexp '^NAME +STATUS +LATENCY +VERSION +RECOVERY +BACKENDS +ROLE +LAG +LAG BYTES +TLS +CIPHER +CERT +ERROR$'
	health --sort name
	assert_line --index 1 --regexp '^a-ok '
	assert_line --index 2 --regexp '^b-closed '
	# What is shown, not what is checked: the summary and the exit status are the run's.
	health --failing
	assert_failure 2
	assert_equal "${#lines[@]}" 4
	refute_output --partial a-ok
	assert_line --index 3 --regexp '^4 checked in .*: 2 healthy, 2 unhealthy$'
	health --status healthy
	assert_failure 2
	refute_output --partial closed
	# JSON's summary counts the results it comes with.
	health_json --failing
	assert_failure 2
	assert_equal "$(jq -c '[.results[].connection_name]' <<<"$output")" '["b-closed","d-closed"]'
	assert_equal "$(jq -c .summary <<<"$output")" '{"healthy":0,"degraded":0,"unhealthy":2,"unknown":0}'
	health_json --sort status
	assert_equal "$(jq -r '.results[0].status' <<<"$output")" UNHEALTHY
	health_json
	assert_equal "$(jq -c '[.results[].connection_name]' <<<"$output")" '["a-ok","b-closed","c-ok","d-closed"]'
	health --status sick
	assert_failure 3
	[[ $stderr == *"--status: 'sick' is not HEALTHY, DEGRADED, UNHEALTHY or UNKNOWN"* ]] || fail "$stderr"
	health --sort size
	assert_failure 3
}

@test "health: the table is coloured only when asked or on a terminal" {
	reg_ok ok-a
	reg closed 127.0.0.1 1 -
	health
	assert_failure 2
	[[ $output != *$'\e['* ]] || fail "colour without a terminal: $output"
	run --separate-stderr "$DBREG" --color=never health
	[[ $output != *$'\e['* ]] || fail "colour with --color=never: $output"
	run --separate-stderr "$DBREG" --color=always health
	assert_failure 2
	assert_output --partial $'\e[32mHEALTHY\e[0m'
	assert_output --partial $'\e[31mUNHEALTHY\e[0m'
}

@test "health: the coloured table keeps its columns aligned" {
	reg_ok ok-a
	reg closed 127.0.0.1 1 -
	run --separate-stderr "$DBREG" --color=always health
	assert_failure 2
	# Without the escapes, each LATENCY value starts under its header.
	run awk '{ gsub(/\033\[[0-9;]*m/, "") }
		NR == 1 { col = index($0, "LATENCY"); next }
		/ checked in / { next }
		{ if (match($0, /[0-9]+ ms/) != col) { print "row " NR ": at " RSTART ", header at " col; bad = 1 } }
		END { exit bad }' <<<"$output"
	assert_success
}

@test "health: Nagios is one line whose state matches the exit status" {
	start_slow_proxy 300
	reg_ok ok-a
	health -o nagios
	assert_success
	check_nagios 1 0 0 0
	[[ $output == "DBREG OK - "* ]] || fail "$output"

	reg slow 127.0.0.1 "$PROXY_PORT" "$ADMIN_PW"
	health -o nagios --warn-ms 100
	assert_failure 1
	check_nagios 1 1 0 0
	[[ $output == *slow* ]] || fail "does not name the degraded connection: $output"

	reg closed 127.0.0.1 1 -
	health -o nagios --warn-ms 100
	assert_failure 2
	check_nagios 1 1 1 0
	[[ $output == *closed* ]] || fail "does not name the unhealthy connection: $output"

	reg_ok sleeping --inactive
	health -o nagios sleeping ok-a
	assert_failure 3
	check_nagios 1 0 0 1
}

@test "health: --output FILE writes atomically, mode 0644, stdout empty" {
	reg_ok ok-a
	reg closed 127.0.0.1 1 -
	local dir=$BATS_TEST_TMPDIR/textfile
	mkdir "$dir"
	umask 077
	health -o prometheus --output "$dir/dbreg.prom"
	assert_failure 2
	assert_output ""
	assert_equal "$(stat -c %a "$dir/dbreg.prom")" 644
	assert_equal "$(ls -A "$dir")" dbreg.prom
	output=$(cat "$dir/dbreg.prom")
	check_prometheus
	assert_equal "$(prom_status ok-a)" HEALTHY
	assert_equal "$(prom_status closed)" UNHEALTHY

	# Replacing an existing file, private before.
	echo old >"$dir/report.json"
	chmod 600 "$dir/report.json"
	health -o json --output "$dir/report.json" ok-a
	assert_success
	assert_output ""
	assert_equal "$(stat -c %a "$dir/report.json")" 644
	assert_equal "$(ls -A "$dir" | sort | tr '\n' ' ')" 'dbreg.prom report.json '
	output=$(cat "$dir/report.json")
	check_json
	assert_equal "$(statuses)" 'ok-a HEALTHY'

	health -o nagios --output "$dir/nagios.txt" ok-a
	assert_success
	assert_output ""
	run cat "$dir/nagios.txt"
	status=0
	check_nagios 1 0 0 0
	assert_equal "$(ls -A "$dir" | wc -l)" 3
}

@test "health: --output into a directory that does not exist fails cleanly" {
	reg_ok ok-a
	health -o json --output "$BATS_TEST_TMPDIR/missing/report.json"
	[ "$status" -ne 0 ] || fail "exit 0"
	assert_output ""
	[[ $stderr == *missing/report.json* ]] || fail "stderr: $stderr"
}

@test "health: no secret in any format, on stdout or stderr" {
	start_slow_proxy 300
	reg_ok ok-a
	reg bad-pw 127.0.0.1 "$PGSANDBOX_PORT" "$WRONG_PW"
	reg slow 127.0.0.1 "$PROXY_PORT" "$ADMIN_PW"
	local fmt level
	for fmt in table json prometheus nagios; do
		for level in basic deep; do
			# health() fails the test on any secret.
			health -o "$fmt" --level "$level" --warn-ms 100
			assert_failure 2
		done
	done
	health -o json --output "$BATS_TEST_TMPDIR/r.json"
	output=$(cat "$BATS_TEST_TMPDIR/r.json")
	stderr=
	local s
	for s in "${SECRETS[@]}"; do
		assert_no_secret "$s"
	done
}

@test "health: Nagios perfdata has each target's latency with the thresholds, long output each reason" {
	reg_ok ok-a
	reg closed 127.0.0.1 1 -
	health -o nagios --warn-ms 800 --crit-ms 2000
	assert_failure 2
	check_nagios 1 0 1 0
	[[ ${lines[0]} =~ \ \'ok-a\'=[0-9]+\.[0-9]ms\;800\;2000( |$) ]] || fail "no perfdata for ok-a: ${lines[0]}"
	[[ ${lines[0]} =~ \ \'closed\'=[0-9]+\.[0-9]ms\;800\;2000( |$) ]] || fail "no perfdata for closed: ${lines[0]}"
	assert_equal "${lines[1]%%:*}" "closed UNHEALTHY"
	[[ ${lines[1]} == *refused* ]] || fail "long output gives no reason: ${lines[1]}"

	# A target not checked has no latency: the guidelines' U.
	reg_ok sleeping --inactive
	health -o nagios --crit-ms 2000 sleeping
	assert_failure 3
	check_nagios 0 0 0 1
	[[ ${lines[0]} == *" 'sleeping'=U;1000;2000" ]] || fail "${lines[0]}"
	[[ ${lines[1]} == "sleeping UNKNOWN: "?* ]] || fail "${lines[1]}"

	# Without --crit-ms the critical field is empty.
	health -o nagios ok-a
	assert_success
	check_nagios 1 0 0 0
	[[ ${lines[0]} =~ \ \'ok-a\'=[0-9]+\.[0-9]ms\;1000\;$ ]] || fail "${lines[0]}"
}

@test "health: --crit-ms makes a slow answer UNHEALTHY, --warn-ms a less slow one DEGRADED" {
	start_slow_proxy 300
	reg slow 127.0.0.1 "$PROXY_PORT" "$ADMIN_PW"
	health_json --warn-ms 50 --crit-ms 100
	assert_failure 2
	assert_equal "$(statuses)" 'slow UNHEALTHY'
	[[ $(field slow error) == *"slower than 100 ms"* ]] || fail "$(field slow error)"
	health_json --warn-ms 50 --crit-ms 60000
	assert_failure 1
	assert_equal "$(statuses)" 'slow DEGRADED'
	health -o nagios --warn-ms 50 --crit-ms 100
	assert_failure 2
	check_nagios 0 0 1 0
	[[ ${lines[1]} == "slow UNHEALTHY: answered in "*" ms, slower than 100 ms" ]] || fail "${lines[1]}"
}

@test "health: Try --crit-ms below --warn-ms, or not a number" {
	reg_ok ok-a
	health --crit-ms 500
	assert_failure 3
	assert_equal "$stderr" "dbreg: error: --crit-ms (500) is below --warn-ms (1000, the default)
Try 'dbreg health --help' for more information."
	health --crit-ms 50 --warn-ms 100
	assert_failure 3
	[[ $stderr == *"--crit-ms (50) is below --warn-ms (100)"* ]] || fail "$stderr"
	health --crit-ms soon
	assert_failure 3
	[[ $stderr == *--crit-ms* ]] || fail "$stderr"
}

@test "health: the deep level's Prometheus has dbreg_backends, dbreg_max_connections and dbreg_in_recovery" {
	reg_ok ok-a
	reg closed 127.0.0.1 1 -
	health -o prometheus --level deep
	assert_failure 2
	check_prometheus
	local max
	max=$(psql_super -c 'SHOW max_connections')
	assert_line "dbreg_max_connections{connection=\"ok-a\",type=\"SHARED\",region=\"\"} $max"
	assert_line "dbreg_in_recovery{connection=\"ok-a\",type=\"SHARED\",region=\"\"} 0"
	assert_line --regexp '^dbreg_backends\{connection="ok-a",type="SHARED",region=""\} [1-9][0-9]*$'
	assert_line '# TYPE dbreg_backends gauge'
	refute_line --partial 'connection="closed"}'" $max"
	refute_output --partial 'dbreg_backends{connection="closed"'
	# The basic level measures none of them, and does not claim zeros.
	health -o prometheus ok-a
	assert_success
	refute_output --partial dbreg_backends
	refute_output --partial dbreg_in_recovery
	refute_output --partial dbreg_max_connections
}

@test "health: with its admin database stopped, Nagios still says UNKNOWN on stdout and the Prometheus file says the run failed" {
	# An admin database of this test's own, so that it can be stopped; in a directory the
	# server's unprivileged user can reach (the test's own is private to root).
	OWN_ADMIN=$(mktemp -d /tmp/dbreg-admin.XXXXXX)
	chmod 755 "$OWN_ADMIN"
	local env
	env=$("$DBREG_SOURCE_ROOT/scripts/pg-sandbox" start "$OWN_ADMIN/cluster" 2>/dev/null 3>&-) || fail "no second cluster"
	(
		eval "$env"
		"$DBREG" init >/dev/null
		"$DBREG" register own-self --host 127.0.0.1 --port "$PGSANDBOX_PORT" --database platform_admin \
			--user "$DBREG_ADMIN_ROLE" --no-password >/dev/null
	)
	eval "$env"
	local prom=$BATS_TEST_TMPDIR/dbreg.prom
	health -o prometheus --output "$prom"
	assert_success
	grep -qx 'dbreg_health_run_success 1' "$prom" || fail "$(cat "$prom")"

	"$DBREG_SOURCE_ROOT/scripts/pg-sandbox" stop "$OWN_ADMIN/cluster" >/dev/null 2>&1 3>&-
	health -o nagios
	assert_failure 3
	assert_equal "${#lines[@]}" 1
	assert_output --regexp '^DBREG UNKNOWN - cannot reach the admin database: .* \| healthy=0 degraded=0 unhealthy=0 unknown=0$'
	health -o prometheus --output "$prom"
	assert_failure 3
	assert_output ""
	run cat "$prom"
	assert_line 'dbreg_health_run_success 0'
	assert_line --regexp '^dbreg_health_run_timestamp_seconds [0-9]+\.[0-9]+$'
	refute_line --partial 'dbreg_up{'
}
