#!/usr/bin/env bats
# dbreg health --level deep against real servers, no mocks: the role of a primary and of
# its streaming standby (scripts/pg-sandbox standby) against what the registry says
# (metadata.expected_role on dbreg's own shape; the platform's enum types are in
# platform.bats), the standby's replay lag with its replay paused, and TLS as negotiated
# on a cluster of the test's own with certificates the test makes with openssl (one
# expiring in 10 days, one expired).  Only 127.0.0.1.

load helper

setup_file() {
	fresh_initialized_registry
	have_sandbox || return 0
	"$DBREG_SOURCE_ROOT/scripts/pg-sandbox" standby "$PGSANDBOX_DIR" >/dev/null 2>&1 3>&- || return 1
	PGSANDBOX_STANDBY_PORT=$(cat "$PGSANDBOX_DIR/standby.port")
	export PGSANDBOX_STANDBY_PORT
}

teardown_file() {
	drop_registry
}

setup() {
	require_sandbox
	command -v jq >/dev/null || skip "jq is not installed"
	psql_admin <<<"DELETE FROM admin.database_connections;"
	make_key
	ADMIN_PW=$(sandbox_admin_password)
	SECRETS=("$ADMIN_PW" "$DB_ENCRYPTION_KEY")
}

teardown() {
	if [ -n "${PAUSED-}" ]; then
		psql_standby <<<"SELECT pg_wal_replay_resume();" >/dev/null || true
	fi
	if [ -n "${TLS_DIR-}" ]; then
		"$DBREG_SOURCE_ROOT/scripts/pg-sandbox" stop "$TLS_DIR/cluster" >/dev/null 2>&1 3>&- || true
		rm -rf "$TLS_DIR"
	fi
}

# ---- helpers ---------------------------------------------------------------------------

# reg NAME PORT [REGISTER-OPTION...]: 127.0.0.1:PORT, the test registry's database, as
# dbreg_admin with its password (the same on the standby: it is replicated).
reg() {
	local name=$1 port=$2
	shift 2
	printf '%s\n' "$ADMIN_PW" | "$DBREG" register "$name" --host 127.0.0.1 --port "$port" \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --password-stdin "$@" >/dev/null
}

# set_role NAME JSON: the row's metadata.expected_role (register has no option for it).
set_role() {
	psql_admin -v "n=$1" -v "r=$2" <<<"UPDATE admin.database_connections
		SET metadata = coalesce(metadata, '{}') || jsonb_build_object('expected_role', :'r'::jsonb)
		WHERE connection_name = :'n';"
}

psql_standby() {
	_psql -X -qAt -v ON_ERROR_STOP=1 -d "host=127.0.0.1 port=$PGSANDBOX_STANDBY_PORT user=postgres dbname=postgres" "$@"
}

# caught_up: wait until the standby has replayed all the primary has written.
caught_up() {
	local lsn i
	lsn=$(psql_super <<<"SELECT pg_current_wal_lsn();")
	for ((i = 0; i < 100; i++)); do
		[ "$(psql_standby -v "l=$lsn" <<<"SELECT pg_last_wal_replay_lsn() >= :'l'::pg_lsn;")" = t ] && return 0
		sleep 0.1
	done
	fail "the standby did not catch up with $lsn"
}

# health [ARG...]: dbreg health --no-update, stdout and stderr apart; no secret in either.
health() {
	local s
	run --separate-stderr "$DBREG" health --no-update "$@"
	for s in "${SECRETS[@]}"; do
		[ -n "$s" ] && assert_no_secret "$s"
	done
	return 0
}

# field NAME FILTER: FILTER on NAME's result in the JSON report on $output (jq -c).
field() {
	jq -c --arg n "$1" ".results[] | select(.connection_name == \$n) | $2" <<<"$output"
}

# ---- role and lag ----------------------------------------------------------------------

