#!/usr/bin/env bats
# dbreg conninfo: kv (libpq's quoting), uri (percent-encoded, IPv6 in brackets, a socket
# directory in ?host=) and json; what psql connects with; never a password; both registry
# shapes (dbreg's own and the platform's).

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper
load platform

setup_file() {
	have_sandbox || return 0
	# The platform's registry first (platform_registry makes its own database), then dbreg's.
	platform_registry
	export PLATFORM_URL=$ADMIN_DATABASE_URL PLATFORM_DB=$DBREG_TEST_REGISTRY
	fresh_registry
	export OWN_URL=$ADMIN_DATABASE_URL OWN_DB=$DBREG_TEST_REGISTRY
	make_key
	local pw host=${PGSANDBOX_HOST:-127.0.0.1}
	pw=$(sandbox_admin_password)
	"$DBREG" init >/dev/null
	"$DBREG" register ci-tcp --host "$host" --port "$PGSANDBOX_PORT" --database "$OWN_DB" \
		--user "$DBREG_ADMIN_ROLE" --password-stdin <<<"$pw" >/dev/null
	"$DBREG" register ci-odd --host db.example --port 6432 --database "my db's\\x" \
		--user 'u@x:y/z' --ssl-mode require --no-password >/dev/null
	"$DBREG" register ci-v6 --host '::1' --database app --user app --no-password >/dev/null
	"$DBREG" register ci-empty --host db.example --database app --user 'two words' \
		--no-password >/dev/null
	"$DBREG" register ci-gone --host db.example --database app --user app --no-password >/dev/null
	"$DBREG" deregister ci-gone >/dev/null
	# A real role and database whose names need every kind of quoting, and a password with
	# : and \ (for the password file).
	local suffix
	suffix=$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
	export ODD_ROLE="ci o'd\\d u:@/$suffix" ODD_DB="ci db's \\x?&=%$suffix" ODD_PW='p:w\o r\:d'
	role_create "$ODD_ROLE" "$ODD_DB" "$ODD_PW"
	"$DBREG" register ci-real-odd --host "$host" --port "$PGSANDBOX_PORT" --database "$ODD_DB" \
		--user "$ODD_ROLE" --password-stdin <<<"$ODD_PW" >/dev/null
	if [ -S "${PGSANDBOX_DIR-}/.s.PGSQL.$PGSANDBOX_PORT" ]; then
		"$DBREG" register ci-sock --host "$PGSANDBOX_DIR" --port "$PGSANDBOX_PORT" \
			--database "$OWN_DB" --user "$DBREG_ADMIN_ROLE" --password-stdin <<<"$pw" >/dev/null
	fi
}

teardown_file() {
	role_drop "${ODD_ROLE-}" "${ODD_DB-}"
	drop_registry "${PLATFORM_DB-}"
	drop_registry
}

setup() {
	require_sandbox
	export ADMIN_DATABASE_URL=$OWN_URL
	ADMIN_PW=$(sandbox_admin_password)
	PASSFILE=$BATS_TEST_TMPDIR/pgpass
}

# passfile NAME...: a password file for NAME... made by dbreg export (needs the key).
passfile() {
	"$DBREG" export "$@" --pgpass "$PASSFILE" --force 2>/dev/null
}

# ---- kv ------------------------------------------------------------------------------------

@test "conninfo: kv is the default, the keys in order, port and sslmode explicit" {
	run --separate-stderr "$DBREG" conninfo ci-tcp
	assert_success
	assert_output "host=${PGSANDBOX_HOST:-127.0.0.1} port=$PGSANDBOX_PORT dbname=$OWN_DB user=$DBREG_ADMIN_ROLE sslmode=prefer"
	local plain=$output
	run --separate-stderr "$DBREG" conninfo ci-tcp -o kv
	assert_output "$plain"
	run --separate-stderr "$DBREG" conninfo ci-tcp --format=kv
	assert_output "$plain"
}

@test "conninfo: kv quotes as libpq reads it: ' and \\ escaped, spaces and empty values quoted" {
	run --separate-stderr "$DBREG" conninfo ci-odd
	assert_success
	assert_output "host=db.example port=6432 dbname='my db\\'s\\\\x' user=u@x:y/z sslmode=require"
	run --separate-stderr "$DBREG" conninfo ci-empty
	assert_output "host=db.example port=5432 dbname=app user='two words' sslmode=prefer"
}

@test "conninfo: psql logs in with kv and uri as a role and database whose names need quoting" {
	passfile ci-real-odd
	local expect="$ODD_ROLE|$ODD_DB" fmt
	for fmt in kv uri; do
		run --separate-stderr env PGPASSFILE="$PASSFILE" psql -X -w -At \
			"$("$DBREG" conninfo ci-real-odd -o "$fmt")" -c 'SELECT current_user, current_database()'
		assert_success
		assert_output "$expect"
	done
	run --separate-stderr "$DBREG" conninfo ci-real-odd -o json
	assert_equal "$(jq -r .user <<<"$output")" "$ODD_ROLE"
	assert_equal "$(jq -r .dbname <<<"$output")" "$ODD_DB"
}

