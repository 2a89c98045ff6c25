#!/usr/bin/env bats
# dbreg update: only the given fields change (same id, updated_at bumped), a password only
# when asked for, health columns never bump updated_at, and every refusal leaves the row
# as it was.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

setup_file() { fresh_initialized_registry; }

teardown_file() { drop_registry; }

setup() {
	require_sandbox
	make_key
}

# reg NAME [OPTION...]: register NAME with a full set of non-default values and no
# password (or the first line of stdin as password, given --password-stdin).
reg() {
	local name=$1 pw=--no-password
	shift
	[[ " $* " == *" --password-stdin "* ]] && pw=
	"$DBREG" register "$name" --host old-host --port 6000 --database old_db --user old_user \
		--type ANALYTICS --region eu-west-1 --ssl-mode require --pool-min 1 --pool-max 10 \
		--pool-timeout 11 --pool-recycle 12 --tag t1 --tag t2 ${pw:+"$pw"} "$@" >/dev/null
}

# row NAME: the whole live row as JSON (every column, the stored password included).
row() {
	psql_admin -v "name=$1" <<<"SELECT to_jsonb(c) FROM admin.database_connections c
		WHERE connection_name = :'name' AND deleted_at IS NULL;"
}

# row_without NAME JQ-PATHS...: the row as JSON without the given keys, sorted.
row_without() {
	local name=$1 paths
	shift
	paths=$(printf 'del(.%s) | ' "$@")
	row "$name" | jq -cS "${paths} ."
}

updated_at() { registry_field "$1" "updated_at::text"; }

# refused STATUS NAME COMMAND...: COMMAND exits STATUS with an error, row NAME unchanged.
refused() {
	local want=$1 name=$2 before after
	shift 2
	before=$(row "$name")
	run --separate-stderr "$@"
	after=$(row "$name")
	[ "$status" -eq "$want" ] || fail "exit $status, not $want: $*
stdout: $output
stderr: $stderr"
	[[ $stderr == *"dbreg: error: "* ]] || fail "no error message on stderr: $stderr"
	[ "$before" = "$after" ] || fail "row $name changed: $*"
	if [ "$want" -eq 2 ] && [ -z "${NO_HINT-}" ]; then
		[[ $stderr == *"Try 'dbreg update --help' for more information."* ]] ||
			fail "a usage error without the hint: $stderr"
	fi
}

# ---- only what is given changes -------------------------------------------------------------

@test "update: changes only the given field; same id, updated_at bumped" {
	reg upd-one
	local before_at before_rest
	before_at=$(updated_at upd-one)
	before_rest=$(row_without upd-one port updated_at)
	sleep 0.01
	run --separate-stderr "$DBREG" update upd-one --port 7000
	assert_success
	assert_output "updated upd-one
port 6000 → 7000"
	assert_equal "$stderr" ""
	run registry_field upd-one port
	assert_output 7000
	run row_without upd-one port updated_at
	assert_output "$before_rest"
	[[ $(updated_at upd-one) > $before_at ]] || fail "updated_at was not bumped"
	run registry_count "connection_name = 'upd-one'"
	assert_output 1
}

@test "update: every option changes its own column and nothing else" {
	reg upd-each
	local opt value col want before
	while IFS='|' read -r opt value col want; do
		before=$(row_without upd-each "$col" updated_at)
		if [ -n "$value" ]; then
			run --separate-stderr "$DBREG" update upd-each "$opt" "$value"
		else
			run --separate-stderr "$DBREG" update upd-each "$opt"
		fi
		[ "$status" -eq 0 ] || fail "update $opt $value: exit $status: $stderr"
		run registry_field upd-each "$col"
		[ "$output" = "$want" ] || fail "update $opt $value: $col is '$output', not '$want'"
		run row_without upd-each "$col" updated_at
		[ "$output" = "$before" ] || fail "update $opt $value changed more than $col"
	done <<-'EOF'
		--host|new-host|host|new-host
		--database|new_db|database_name|new_db
		--user|new_user|username|new_user
		--port|6543|port|6543
		--type|DEDICATED|connection_type|DEDICATED
		--region|us-east-1|region_id|us-east-1
		--ssl-mode|verify-ca|ssl_mode|verify-ca
		--pool-min|3|pool_min_size|3
		--pool-max|40|pool_max_size|40
		--pool-timeout|45|pool_timeout_seconds|45
		--pool-recycle|1800|pool_recycle_seconds|1800
		--no-pre-ping||pool_pre_ping|f
		--pre-ping||pool_pre_ping|t
		--deactivate||is_active|f
		--activate||is_active|t
		--inactive||is_active|f
		--activate||is_active|t
	EOF
}