@test "health deep: a primary and its streaming standby, registered as such, are HEALTHY; the standby has lag figures" {
	reg prim "$PGSANDBOX_PORT"
	reg stby "$PGSANDBOX_STANDBY_PORT"
	set_role prim '"primary"'
	set_role stby '"replica"'
	caught_up
	health --level deep -o json
	assert_success
	assert_equal "$(field prim '[.status, .expected_role, .in_recovery, .replay_lag_seconds, .replay_lag_bytes]')" \
		'["HEALTHY","primary",false,null,null]'
	assert_equal "$(field stby '[.status, .expected_role, .in_recovery, .error]')" '["HEALTHY","replica",true,null]'
	# Caught up: no bytes to replay to speak of, and a delay only while something is in flight.
	field stby '.replay_lag_bytes | type == "number" and . >= 0 and floor == .' | grep -qx true || fail "$output"
	field stby '.replay_lag_seconds | . == null or (type == "number" and . >= 0 and . < 300)' | grep -qx true ||
		fail "$output"
	# Neither is TLS (the sandbox has none): measured, and false.
	assert_equal "$(field prim '[.tls_in_use, .tls_protocol, .tls_cipher, .cert_not_after]')" '[false,null,null,null]'
	# The table shows the registered role; the extended level does not measure the lag.
	health --level deep prim stby
	assert_success
	assert_line --index 0 --regexp '^NAME +STATUS +LATENCY +VERSION +RECOVERY +BACKENDS +ROLE +LAG +CERT +ERROR$'
	assert_line --regexp '^prim +HEALTHY .* no +[0-9]+/[0-9]+ +primary +- +- +-$'
	assert_line --regexp '^stby +HEALTHY .* yes +[0-9]+/[0-9]+ +replica +'
	health --level extended -o json
	assert_success
	assert_equal "$(field stby '[.expected_role, .replay_lag_bytes, .tls_in_use]')" '["replica",null,null]'
}

@test "health deep: a 'primary' on the standby and a 'replica' on the primary are DEGRADED, naming both roles" {
	reg prim "$PGSANDBOX_PORT"
	reg stby "$PGSANDBOX_STANDBY_PORT"
	set_role prim '"replica"'
	set_role stby '"Primary"'
	health --level deep -o json
	assert_failure 1
	assert_equal "$(field stby '[.status, .expected_role, .error]')" \
		'["DEGRADED","primary","registered as primary but the server is in recovery (a standby)"]'
	assert_equal "$(field prim '[.status, .expected_role, .error]')" \
		'["DEGRADED","replica","registered as replica but the server is not in recovery (promoted?)"]'
	health --level deep -o nagios
	assert_failure 1
	assert_line "stby DEGRADED: registered as primary but the server is in recovery (a standby)"
	# The role is the deep level's check: extended reports what the registry says, and judges nothing.
	health --level extended -o json
	assert_success
	assert_equal "$(field stby .expected_role)" '"primary"'
}

@test "health deep: an expected_role that is neither word is DEGRADED saying so; one that is not a string is none" {
	reg prim "$PGSANDBOX_PORT"
	reg other "$PGSANDBOX_PORT"
	set_role prim '"master"'
	set_role other '5'
	health --level deep -o json
	assert_failure 1
	assert_equal "$(field prim '[.status, .error]')" \
		'["DEGRADED","metadata.expected_role is \"master\", neither primary nor replica: the role is not checked"]'
	assert_equal "$(field other '[.status, .expected_role]')" '["HEALTHY",null]'
}

