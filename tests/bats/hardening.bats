#!/usr/bin/env bats
# Hostile targets and clumsy input: a fake PostgreSQL server (tests/fakepg.py) that logs
# in and then answers with a bad shape, errors, garbage or control characters must affect
# that target only; the admin's libpq environment never reaches a target; no message
# carries a password fragment; the admin URL's values are read as libpq reads them; key
# files, control characters, signals, a low open-file limit, deregister --purge.

load helper
load fakepg

# The hostile servers: one per behaviour, all logging in without a password.
MODES=(normal zero-rows few-columns nulls huge garbage-values error error-after-first garbage
	close-after-first hang-after-first fatal-login error-text-escape)

setup_file() {
	fresh_initialized_registry
	have_sandbox || return 0
	local m
	for m in "${MODES[@]}"; do
		fakepg_start "$m" --auth trust --mode "$m"
	done
	# One that asks for a password in clear text and logs what it is sent.
	fakepg_start spy --auth cleartext --notice '\x1b]0;pwned\x07 notice from the target'
	fakepg_start silent --listen-only
}

teardown_file() {
	fakepg_stop
	drop_registry
}

setup() {
	require_sandbox
	make_key
	# What an earlier test left, even one that failed half-way.
	psql_admin <<<"DELETE FROM admin.tenants; DELETE FROM admin.database_connections;"
	ADMIN_PW=$(sandbox_admin_password)
}

