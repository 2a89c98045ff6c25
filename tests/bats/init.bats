#!/usr/bin/env bats
# dbreg init: creates the registry schema (SPEC §1), says what it did, is idempotent and
# safe to run twice at once, works as the non-superuser owner of the database, and
# refuses a registry newer than it knows.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

setup_file() { fresh_registry; }
teardown_file() { drop_registry; }

setup() {
	require_sandbox
	# Every test starts from a database without the schema.
	scratch_registry
}

teardown() { drop_scratch_registry; }

# The schema version this dbreg brings: what a first init reaches, read back from the
# migrations log (later milestones add migrations).
schema_version() {
	psql_admin -c "SELECT max(version) FROM admin.dbreg_schema_migrations"
}

@test "init: creates the registry schema and says so" {
	run --separate-stderr "$DBREG" init
	assert_success
	assert_output --regexp 'applied'
	assert_output --regexp 'version [0-9]+'
	local said=$output v
	run psql_admin -c "SELECT to_regclass('admin.database_connections') IS NOT NULL,
		to_regclass('admin.dbreg_schema_migrations') IS NOT NULL"
	assert_output 't|t'
	v=$(schema_version)
	[ "$v" -ge 1 ] || fail "schema version $v"
	# Every version from 1 up, each once; the message names how many and where it ended.
	run psql_admin -c "SELECT string_agg(version::text, ' ' ORDER BY version)
		FROM admin.dbreg_schema_migrations"
	assert_output "$(seq -s ' ' 1 "$v")"
	if [ "$v" -eq 1 ]; then
		[[ $said =~ ^applied\ 1\ migration\;\ registry\ schema\ at\ version\ 1$ ]] || fail "said: $said"
	else
		[[ $said =~ ^applied\ $v\ migrations\;\ registry\ schema\ at\ version\ $v$ ]] || fail "said: $said"
	fi
}

@test "init: a second run changes nothing and says so" {
	"$DBREG" init >/dev/null
	local v
	v=$(schema_version)
	"$DBREG" register init-one --host h --database d --user u --no-password >/dev/null
	run --separate-stderr "$DBREG" init
	assert_success
	assert_output --regexp "already at version $v"
	refute_output --regexp 'applied'
	run registry_count
	assert_output 1
	run psql_admin -c "SELECT count(*) FROM admin.dbreg_schema_migrations"
	assert_output "$v"
}

@test "init: the table has every column of SPEC §1 with its type" {
	"$DBREG" init >/dev/null
	run psql_admin -c "SELECT column_name || ' ' || data_type
		FROM information_schema.columns
		WHERE table_schema = 'admin' AND table_name = 'database_connections'
		ORDER BY column_name"
	assert_success
	local expected
	expected=$(sort <<-'EOF'
		id uuid
		region_id text
		connection_name character varying
		connection_type text
		host character varying
		port integer
		database_name character varying
		ssl_mode character varying
		username character varying
		encrypted_password character varying
		pool_min_size integer
		pool_max_size integer
		pool_timeout_seconds integer
		pool_recycle_seconds integer
		pool_pre_ping boolean
		is_active boolean
		is_healthy boolean
		last_health_check timestamp with time zone
		consecutive_failures integer
		max_consecutive_failures integer
		metadata jsonb
		tags ARRAY
		created_at timestamp with time zone
		updated_at timestamp with time zone
		deleted_at timestamp with time zone
	EOF
	)
	assert_equal "$(sort <<<"$output")" "$expected"
	run psql_admin -c "SELECT column_name || ' ' || character_maximum_length
		FROM information_schema.columns
		WHERE table_schema = 'admin' AND table_name = 'database_connections'
		  AND character_maximum_length IS NOT NULL ORDER BY column_name"
	assert_output "$(printf '%s\n' 'connection_name 100' 'database_name 63' \
		'encrypted_password 256' 'host 255' 'ssl_mode 20' 'username 255')"
}

