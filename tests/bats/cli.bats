#!/usr/bin/env bats
# The dbreg front end itself: version, help, and what it says on bad input.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

@test "dbreg --version prints dbreg X.Y.Z" {
	run --separate-stderr "$DBREG" --version
	assert_success
	assert_output --regexp '^dbreg [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "dbreg: no command loads a line editor but the REPL, which opens libedit itself" {
	command -v ldd >/dev/null || skip "no ldd"
	run ldd "$DBREG"
	assert_success
	refute_output --partial libedit
	refute_output --partial libtinfo
}

@test "dbreg --help exits 0 and shows usage" {
	run --separate-stderr "$DBREG" --help
	assert_success
	assert_output --partial 'dbreg'
}

# ---- the front end, as a user meets it ---------------------------------------------------

MILESTONE_COMMANDS=(init register update list show deregister encrypt-password generate-key)

setup_file() {
	fresh_initialized_registry
	if have_sandbox; then
		"$DBREG" register cli-one --host db.example.com --database app --user app \
			--no-password >/dev/null
	fi
}

teardown_file() { drop_registry; }

teardown() {
	drop_scratch_registry
	if [ -n "${LISTENER_PID-}" ]; then
		kill "$LISTENER_PID" 2>/dev/null || true
		wait "$LISTENER_PID" 2>/dev/null || true
	fi
}

# A password file with no entries: libpq finds no password in it.
empty_passfile() {
	: >"$BATS_TEST_TMPDIR/empty.pgpass"
	chmod 0600 "$BATS_TEST_TMPDIR/empty.pgpass"
	export PGPASSFILE=$BATS_TEST_TMPDIR/empty.pgpass
}

@test "dbreg: -h is --help" {
	run --separate-stderr "$DBREG" -h
	assert_success
	assert_output --partial 'Usage: dbreg'
	assert_equal "$stderr" ""
}

@test "dbreg: --help lists every command of this milestone" {
	run --separate-stderr "$DBREG" --help
	assert_success
	local cmd
	for cmd in "${MILESTONE_COMMANDS[@]}"; do
		assert_line --regexp "^ +$cmd "
	done
}