@test "update: several fields at once" {
	reg upd-many
	run --separate-stderr "$DBREG" update upd-many --host h2 --port 6001 --pool-min 0 \
		--pool-max 0 --deactivate --no-pre-ping
	assert_success
	run registry_field upd-many "host, port, pool_min_size, pool_max_size, is_active, pool_pre_ping,
		database_name, username, connection_type"
	assert_output 'h2|6001|0|0|f|f|old_db|old_user|ANALYTICS'
}

@test "update: --tag replaces the tags; other updates keep them" {
	reg upd-tags
	run --separate-stderr "$DBREG" update upd-tags --port 6001
	assert_success
	run registry_field upd-tags tags
	assert_output '{t1,t2}'
	run --separate-stderr "$DBREG" update upd-tags --tag new --tag 'two words'
	assert_success
	run registry_field upd-tags "array_to_json(tags)"
	assert_output '["new","two words"]'
}

@test "update: --url changes the fields it carries; options beside it win" {
	reg upd-url
	run --separate-stderr "$DBREG" update upd-url \
		--url 'postgresql://url_user@url-host:6432/url_db?sslmode=disable' --port 6999
	assert_success
	run registry_field upd-url "host, port, database_name, username, ssl_mode, connection_type, pool_max_size"
	assert_output 'url-host|6999|url_db|url_user|disable|ANALYTICS|10'
}

@test "update: --region '' clears the region" {
	reg upd-region
	run --separate-stderr "$DBREG" update upd-region --region ''
	assert_success
	run registry_field upd-region "region_id IS NULL"
	assert_output t
}

# ---- passwords ---------------------------------------------------------------------------------

@test "update: keeps the password unless asked, and needs no key then" {
	reg upd-keep-pw --password-stdin <<<"keep-this-password"
	local stored key=$DB_ENCRYPTION_KEY
	stored=$(registry_field upd-keep-pw encrypted_password)
	[[ $stored =~ $STORED_RE ]] || fail "no stored password to keep"
	unset DB_ENCRYPTION_KEY
	run --separate-stderr "$DBREG" update upd-keep-pw --pool-max 30 --tag x
	assert_success
	assert_no_secret "$stored"
	run registry_field upd-keep-pw encrypted_password
	assert_output "$stored"
	# A new target is another binding: without the key, nothing is written.
	local before
	before=$(row upd-keep-pw)
	run --separate-stderr "$DBREG" update upd-keep-pw --port 6100
	assert_failure 78
	[[ $stderr == *"bound to its target and must be re-encrypted"* ]] || fail "$stderr"
	assert_equal "$(row upd-keep-pw)" "$before"
}

