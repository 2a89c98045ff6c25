#!/usr/bin/env bats
# dbreg rotate-key: every stored password (live and deleted rows) re-encrypted with the current
# key, or into the other format, in one transaction: all or nothing, idempotent, counted.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper
load platform

setup() {
	require_sandbox
	fresh_initialized_registry
	unset DB_ENCRYPTION_KEY_FILE DB_ENCRYPTION_OLD_KEYS DB_FERNET_PASSPHRASE_FILE
	OLD_KEY=$("$DBREG" generate-key)
	NEW_KEY=$("$DBREG" generate-key)
	export DB_ENCRYPTION_KEY=$OLD_KEY
	local n
	for n in alpha beta gamma; do
		printf 'pw-%s\n' "$n" | "$DBREG" register "$n" --host h --database d --user u --password-stdin >/dev/null
	done
	"$DBREG" register nopw --host h --database d --user u --no-password >/dev/null
	"$DBREG" deregister gamma >/dev/null
}

teardown() { drop_registry; }

# stored: every stored text, by name (deleted rows too).
stored() {
	psql_admin <<<"SELECT connection_name || ' ' || coalesce(encrypted_password, '-')
		FROM admin.database_connections ORDER BY connection_name, deleted_at NULLS FIRST"
}

key_id() {
	python3 -c 'import base64, hashlib, sys
print(hashlib.blake2b(base64.b64decode(sys.argv[1]), digest_size=32).hexdigest()[:8])' "$1"
}

@test "rotate-key: re-encrypts every password, deleted rows too, under the current key; counts by source" {
	local before
	before=$(stored)
	DB_ENCRYPTION_KEY=$NEW_KEY DB_ENCRYPTION_OLD_KEYS=$OLD_KEY run --separate-stderr "$DBREG" rotate-key
	assert_success
	assert_output "rotated into dbreg: 3 from key $(key_id "$OLD_KEY"), 0 already current"
	[ "$(stored)" != "$before" ] || fail "nothing changed"
	assert_equal "$(psql_admin <<<"SELECT count(*) FROM admin.database_connections
		WHERE encrypted_password LIKE 'dbreg:v2:$(key_id "$NEW_KEY"):%'")" 3
	# The new key alone reads them now, the deleted one too.
	export DB_ENCRYPTION_KEY=$NEW_KEY
	run --separate-stderr "$DBREG" validate-config --offline -o json
	run --separate-stderr "$DBREG" validate-config -o json
	assert_equal "$(jq '[.findings[] | select(.code == "conn-password" or .code == "key-old-in-use")] | length' <<<"$output")" 0
	# Idempotent.
	run --separate-stderr "$DBREG" rotate-key
	assert_success
	assert_output "rotated into dbreg: 3 already current"
	assert_no_secret pw-alpha
}

@test "rotate-key: upgrades v1 texts to v2, bound to their rows; validate-config warns of v1 until then" {
	# alpha in v1 under the current key, beta in v1 under the old one.
	psql_admin -v "a=$(stored_v1 pw-alpha "$NEW_KEY")" -v "b=$(stored_v1 pw-beta "$OLD_KEY")" <<-'EOF'
		UPDATE admin.database_connections SET encrypted_password = :'a' WHERE connection_name = 'alpha';
		UPDATE admin.database_connections SET encrypted_password = :'b' WHERE connection_name = 'beta';
	EOF
	export DB_ENCRYPTION_KEY=$NEW_KEY DB_ENCRYPTION_OLD_KEYS=$OLD_KEY
	run --separate-stderr "$DBREG" validate-config -o json
	assert_equal "$(jq -c '[.findings[] | select(.code == "password-v1") | .connection_name] | sort' <<<"$output")" \
		'["alpha","beta"]'
	run --separate-stderr "$DBREG" rotate-key -o json
	assert_success
	assert_equal "$(jq -c '.from' <<<"$output")" "{\"v1\":2,\"$(key_id "$OLD_KEY")\":1}"
	run --separate-stderr "$DBREG" rotate-key --dry-run
	assert_output "would rotate into dbreg: 3 already current"
	assert_equal "$(psql_admin <<<"SELECT count(*) FROM admin.database_connections WHERE encrypted_password LIKE 'dbreg:v1:%'")" 0
	run --separate-stderr "$DBREG" validate-config -o json
	assert_equal "$(jq '[.findings[] | select(.code == "password-v1" or .code == "conn-password")] | length' <<<"$output")" 0
	# Each is bound to its own row now: one copied into another does not decrypt there.
	psql_admin <<<"UPDATE admin.database_connections SET encrypted_password = (SELECT encrypted_password
		FROM admin.database_connections WHERE connection_name = 'alpha') WHERE connection_name = 'beta'"
	run --separate-stderr "$DBREG" validate-config -o json
	[[ $(jq -r '.findings[] | select(.code == "conn-password") | .connection_name + ": " + .message' <<<"$output") == \
		"beta: "*"does not belong to this connection's target"* ]] || fail "$output"
	run --separate-stderr "$DBREG" rotate-key
	assert_failure 1
	[[ $stderr == *"('beta')"* ]] || fail "$stderr"
}