@test "dbreg: Try to run an unknown command" {
	run --separate-stderr "$DBREG" lst
	assert_failure 2
	assert_output ""
	[[ $stderr == *"dbreg: error: "*"'lst'"* ]] || fail "stderr: $stderr"
	[[ $stderr == *"'list'"* ]] || fail "no suggestion of 'list': $stderr"
	[[ $stderr == *"Try 'dbreg --help' for more information."* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try a command or option with a typo: a transposition is one slip" {
	run --separate-stderr "$DBREG" lsit
	assert_failure 2
	[[ $stderr == "dbreg: error: unknown command 'lsit'; did you mean 'list'?"* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" regsiter
	[[ $stderr == *"did you mean 'register'?"* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" health --levle deep
	assert_failure 3  # health's usage errors are UNKNOWN, as a monitoring plugin's
	[[ $stderr == "dbreg: error: unknown option '--levle'; did you mean '--level'?"* ]] || fail "stderr: $stderr"
	[[ $stderr == *"Try 'dbreg health --help' for more information."* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" list --frobnicate
	assert_failure 2
	[[ $stderr != *"did you mean"* ]] || fail "a suggestion for nothing close: $stderr"
}

@test "dbreg: Try to run an unknown command that is close to none" {
	run --separate-stderr "$DBREG" frobnicate
	assert_failure 2
	[[ $stderr == "dbreg: error: "*"'frobnicate'"* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try to run without a command and without a terminal" {
	run --separate-stderr no_tty "$DBREG" </dev/null
	assert_failure 2
	[[ $stderr == *"dbreg: error: "* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try to give an unknown global option" {
	run --separate-stderr "$DBREG" --bogus list
	assert_failure 2
	[[ $stderr == "dbreg: error: "*"--bogus"* ]] || fail "stderr: $stderr"
	[[ $stderr == *"Try 'dbreg --help' for more information."* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try to give --color a value it does not know" {
	run --separate-stderr "$DBREG" --color=sometimes --version
	assert_failure 2
	[[ $stderr == "dbreg: error: "*"sometimes"* ]] || fail "stderr: $stderr"
}

@test "dbreg: help COMMAND and COMMAND --help show the command's usage" {
	run --separate-stderr "$DBREG" help register
	assert_success
	assert_line --index 0 --regexp '^Usage: dbreg register NAME'
	assert_output --partial '--password-stdin'
	local help=$output
	run --separate-stderr "$DBREG" register --help
	assert_success
	assert_output "$help"
}

@test "dbreg: Try to get help for an unknown command" {
	run --separate-stderr "$DBREG" help lst
	assert_failure 2
	[[ $stderr == *"'list'"* ]] || fail "stderr: $stderr"
}

@test "dbreg: every command has -h and --help, without a registry or a key" {
	unset ADMIN_DATABASE_URL DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE
	local cmd opt
	for cmd in "${MILESTONE_COMMANDS[@]}"; do
		for opt in -h --help; do
			run --separate-stderr "$DBREG" "$cmd" "$opt"
			[ "$status" -eq 0 ] || fail "dbreg $cmd $opt: exit $status: $stderr"
			[[ $output == "Usage: dbreg $cmd"* ]] || fail "dbreg $cmd $opt: $output"
			[ -z "$stderr" ] || fail "dbreg $cmd $opt: stderr: $stderr"
		done
	done
}

@test "dbreg: Try to give each command an unknown option" {
	local cmd
	for cmd in "${MILESTONE_COMMANDS[@]}"; do
		run --separate-stderr "$DBREG" "$cmd" --no-such-option
		[ "$status" -eq 2 ] || fail "dbreg $cmd --no-such-option: exit $status"
		[[ $stderr == "dbreg: error: "*"--no-such-option"* ]] ||
			fail "dbreg $cmd: stderr: $stderr"
		[[ $stderr == *"Try 'dbreg $cmd --help' for more information."* ]] ||
			fail "dbreg $cmd: stderr: $stderr"
	done
}

@test "dbreg: Try to write to a full disk" {
	require_sandbox
	run --separate-stderr "$DBREG" list --names
	assert_success
	assert_output cli-one
	# shellcheck disable=SC2016
	run --separate-stderr bash -c '"$DBREG" list >/dev/full'
	[ "$status" -ne 0 ] || fail "exit 0 although nothing could be written"
	[[ $stderr == *"dbreg: error: "*"write failure"* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try to print --version to a full disk" {
	# shellcheck disable=SC2016
	run --separate-stderr bash -c '"$DBREG" --version >/dev/full'
	[ "$status" -ne 0 ] || fail "exit 0 although nothing could be written"
	[[ $stderr == *"write failure"* ]] || fail "stderr: $stderr"
}

# ---- configuration and the admin database: exit 69 and 78 ---------------------------------

@test "dbreg: ADMIN_DATABASE_URL='service=NAME' switches admin databases through a pg_service.conf" {
	require_sandbox
	scratch_registry
	local other=$SCRATCH_REGISTRY
	printf '[main]\nhost=%s\nport=%s\ndbname=%s\nuser=%s\n\n[other]\nhost=%s\nport=%s\ndbname=%s\nuser=%s\n' \
		"${PGSANDBOX_HOST:-127.0.0.1}" "$PGSANDBOX_PORT" "$DBREG_TEST_REGISTRY" "$DBREG_ADMIN_ROLE" \
		"${PGSANDBOX_HOST:-127.0.0.1}" "$PGSANDBOX_PORT" "$other" "$DBREG_ADMIN_ROLE" >"$BATS_TEST_TMPDIR/pg_service.conf"
	export PGSERVICEFILE=$BATS_TEST_TMPDIR/pg_service.conf
	# The password still comes from PGPASSFILE; the service names only where to go.
	ADMIN_DATABASE_URL='service=other' run --separate-stderr "$DBREG" init
	assert_success
	ADMIN_DATABASE_URL='service=other' "$DBREG" register other-one --host db.example.com --database app \
		--user app --no-password >/dev/null
	ADMIN_DATABASE_URL='service=main' run --separate-stderr "$DBREG" list --names
	assert_success
	assert_output 'cli-one'
	ADMIN_DATABASE_URL='service=other' run --separate-stderr "$DBREG" list --names
	assert_success
	assert_output 'other-one'
	ADMIN_DATABASE_URL='service=other' run --separate-stderr "$DBREG" show cli-one
	assert_failure 1
	ADMIN_DATABASE_URL='service=main' run --separate-stderr "$DBREG" validate-config
	assert_success
	# A service no file defines is a configuration error.
	ADMIN_DATABASE_URL='service=nosuch' run --separate-stderr "$DBREG" list
	assert_failure 78
	assert_equal "$(psql_admin -c 'SELECT count(*) FROM admin.database_connections')" 1
}

@test "dbreg: Try to use the registry without ADMIN_DATABASE_URL" {
	unset ADMIN_DATABASE_URL
	local cmd
	for cmd in "init" "list" "show cli-one" "deregister cli-one" "update cli-one --port 1"; do
		# shellcheck disable=SC2086
		run --separate-stderr "$DBREG" $cmd
		[ "$status" -eq 78 ] || fail "dbreg $cmd: exit $status: $stderr"
		[[ $stderr == "dbreg: error: "*"ADMIN_DATABASE_URL"* ]] || fail "dbreg $cmd: $stderr"
		assert_output ""
	done
	run --separate-stderr "$DBREG" register cli-two --host h --database d --user u --no-password
	assert_failure 78
	[[ $stderr == *ADMIN_DATABASE_URL* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try to use an unparseable ADMIN_DATABASE_URL" {
	export ADMIN_DATABASE_URL='host=x bogus=1'
	run --separate-stderr "$DBREG" list
	assert_failure 78
	[[ $stderr == "dbreg: error: "*"ADMIN_DATABASE_URL"* ]] || fail "stderr: $stderr"
	[[ $stderr == *bogus* ]] || fail "the bad keyword is not named: $stderr"
	export ADMIN_DATABASE_URL='postgresql://h/db?nosuchparam=1'
	run --separate-stderr "$DBREG" list
	assert_failure 78
	[[ $stderr == "dbreg: error: "* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try to use an ADMIN_DATABASE_URL with a port that is no port" {
	local url
	for url in 'postgresql://127.0.0.1:notaport/db' 'postgresql://127.0.0.1:70000/db' \
		'host=127.0.0.1 port=abc dbname=db'; do
		export ADMIN_DATABASE_URL=$url
		run --separate-stderr timeout 20 "$DBREG" list
		[[ $stderr == "dbreg: error: "*port* ]] || fail "$url: stderr: $stderr"
		if [ "$status" -eq 69 ]; then
			fail "unexpected: [ \"\$status\" -eq 69 ]"
		fi
		[ "$status" -eq 78 ] || fail "$url: exit $status"
	done
}

@test "dbreg: Try to reach an admin database that is down" {
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	local cmd
	for cmd in "init" "list" "show cli-one" "deregister cli-one" "update cli-one --port 1"; do
		# shellcheck disable=SC2086
		run --separate-stderr timeout 20 "$DBREG" $cmd
		[ "$status" -eq 69 ] || fail "dbreg $cmd: exit $status: $stderr"
		[[ $stderr == "dbreg: error: "* ]] || fail "dbreg $cmd: $stderr"
		assert_output ""
	done
	run --separate-stderr timeout 20 "$DBREG" register cli-two --host h --database d --user u \
		--no-password
	assert_failure 69
}

@test "dbreg: Try to reach an admin database that accepts and never answers" {
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)' >"$BATS_TEST_TMPDIR/port" &
	LISTENER_PID=$!
	local _ port
	for _ in $(seq 50); do [ -s "$BATS_TEST_TMPDIR/port" ] && break; sleep 0.1; done
	port=$(cat "$BATS_TEST_TMPDIR/port")
	export ADMIN_DATABASE_URL="postgresql://x@127.0.0.1:$port/db"
	export PGCONNECT_TIMEOUT=2
	SECONDS=0
	run --separate-stderr timeout 30 "$DBREG" list
	assert_failure 69
	[ "$SECONDS" -le 10 ] || fail "took $SECONDS s with a 2 s connect timeout"
	[[ $stderr == "dbreg: error: "* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try to log in to the admin database with a wrong password" {
	require_sandbox
	empty_passfile
	export PGPASSWORD=wrong
	export ADMIN_DATABASE_URL="postgresql://postgres@${PGSANDBOX_HOST:-127.0.0.1}:$PGSANDBOX_PORT/postgres"
	run --separate-stderr timeout 20 "$DBREG" list
	assert_failure 78
	[[ $stderr == *"dbreg: error: "*"password authentication failed"* ]] || fail "stderr: $stderr"
	assert_no_secret wrong
}

@test "dbreg: Try to log in to the admin database without a password" {
	require_sandbox
	empty_passfile
	unset PGPASSWORD
	run --separate-stderr timeout 20 "$DBREG" list
	assert_failure 78
	[[ $stderr == "dbreg: error: "* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try to use a database that does not exist" {
	require_sandbox
	export ADMIN_DATABASE_URL="postgresql://$DBREG_ADMIN_ROLE@${PGSANDBOX_HOST:-127.0.0.1}:$PGSANDBOX_PORT/no_such_db"
	run --separate-stderr timeout 20 "$DBREG" list
	assert_failure 78
	[[ $stderr == *no_such_db* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try to use an admin database that is not accepting connections (69)" {
	require_sandbox
	scratch_registry
	"$DBREG" init >/dev/null
	psql_super -v "db=$SCRATCH_REGISTRY" <<<'ALTER DATABASE :"db" ALLOW_CONNECTIONS false' >/dev/null
	run --separate-stderr timeout 20 "$DBREG" list
	assert_failure 69
	[[ $stderr == "dbreg: error: "*"not currently accepting connections"* ]] || fail "stderr: $stderr"
	[[ $stderr != *LOCATION* && $stderr != *55000* ]] || fail "verbose details leaked: $stderr"
}

@test "dbreg: Try to log in as a role at its connection limit (69)" {
	require_sandbox
	# The limit is checked after authentication: the admin role itself, limited for
	# the length of this test.
	export ADMIN_DATABASE_URL="postgresql://$DBREG_ADMIN_ROLE@${PGSANDBOX_HOST:-127.0.0.1}:$PGSANDBOX_PORT/$DBREG_TEST_REGISTRY"
	psql_super -v "role=$DBREG_ADMIN_ROLE" <<<'ALTER ROLE :"role" CONNECTION LIMIT 0' >/dev/null
	run --separate-stderr timeout 20 "$DBREG" list
	psql_super -v "role=$DBREG_ADMIN_ROLE" <<<'ALTER ROLE :"role" CONNECTION LIMIT -1' >/dev/null
	assert_failure 69
	[[ $stderr == "dbreg: error: "*"too many connections"* ]] || fail "stderr: $stderr"
}

@test "dbreg: Try to use an unparseable ADMIN_DATABASE_URL that holds a password" {
	local url
	for url in 'postgresql://admin:TopSecretPw@[::1/admin' 'postgresql://admin:TopSecretPw%zz@db/admin'; do
		export ADMIN_DATABASE_URL=$url
		run --separate-stderr "$DBREG" list
		assert_failure 78
		[[ $stderr == "dbreg: error: cannot parse ADMIN_DATABASE_URL"* ]] || fail "stderr: $stderr"
		assert_no_secret TopSecretPw
	done
}

@test "dbreg: Try to use a database without the registry schema" {
	require_sandbox
	scratch_registry
	local cmd
	for cmd in "list" "show cli-one" "deregister cli-one" "update cli-one --port 1"; do
		# shellcheck disable=SC2086
		run --separate-stderr "$DBREG" $cmd
		[ "$status" -eq 78 ] || fail "dbreg $cmd: exit $status: $stderr"
		[[ $stderr == "dbreg: error: "*"dbreg init"* ]] || fail "dbreg $cmd: $stderr"
		assert_output ""
	done
	run --separate-stderr "$DBREG" register cli-two --host h --database d --user u --no-password
	assert_failure 78
	[[ $stderr == *"dbreg init"* ]] || fail "stderr: $stderr"
	# Nothing was created on the way.
	run psql_admin -c "SELECT to_regclass('admin.database_connections') IS NULL"
	assert_output t
}