@test "update: a new host, port, database, user or ssl mode re-encrypts the password for it" {
	register_sandbox upd-bound
	local stored opt value
	for opt in port host database user ssl-mode; do
		stored=$(registry_field upd-bound encrypted_password)
		[[ $stored =~ $STORED_RE ]] || fail "no v2 password: $stored"
		# The value it has is no new target: the password stays as it is.
		run --separate-stderr "$DBREG" update upd-bound "--$opt" "$(registry_field upd-bound "$(
			case $opt in database) echo database_name ;; user) echo username ;; *) echo "${opt/-/_}" ;; esac)")"
		assert_success
		assert_equal "$(registry_field upd-bound encrypted_password)" "$stored"
		case $opt in
		port) value=$((PGSANDBOX_PORT + 1)) ;;
		host) value=localhost ;;
		database) value=other_db ;;
		user) value=other_user ;;
		ssl-mode) value=require ;;
		esac
		run --separate-stderr "$DBREG" update upd-bound "--$opt" "$value"
		assert_success
		assert_no_secret "$stored"
		[ "$(registry_field upd-bound encrypted_password)" != "$stored" ] || fail "--$opt: not re-encrypted"
		# Readable for its new target (validate-config decrypts every stored password).
		run --separate-stderr "$DBREG" validate-config -o json
		assert_equal "$(jq '[.findings[] | select(.connection_name == "upd-bound")] | length' <<<"$output")" 0
	done
	# Back to the sandbox: the password (rebound four times) still logs in.
	run --separate-stderr "$DBREG" update upd-bound --port "$PGSANDBOX_PORT" --host 127.0.0.1 \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --ssl-mode prefer
	assert_success
	run --separate-stderr "$DBREG" health upd-bound --no-update -o json
	assert_equal "$(jq -r '.results[0].status' <<<"$output")" HEALTHY
	# A v1 value becomes v2 on the way.
	psql_admin -v "s=$(stored_v1 "$(sandbox_admin_password)")" <<<"UPDATE admin.database_connections
		SET encrypted_password = :'s' WHERE connection_name = 'upd-bound'"
	run --separate-stderr "$DBREG" update upd-bound --host localhost
	assert_success
	[[ $(registry_field upd-bound encrypted_password) =~ $STORED_RE ]] || fail "still v1"
	run --separate-stderr "$DBREG" health upd-bound --no-update -o json
	assert_equal "$(jq -r '.results[0].status' <<<"$output")" HEALTHY
}

@test "update: Try to change the target of a row whose v2 password was copied from another row" {
	register_sandbox upd-victim
	"$DBREG" register upd-thief --host 127.0.0.1 --port 1 --database d --user u --no-password >/dev/null
	psql_admin <<<"UPDATE admin.database_connections SET encrypted_password = (SELECT encrypted_password
		FROM admin.database_connections WHERE connection_name = 'upd-victim') WHERE connection_name = 'upd-thief'"
	local before
	before=$(row upd-thief)
	run --separate-stderr "$DBREG" update upd-thief --port 2
	assert_failure 1
	[[ $stderr == *"does not belong to this connection's target (was it copied or was the row changed without dbreg?)"* ]] ||
		fail "$stderr"
	assert_equal "$(row upd-thief)" "$before"
	# health and show tell it the same way, and never send the password.
	run --separate-stderr "$DBREG" health upd-thief --no-update -o json
	[[ $output == *"does not belong to this connection's target"* ]] || fail "$output"
	# A host changed outside dbreg and changed back by dbreg reads again.
	psql_admin <<<"UPDATE admin.database_connections SET host = 'evil.invalid' WHERE connection_name = 'upd-victim'"
	run --separate-stderr "$DBREG" health upd-victim --no-update -o json
	[[ $output == *"does not belong to this connection's target"* ]] || fail "$output"
	run --separate-stderr "$DBREG" update upd-victim --host 127.0.0.1
	assert_success
	run --separate-stderr "$DBREG" health upd-victim --no-update -o json
	assert_equal "$(jq -r '.results[0].status' <<<"$output")" HEALTHY
}

@test "update: --password-stdin sets a new password, encrypted" {
	reg upd-new-pw
	run --separate-stderr "$DBREG" update upd-new-pw --password-stdin <<<"brand-new-password"
	assert_success
	assert_output "updated upd-new-pw
password set"
	assert_no_secret brand-new-password
	assert_no_secret dbreg:v
	local first
	first=$(registry_field upd-new-pw encrypted_password)
	[[ $first =~ $STORED_RE ]] || fail "not a stored text"
	run registry_count "to_jsonb(database_connections)::text LIKE '%brand-new-password%'"
	assert_output 0
	run --separate-stderr "$DBREG" update upd-new-pw --password-stdin <<<"brand-new-password"
	assert_success
	run registry_field upd-new-pw encrypted_password
	[[ $output =~ $STORED_RE ]] || fail "not a stored text"
	[ "$output" != "$first" ] || fail "the same stored text twice"
	run --separate-stderr "$DBREG" show upd-new-pw -o json
	assert_no_secret brand-new-password
	assert_no_secret dbreg:v
	assert_equal "$(jq -r '.has_password' <<<"$output")" true
	assert_equal "$(jq -r '.key_id' <<<"$output")" "$(cut -d: -f3 <<<"$first")"
}

