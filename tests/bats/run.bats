#!/usr/bin/env bats
# dbreg psql and dbreg exec: a program on a registered database with its password in a private
# passfile (gone when the program is), never in argv or the environment; the child's status is
# dbreg's.  On dbreg's own registry (dbreg's format) and the platform's (Fernet).

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper
load platform

setup_file() {
	fresh_initialized_registry
	have_sandbox || return 0
	make_key
	register_sandbox sbx
	"$DBREG" register nopw --host "$PGSANDBOX_HOST" --port "$PGSANDBOX_PORT" \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --no-password >/dev/null
	psql_admin <<-EOF
		CREATE SCHEMA tenant_acme_corp;
		CREATE TABLE tenant_acme_corp.marker (x int);
		INSERT INTO admin.tenants (slug, name, schema_name, status, database_connection_id)
		VALUES ('acme-corp', 'Acme', 'tenant_acme_corp', 'active',
		        (SELECT id FROM admin.database_connections WHERE connection_name = 'sbx'));
	EOF
}

teardown_file() { drop_registry; }

setup() {
	require_sandbox
	ADMIN_PW=$(sandbox_admin_password)
	RUNDIR=$BATS_TEST_TMPDIR/run
	mkdir -p "$RUNDIR"
	chmod 700 "$RUNDIR"
	export XDG_RUNTIME_DIR=$RUNDIR
}

# passfiles: the private password files dbreg left in XDG_RUNTIME_DIR.
passfiles() {
	find "$RUNDIR" -name 'dbreg-pgpass-*' | wc -l
}

@test "psql: runs a query on the registered database and exits with psql's status" {
	run --separate-stderr "$DBREG" psql sbx -- -XAtc "SELECT current_user || '|' || current_database()"
	assert_success
	assert_output "$DBREG_ADMIN_ROLE|$DBREG_TEST_REGISTRY"
	run --separate-stderr "$DBREG" psql sbx -- -XAtc "SELECT 1/0"
	assert_failure 1
	[[ $stderr == *"division by zero"* ]] || fail "$stderr"
	assert_equal "$(passfiles)" 0
	assert_no_secret "$ADMIN_PW"
}

@test "psql: --tenant connects to the tenant's connection with search_path at its schema" {
	run --separate-stderr "$DBREG" psql --tenant acme-corp -- -XAtc "SHOW search_path"
	assert_success
	assert_output "tenant_acme_corp, public"
	run --separate-stderr "$DBREG" psql --tenant acme-corp -- -XAtc "SELECT count(*) FROM marker"
	assert_success
	assert_output 0
}

@test "exec: the child's environment holds the row's libpq variables, no secret, no admin URL" {
	# The admin connection's own variables (PGPASSWORD logs it in) stay with it.
	export PGPASSWORD=$ADMIN_PW DB_FERNET_PASSPHRASE=some-passphrase PGAPPNAME=admin-app PGOPTIONS=-cwork_mem=1MB
	run --separate-stderr "$DBREG" exec sbx -- sh -c 'tr "\0" "\n" </proc/self/environ; echo; tr "\0" " " </proc/self/cmdline'
	assert_success
	assert_line "PGHOST=$PGSANDBOX_HOST"
	assert_line "PGPORT=$PGSANDBOX_PORT"
	assert_line "PGDATABASE=$DBREG_TEST_REGISTRY"
	assert_line "PGUSER=$DBREG_ADMIN_ROLE"
	assert_line "PGSSLMODE=prefer"
	assert_line --regexp "^PGPASSFILE=$RUNDIR/dbreg-pgpass-"
	refute_line --regexp '^(PGPASSWORD|PGAPPNAME|PGOPTIONS|ADMIN_DATABASE_URL|DB_ENCRYPTION_[A-Z_]*|DB_FERNET_[A-Z_]*)='
	assert_no_secret "$ADMIN_PW"
	assert_no_secret "$DB_ENCRYPTION_KEY"
	assert_no_secret some-passphrase
}

@test "exec: the passfile is 0600 while the child runs, holds the login, and is gone after" {
	run --separate-stderr "$DBREG" exec sbx -- sh -c 'stat -c %a "$PGPASSFILE"; cut -d: -f1-4 "$PGPASSFILE"; psql -XAtc "SELECT 42"'
	assert_success
	assert_line --index 0 600
	assert_line --index 1 "$PGSANDBOX_HOST:$PGSANDBOX_PORT:*:$DBREG_ADMIN_ROLE"
	assert_line --index 2 42
	assert_equal "$(passfiles)" 0
	# pg_dump just works.
	run --separate-stderr "$DBREG" exec sbx -- pg_dump -Fc -f "$BATS_TEST_TMPDIR/sbx.dump"
	assert_success
	[ -s "$BATS_TEST_TMPDIR/sbx.dump" ] || fail "no dump"
}