# fake NAME MODE-SERVER [REGISTER-ARG...]: register NAME on one of the fake servers.
fake() {
	local name=$1 server=$2 var
	shift 2
	var=FAKEPG_PORT_${server^^}
	var=${var//-/_}
	"$DBREG" register "$name" --host 127.0.0.1 --port "${!var}" --database fake --user fakeuser \
		"${@:---no-password}" >/dev/null
}

# status_of NAME: the status of NAME in the JSON health report in $output.
status_of() {
	jq -r --arg n "$1" '.results[] | select(.connection_name == $n) | .status' <<<"$output"
}
error_of() {
	jq -r --arg n "$1" '.results[] | select(.connection_name == $n) | .error' <<<"$output"
}

spy_log() { cat "$(fakepg_log spy)"; }

# ---- 1. a hostile target affects that target only ---------------------------------------

@test "hardening: every bad answer at --level deep is that target's status; all report, all written back" {
	local m
	for m in "${MODES[@]}"; do
		fake "t-$m" "$m"
	done
	printf '%s\n' "$ADMIN_PW" | "$DBREG" register real --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --password-stdin >/dev/null
	run --separate-stderr "$DBREG" health --level deep --timeout 2 -o json
	assert_failure 2
	assert_equal "$(jq '.results | length' <<<"$output")" $((${#MODES[@]} + 1))
	assert_equal "$(status_of real)" HEALTHY
	assert_equal "$(status_of t-normal)" HEALTHY
	# A failed or malformed SELECT 1 is UNHEALTHY ...
	for m in zero-rows nulls error garbage fatal-login error-text-escape; do
		assert_equal "$m: $(status_of "t-$m")" "$m: UNHEALTHY"
	done
	# ... a failed or malformed extended or deep query after a good one DEGRADED.
	for m in few-columns huge garbage-values error-after-first close-after-first hang-after-first; do
		assert_equal "$m: $(status_of "t-$m")" "$m: DEGRADED"
	done
	[[ $(error_of t-zero-rows) == *"0 rows"* ]] || fail "zero rows: $(error_of t-zero-rows)"
	[[ $(error_of t-error) == *"permission denied for fake"* ]] || fail "error: $(error_of t-error)"
	[[ $(error_of t-few-columns) == *"no column server_version"* ]] || fail "$(error_of t-few-columns)"
	[[ $(error_of t-hang-after-first) == *"no answer within 2000 ms"* ]] || fail "$(error_of t-hang-after-first)"
	# The write-back still happened, for every target.
	assert_equal "$(registry_count 'last_health_check IS NULL')" 0
	assert_equal "$(registry_count 'consecutive_failures = 1')" 6
}

@test "hardening: the same targets at --level basic and in every format; no raw control character" {
	local m
	for m in "${MODES[@]}"; do
		fake "t-$m" "$m"
	done
	run --separate-stderr "$DBREG" health --timeout 2 -o json --no-update
	assert_failure 2
	assert_equal "$(status_of t-few-columns)" HEALTHY
	assert_equal "$(status_of t-hang-after-first)" HEALTHY
	assert_equal "$(status_of t-error-text-escape)" UNHEALTHY
	# JSON escapes control characters by nature.
	[[ $(error_of t-error-text-escape) == *$'bad\e]0;pwned\a'* ]] || fail "$(error_of t-error-text-escape)"
	[[ $output != *$'\e'* ]] || fail "a raw ESC in the JSON text"
	for fmt in table nagios prometheus; do
		run --separate-stderr "$DBREG" --color=never health --timeout 2 --level extended -o "$fmt" --no-update
		assert_failure 2
		[[ $output$stderr != *$'\e'* && $output$stderr != *$'\a'* ]] || fail "$fmt: a raw control character: $output"
	done
	run --separate-stderr "$DBREG" --color=never health --timeout 2 --no-update t-error-text-escape
	assert_output --partial 'bad\x1b]0;pwned\x07 \x1b[2J'
}

@test "hardening: pool-stats and resolve-schema --check read no answer they did not check" {
	local m
	for m in normal zero-rows few-columns nulls huge garbage-values error garbage close-after-first; do
		fake "t-$m" "$m"
	done
	run --separate-stderr "$DBREG" pool-stats -o json
	assert_failure 1
	assert_equal "$(jq '.connections | length' <<<"$output")" 9
	assert_equal "$(jq -r '.connections[] | select(.connection_name == "t-normal") | .error' <<<"$output")" null
	for m in zero-rows few-columns nulls huge garbage-values error garbage; do
		[ "$(jq -r --arg n "t-$m" '.connections[] | select(.connection_name == $n) | .error' <<<"$output")" != null ] ||
			fail "$m: no error"
	done
	# resolve-schema --check on a tenant whose connection is each of them.
	for m in normal zero-rows nulls garbage-values error garbage; do
		psql_admin -v slug="tenant-$m" -v conn="t-$m" <<-'EOF'
			INSERT INTO admin.tenants (slug, name, schema_name, status, database_connection_id)
			SELECT :'slug', :'slug', 'tenant_' || replace(:'slug', '-', '_'), 'active', id
			FROM admin.database_connections WHERE connection_name = :'conn';
		EOF
	done
	run --separate-stderr "$DBREG" resolve-schema tenant-normal --check
	assert_success
	for m in zero-rows nulls garbage-values error garbage; do
		run --separate-stderr "$DBREG" resolve-schema "tenant-$m" --check
		assert_equal "$m: $status" "$m: 1"
		[ -n "$stderr" ] || fail "$m: no message"
		[[ $stderr != *$'\e'* ]] || fail "$m: raw ESC: $stderr"
	done
	psql_admin <<<"DELETE FROM admin.tenants;"
}

# ---- 2. the admin's libpq environment never reaches a target ------------------------------

# with_admin_env COMMAND...: COMMAND with every libpq variable of the admin connection set
# the way an operator's shell might have them, the admin's real password among them.
with_admin_env() {
	local svc=$BATS_TEST_TMPDIR/pg_service.conf
	printf '[leak]\npassword=%s\napplication_name=leak-from-service\n' "$ADMIN_PW" >"$svc"
	PGPASSWORD=$ADMIN_PW PGOPTIONS='-c work_mem=77kB' PGAPPNAME=leak-from-env \
		PGSERVICEFILE=$svc PGSERVICE=leak PGHOSTADDR=127.0.0.2 PGCONNECT_TIMEOUT=5 \
		ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL?hostaddr=127.0.0.1" "$@"
}

# assert_spy_clean: the spy was logged in to, and saw none of the admin's settings.
assert_spy_clean() {
	local log
	log=$(spy_log)
	[[ $log == *'"event": "startup"'* || $log == *'"event":"startup"'* ]] || fail "the spy saw no login: $log"
	[[ $log != *"$ADMIN_PW"* ]] || fail "the admin's password reached a target"
	[[ $log != *work_mem* ]] || fail "PGOPTIONS reached a target: $log"
	[[ $log != *leak-from* ]] || fail "PGAPPNAME or the service reached a target: $log"
}

@test "hardening: health, pool-stats and --check send a target nothing of the admin's environment" {
	fake nopw spy
	fake withpw spy --password-stdin <<<"row-secret-1"
	psql_admin <<-'EOF'
		INSERT INTO admin.tenants (slug, name, schema_name, status, database_connection_id)
		SELECT 'spied-on', 'spied-on', 'tenant_spied_on', 'active', id
		FROM admin.database_connections WHERE connection_name = 'nopw';
	EOF
	fakepg_clear spy
	run --separate-stderr with_admin_env "$DBREG" health -o json
	assert_failure 2
	assert_equal "$(status_of withpw)" HEALTHY
	assert_equal "$(status_of nopw)" UNHEALTHY
	[[ $(error_of nopw) == *"no password supplied"* ]] || fail "$(error_of nopw)"
	assert_spy_clean
	# The stored password went to its own target, and nothing else did.
	assert_equal "$(jq -r 'select(.event == "password") | .password' "$(fakepg_log spy)" | sort -u)" row-secret-1
	fakepg_clear spy
	run --separate-stderr with_admin_env "$DBREG" pool-stats
	assert_spy_clean
	fakepg_clear spy
	run --separate-stderr with_admin_env "$DBREG" resolve-schema spied-on --check
	assert_failure 1
	assert_spy_clean
	psql_admin <<<"DELETE FROM admin.tenants;"
}

@test "hardening: register --test and update --test send a target nothing of the admin's environment" {
	fakepg_clear spy
	run --separate-stderr with_admin_env "$DBREG" register probe --host 127.0.0.1 --port "$FAKEPG_PORT_SPY" \
		--database fake --user fakeuser --no-password --test
	assert_failure 1
	[[ $stderr == *"no password supplied"* ]] || fail "$stderr"
	assert_spy_clean
	assert_equal "$(registry_count)" 0
	fake probe spy
	fakepg_clear spy
	run --separate-stderr with_admin_env "$DBREG" update probe --pool-max 30 --test
	assert_failure 1
	assert_spy_clean
	fakepg_clear spy
	run --separate-stderr with_admin_env "$DBREG" update probe --password-stdin --test <<<"row-secret-2"
	assert_success
	assert_equal "$(jq -r 'select(.event == "password") | .password' "$(fakepg_log spy)")" row-secret-2
	assert_spy_clean
}

@test "hardening: a target's NOTICE and an admin NOTICE never reach the terminal raw" {
	fake noisy spy --password-stdin <<<"row-secret-3"
	psql_super_on_registry() { _psql -X -qAt -v ON_ERROR_STOP=1 -d "${PGSANDBOX_SUPERUSER_URL%/*}/$DBREG_TEST_REGISTRY" "$@"; }
	psql_super_on_registry <<-'EOF'
		DROP TRIGGER IF EXISTS noisy ON admin.database_connections;
		CREATE OR REPLACE FUNCTION admin.noisy() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE NOTICE E'\x1b]0;pwned\x07 from the admin'; RETURN NEW; END $$;
		CREATE TRIGGER noisy BEFORE UPDATE ON admin.database_connections
		FOR EACH ROW EXECUTE FUNCTION admin.noisy();
	EOF
	run --separate-stderr "$DBREG" health
	assert_success
	[[ $output$stderr != *$'\e'* ]] || fail "a raw ESC: $output $stderr"
	run --separate-stderr "$DBREG" update noisy --pool-max 21
	assert_success
	[[ $output$stderr != *$'\e'* ]] || fail "a raw ESC: $output $stderr"
	psql_super_on_registry <<<"DROP TRIGGER noisy ON admin.database_connections; DROP FUNCTION admin.noisy();"
}

# ---- 3. no password fragment in any message ------------------------------------------------

@test "hardening: an unparseable URL with a password shows no part of it (admin URL, validate-config, --url)" {
	local url='host=127.0.0.1 password=correct horse battery staple'
	ADMIN_DATABASE_URL=$url run --separate-stderr "$DBREG" list
	assert_failure 78
	[[ $stderr == *"cannot parse ADMIN_DATABASE_URL"* ]] || fail "$stderr"
	for word in correct horse battery staple; do assert_no_secret "$word"; done
	ADMIN_DATABASE_URL=$url run --separate-stderr "$DBREG" validate-config --offline -o json
	assert_failure 1
	for word in correct horse battery staple; do assert_no_secret "$word"; done
	run --separate-stderr "$DBREG" register x --url "$url" --database d --user u --no-password
	assert_failure 2
	for word in correct horse battery staple; do assert_no_secret "$word"; done
	ADMIN_DATABASE_URL='postgresql://u:sec"ret-part@127.0.0.1:1/d?bad"param=1' run --separate-stderr "$DBREG" list
	assert_failure 78
	assert_no_secret 'ret-part'
	assert_no_secret 'bad"param'
	# Without a password in it, libpq's reason keeps the keyword it names.
	ADMIN_DATABASE_URL='host=127.0.0.1 bogus=1' run --separate-stderr "$DBREG" list
	assert_failure 78
	assert_equal "$stderr" 'dbreg: error: cannot parse ADMIN_DATABASE_URL: invalid connection option "bogus"'
}

# ---- 4, 5. the admin URL's values, as libpq reads them -------------------------------------

@test "hardening: with several hosts, connect_timeout is each host's: a silent first host is left for the next" {
	local url="host=127.0.0.1,127.0.0.1 port=$FAKEPG_PORT_SILENT,$PGSANDBOX_PORT dbname=$DBREG_TEST_REGISTRY"
	url+=" user=$DBREG_ADMIN_ROLE connect_timeout=2"
	ADMIN_DATABASE_URL=$url run --separate-stderr "$DBREG" list --names
	assert_success
	# Both silent: each host's deadline, both named.
	url="host=127.0.0.1,127.0.0.1 port=$FAKEPG_PORT_SILENT,$FAKEPG_PORT_SILENT dbname=d user=u connect_timeout=1"
	ADMIN_DATABASE_URL=$url run --separate-stderr "$DBREG" list
	assert_failure 69
	assert_equal "$stderr" "dbreg: error: cannot connect to the admin database: 127.0.0.1: timeout expired after 2 s; 127.0.0.1: timeout expired after 2 s"
}

@test "hardening: connect_timeout as libpq reads it: not a number is 78 at once, huge is honoured" {
	ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL?connect_timeout=abc" run --separate-stderr "$DBREG" list
	assert_failure 78
	assert_equal "$stderr" 'dbreg: error: ADMIN_DATABASE_URL: invalid integer value "abc" for connection option "connect_timeout"'
	PGCONNECT_TIMEOUT=abc run --separate-stderr "$DBREG" list
	assert_failure 78
	assert_equal "$stderr" 'dbreg: error: PGCONNECT_TIMEOUT: invalid integer value "abc" for connection option "connect_timeout"'
	ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL?connect_timeout=99999999999" run --separate-stderr "$DBREG" list
	assert_failure 78
	for t in 3000000 2147483647 0 1 ' 7 '; do
		ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL?connect_timeout=${t// /%20}" run --separate-stderr "$DBREG" list --names
		assert_equal "connect_timeout=$t: $status $stderr" "connect_timeout=$t: 0 "
	done
}

@test "hardening: bad sslmode, gssencmode, channel_binding, target_session_attrs, keepalives, service are 78" {
	local kv
	for kv in sslmode=often gssencmode=maybe channel_binding=sometimes target_session_attrs=any-old \
		keepalives=abc keepalives_idle=1.5 ssl_min_protocol_version=TLSv9; do
		ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL?$kv" run --separate-stderr "$DBREG" list
		assert_equal "$kv: $status" "$kv: 78"
		[[ $stderr == "dbreg: error: ADMIN_DATABASE_URL: invalid "* ]] || fail "$kv: $stderr"
		[[ $stderr == *"${kv#*=}"* ]] || fail "$kv: the value is not named: $stderr"
	done
	PGSSLMODE=often run --separate-stderr "$DBREG" list
	assert_failure 78
	assert_equal "$stderr" 'dbreg: error: PGSSLMODE: invalid sslmode value: "often"'
	PGSERVICEFILE=/nonexistent ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL?service=nosuch" run --separate-stderr "$DBREG" list
	assert_failure 78
	[[ $stderr == *'definition of service "nosuch" not found'* ]] || fail "$stderr"
	# validate-config says the same, as a finding.
	ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL?gssencmode=maybe" run --separate-stderr "$DBREG" validate-config --offline
	assert_failure 1
	assert_output --partial 'url-value'
}

# ---- 6. key files ------------------------------------------------------------------------

@test "hardening: a FIFO as the key file is refused at once, not waited on" {
	local fifo=$BATS_TEST_TMPDIR/key.fifo
	mkfifo -m 0600 "$fifo"
	unset DB_ENCRYPTION_KEY
	DB_ENCRYPTION_KEY_FILE=$fifo run --separate-stderr timeout 10 "$DBREG" encrypt-password "${V2_TARGET[@]}" --password-stdin <<<"pw"
	assert_failure 78
	assert_equal "$stderr" "dbreg: error: DB_ENCRYPTION_KEY_FILE $fifo: not a regular file"
}

@test "hardening: a key file: white space of any length around the key is ignored, a NUL refused" {
	local file=$BATS_TEST_TMPDIR/key key=$DB_ENCRYPTION_KEY
	unset DB_ENCRYPTION_KEY
	{ head -c 5000 /dev/zero | tr '\0' ' '; printf '\n\t%s\r\n' "$key"; head -c 9000 /dev/zero | tr '\0' '\n'; } >"$file"
	chmod 600 "$file"
	DB_ENCRYPTION_KEY_FILE=$file run --separate-stderr "$DBREG" encrypt-password "${V2_TARGET[@]}" --password-stdin <<<"pw"
	assert_success
	[[ $output =~ $STORED_RE ]] || fail "$output"
	printf '%s\0\n' "$key" >"$file"
	DB_ENCRYPTION_KEY_FILE=$file run --separate-stderr "$DBREG" encrypt-password "${V2_TARGET[@]}" --password-stdin <<<"pw"
	assert_failure 78
	assert_equal "$stderr" "dbreg: error: DB_ENCRYPTION_KEY_FILE $file: the file holds a NUL byte; it must hold the key alone"
	assert_no_secret "$key"
}

@test "hardening: old keys: more than 15 is 'too many old keys'; items counted from 1, empty ones too" {
	local k list=
	for _ in $(seq 16); do
		k=$(head -c32 /dev/urandom | base64 -w0)
		list+=${list:+,}$k
	done
	DB_ENCRYPTION_OLD_KEYS=$list run --separate-stderr "$DBREG" encrypt-password "${V2_TARGET[@]}" --password-stdin <<<"pw"
	assert_failure 78
	assert_equal "$stderr" "dbreg: error: DB_ENCRYPTION_OLD_KEYS: too many old keys (16; at most 15)"
	DB_ENCRYPTION_OLD_KEYS=",,$k,bad" run --separate-stderr "$DBREG" encrypt-password "${V2_TARGET[@]}" --password-stdin <<<"pw"
	assert_failure 78
	assert_equal "$stderr" "dbreg: error: DB_ENCRYPTION_OLD_KEYS: item 4 is not 32 bytes as 64 hex digits or base64"
	DB_ENCRYPTION_OLD_KEYS=",$k,, ,$k," run --separate-stderr "$DBREG" encrypt-password "${V2_TARGET[@]}" --password-stdin <<<"pw"
	assert_success
}

# ---- 7. control characters ---------------------------------------------------------------

@test "hardening: register and update refuse control characters in host, region, database, user, tags" {
	local opt
	for opt in --host --region --database --user --tag; do
		run --separate-stderr "$DBREG" register ctl --host h --database d --user u --no-password "$opt" $'a\e]0;x\ab'
		assert_equal "$opt: $status" "$opt: 2"
		[[ $stderr == *"holds a control character"* ]] || fail "$opt: $stderr"
		[[ $stderr != *$'\e'* ]] || fail "$opt: a raw ESC in the message"
	done
	run --separate-stderr "$DBREG" register ctl --url 'postgresql://u@bad%1bhost/d' --no-password
	assert_failure 2
	[[ $stderr == *"--url: --host: 'bad\x1bhost' holds a control character"* ]] || fail "$stderr"
	assert_equal "$(registry_count)" 0
	"$DBREG" register ctl --host h --database d --user u --no-password
	run --separate-stderr "$DBREG" update ctl --user $'u\n2'
	assert_failure 2
	assert_equal "$(registry_field ctl username)" u
}

@test "hardening: a stored control character is escaped in list, show and health" {
	"$DBREG" register ctl --host 127.0.0.1 --port 1 --database d --user u --no-password
	psql_admin <<<"UPDATE admin.database_connections SET host = E'evil\x1b]0;pwned\x07', region_id = E'r\x1b[2J'"
	for cmd in "list" "list --names" "show ctl" "health --no-update" "validate-config --offline"; do
		# shellcheck disable=SC2086
		run --separate-stderr "$DBREG" --color=never $cmd
		[[ $output$stderr != *$'\e'* && $output$stderr != *$'\a'* ]] || fail "$cmd: a raw control character: $output $stderr"
	done
	run --separate-stderr "$DBREG" show ctl
	assert_line --regexp '^host +evil\\x1b\]0;pwned\\x07$'
}

# ---- 8. signals during --output ------------------------------------------------------------

@test "hardening: SIGINT, SIGTERM or SIGHUP while --output is written leaves no temp file, the old report intact" {
	local dir=$BATS_TEST_TMPDIR/out preload=${DBREG_BUILD_ROOT:-}/tests/libslow-fsync.so sig pid
	[ -f "$preload" ] || skip "no $preload"
	mkdir -p "$dir"
	echo "old report" >"$dir/health.prom"
	"$DBREG" register r1 --host 127.0.0.1 --port 1 --database d --user u --no-password
	for sig in INT TERM HUP; do
		DBREG_SLOW_FSYNC=30 LD_PRELOAD=$preload ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
			"$DBREG" health --no-update -o prometheus --output "$dir/health.prom" 3>&- &
		pid=$!
		# Until the temp file is there, being fsynced.
		for _ in $(seq 200); do
			compgen -G "$dir/.health.prom.*" >/dev/null && break
			sleep 0.05
		done
		compgen -G "$dir/.health.prom.*" >/dev/null || fail "$sig: no temp file ever appeared"
		sleep 0.2
		kill -s "$sig" "$pid"
		wait "$pid" || true
		run ls -A "$dir"
		assert_equal "$sig: $output" "$sig: health.prom"
		assert_equal "$(cat "$dir/health.prom")" "old report"
	done
}

# ---- 9. a low descriptor limit ------------------------------------------------------------

# with_fd_limit N COMMAND...: COMMAND with only 0, 1 and 2 open and at most N descriptors.
with_fd_limit() {
	bash -c 'for fd in $(ls /proc/$$/fd); do ((fd > 2)) && eval "exec $fd>&-"; done
		ulimit -n "$0" && exec "$@"' "$@"
}

@test "hardening: under 'ulimit -n 24', 60 targets are all checked, fewer at a time, said once" {
	# The sandbox's password file logs each of them in.
	psql_admin -v port="$PGSANDBOX_PORT" -v db="$DBREG_TEST_REGISTRY" -v user="$DBREG_ADMIN_ROLE" <<-'EOF'
		INSERT INTO admin.database_connections (connection_name, connection_type, host, port, database_name, username)
		SELECT 'many-' || i, 'SHARED', '127.0.0.1', :port, :'db', :'user' FROM generate_series(1, 60) AS i;
	EOF
	run --separate-stderr with_fd_limit 24 "$DBREG" health -o json
	assert_success
	assert_equal "$(jq '.summary.healthy' <<<"$output")" 60
	assert_equal "$(grep -c 'open-file limit' <<<"$stderr")" 1
	[[ $stderr == *"dbreg: warning: the open-file limit (24) leaves room for "* ]] || fail "$stderr"
}

@test "hardening: a target that cannot get a descriptor is UNKNOWN and not written back" {
	[ -z "${ASAN_OPTIONS-}" ] || skip "the sanitizers' runtime needs descriptors of its own"
	local url
	url="postgresql://$DBREG_ADMIN_ROLE:$ADMIN_PW@127.0.0.1:$PGSANDBOX_PORT/$DBREG_TEST_REGISTRY"
	"$DBREG" register starved --host 127.0.0.1 --port "$PGSANDBOX_PORT" --database d --user u --no-password
	# 0, 1, 2 and the admin connection: no descriptor left for the target.
	ADMIN_DATABASE_URL=$url run --separate-stderr with_fd_limit 4 "$DBREG" health -o json
	assert_failure 3
	assert_equal "$(status_of starved)" UNKNOWN
	[[ $(error_of starved) == *"Too many open files"* ]] || fail "$(error_of starved)"
	assert_equal "$(registry_field starved 'last_health_check IS NULL')" t
	assert_no_secret "$ADMIN_PW"
}

# ---- 10. deregister --purge --------------------------------------------------------------

@test "hardening: deregister --purge is not refused for tenants of an older, deleted row of the same name" {
	"$DBREG" register reused --host h --database d --user u --no-password
	psql_admin <<-'EOF'
		INSERT INTO admin.tenants (slug, name, schema_name, status, database_connection_id)
		SELECT 'old-tenant', 'old', 'tenant_old_tenant', 'active', id
		FROM admin.database_connections WHERE connection_name = 'reused';
	EOF
	"$DBREG" deregister reused 2>/dev/null
	"$DBREG" register reused --host h2 --database d --user u --no-password
	run --separate-stderr "$DBREG" deregister reused --purge
	assert_success
	assert_equal "$(registry_count "connection_name = 'reused'")" 1
	# The live row it does point at still refuses.
	"$DBREG" register reused --host h3 --database d --user u --no-password
	psql_admin <<<"UPDATE admin.tenants SET database_connection_id = (SELECT id FROM admin.database_connections
		WHERE connection_name = 'reused' AND deleted_at IS NULL);"
	run --separate-stderr "$DBREG" deregister reused --purge
	assert_failure 1
	[[ $stderr == *"still used by 1 tenant (old-tenant)"* ]] || fail "$stderr"
	psql_admin <<<"DELETE FROM admin.tenants;"
}

# ---- validate-config: a wildcard host in the password file -----------------------------------

@test "hardening: validate-config warns passfile-wildcard for a '*' host line in the password file" {
	local pass=$BATS_TEST_TMPDIR/pgpass
	{ cat "$PGPASSFILE"; echo '*:*:*:fakeuser:handed-to-everyone'; } >"$pass"
	chmod 600 "$pass"
	PGPASSFILE=$pass run --separate-stderr "$DBREG" validate-config --offline -o json
	assert_equal "$(jq -r '.findings[] | select(.code == "passfile-wildcard") | .severity' <<<"$output")" warning
	assert_no_secret handed-to-everyone
	PGPASSFILE=$pass run --separate-stderr "$DBREG" validate-config --offline --strict
	assert_failure 1
}