@test "init: connection names are unique among live rows only (a partial unique index)" {
	"$DBREG" init >/dev/null
	run psql_admin -c "SELECT count(*) FROM pg_indexes
		WHERE schemaname = 'admin' AND tablename = 'database_connections'
		  AND indexdef LIKE 'CREATE UNIQUE INDEX%(connection_name)%WHERE (deleted_at IS NULL)'"
	assert_output 1
	# The database itself enforces it.
	psql_admin -c "INSERT INTO admin.database_connections (connection_name, host, database_name, username)
		VALUES ('dup', 'h', 'd', 'u')"
	run psql_admin -c "INSERT INTO admin.database_connections (connection_name, host, database_name, username)
		VALUES ('dup', 'h', 'd', 'u')"
	assert_failure
	psql_admin -c "UPDATE admin.database_connections SET deleted_at = now() WHERE connection_name = 'dup'"
	run psql_admin -c "INSERT INTO admin.database_connections (connection_name, host, database_name, username)
		VALUES ('dup', 'h', 'd', 'u')"
	assert_success
}

@test "init: column defaults are those of SPEC §1" {
	"$DBREG" init >/dev/null
	psql_admin -c "INSERT INTO admin.database_connections (connection_name, host, database_name, username)
		VALUES ('defaults', 'h', 'd', 'u')"
	run registry_field defaults "port, ssl_mode, pool_min_size, pool_max_size,
		pool_timeout_seconds, pool_recycle_seconds, pool_pre_ping, is_active, is_healthy,
		consecutive_failures, max_consecutive_failures, metadata, tags, encrypted_password IS NULL,
		id IS NOT NULL, created_at IS NOT NULL, updated_at IS NOT NULL, deleted_at IS NULL"
	assert_output '5432|prefer|5|20|30|3600|t|t|t|0|3|{}|{}|t|t|t|t|t'
}

@test "init: the database checks the constrained columns" {
	"$DBREG" init >/dev/null
	local bad
	for bad in "connection_type = 'FOO'" "ssl_mode = 'nope'" "port = 0" "port = 65536" \
		"pool_min_size = 30" "pool_min_size = -1" "pool_timeout_seconds = 0" \
		"pool_recycle_seconds = 0" "connection_name = 'Bad'"; do
		run psql_admin -c "INSERT INTO admin.database_connections (connection_name, host, database_name, username)
			VALUES ('c', 'h', 'd', 'u'); UPDATE admin.database_connections SET $bad"
		[ "$status" -ne 0 ] || fail "the registry accepts $bad"
	done
}

@test "init: works as the database owner, who is not a superuser" {
	run psql_admin -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
	assert_output f
	run --separate-stderr "$DBREG" init
	assert_success
	run psql_admin -c "SELECT count(*) >= 2, bool_and(tableowner = current_user)
		FROM pg_tables WHERE schemaname = 'admin'"
	assert_output 't|t'
	run psql_admin -c "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'admin'"
	assert_output "$DBREG_ADMIN_ROLE"
}

@test "init: two runs at once both succeed and apply each migration once" {
	"$DBREG" init >"$BATS_TEST_TMPDIR/a.out" 2>"$BATS_TEST_TMPDIR/a.err" &
	local a=$!
	"$DBREG" init >"$BATS_TEST_TMPDIR/b.out" 2>"$BATS_TEST_TMPDIR/b.err" &
	local b=$!
	local sa=0 sb=0
	wait "$a" || sa=$?
	wait "$b" || sb=$?
	[ "$sa" -eq 0 ] || fail "first init: exit $sa: $(cat "$BATS_TEST_TMPDIR/a.err")"
	[ "$sb" -eq 0 ] || fail "second init: exit $sb: $(cat "$BATS_TEST_TMPDIR/b.err")"
	local v
	v=$(schema_version)
	run cat "$BATS_TEST_TMPDIR/a.out" "$BATS_TEST_TMPDIR/b.out"
	assert_line --regexp "^applied $v migrations?; registry schema at version $v\$"
	assert_line --regexp "already at version $v"
	run psql_admin -c "SELECT count(*) FROM admin.dbreg_schema_migrations"
	assert_output "$v"
}