@test "exec: a row without a password keeps the operator's PGPASSFILE" {
	run --separate-stderr "$DBREG" exec nopw -- sh -c 'echo "$PGPASSFILE"; psql -XAtc "SELECT 7"'
	assert_success
	assert_line --index 0 "$PGPASSFILE"
	assert_line --index 1 7
}

@test "exec: the child's exit status and signal are dbreg's; 127 not found, 126 not executable" {
	run --separate-stderr "$DBREG" exec sbx -- sh -c 'exit 7'
	assert_failure 7
	run --separate-stderr "$DBREG" exec sbx -- sh -c 'kill -TERM $$'
	assert_failure 143
	run -127 --separate-stderr "$DBREG" exec sbx -- no-such-command-anywhere
	[[ $stderr == *"no-such-command-anywhere: command not found"* ]] || fail "$stderr"
	printf 'x' >"$BATS_TEST_TMPDIR/not-exec"
	chmod 644 "$BATS_TEST_TMPDIR/not-exec"
	run -126 --separate-stderr "$DBREG" exec sbx -- "$BATS_TEST_TMPDIR/not-exec"
	assert_equal "$(passfiles)" 0
}

@test "exec: SIGTERM to dbreg reaches the child; the passfile is removed and dbreg exits 143" {
	local pid
	"$DBREG" exec sbx -- sh -c 'echo "$PGPASSFILE" >"$0/file"; exec sleep 30' "$BATS_TEST_TMPDIR" &
	pid=$!
	for _ in $(seq 50); do
		[ -s "$BATS_TEST_TMPDIR/file" ] && break
		sleep 0.1
	done
	[ -e "$(cat "$BATS_TEST_TMPDIR/file")" ] || fail "no passfile while the child runs"
	kill -TERM "$pid"
	local rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 143
	[ ! -e "$(cat "$BATS_TEST_TMPDIR/file")" ] || fail "the passfile survived"
	assert_equal "$(passfiles)" 0
}

@test "exec: SIGINT is left to the child (dbreg waits, as system(3) does)" {
	local pid rc=0
	"$DBREG" exec sbx -- sh -c 'trap "exit 9" INT; echo ready >"$0/ready"; while :; do sleep 0.1; done' "$BATS_TEST_TMPDIR" &
	pid=$!
	for _ in $(seq 50); do
		[ -s "$BATS_TEST_TMPDIR/ready" ] && break
		sleep 0.1
	done
	# As a terminal does: the whole process group gets it.
	kill -INT "$pid"
	pkill -INT -P "$pid" || true
	wait "$pid" || rc=$?
	assert_equal "$rc" 9
	assert_equal "$(passfiles)" 0
}

@test "psql, exec: Try them without a name, on an unknown one, without a command, with a bad option" {
	run --separate-stderr "$DBREG" exec
	assert_failure 2
	run --separate-stderr "$DBREG" exec sbx
	assert_failure 2
	[[ $stderr == *"COMMAND"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" psql
	assert_failure 2
	run --separate-stderr "$DBREG" psql no-such-db -- -c 'SELECT 1'
	assert_failure 1
	[[ $stderr == *"no-such-db"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" psql --tenant no-such-tenant -- -c 'SELECT 1'
	assert_failure 1
	run --separate-stderr "$DBREG" exec --bogus sbx -- true
	assert_failure 2
	[[ $stderr == *"Try 'dbreg exec --help'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" exec "bad name" -- true
	assert_failure 2
	unset DB_ENCRYPTION_KEY
	run --separate-stderr "$DBREG" exec sbx -- true
	assert_failure 78
	[[ $stderr == *DB_ENCRYPTION_KEY* ]] || fail "$stderr"
	assert_equal "$(passfiles)" 0
}

@test "psql, exec: on the platform's registry, with its Fernet passwords" {
	local saved_url=$ADMIN_DATABASE_URL saved_db=$DBREG_TEST_REGISTRY
	platform_registry
	run --separate-stderr "$DBREG" psql neofast-shared-us-primary -- -XAtc "SELECT current_user"
	assert_success
	assert_output "$DBREG_ADMIN_ROLE"
	run --separate-stderr "$DBREG" exec neofast-analytics-eu -- sh -c 'psql -XAtc "SELECT 5"; tr "\0" "\n" </proc/self/environ'
	assert_success
	assert_line --index 0 5
	refute_line --regexp '^DB_FERNET_'
	assert_no_secret "$DB_FERNET_PASSPHRASE"
	assert_no_secret "$ADMIN_PW"
	drop_registry
	export ADMIN_DATABASE_URL=$saved_url DBREG_TEST_REGISTRY=$saved_db
}