@test "update: --password-stdin alone changes nothing else" {
	reg upd-pw-only
	local before
	before=$(row_without upd-pw-only encrypted_password updated_at)
	run --separate-stderr "$DBREG" update upd-pw-only --password-stdin <<<"only-the-password"
	assert_success
	run row_without upd-pw-only encrypted_password updated_at
	assert_output "$before"
}

@test "update: --no-password removes the password" {
	reg upd-clear-pw --password-stdin <<<"to-be-removed"
	run --separate-stderr "$DBREG" update upd-clear-pw --no-password
	assert_success
	run registry_field upd-clear-pw "encrypted_password IS NULL"
	assert_output t
	run --separate-stderr "$DBREG" show upd-clear-pw -o json
	assert_equal "$(jq -c '[.has_password, .key_id]' <<<"$output")" '[false,null]'
}

@test "update: Try to set a password without a key" {
	reg upd-nokey
	unset DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE
	refused 78 upd-nokey "$DBREG" update upd-nokey --password-stdin <<<"pw-without-key"
	[[ $stderr == *generate-key* ]] || fail "stderr: $stderr"
	assert_no_secret pw-without-key
}

@test "update: Try to set a password longer than 138 bytes" {
	reg upd-long-pw
	local pw
	pw=$(head -c 200 /dev/zero | tr '\0' 'x' | head -c 139)
	NO_HINT=1 refused 2 upd-long-pw "$DBREG" update upd-long-pw --password-stdin <<<"$pw"
	assert_no_secret "$pw"
	pw=${pw:1}
	run --separate-stderr "$DBREG" update upd-long-pw --password-stdin <<<"$pw"
	assert_success
	assert_no_secret "$pw"
}

@test "update: Try to give two password options" {
	reg upd-two-pw
	refused 2 upd-two-pw "$DBREG" update upd-two-pw --password-stdin --no-password <<<"x-pw"
	refused 2 upd-two-pw "$DBREG" update upd-two-pw --password-stdin --password-prompt <<<"x-pw"
}

@test "update: Try to use --password-prompt without a terminal" {
	reg upd-prompt
	NO_HINT=1 refused 2 upd-prompt no_tty "$DBREG" update upd-prompt --password-prompt </dev/null
}

@test "update: Try to put a password inside --url" {
	reg upd-url-pw
	refused 2 upd-url-pw "$DBREG" update upd-url-pw --url 'postgresql://u:url-secret@h/d'
	assert_no_secret url-secret
}

# ---- updated_at ----------------------------------------------------------------------------

@test "update: health columns do not bump updated_at; configuration does" {
	reg upd-health
	local at
	at=$(updated_at upd-health)
	sleep 0.01
	psql_admin -c "UPDATE admin.database_connections SET consecutive_failures = 2
		WHERE connection_name = 'upd-health'"
	run updated_at upd-health
	assert_output "$at"
	psql_admin -c "UPDATE admin.database_connections SET is_healthy = false,
		last_health_check = now(), consecutive_failures = 3 WHERE connection_name = 'upd-health'"
	run updated_at upd-health
	assert_output "$at"
	sleep 0.01
	run --separate-stderr "$DBREG" update upd-health --pool-max 11
	assert_success
	local at2
	at2=$(updated_at upd-health)
	[[ $at2 > $at ]] || fail "updated_at was not bumped by a configuration change"
	# The health columns survive an update.
	run registry_field upd-health "is_healthy, consecutive_failures, last_health_check IS NOT NULL"
	assert_output 'f|3|t'
	sleep 0.01
	psql_admin -c "UPDATE admin.database_connections SET metadata = '{\"k\": 1}'
		WHERE connection_name = 'upd-health'"
	[[ $(updated_at upd-health) > $at2 ]] || fail "a metadata change did not bump updated_at"
}

