#!/usr/bin/env bats
# dbreg deregister: a soft delete (deleted_at set, the row kept, hidden from list and show,
# seen by list --all); --purge deletes the row; the name is free again afterwards.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

setup_file() { fresh_initialized_registry; }

teardown_file() { drop_registry; }

setup() {
	require_sandbox
	unset DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE
}

reg() {
	"$DBREG" register "$1" --host h --database d --user u --no-password >/dev/null
}

@test "deregister: marks the row deleted and keeps it" {
	reg der-soft
	local id
	id=$(registry_field der-soft id)
	run --separate-stderr "$DBREG" deregister der-soft
	assert_success
	assert_output "deregistered der-soft"
	run registry_count "id = '$id'"
	assert_output 1
	run registry_count "id = '$id' AND deleted_at IS NOT NULL AND deleted_at <= now()"
	assert_output 1
}

@test "deregister: the connection leaves list and show, and stays in list --all" {
	reg der-hidden
	reg der-kept
	"$DBREG" deregister der-hidden >/dev/null
	run --separate-stderr "$DBREG" list --names
	assert_success
	refute_line der-hidden
	assert_line der-kept
	run --separate-stderr "$DBREG" list -o json
	assert_equal "$(jq '[.[] | select(.connection_name == "der-hidden")] | length' <<<"$output")" 0
	run --separate-stderr "$DBREG" show der-hidden
	assert_failure 1
	run --separate-stderr "$DBREG" list --all --names
	assert_line der-hidden
	run --separate-stderr "$DBREG" list --all -o json
	run jq -r --arg ts "$TS_RE" '.[] | select(.connection_name == "der-hidden") | .deleted_at | test($ts)' <<<"$output"
	assert_output true
	run --separate-stderr "$DBREG" list --all -o json
	run jq -r '.[] | select(.connection_name == "der-kept") | .deleted_at' <<<"$output"
	assert_output null
}

@test "deregister: changes nothing but deleted_at" {
	"$DBREG" register der-only --host h --database d --user u --port 6001 --tag t \
		--no-password >/dev/null
	local before
	before=$(psql_admin <<<"SELECT to_jsonb(c) - 'deleted_at' - 'updated_at' FROM admin.database_connections c WHERE connection_name = 'der-only'")
	"$DBREG" deregister der-only >/dev/null
	run psql_admin <<<"SELECT to_jsonb(c) - 'deleted_at' - 'updated_at' FROM admin.database_connections c WHERE connection_name = 'der-only'"
	assert_output "$before"
}

@test "deregister: --purge deletes the row" {
	reg der-purge
	local id
	id=$(registry_field der-purge id)
	run --separate-stderr "$DBREG" deregister der-purge --purge
	assert_success
	assert_output "purged der-purge"
	run registry_count "id = '$id'"
	assert_output 0
	run --separate-stderr "$DBREG" list --all --names
	refute_line der-purge
}

@test "deregister: --purge may come before NAME" {
	reg der-purge-first
	run --separate-stderr "$DBREG" deregister --purge der-purge-first
	assert_success
	run registry_count "connection_name = 'der-purge-first'"
	assert_output 0
}

@test "deregister: the name can be registered again, with a new id" {
	reg der-again
	local old
	old=$(registry_field der-again id)
	"$DBREG" deregister der-again >/dev/null
	run --separate-stderr "$DBREG" register der-again --host h2 --database d --user u --no-password
	assert_success
	local new
	new=$(registry_field der-again id)
	[[ $new =~ $UUID_RE ]] || fail "no new id"
	[ "$new" != "$old" ] || fail "the new row has the old id"
	run --separate-stderr "$DBREG" show der-again -o json
	assert_equal "$(jq -r .host <<<"$output")" h2
	# Deregistered twice: two deleted rows, one live one.
	"$DBREG" deregister der-again >/dev/null
	reg der-again
	run registry_count "connection_name = 'der-again'"
	assert_output 3
	run registry_count "connection_name = 'der-again' AND deleted_at IS NULL"
	assert_output 1
	run --separate-stderr "$DBREG" list --all --names
	assert_equal "$(grep -c '^der-again$' <<<"$output")" 3
}

@test "deregister: --purge removes only the live row of that name" {
	reg der-mixed
	"$DBREG" deregister der-mixed >/dev/null
	reg der-mixed
	run --separate-stderr "$DBREG" deregister der-mixed --purge
	assert_success
	run registry_count "connection_name = 'der-mixed'"
	assert_output 1
	run registry_count "connection_name = 'der-mixed' AND deleted_at IS NOT NULL"
	assert_output 1
}

@test "deregister: needs no key for a connection with a password" {
	DB_ENCRYPTION_KEY=$(head -c32 /dev/urandom | base64 -w0) \
		"$DBREG" register der-pw --host h --database d --user u --password-stdin \
		<<<"deregister-pw" >/dev/null
	run --separate-stderr "$DBREG" deregister der-pw
	assert_success
	assert_no_secret deregister-pw
	assert_no_secret dbreg:v
}

@test "deregister: Try to deregister a connection that is not registered" {
	local before
	before=$(registry_count)
	run --separate-stderr "$DBREG" deregister der-nonesuch
	assert_failure 1
	assert_output ''
	[[ $stderr == "dbreg: error: "*der-nonesuch* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" deregister der-nonesuch --purge
	assert_failure 1
	run registry_count
	assert_output "$before"
}

@test "deregister: Try to deregister a connection twice" {
	reg der-twice
	"$DBREG" deregister der-twice >/dev/null
	local deleted_at
	deleted_at=$(psql_admin <<<"SELECT deleted_at::text FROM admin.database_connections WHERE connection_name = 'der-twice'")
	run --separate-stderr "$DBREG" deregister der-twice
	assert_failure 1
	run psql_admin <<<"SELECT deleted_at::text FROM admin.database_connections WHERE connection_name = 'der-twice'"
	assert_output "$deleted_at"
}

@test "deregister: Try to deregister without a NAME, or with two" {
	reg der-usage
	run --separate-stderr "$DBREG" deregister
	assert_failure 2
	[[ $stderr == *"Try 'dbreg deregister --help' for more information."* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" deregister der-usage der-other
	assert_failure 2
	run --separate-stderr "$DBREG" deregister der-usage --force
	assert_failure 2
	run registry_count "connection_name = 'der-usage' AND deleted_at IS NULL"
	assert_output 1
}

@test "deregister: Try to deregister a bad connection name" {
	local name
	for name in Bad "a'b" "x' OR '1'='1" -x ''; do
		run --separate-stderr "$DBREG" deregister -- "$name"
		[ "$status" -eq 2 ] || fail "deregister '$name': exit $status"
		[[ $stderr == "dbreg: error: "* ]] || fail "stderr: $stderr"
	done
}

@test "deregister: Try to deregister on an admin database that is down" {
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	run --separate-stderr timeout 20 "$DBREG" deregister der-any
	assert_failure 69
}
