#!/usr/bin/env bats
# dbreg rotate-password: a new random password set on the connection's own server (a SCRAM
# verifier computed by dbreg) and in the registry, crash-safe: killed between any two steps, the
# next run completes or starts over, and health logs in meanwhile.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper
load platform
load fakepg

setup() {
	require_sandbox
	fresh_initialized_registry
	unset DB_ENCRYPTION_KEY_FILE DB_ENCRYPTION_OLD_KEYS DB_FERNET_PASSPHRASE_FILE DBREG_TEST_CRASH_AFTER
	make_key
	# A role of this test's own, on the sandbox, with a database it owns.
	ROLE=rot_$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
	OLD_PW=old-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
	role_create "$ROLE" "$ROLE" "$OLD_PW"
	printf '%s\n' "$OLD_PW" | "$DBREG" register rot --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database "$ROLE" --user "$ROLE" --password-stdin >/dev/null
}

teardown() {
	fakepg_stop
	role_drop "${ROLE-}" "${ROLE-}"
	drop_registry
}

# logs_in PASSWORD: does the server take PASSWORD for ROLE?
logs_in() {
	PGPASSWORD=$1 _psql -X -qAt -w -d "host=127.0.0.1 port=$PGSANDBOX_PORT dbname=$ROLE user=$ROLE" \
		-c 'SELECT 1' >/dev/null 2>&1
}

# stored_pw: the password the registry holds for rot now, decrypted the way dbreg connects
# (the pgpass text export writes for it: host:port:db:user:password).
stored_pw() {
	local f=$BATS_TEST_TMPDIR/pgpass
	"$DBREG" export --pgpass "$f" --force rot >/dev/null 2>&1 || return 1
	grep -v '^#' "$f" | tail -1 | cut -d: -f5-
}

pending() {
	psql_admin <<<"SELECT count(*) FROM admin.dbreg_pending_rotations"
}

health_status() {
	"$DBREG" health rot --no-update -o json | jq -r '.results[0].status'
}

@test "rotate-password: sets a new SCRAM password on the server and in the registry; the old one is refused" {
	local before
	before=$(registry_field rot encrypted_password)
	run --separate-stderr "$DBREG" rotate-password rot
	assert_success
	assert_output "rotated rot"
	assert_equal "$stderr" ""
	local new
	new=$(stored_pw)
	[ "${#new}" -eq 32 ] || fail "a password of ${#new} characters"
	[[ $new =~ ^[A-Za-z0-9_-]+$ ]] || fail "not URL-safe"
	[ "$(registry_field rot encrypted_password)" != "$before" ] || fail "the registry kept the old one"
	[[ $(registry_field rot encrypted_password) =~ $STORED_RE ]] || fail "not stored as v2"
	! logs_in "$OLD_PW" || fail "the old password still logs in"
	logs_in "$new" || fail "the new password does not log in"
	# The server holds a SCRAM verifier, never the plaintext.
	assert_equal "$(psql_super -v "r=$ROLE" <<<"SELECT rolpassword LIKE 'SCRAM-SHA-256\$%' FROM pg_authid WHERE rolname = :'r'")" t
	assert_equal "$(pending)" 0
	assert_equal "$(health_status)" HEALTHY
	# --length; again and again, each a fresh password.
	run --separate-stderr "$DBREG" rotate-password rot --length 20
	assert_success
	local newer
	newer=$(stored_pw)
	[ "${#newer}" -eq 20 ] && [ "$newer" != "$new" ] || fail "--length 20 gave '${#newer}' characters"
	logs_in "$newer" || fail "the newer password does not log in"
}

@test "rotate-password: --dry-run logs in and checks, and changes nothing" {
	local before
	before=$(registry_field rot encrypted_password)
	run --separate-stderr "$DBREG" rotate-password rot --dry-run
	assert_success
	assert_output "would rotate rot"
	assert_equal "$(registry_field rot encrypted_password)" "$before"
	logs_in "$OLD_PW" || fail "the server's password changed"
	assert_equal "$(pending)" 0
}