# ---- --dry-run and --test ------------------------------------------------------------------------

@test "update: --dry-run shows the row it would write, and writes nothing" {
	reg upd-dry
	local before
	before=$(row upd-dry)
	run --separate-stderr "$DBREG" update upd-dry --port 6555 --type DEDICATED --dry-run
	assert_success
	assert_line --index 0 --regexp '^dry run:'
	assert_output --partial 6555
	assert_output --partial DEDICATED
	assert_output --partial old-host
	run row upd-dry
	assert_output "$before"
}

@test "update: --dry-run with a new password shows neither it nor its stored text" {
	reg upd-dry-pw
	local before
	before=$(row upd-dry-pw)
	run --separate-stderr "$DBREG" update upd-dry-pw --password-stdin --dry-run <<<"dry-update-pw"
	assert_success
	assert_no_secret dry-update-pw
	assert_no_secret dbreg:v
	run row upd-dry-pw
	assert_output "$before"
}

@test "update: --dry-run still reports what would be refused" {
	reg upd-dry-bad
	refused 1 upd-dry-bad "$DBREG" update upd-dry-bad --type FOO --dry-run
	refused 1 upd-dry-bad "$DBREG" update upd-dry-bad --pool-min 50 --dry-run
	refused 1 upd-dry-bad "$DBREG" update upd-dry-nonesuch --port 1 --dry-run
}

@test "update: --test logs in with the resulting settings first" {
	local pw
	pw=$(sandbox_admin_password)
	"$DBREG" register upd-test --host "${PGSANDBOX_HOST:-127.0.0.1}" --port "$PGSANDBOX_PORT" \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --password-stdin <<<"$pw" >/dev/null
	# The stored password, the new pool size: logs in, then writes.
	run --separate-stderr "$DBREG" update upd-test --pool-max 30 --test
	assert_success
	assert_no_secret "$pw"
	run registry_field upd-test pool_max_size
	assert_output 30
	# A closed port: refused, nothing written.
	refused 1 upd-test timeout 30 "$DBREG" update upd-test --port 1 --test
	# A wrong new password: refused, the old one kept.
	refused 1 upd-test "$DBREG" update upd-test --password-stdin --test <<<"wrong-update-pw"
	assert_no_secret wrong-update-pw
	# The right one again: written.
	run --separate-stderr "$DBREG" update upd-test --password-stdin --test <<<"$pw"
	assert_success
	assert_no_secret "$pw"
	assert_no_secret dbreg:v
}

# ---- refusals --------------------------------------------------------------------------------------

@test "update: Try to update with nothing to change" {
	reg upd-nothing
	NO_HINT=1 refused 2 upd-nothing "$DBREG" update upd-nothing
	[[ $stderr == *"nothing to update"* ]] || fail "stderr: $stderr"
}

@test "update: Try to update with nothing to change, caught before connecting" {
	unset ADMIN_DATABASE_URL
	run --separate-stderr "$DBREG" update upd-nothing
	if [ "$status" -eq 78 ]; then
		fail "unexpected: [ \"\$status\" -eq 78 ]"
	fi
	assert_failure 2
	[[ $stderr == *"nothing to update"* ]] || fail "stderr: $stderr"
	[[ $stderr == *"Try 'dbreg update --help' for more information."* ]] || fail "stderr: $stderr"
}

@test "update: Try to update a connection that is not registered" {
	run --separate-stderr "$DBREG" update upd-nonesuch --port 7000
	assert_failure 1
	[[ $stderr == "dbreg: error: "*upd-nonesuch* ]] || fail "stderr: $stderr"
	run registry_count "connection_name = 'upd-nonesuch'"
	assert_output 0
}