# ---- uri -----------------------------------------------------------------------------------

@test "conninfo: uri percent-encodes every part" {
	run --separate-stderr "$DBREG" conninfo ci-tcp -o uri
	assert_success
	assert_output "postgresql://$DBREG_ADMIN_ROLE@${PGSANDBOX_HOST:-127.0.0.1}:$PGSANDBOX_PORT/$OWN_DB?sslmode=prefer"
	run --separate-stderr "$DBREG" conninfo ci-odd -o uri
	assert_output "postgresql://u%40x%3Ay%2Fz@db.example:6432/my%20db%27s%5Cx?sslmode=require"
	run --separate-stderr "$DBREG" conninfo ci-empty --format uri
	assert_output "postgresql://two%20words@db.example:5432/app?sslmode=prefer"
}

@test "conninfo: uri puts an IPv6 host in brackets" {
	run --separate-stderr "$DBREG" conninfo ci-v6 -o uri
	assert_success
	assert_output "postgresql://app@[::1]:5432/app?sslmode=prefer"
	run --separate-stderr "$DBREG" conninfo ci-v6
	assert_output "host=::1 port=5432 dbname=app user=app sslmode=prefer"
}

@test "conninfo: uri puts a Unix-socket directory in ?host=, percent-encoded" {
	"$DBREG" register ci-sockfmt --host '/run/pg sock' --database app --user app --no-password >/dev/null
	run --separate-stderr "$DBREG" conninfo ci-sockfmt -o uri
	assert_success
	assert_output "postgresql://app@:5432/app?host=%2Frun%2Fpg%20sock&sslmode=prefer"
	run --separate-stderr "$DBREG" conninfo ci-sockfmt
	assert_output "host='/run/pg sock' port=5432 dbname=app user=app sslmode=prefer"
	"$DBREG" deregister --purge ci-sockfmt >/dev/null
}

# ---- json ----------------------------------------------------------------------------------

@test "conninfo: json has exactly host, port (a number), dbname, user, sslmode" {
	run --separate-stderr "$DBREG" conninfo ci-odd -o json
	assert_success
	assert_equal "$(jq -c 'keys_unsorted' <<<"$output")" '["host","port","dbname","user","sslmode"]'
	assert_equal "$(jq -r '.port | type' <<<"$output")" number
	assert_equal "$(jq -c . <<<"$output")" \
		'{"host":"db.example","port":6432,"dbname":"my db'"'"'s\\x","user":"u@x:y/z","sslmode":"require"}'
}

# ---- what psql connects with ---------------------------------------------------------------

@test "conninfo: psql connects with kv and with uri, the password from dbreg export --pgpass" {
	passfile ci-tcp
	run --separate-stderr env PGPASSFILE="$PASSFILE" psql -X -w -At "$("$DBREG" conninfo ci-tcp)" \
		-c 'SELECT current_user, current_database()'
	assert_success
	assert_output "$DBREG_ADMIN_ROLE|$OWN_DB"
	run --separate-stderr env PGPASSFILE="$PASSFILE" psql -X -w -At "$("$DBREG" conninfo ci-tcp -o uri)" \
		-c 'SELECT current_user, current_database()'
	assert_success
	assert_output "$DBREG_ADMIN_ROLE|$OWN_DB"
	# The password came from that file: without it psql cannot log in.
	run --separate-stderr env PGPASSFILE=/dev/null psql -X -w -At "$("$DBREG" conninfo ci-tcp)" -c 'SELECT 1'
	assert_failure
}

@test "conninfo: psql connects through a Unix-socket directory, kv and uri" {
	"$DBREG" show ci-sock >/dev/null 2>&1 || skip "the sandbox has no Unix socket in \$PGSANDBOX_DIR"
	passfile ci-sock
	run --separate-stderr env PGPASSFILE="$PASSFILE" psql -X -w -At "$("$DBREG" conninfo ci-sock)" \
		-c "SELECT coalesce(inet_server_addr()::text, 'socket')"
	assert_success
	assert_output socket
	run --separate-stderr env PGPASSFILE="$PASSFILE" psql -X -w -At "$("$DBREG" conninfo ci-sock -o uri)" \
		-c "SELECT coalesce(inet_server_addr()::text, 'socket')"
	assert_success
	assert_output socket
}

# ---- no secrets, no key --------------------------------------------------------------------

@test "conninfo: never a password nor its stored text, in any format, and no key needed" {
	local stored fmt
	stored=$(registry_field ci-tcp encrypted_password)
	unset DB_ENCRYPTION_KEY
	for fmt in kv uri json; do
		run --separate-stderr "$DBREG" conninfo ci-tcp -o "$fmt"
		assert_success
		assert_no_secret "$ADMIN_PW"
		assert_no_secret "$stored"
		[[ $output != *password* ]] || fail "$fmt: a password key in: $output"
	done
}

# ---- failures ------------------------------------------------------------------------------