@test "health deep: a standby whose replay is paused lags; above --lag-warn it is DEGRADED with the seconds and bytes" {
	reg stby "$PGSANDBOX_STANDBY_PORT"
	set_role stby '"replica"'
	# A commit the standby replays, then none: its last replayed transaction is this one.
	psql_super <<<"SELECT txid_current();" >/dev/null
	caught_up
	PAUSED=1
	psql_standby <<<"SELECT pg_wal_replay_pause();" >/dev/null
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(psql_standby <<<"SELECT pg_get_wal_replay_pause_state();")" = paused ] && break
		sleep 0.1
	done
	# Another commit, received but not replayed.
	psql_super <<<"SELECT txid_current();" >/dev/null
	for ((i = 0; i < 100; i++)); do
		[ "$(psql_standby <<<"SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn();")" = t ] && break
		sleep 0.1
	done
	sleep 2.2
	health --level deep -o json --lag-warn 1
	assert_failure 1
	assert_equal "$(field stby .status)" '"DEGRADED"'
	field stby '.replay_lag_seconds >= 2 and .replay_lag_bytes > 0' | grep -qx true || fail "$output"
	[[ $(field stby .error) =~ ^\"replaying\ [0-9]+\.[0-9]\ s\ behind\ \([0-9]+\ bytes\ received\ but\ not\ replayed\),\ more\ than\ --lag-warn\ 1\ s\"$ ]] ||
		fail "$(field stby .error)"
	# The default (300 s) and a duration with a unit are not passed.
	health --level deep -o json
	assert_success
	health --level deep -o json --lag-warn 1m
	assert_success
	assert_equal "$(field stby .status)" '"HEALTHY"'
	# The table's LAG and Prometheus's gauge (on a standby only).
	health --level deep --lag-warn 1
	assert_failure 1
	assert_line --regexp '^stby +DEGRADED .* replica +[0-9]+\.[0-9] s +- +replaying '
	health --level deep -o prometheus
	assert_success
	assert_line --regexp '^dbreg_replication_lag_seconds\{connection="stby",type="SHARED",region=""\} [0-9.]+$'
	assert_line '# TYPE dbreg_replication_lag_seconds gauge'

	psql_standby <<<"SELECT pg_wal_replay_resume();" >/dev/null
	unset PAUSED
	caught_up
	health --level deep -o json --lag-warn 1
	assert_success
}

# ---- TLS -------------------------------------------------------------------------------

# make_certs DIR: a CA and two server certificates by it in DIR: near.crt expires in 10
# days, expired.crt expired in 2020 (openssl req cannot backdate; openssl ca can).
make_certs() {
	local d=$1
	mkdir -p "$d/newcerts"
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	cat >"$d/ca.cnf" <<-EOF
		[ ca ]
		default_ca = test_ca
		[ test_ca ]
		database = $d/index.txt
		new_certs_dir = $d/newcerts
		certificate = $d/ca.crt
		private_key = $d/ca.key
		serial = $d/serial
		default_md = sha256
		policy = any
		unique_subject = no
		copy_extensions = none
		[ any ]
		commonName = supplied
	EOF
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -days 30 \
		-subj "/CN=dbreg test CA" 2>/dev/null &&
		openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" \
			-subj "/CN=127.0.0.1" 2>/dev/null &&
		openssl ca -batch -config "$d/ca.cnf" -in "$d/server.csr" -out "$d/near.crt" -days 10 \
			>/dev/null 2>&1 &&
		openssl ca -batch -config "$d/ca.cnf" -in "$d/server.csr" -out "$d/expired.crt" \
			-startdate 20200101000000Z -enddate 20200201000000Z >/dev/null 2>&1
}

# tls_use CERT: the TLS cluster serves CERT (and server.key), once its postmaster has
# reloaded (a new connection shows it).
tls_use() {
	local want i
	want=$(openssl x509 -in "$TLS_DIR/ca/$1" -noout -enddate)
	PGPASSFILE=$TLS_DIR/cluster/pgpass _psql -X -qAt -v ON_ERROR_STOP=1 \
		-d "host=127.0.0.1 port=$TLS_PORT user=postgres dbname=postgres" -v "c=$TLS_DIR/cluster/$1" \
		-v "k=$TLS_DIR/cluster/server.key" >/dev/null <<-'EOF'
			ALTER SYSTEM SET ssl_cert_file = :'c';
			ALTER SYSTEM SET ssl_key_file = :'k';
			ALTER SYSTEM SET ssl = on;
			SELECT pg_reload_conf();
		EOF
	for ((i = 0; i < 50; i++)); do
		[ "$(openssl s_client -starttls postgres -connect "127.0.0.1:$TLS_PORT" </dev/null 2>/dev/null |
			openssl x509 -noout -enddate 2>/dev/null)" = "$want" ] && return 0
		sleep 0.1
	done
	fail "the TLS cluster does not serve $1"
}

# not_after CERT: CERT's notAfter as dbreg prints it (RFC 3339, UTC).
not_after() {
	date -u -d "$(openssl x509 -in "$TLS_DIR/ca/$1" -noout -enddate | sed 's/^notAfter=//')" +%Y-%m-%dT%H:%M:%SZ
}

@test "health deep: TLS as negotiated; a certificate expiring in 10 days is DEGRADED, an expired one UNHEALTHY" {
	command -v openssl >/dev/null || skip "openssl is not installed"
	# A cluster of this test's own, in a directory its server user can reach.
	TLS_DIR=$(mktemp -d /tmp/dbreg-tls.XXXXXX)
	chmod 755 "$TLS_DIR"
	make_certs "$TLS_DIR/ca" || fail "openssl could not make the certificates"
	local env
	env=$("$DBREG_SOURCE_ROOT/scripts/pg-sandbox" start "$TLS_DIR/cluster" 2>/dev/null 3>&-) || fail "no TLS cluster"
	TLS_PORT=$(cat "$TLS_DIR/cluster/port")
	local user tls_pw
	user=$(cat "$TLS_DIR/cluster/server_user")
	tls_pw=$(cat "$TLS_DIR/cluster/admin.password")
	SECRETS+=("$tls_pw")
	cp "$TLS_DIR/ca/near.crt" "$TLS_DIR/ca/expired.crt" "$TLS_DIR/ca/server.key" "$TLS_DIR/cluster/"
	chmod 600 "$TLS_DIR/cluster/server.key"
	[ "$user" = "$(id -un)" ] || chown "$user:" "$TLS_DIR/cluster/"{near.crt,expired.crt,server.key}
	tls_use near.crt

	printf '%s\n' "$tls_pw" | "$DBREG" register tls-near --host 127.0.0.1 --port "$TLS_PORT" \
		--database platform_admin --user "$DBREG_ADMIN_ROLE" --ssl-mode require --password-stdin >/dev/null
	printf '%s\n' "$tls_pw" | "$DBREG" register tls-off --host 127.0.0.1 --port "$TLS_PORT" \
		--database platform_admin --user "$DBREG_ADMIN_ROLE" --ssl-mode disable --password-stdin >/dev/null
	local near
	near=$(not_after near.crt)
	health --level deep -o json
	assert_failure 1
	assert_equal "$(field tls-near '[.status, .tls_in_use, .tls_protocol, .cert_not_after]')" \
		"[\"DEGRADED\",true,\"TLSv1.3\",\"$near\"]"
	assert_equal "$(field tls-near .error)" \
		"\"the server certificate expires on $near, in 10 days (--cert-warn-days 30)\""
	field tls-near '.tls_cipher | type == "string" and length > 0' | grep -qx true || fail "$output"
	assert_equal "$(field tls-off '[.status, .tls_in_use, .tls_protocol, .tls_cipher, .cert_not_after]')" \
		'["HEALTHY",false,null,null,null]'
	# Below the threshold it is no longer a warning.
	health --level deep -o json --cert-warn-days 9
	assert_success
	assert_equal "$(field tls-near '[.status, .cert_not_after]')" "[\"HEALTHY\",\"$near\"]"
	# The table shows the day; -o wide the protocol and cipher; Prometheus the epoch.
	health --level deep tls-near
	assert_failure 1
	assert_line --regexp "^tls-near +DEGRADED .* ${near%%T*} +the server certificate expires on "
	health --level deep -o wide tls-near tls-off
	assert_line --regexp '^tls-near +DEGRADED .* TLSv1\.3 +[A-Z0-9_-]+ +'
	assert_line --regexp '^tls-off +HEALTHY .* no +- +- +-$'
	health --level deep -o prometheus
	assert_line "dbreg_cert_expiry_timestamp_seconds{connection=\"tls-near\",type=\"SHARED\",region=\"\"} $(date -u -d "$near" +%s)"
	refute_line --partial 'dbreg_cert_expiry_timestamp_seconds{connection="tls-off"'
	# TLS is the deep level's: extended leaves it unmeasured.
	health --level extended -o json
	assert_success
	assert_equal "$(field tls-near '[.tls_in_use, .cert_not_after]')" '[null,null]'

	tls_use expired.crt
	health --level deep -o json
	assert_failure 2
	assert_equal "$(field tls-near '[.status, .tls_in_use, .cert_not_after, .error]')" \
		'["UNHEALTHY",true,"2020-02-01T00:00:00Z","the server certificate expired on 2020-02-01T00:00:00Z"]'
	assert_equal "$(field tls-off .status)" '"HEALTHY"'
	health --level deep -o nagios tls-near
	assert_failure 2
	assert_line "tls-near UNHEALTHY: the server certificate expired on 2020-02-01T00:00:00Z"
}

# ---- options ---------------------------------------------------------------------------

@test "health deep: --cert-warn-days and --lag-warn refuse what they cannot read (exit 3)" {
	local bad
	for bad in 0 3651 x 1.5; do
		health --cert-warn-days "$bad"
		assert_failure 3
		[[ $stderr == *"--cert-warn-days: '$bad' is not a whole number from 1 to 3650"* ]] || fail "$stderr"
	done
	for bad in 0 5x 1.5m -1; do
		health --lag-warn "$bad"
		assert_failure 3
		[[ $stderr == *"--lag-warn: '$bad' is not a duration"* ]] || fail "$stderr"
	done
	health --help
	assert_success
	assert_output --partial --cert-warn-days
	assert_output --partial --lag-warn
}