@test "update: Try to update a deregistered connection" {
	reg upd-gone
	"$DBREG" deregister upd-gone >/dev/null
	local before
	before=$(psql_admin <<<"SELECT to_jsonb(c) FROM admin.database_connections c WHERE connection_name = 'upd-gone'")
	run --separate-stderr "$DBREG" update upd-gone --port 7000
	assert_failure 1
	run psql_admin <<<"SELECT to_jsonb(c) FROM admin.database_connections c WHERE connection_name = 'upd-gone'"
	assert_output "$before"
}

@test "update: Try to use --replace" {
	reg upd-replace
	refused 2 upd-replace "$DBREG" update upd-replace --replace --port 7000
	[[ $stderr == *--replace* ]] || fail "stderr: $stderr"
}

@test "update: Try to update without a NAME, or with a bad one" {
	refused 2 upd-x "$DBREG" update --port 7000
	refused 2 upd-x "$DBREG" update Bad --port 7000
	refused 2 upd-x "$DBREG" update "a'b" --port 7000
	refused 2 upd-x "$DBREG" update --port 7000 -- -x
	refused 2 upd-x "$DBREG" update a b --port 7000
}

@test "update: Try to give values dbreg checks itself" {
	reg upd-usage
	local args
	for args in "--port 0" "--port 70000" "--port abc" "--pool-min 6 --pool-max 5" \
		"--pool-timeout 0" "--pool-recycle -1" "--pool-max x" "--activate --deactivate" \
		"--inactive --activate" "--host" "--bogus"; do
		# shellcheck disable=SC2086
		refused 2 upd-usage "$DBREG" update upd-usage $args
	done
	refused 2 upd-usage "$DBREG" update upd-usage --host ''
}

@test "update: Try to give values the database refuses" {
	reg upd-db
	refused 1 upd-db "$DBREG" update upd-db --type FOO
	[[ $stderr == *connection_type* && $stderr == *DEDICATED* ]] || fail "stderr: $stderr"
	refused 1 upd-db "$DBREG" update upd-db --ssl-mode nope
	[[ $stderr == *ssl_mode* && $stderr == *verify-full* ]] || fail "stderr: $stderr"
	# Only the row knows its pool_max_size (10): the database refuses a larger minimum.
	refused 1 upd-db "$DBREG" update upd-db --pool-min 11
	[[ $stderr == *pool_min_size* ]] || fail "stderr: $stderr"
	refused 1 upd-db "$DBREG" update upd-db --pool-max 0
}

@test "update: Try to reach an admin database that is down" {
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	run --separate-stderr timeout 20 "$DBREG" update upd-x --port 7000
	assert_failure 69
}

@test "update: says what changed, a line each, and nothing else of the row" {
	reg upd-say
	run --separate-stderr "$DBREG" update upd-say --pool-max 40 --tag eu --deactivate
	assert_success
	assert_output 'updated upd-say
pool_max_size 10 → 40
is_active yes → no
tags ["t1", "t2"] → ["eu"]'
	run --separate-stderr "$DBREG" update upd-say --pool-max 40
	assert_success
	assert_output 'updated upd-say
nothing changed'
	run --separate-stderr "$DBREG" update upd-say --no-password
	assert_success
	assert_line --index 1 --regexp '^(password removed|no password, as before)$'
}

@test "update: the password prompt names the target, with the new host when it changes" {
	command -v tmux >/dev/null || skip "tmux is not installed"
	reg upd-prompt-target
	load tmux
	tmux_run 120 10 "dbreg" env -i HOME="$BATS_TEST_TMPDIR" TERM=screen PATH="$PATH" \
		ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL" PGPASSFILE="$PGPASSFILE" DB_ENCRYPTION_KEY="$DB_ENCRYPTION_KEY" \
		"$DBREG" update upd-prompt-target --host 127.0.0.1 --password-prompt
	wait_for "Password for "
	run pane
	assert_line --regexp "^Password for [^ ]+@127\.0\.0\.1:[0-9]+/[^ ]+: ?\$"
	keys C-c
	tmux_stop_all
}
