#!/usr/bin/env bats
# dbreg show: one connection in full, as a table or one JSON object with SPEC §12's keys;
# never its password nor the stored text.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

KEYS=(id connection_name connection_type region_id host port database_name username ssl_mode
	pool_min_size pool_max_size pool_timeout_seconds pool_recycle_seconds pool_pre_ping
	is_active is_healthy last_health_check consecutive_failures max_consecutive_failures
	metadata tags created_at updated_at deleted_at has_password key_id password_format)

SHOW_PASSWORD=show-test-password-9

setup_file() {
	fresh_registry
	have_sandbox || return 0
	make_key
	"$DBREG" init >/dev/null
	"$DBREG" register shw-full --host db.example.com --port 6432 --database orders \
		--user orders_rw --type DEDICATED --region ap-south-1 --ssl-mode verify-full \
		--pool-min 2 --pool-max 8 --pool-timeout 9 --pool-recycle 99 --no-pre-ping --inactive \
		--tag red --tag 'x,y' --password-stdin <<<"$SHOW_PASSWORD" >/dev/null
	"$DBREG" register shw-plain --host h --database d --user u --no-password >/dev/null
}

teardown_file() { drop_registry; }

setup() {
	require_sandbox
	unset DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE
}

@test "show: json is one object with exactly SPEC's keys" {
	run --separate-stderr "$DBREG" show shw-full -o json
	assert_success
	assert_equal "$(jq -r type <<<"$output")" object
	local want
	want=$(printf '%s\n' "${KEYS[@]}" | sort | jq -Rsc 'split("\n") | map(select(. != ""))')
	assert_equal "$(jq -c keys <<<"$output")" "$want"
	refute_output --partial encrypted_password
}

@test "show: json carries every registered value with its type" {
	run --separate-stderr "$DBREG" show shw-full --format=json
	assert_success
	run jq -c '[.connection_name, .connection_type, .region_id, .host, .port, .database_name,
		.username, .ssl_mode, .pool_min_size, .pool_max_size, .pool_timeout_seconds,
		.pool_recycle_seconds, .pool_pre_ping, .is_active, .is_healthy, .last_health_check,
		.consecutive_failures, .max_consecutive_failures, .metadata, .tags, .deleted_at,
		.has_password]' <<<"$output"
	assert_output '["shw-full","DEDICATED","ap-south-1","db.example.com",6432,"orders","orders_rw","verify-full",2,8,9,99,false,false,true,null,0,3,{},["red","x,y"],null,true]'
	run --separate-stderr "$DBREG" show shw-full -o json
	local json=$output
	assert_equal "$(jq -r .id <<<"$json")" "$(registry_field shw-full id)"
	assert_equal "$(jq -r .key_id <<<"$json")" \
		"$(registry_field shw-full "split_part(encrypted_password, ':', 3)")"
	[[ $(jq -r .created_at <<<"$json") =~ $TS_RE ]] || fail "created_at: $(jq -r .created_at <<<"$json")"
	[[ $(jq -r .updated_at <<<"$json") =~ $TS_RE ]] || fail "updated_at: $(jq -r .updated_at <<<"$json")"
}

@test "show: json agrees with list's object for the same connection" {
	run --separate-stderr "$DBREG" show shw-full -o json
	local one
	one=$(jq -cS . <<<"$output")
	run --separate-stderr "$DBREG" list -o json
	assert_equal "$(jq -cS '.[] | select(.connection_name == "shw-full")' <<<"$output")" "$one"
}

@test "show: a connection without a password" {
	run --separate-stderr "$DBREG" show shw-plain -o json
	assert_success
	assert_equal "$(jq -c '[.has_password, .key_id, .region_id, .tags]' <<<"$output")" \
		'[false,null,null,[]]'
}

@test "show: the table shows every field" {
	run --separate-stderr "$DBREG" show shw-full
	assert_success
	local key
	for key in "${KEYS[@]}"; do
		assert_line --regexp "^$key( |:)"
	done
	assert_line --regexp '^connection_name:? +shw-full$'
	assert_line --regexp '^host:? +db\.example\.com$'
	assert_line --regexp '^port:? +6432$'
	assert_line --regexp '^region_id:? +ap-south-1$'
	assert_line --regexp "^key_id:? +$(registry_field shw-full "split_part(encrypted_password, ':', 3)")$"
	refute_output --partial encrypted_password
	run --separate-stderr "$DBREG" show shw-full -o table
	assert_success
	assert_line --regexp '^connection_name:? +shw-full$'
}

@test "show: never prints the password nor its stored text" {
	local stored fmt
	stored=$(registry_field shw-full encrypted_password)
	[[ $stored == dbreg:v2:* ]] || fail "no stored password in the fixture"
	for fmt in table json; do
		run --separate-stderr "$DBREG" show shw-full -o "$fmt"
		assert_success
		assert_no_secret "$SHOW_PASSWORD"
		assert_no_secret "$stored"
		assert_no_secret dbreg:v
	done
}

@test "show: needs no key, and ignores a malformed one" {
	run --separate-stderr "$DBREG" show shw-full -o json
	assert_success
	export DB_ENCRYPTION_KEY=not-a-key
	run --separate-stderr "$DBREG" show shw-full -o json
	assert_success
	assert_equal "$(jq -r .has_password <<<"$output")" true
}

@test "show: Try to show a connection that is not registered" {
	run --separate-stderr "$DBREG" show shw-nonesuch
	assert_failure 1
	assert_output ''
	[[ $stderr == "dbreg: error: "*shw-nonesuch* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" show shw-nonesuch -o json
	assert_failure 1
	assert_output ''
	# A slip of the name: the live name it is closest to (a swap counts as one).
	run --separate-stderr "$DBREG" show shw-flul
	assert_failure 1
	assert_equal "$stderr" "dbreg: error: no connection named 'shw-flul'; did you mean 'shw-full'?"
	run --separate-stderr "$DBREG" health shw-plian --no-update
	[[ $stderr == *"no connection named 'shw-plian'; did you mean 'shw-plain'?"* ]] || fail "$stderr"
}

@test "show: Try to show a deregistered connection" {
	"$DBREG" register shw-gone --host h --database d --user u --no-password >/dev/null
	"$DBREG" deregister shw-gone >/dev/null
	run --separate-stderr "$DBREG" show shw-gone
	assert_failure 1
	assert_output ''
}

@test "show: Try to show without a NAME, or with two" {
	run --separate-stderr "$DBREG" show
	assert_failure 2
	[[ $stderr == *"Try 'dbreg show --help' for more information."* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" show shw-full shw-plain
	assert_failure 2
	assert_output ''
}

@test "show: Try to show a bad connection name" {
	local name
	for name in Bad "a'b" '-x' ''; do
		run --separate-stderr "$DBREG" show -- "$name"
		[ "$status" -eq 2 ] || fail "show '$name': exit $status"
		[[ $stderr == "dbreg: error: "* ]] || fail "stderr: $stderr"
	done
}

@test "show: Try to ask for a format show does not have" {
	local fmt
	for fmt in csv yaml text; do
		run --separate-stderr "$DBREG" show shw-full -o "$fmt"
		[ "$status" -eq 2 ] || fail "-o $fmt: exit $status"
		assert_output ''
		[[ $stderr == *"Try 'dbreg show --help' for more information."* ]] || fail "stderr: $stderr"
	done
}

@test "show: Try to show from an admin database that is down" {
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	run --separate-stderr timeout 20 "$DBREG" show shw-full
	assert_failure 69
	assert_output ''
}