@test "conninfo: Try to name no connection, two, or an invalid name: exit 2" {
	run --separate-stderr "$DBREG" conninfo
	assert_failure 2
	[[ $stderr == *"a connection NAME is required"* ]] || fail "$stderr"
	[[ $stderr == *"Try 'dbreg conninfo --help'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" conninfo ci-tcp ci-odd
	assert_failure 2
	run --separate-stderr "$DBREG" conninfo 'Bad Name'
	assert_failure 2
	assert_output ""
}

@test "conninfo: Try an unknown format or option: exit 2" {
	run --separate-stderr "$DBREG" conninfo ci-tcp -o table
	assert_failure 2
	[[ $stderr == *"'table' is not one of json, kv, uri"* || $stderr == *"'table' is not one of"* ]] || fail "$stderr"
	assert_output ""
	run --separate-stderr "$DBREG" conninfo ci-tcp --bogus
	assert_failure 2
	[[ $stderr == *"unknown option '--bogus'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" conninfo ci-tcp -o
	assert_failure 2
}

@test "conninfo: Try an unregistered or deregistered connection: exit 1 naming it" {
	run --separate-stderr "$DBREG" conninfo ci-nobody
	assert_failure 1
	[[ $stderr == *"no connection named 'ci-nobody'"* ]] || fail "$stderr"
	assert_output ""
	run --separate-stderr "$DBREG" conninfo ci-gone
	assert_failure 1
	[[ $stderr == *"no connection named 'ci-gone'"* ]] || fail "$stderr"
}

@test "conninfo: Try without ADMIN_DATABASE_URL (78) or with the admin database down (69)" {
	unset ADMIN_DATABASE_URL
	run --separate-stderr "$DBREG" conninfo ci-tcp
	assert_failure 78
	assert_output ""
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	run --separate-stderr "$DBREG" conninfo ci-tcp
	assert_failure 69
	assert_output ""
}

@test "conninfo: -h and --help print the usage and every format" {
	run --separate-stderr "$DBREG" conninfo --help
	assert_success
	assert_line --index 0 'Usage: dbreg conninfo NAME [-o kv|uri|json]'
	[[ $output == *"kv (default"* && $output == *uri* && $output == *json* ]] || fail "$output"
	run --separate-stderr "$DBREG" conninfo -h
	assert_success
}

# ---- the platform's registry ---------------------------------------------------------------

@test "conninfo: platform registry: every format, a NULL port is 5432 and a NULL sslmode prefer" {
	export ADMIN_DATABASE_URL=$PLATFORM_URL
	local host=${PGSANDBOX_HOST:-127.0.0.1}
	run --separate-stderr "$DBREG" conninfo neofast-analytics-eu
	assert_success
	assert_output "host=$host port=$PGSANDBOX_PORT dbname=$PLATFORM_DB user=$DBREG_ADMIN_ROLE sslmode=prefer"
	run --separate-stderr "$DBREG" conninfo neofast-analytics-eu -o uri
	assert_output "postgresql://$DBREG_ADMIN_ROLE@$host:$PGSANDBOX_PORT/$PLATFORM_DB?sslmode=prefer"
	[[ $output != *gAAAAA* ]] || fail "a stored token in the output"
	psql_admin <<<"UPDATE admin.database_connections SET port = NULL, ssl_mode = NULL
		WHERE connection_name = 'neofast-dev-us-primary';"
	run --separate-stderr "$DBREG" conninfo neofast-dev-us-primary -o json
	assert_success
	assert_equal "$(jq -c . <<<"$output")" \
		"{\"host\":\"$host\",\"port\":5432,\"dbname\":\"$PLATFORM_DB\",\"user\":\"$DBREG_ADMIN_ROLE\",\"sslmode\":\"prefer\"}"
	run --separate-stderr "$DBREG" conninfo neofast-dev-us-primary
	assert_output "host=$host port=5432 dbname=$PLATFORM_DB user=$DBREG_ADMIN_ROLE sslmode=prefer"
	psql_admin <<<"UPDATE admin.database_connections SET port = $PGSANDBOX_PORT, ssl_mode = 'prefer'
		WHERE connection_name = 'neofast-dev-us-primary';"
	# The soft-deleted row is not there.
	run --separate-stderr "$DBREG" conninfo old-backup-db
	assert_failure 1
}

@test "conninfo: platform registry: psql connects with kv and uri, Fernet password exported to a pgpass" {
	export ADMIN_DATABASE_URL=$PLATFORM_URL
	"$DBREG" export neofast-shared-us-primary --pgpass "$PASSFILE" 2>/dev/null
	run --separate-stderr env PGPASSFILE="$PASSFILE" psql -X -w -At \
		"$("$DBREG" conninfo neofast-shared-us-primary)" -c 'SELECT current_database()'
	assert_success
	assert_output "$PLATFORM_DB"
	run --separate-stderr env PGPASSFILE="$PASSFILE" psql -X -w -At \
		"$("$DBREG" conninfo neofast-shared-us-primary -o uri)" -c 'SELECT current_database()'
	assert_success
	assert_output "$PLATFORM_DB"
}