@test "rotate-key: killed half way (after one row is rewritten), nothing is written; the next run does it all" {
	local before
	before=$(stored)
	DB_ENCRYPTION_KEY=$NEW_KEY DB_ENCRYPTION_OLD_KEYS=$OLD_KEY DBREG_TEST_CRASH_AFTER=rotate-key-row \
		run --separate-stderr "$DBREG" rotate-key
	assert_failure 137
	assert_equal "$(stored)" "$before"
	DB_ENCRYPTION_KEY=$NEW_KEY DB_ENCRYPTION_OLD_KEYS=$OLD_KEY run --separate-stderr "$DBREG" rotate-key
	assert_success
	assert_output "rotated into dbreg: 3 from key $(key_id "$OLD_KEY"), 0 already current"
}

@test "rotate-key: --dry-run says the same and writes nothing; -o json has the documented keys" {
	local before
	before=$(stored)
	DB_ENCRYPTION_KEY=$NEW_KEY DB_ENCRYPTION_OLD_KEYS=$OLD_KEY run --separate-stderr "$DBREG" rotate-key --dry-run -o json
	assert_success
	assert_equal "$(jq -c '[.dry_run, .from, .already_current, .skipped]' <<<"$output")" \
		"[true,{\"$(key_id "$OLD_KEY")\":3},0,[]]"
	assert_equal "$(stored)" "$before"
	DB_ENCRYPTION_KEY=$NEW_KEY DB_ENCRYPTION_OLD_KEYS=$OLD_KEY run --separate-stderr "$DBREG" rotate-key --dry-run
	assert_output "would rotate into dbreg: 3 from key $(key_id "$OLD_KEY"), 0 already current"
	assert_equal "$(stored)" "$before"
}

@test "rotate-key: a password that does not decrypt refuses the whole (exit 1, named, nothing written) unless --skip-undecryptable" {
	local before
	psql_admin <<<"UPDATE admin.database_connections SET encrypted_password = 'not-a-known-format'
		WHERE connection_name = 'beta'"
	before=$(stored)
	# The old key missing from the keyring is the same refusal: exit 1, not 78.
	DB_ENCRYPTION_KEY=$NEW_KEY run --separate-stderr "$DBREG" rotate-key
	assert_failure 1
	assert_output ""
	[[ $stderr == *"'alpha'"*"'beta'"*"nothing was written"* ]] || fail "$stderr"
	assert_equal "$(stored)" "$before"
	DB_ENCRYPTION_KEY=$NEW_KEY DB_ENCRYPTION_OLD_KEYS=$OLD_KEY run --separate-stderr "$DBREG" rotate-key --skip-undecryptable -o json
	assert_success
	assert_equal "$(jq -c '[(.from | length), .skipped]' <<<"$output")" '[1,["beta"]]'
	assert_equal "$(psql_admin <<<"SELECT encrypted_password FROM admin.database_connections WHERE connection_name = 'beta'")" \
		not-a-known-format
	assert_no_secret not-a-known-format
}