@test "rotate-password: killed after the server took the new password, health still logs in and the next run completes" {
	local before
	before=$(registry_field rot encrypted_password)
	DBREG_TEST_CRASH_AFTER=2 run --separate-stderr "$DBREG" rotate-password rot
	assert_failure 137
	assert_equal "$(pending)" 1
	assert_equal "$(registry_field rot encrypted_password)" "$before"
	! logs_in "$OLD_PW" || fail "the server kept the old password"
	# health: the stored password is refused, the pending one logs in, and it says so.
	run --separate-stderr "$DBREG" health rot --no-update -o json
	assert_success
	assert_equal "$(jq -r '.results[0].status' <<<"$output")" HEALTHY
	[[ $stderr == *"connection 'rot': logged in with the pending password of an unfinished rotate-password"* ]] ||
		fail "not said: $stderr"
	# A password write meanwhile is refused: the rotation must be finished first.
	run --separate-stderr "$DBREG" update rot --password-stdin <<<"other-pw"
	assert_failure 1
	[[ $stderr == *"a password rotation did not finish; run 'dbreg rotate-password rot'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" rotate-password rot
	assert_success
	assert_output "rotated rot"
	[[ $stderr == *"the server had its password, which is now stored"* ]] || fail "$stderr"
	assert_equal "$(pending)" 0
	logs_in "$(stored_pw)" || fail "the stored password does not log in"
	run --separate-stderr "$DBREG" health rot --no-update -o json
	assert_equal "$(jq -r '.results[0].status' <<<"$output")" HEALTHY
	assert_equal "$stderr" ""
}

@test "rotate-password: killed before ALTER ROLE, the next run discards the record and rotates" {
	DBREG_TEST_CRASH_AFTER=1 run --separate-stderr "$DBREG" rotate-password rot
	assert_failure 137
	assert_equal "$(pending)" 1
	logs_in "$OLD_PW" || fail "the server's password changed"
	assert_equal "$(health_status)" HEALTHY
	run --separate-stderr "$DBREG" rotate-password rot
	assert_success
	assert_output "rotated rot"
	[[ $stderr == *"the server never took its password, so it was discarded"* ]] || fail "$stderr"
	assert_equal "$(pending)" 0
	! logs_in "$OLD_PW" || fail "the old password still logs in"
	logs_in "$(stored_pw)" || fail "the stored password does not log in"
}

@test "rotate-password: killed after the fresh login, the next run stores it; rotate-key meanwhile re-encrypts the record" {
	DBREG_TEST_CRASH_AFTER=3 run --separate-stderr "$DBREG" rotate-password rot
	assert_failure 137
	local record
	record=$(psql_admin <<<"SELECT encrypted_password FROM admin.dbreg_pending_rotations")
	# A new key: the pending record follows it, as the stored passwords do.
	local old=$DB_ENCRYPTION_KEY
	DB_ENCRYPTION_KEY=$("$DBREG" generate-key)
	DB_ENCRYPTION_OLD_KEYS=$old run --separate-stderr "$DBREG" rotate-key
	assert_success
	[[ $output == "rotated into dbreg: 2 from key "* ]] || fail "$output"
	[ "$(psql_admin <<<"SELECT encrypted_password FROM admin.dbreg_pending_rotations")" != "$record" ] ||
		fail "the pending record was not re-encrypted"
	run --separate-stderr "$DBREG" rotate-password rot
	assert_success
	assert_equal "$(pending)" 0
	logs_in "$(stored_pw)" || fail "the stored password does not log in"
}

@test "rotate-password: a second run, or an update of the password, is refused while one holds the rotation lock" {
	local id fifo fd
	id=$(registry_field rot id)
	fifo=$BATS_TEST_TMPDIR/hold
	mkfifo "$fifo"
	# Another session holds the connection's lock, as a running rotate-password does.
	psql_admin -v "id=$id" <"$fifo" >/dev/null &
	exec {fd}>"$fifo"
	echo "SELECT pg_advisory_lock(431149, hashtext('$id'));" >&"$fd"
	local i
	for i in $(seq 50); do
		[ "$(psql_admin <<<"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" -gt 0 ] && break
		sleep 0.1
	done
	run --separate-stderr "$DBREG" rotate-password rot
	assert_failure 1
	[[ $stderr == *"connection 'rot': rotation in progress"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" update rot --password-stdin <<<"other-pw"
	assert_failure 1
	[[ $stderr == *"rotation in progress"* ]] || fail "$stderr"
	exec {fd}>&-
	wait
	logs_in "$OLD_PW" || fail "the server's password changed"
	run --separate-stderr "$DBREG" rotate-password rot
	assert_success
}

@test "rotate-password: Try it on a row without a password, a pooler's, a shared user, an unknown name, with bad options" {
	"$DBREG" register nopw --host 127.0.0.1 --port "$PGSANDBOX_PORT" --database d --user u --no-password >/dev/null
	run --separate-stderr "$DBREG" rotate-password nopw
	assert_failure 1
	[[ $stderr == *"connection 'nopw' has no stored password to rotate"* ]] || fail "$stderr"

	printf '%s\n' "$OLD_PW" | "$DBREG" register bouncer --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database pgbouncer --user "$ROLE" --password-stdin >/dev/null
	run --separate-stderr "$DBREG" rotate-password bouncer
	assert_failure 1
	[[ $stderr == *"is a pooler's"* ]] || fail "$stderr"
	"$DBREG" deregister bouncer --purge >/dev/null
	printf '%s\n' "$OLD_PW" | "$DBREG" register bouncer --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database "$ROLE" --user "$ROLE" --password-stdin >/dev/null
	psql_admin <<<"UPDATE admin.database_connections SET metadata = '{\"pooler\": \"pgbouncer\"}'
		WHERE connection_name = 'bouncer'"
	run --separate-stderr "$DBREG" rotate-password bouncer --force
	assert_failure 1
	[[ $stderr == *"is a pooler's"* ]] || fail "$stderr"
	"$DBREG" deregister bouncer --purge >/dev/null

	# The same role seen through another row (a replica, say): refused unless --force.
	printf '%s\n' "$OLD_PW" | "$DBREG" register rot-replica --host localhost --port "$PGSANDBOX_PORT" \
		--database "$ROLE" --user "$ROLE" --password-stdin >/dev/null
	run --separate-stderr "$DBREG" rotate-password rot
	assert_failure 1
	[[ $stderr == *"other connections log in as '$ROLE' too: rot-replica"* ]] || fail "$stderr"
	logs_in "$OLD_PW" || fail "changed although refused"
	run --separate-stderr "$DBREG" rotate-password rot --force
	assert_success

	run --separate-stderr "$DBREG" rotate-password nosuch
	assert_failure 1
	[[ $stderr == *"no connection named 'nosuch'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" rotate-password
	assert_failure 2
	[[ $stderr == *"Try 'dbreg rotate-password --help' for more information."* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" rotate-password rot --length 8
	assert_failure 2
	run --separate-stderr "$DBREG" rotate-password rot --length 500
	assert_failure 2
	run --separate-stderr "$DBREG" rotate-password rot extra
	assert_failure 2
	run --separate-stderr "$DBREG" rotate-password rot --bogus
	assert_failure 2
	# Without the key nothing is tried.
	(unset DB_ENCRYPTION_KEY; run --separate-stderr "$DBREG" rotate-password rot
	 [ "$status" -eq 78 ] || fail "exit $status: $stderr")
	assert_equal "$(pending)" 0
}

@test "rotate-password: Try it on a server that asks for no password: refused before anything is sent or recorded" {
	fakepg_start trust --auth trust
	printf 'some-pw\n' | "$DBREG" register rot-trust --host 127.0.0.1 --port "$FAKEPG_PORT" --database d \
		--user trusted --password-stdin >/dev/null
	run --separate-stderr "$DBREG" rotate-password rot-trust
	assert_failure 1
	[[ $stderr == *"connection 'rot-trust': the server let it in without a password"* ]] || fail "$stderr"
	! grep -qi 'alter role' "$(fakepg_log trust)" || fail "ALTER ROLE was sent"
	assert_equal "$(pending)" 0
}

@test "rotate-password: Try it on a streaming standby: refused, it is in recovery" {
	local env
	# fd 3 is bats' own: a server that kept it open would hold the run up until it stops.
	env=$("$DBREG_SOURCE_ROOT/scripts/pg-sandbox" standby "$PGSANDBOX_DIR" 2>/dev/null 3>&-) || fail "no standby"
	# Its port alone: the rest of what it prints is the sandbox's, not this test's registry.
	local PGSANDBOX_STANDBY_PORT i
	PGSANDBOX_STANDBY_PORT=$(sed -n 's/^export PGSANDBOX_STANDBY_PORT=//p' <<<"$env")
	[ -n "$PGSANDBOX_STANDBY_PORT" ] || fail "no standby port in: $env"
	# The role reaches the standby by replication.
	for i in $(seq 50); do
		PGPASSWORD=$OLD_PW _psql -X -qAt -w -d "host=127.0.0.1 port=$PGSANDBOX_STANDBY_PORT dbname=$ROLE user=$ROLE" \
			-c 'SELECT 1' >/dev/null 2>&1 && break
		sleep 0.2
	done
	printf '%s\n' "$OLD_PW" | "$DBREG" register rot-standby --host 127.0.0.1 --port "$PGSANDBOX_STANDBY_PORT" \
		--database "$ROLE" --user "$ROLE" --password-stdin >/dev/null
	run --separate-stderr "$DBREG" rotate-password rot-standby --force
	assert_failure 1
	[[ $stderr == *"connection 'rot-standby': the server is in recovery"* ]] || fail "$stderr"
	assert_equal "$(pending)" 0
	logs_in "$OLD_PW" || fail "the password changed"
}

@test "rotate-password: on the platform's registry, the new password is stored as a Fernet token" {
	drop_registry
	platform_registry
	"$DBREG" init >/dev/null
	unset DB_ENCRYPTION_KEY
	printf '%s\n' "$OLD_PW" | "$DBREG" register plat-rot --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database "$ROLE" --user "$ROLE" --type primary --region us-east-1 --password-stdin >/dev/null
	run --separate-stderr "$DBREG" rotate-password plat-rot
	assert_success
	assert_output "rotated plat-rot"
	[[ $(registry_field plat-rot encrypted_password) == gAAAAA* ]] || fail "not a Fernet token"
	! logs_in "$OLD_PW" || fail "the old password still logs in"
	run --separate-stderr "$DBREG" health plat-rot --no-update -o json
	assert_equal "$(jq -r '.results[0].status' <<<"$output")" HEALTHY
}