@test "init: many runs at once all succeed" {
	local pids=() i pid failed=0
	for i in 1 2 3 4 5 6; do
		"$DBREG" init >/dev/null 2>"$BATS_TEST_TMPDIR/$i.err" &
		pids+=("$!")
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || failed=$((failed + 1))
	done
	[ "$failed" -eq 0 ] || fail "$failed of 6 concurrent inits failed: $(cat "$BATS_TEST_TMPDIR"/*.err)"
	run psql_admin -c "SELECT count(*) = max(version) FROM admin.dbreg_schema_migrations"
	assert_output t
}

@test "init: adopts a registry whose table exists but whose migrations log does not, reading it before" {
	# An existing production registry: the table is there, dbreg has never run.
	psql_admin -c "CREATE SCHEMA admin"
	psql_admin -c "CREATE TABLE admin.database_connections (
		id uuid PRIMARY KEY DEFAULT gen_random_uuid(), region_id text,
		connection_name varchar(100) NOT NULL, connection_type text NOT NULL DEFAULT 'SHARED',
		host varchar(255) NOT NULL, port integer NOT NULL DEFAULT 5432,
		database_name varchar(63) NOT NULL, ssl_mode varchar(20) NOT NULL DEFAULT 'prefer',
		username varchar(255) NOT NULL, encrypted_password varchar(256),
		pool_min_size integer DEFAULT 5, pool_max_size integer DEFAULT 20,
		pool_timeout_seconds integer DEFAULT 30, pool_recycle_seconds integer DEFAULT 3600,
		pool_pre_ping boolean DEFAULT true, is_active boolean DEFAULT true,
		is_healthy boolean DEFAULT true, last_health_check timestamptz,
		consecutive_failures integer DEFAULT 0, max_consecutive_failures integer DEFAULT 3,
		metadata jsonb DEFAULT '{}', tags text[] DEFAULT '{}',
		created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
		deleted_at timestamptz)"
	psql_admin -c "INSERT INTO admin.database_connections (connection_name, host, database_name, username)
		VALUES ('legacy', 'h', 'd', 'u')"
	# Read as it is; written only once dbreg has adopted it.
	run --separate-stderr "$DBREG" list --names
	assert_success
	assert_output legacy
	run --separate-stderr "$DBREG" register other --host h --database d --user u --no-password
	assert_failure 78
	[[ $stderr == *"run 'dbreg init'"* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" init
	assert_success
	assert_line --index 0 "adopted existing registry: connection_type text, passwords: none"
	assert_line --index 1 "registry schema at version $(schema_version)"
	run --separate-stderr "$DBREG" init
	assert_success
	assert_output "registry schema already at version $(schema_version); nothing to do"
	run --separate-stderr "$DBREG" list --names
	assert_success
	assert_output legacy
}

# password_format: what the registry writes passwords in, from dbreg's bookkeeping.
password_format() {
	psql_admin -c "SELECT value FROM admin.dbreg_settings WHERE name = 'password_format'"
}

@test "init: a registry dbreg creates writes dbreg's format; --password-format sets it, once" {
	run --separate-stderr "$DBREG" init
	assert_success
	assert_equal "$(password_format)" dbreg
	run --separate-stderr "$DBREG" init --password-format fernet
	assert_success
	assert_output "registry schema already at version $(schema_version); nothing to do
password format set to fernet"
	assert_equal "$(password_format)" fernet
	run --separate-stderr "$DBREG" init --password-format=fernet
	assert_success
	assert_line "password format already fernet"
	run --separate-stderr "$DBREG" init --password-format dbreg
	assert_line "password format set to dbreg"
	assert_equal "$(password_format)" dbreg
}

@test "init: --password-format on a new database creates the registry with that format" {
	run --separate-stderr "$DBREG" init --password-format fernet
	assert_success
	assert_line --index 0 --regexp '^applied [0-9]+ migrations; registry schema at version [0-9]+$'
	assert_line --index 1 "password format set to fernet"
	assert_equal "$(password_format)" fernet
}

@test "init: Try to give --password-format an unknown format or none" {
	run --separate-stderr "$DBREG" init --password-format plain
	assert_failure 2
	assert_output ""
	[[ $stderr == *"--password-format: unknown format 'plain' (known: dbreg, fernet)"* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" init --password-format
	assert_failure 2
	# Refused before anything is written.
	run psql_admin -c "SELECT to_regclass('admin.dbreg_schema_migrations') IS NULL"
	assert_output t
}

@test "init: Try to init without ADMIN_DATABASE_URL" {
	unset ADMIN_DATABASE_URL
	run --separate-stderr "$DBREG" init
	assert_failure 78
	[[ $stderr == "dbreg: error: "*ADMIN_DATABASE_URL* ]] || fail "stderr: $stderr"
}

@test "init: Try to init an admin database that is down" {
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	run --separate-stderr timeout 20 "$DBREG" init
	assert_failure 69
	[[ $stderr == "dbreg: error: "* ]] || fail "stderr: $stderr"
}

@test "init: Try to give init an argument" {
	run --separate-stderr "$DBREG" init extra
	assert_failure 2
	[[ $stderr == *"Try 'dbreg init --help' for more information."* ]] || fail "stderr: $stderr"
	run psql_admin -c "SELECT to_regclass('admin.dbreg_schema_migrations') IS NULL"
	assert_output t
}

@test "init: Try to init a registry newer than this dbreg" {
	"$DBREG" init >/dev/null
	psql_admin -c "INSERT INTO admin.dbreg_schema_migrations (version, description) VALUES (999, 'future')"
	run --separate-stderr "$DBREG" init
	assert_failure 78
	[[ $stderr == "dbreg: error: "*upgrade* ]] || fail "stderr: $stderr"
}

@test "init: a registry newer than this dbreg is read but never written" {
	make_key
	"$DBREG" init >/dev/null
	"$DBREG" register future-one --host h --database d --user u --no-password >/dev/null
	psql_admin -c "INSERT INTO admin.dbreg_schema_migrations (version, description) VALUES (999, 'future')"
	local before
	before=$(psql_admin -c "SELECT to_jsonb(c) FROM admin.database_connections c")

	# Reads work.
	run --separate-stderr "$DBREG" list --names
	assert_success
	assert_output future-one
	run --separate-stderr "$DBREG" list -o json
	assert_success
	run --separate-stderr "$DBREG" show future-one -o json
	assert_success

	# Writes are refused, each with a word about upgrading.
	run --separate-stderr "$DBREG" register future-two --host h --database d --user u --no-password
	assert_failure 78
	[[ $stderr == "dbreg: error: "*upgrade* ]] || fail "register: $stderr"
	run --separate-stderr "$DBREG" register future-two --host h --database d --user u \
		--password-stdin <<<"a-password"
	assert_failure 78
	run --separate-stderr "$DBREG" register future-one --host h2 --database d --user u \
		--no-password --replace
	assert_failure 78
	[[ $stderr == *upgrade* ]] || fail "register --replace: $stderr"
	run --separate-stderr "$DBREG" update future-one --port 6543
	assert_failure 78
	[[ $stderr == *upgrade* ]] || fail "update: $stderr"
	run --separate-stderr "$DBREG" deregister future-one
	assert_failure 78
	[[ $stderr == *upgrade* ]] || fail "deregister: $stderr"
	run --separate-stderr "$DBREG" deregister future-one --purge
	assert_failure 78

	run psql_admin -c "SELECT to_jsonb(c) FROM admin.database_connections c"
	assert_output "$before"
}