@test "rotate-key: --to fernet turns dbreg rows into Fernet tokens the platform reads, and sets the format; --to dbreg back" {
	export DB_FERNET_PASSPHRASE=rotation-passphrase
	run --separate-stderr "$DBREG" rotate-key --to fernet
	assert_success
	assert_output "rotated into fernet: 3 from key $(key_id "$OLD_KEY"), 0 already current"
	assert_equal "$(psql_admin <<<"SELECT value FROM admin.dbreg_settings WHERE name = 'password_format'")" fernet
	local token
	token=$(psql_admin <<<"SELECT encrypted_password FROM admin.database_connections WHERE connection_name = 'alpha'")
	assert_equal "$(fernet_token decrypt <<<"$token")" pw-alpha
	# Fernet rows stay as they are on a Fernet registry (the passphrase is the platform's to rotate).
	run --separate-stderr "$DBREG" rotate-key
	assert_output "rotated into fernet: 3 already current"
	DB_ENCRYPTION_KEY=$NEW_KEY run --separate-stderr "$DBREG" rotate-key --to dbreg
	assert_success
	assert_output "rotated into dbreg: 3 from fernet, 0 already current"
	assert_equal "$(psql_admin <<<"SELECT value FROM admin.dbreg_settings WHERE name = 'password_format'")" dbreg
	assert_equal "$(psql_admin <<<"SELECT count(*) FROM admin.database_connections
		WHERE encrypted_password LIKE 'dbreg:v2:$(key_id "$NEW_KEY"):%'")" 3
}

@test "rotate-key: --to fernet refuses a password over 127 bytes (a token would not fit), writing nothing" {
	export DB_FERNET_PASSPHRASE=rotation-passphrase
	head -c 130 /dev/zero | tr '\0' x | "$DBREG" update beta --password-stdin >/dev/null
	local before
	before=$(stored)
	run --separate-stderr "$DBREG" rotate-key --to fernet
	assert_failure 1
	[[ $stderr == *"'beta'"*"127"* ]] || fail "$stderr"
	assert_equal "$(stored)" "$before"
	assert_equal "$(psql_admin <<<"SELECT value FROM admin.dbreg_settings WHERE name = 'password_format'")" dbreg
}

@test "rotate-key: on the platform's registry, dbreg rows written there become Fernet; its own tokens stay" {
	drop_registry
	platform_registry
	"$DBREG" init >/dev/null
	"$DBREG" init --password-format dbreg >/dev/null
	printf 'pw-mixed\n' | "$DBREG" register mixed-db --host h --database d --user u --type backup \
		--region us-east-1 --password-stdin >/dev/null
	"$DBREG" init --password-format fernet >/dev/null
	local before_tokens
	before_tokens=$(psql_admin <<<"SELECT string_agg(encrypted_password, ',' ORDER BY connection_name)
		FROM admin.database_connections WHERE encrypted_password LIKE 'gAAAAA%'")
	run --separate-stderr "$DBREG" rotate-key
	assert_success
	assert_output "rotated into fernet: 1 from key $(key_id "$OLD_KEY"), 4 already current"
	assert_equal "$(fernet_token decrypt <<<"$(registry_field mixed-db encrypted_password)")" pw-mixed
	assert_equal "$(psql_admin <<<"SELECT string_agg(encrypted_password, ',' ORDER BY connection_name)
		FROM admin.database_connections WHERE encrypted_password LIKE 'gAAAAA%' AND connection_name <> 'mixed-db'")" \
		"$before_tokens"
}

@test "rotate-key: Try it with a bad option, an unknown --to, before init, without a key" {
	run --separate-stderr "$DBREG" rotate-key --bogus
	assert_failure 2
	run --separate-stderr "$DBREG" rotate-key --to plain
	assert_failure 2
	[[ $stderr == *"unknown format 'plain'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" rotate-key extra
	assert_failure 2
	unset DB_ENCRYPTION_KEY
	run --separate-stderr "$DBREG" rotate-key
	assert_failure 78
	[[ $stderr == *DB_ENCRYPTION_KEY* ]] || fail "$stderr"
	drop_registry
	platform_registry
	run --separate-stderr "$DBREG" rotate-key
	assert_failure 78
	[[ $stderr == *"dbreg init"* ]] || fail "$stderr"
}
