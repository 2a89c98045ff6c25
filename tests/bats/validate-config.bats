#!/usr/bin/env bats
# dbreg validate-config: every check of SPEC §8 as a finding with a stable code; each
# finding provoked once; --offline needs no network, --strict fails on warnings; exit
# 0, 1 or 2 only, however broken the configuration; never a secret in the output.

load helper

setup() {
	require_sandbox
	# Every test starts from its own registry at the current schema, with a key.
	scratch_registry
	"$DBREG" init >/dev/null
	make_key
	unset DB_ENCRYPTION_OLD_KEYS PGSERVICE PGSERVICEFILE PGSYSCONFDIR
}

teardown() { drop_scratch_registry; }

# vc [OPTION...]: validate-config -o json, output in $output, stderr apart.
vc() {
	run --separate-stderr "$DBREG" validate-config -o json "$@"
}

# assert_finding CODE SEVERITY [CONNECTION]: the last vc reported CODE with SEVERITY,
# about CONNECTION (or about no one connection when CONNECTION is not given).
assert_finding() {
	local code=$1 severity=$2 conn=${3-}
	jq -e --arg c "$code" --arg s "$severity" --arg n "$conn" --argjson has_n "$([ $# -ge 3 ] && echo true || echo false)" \
		'any(.findings[]; .code == $c and .severity == $s and
			(if $has_n then .connection_name == $n else .connection_name == null end))' \
		<<<"$output" >/dev/null ||
		fail "no $severity $code${3+ about '$conn'} in: $output"
}

# assert_group CODE NAME...: the last vc reported CODE once about exactly the connections
# NAME... (in that order), with connection_name null.
assert_group() {
	local code=$1
	shift
	jq -e --arg c "$code" --args '[.findings[] | select(.code == $c and .connection_name == null) | .connection_names]
		| any(. == $ARGS.positional)' "$@" <<<"$output" >/dev/null ||
		fail "no $code about [$*] in: $output"
}

refute_finding() {
	jq -e --arg c "$1" 'any(.findings[]; .code == $c) | not' <<<"$output" >/dev/null ||
		fail "unexpected $1 in: $output"
}

# count_findings CODE: how many findings have CODE.
count_findings() {
	jq --arg c "$1" '[.findings[] | select(.code == $c)] | length' <<<"$output"
}

# reg NAME [OPTION...]: register NAME without a password.
reg() {
	local name=$1
	shift
	"$DBREG" register "$name" --host db.example.com --database app --user app_user --no-password "$@" >/dev/null
}

# reg_pw NAME PASSWORD [OPTION...]: register NAME with PASSWORD (encrypted with the current key).
reg_pw() {
	local name=$1 pw=$2
	shift 2
	printf '%s\n' "$pw" | "$DBREG" register "$name" --host db.example.com --database "db_$name" \
		--user app_user --password-stdin "$@" >/dev/null
}

# tenant SLUG SCHEMA [CONNECTION]: a live, active tenant, on CONNECTION or on the default.
tenant() {
	psql_admin -v slug="$1" -v schema="$2" -v conn="${3-}" <<-'EOF'
		INSERT INTO admin.tenants (slug, name, schema_name, status, database_connection_id)
		VALUES (:'slug', :'slug', :'schema', 'active',
			(SELECT id FROM admin.database_connections
			 WHERE connection_name = NULLIF(:'conn', '') AND deleted_at IS NULL));
	EOF
}

# loosen_registry: drop the registry's CHECK and foreign-key constraints, as a registry
# that dbreg did not create may lack them, so that bad rows can be stored.
loosen_registry() {
	psql_admin <<-'EOF'
		DO $$ DECLARE c record; BEGIN
		  FOR c IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
		    WHERE conrelid IN ('admin.database_connections'::regclass, 'admin.tenants'::regclass)
		      AND contype IN ('c', 'f')
		  LOOP EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.t, c.conname); END LOOP;
		END $$;
	EOF
}

# ---- a clean configuration, and the shape of the output ----

@test "validate-config: a clean configuration passes with ok true and no findings" {
	reg_pw orders-db 'pw-orders-1'
	reg shared-primary --type SHARED
	tenant acme-corp tenant_acme_corp orders-db
	tenant globex tenant_globex
	vc
	assert_success
	assert_equal "$(jq -c . <<<"$output")" '{"ok":true,"errors":0,"warnings":0,"findings":[]}'
	[ -z "$stderr" ] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" validate-config
	assert_success
	assert_output '0 errors, 0 warnings'
}

@test "validate-config: the quickstart's sample connections pass --strict" {
	# The very function scripts/quickstart registers its samples with.
	. "$DBREG_SOURCE_ROOT/scripts/quickstart-samples.bash"
	local pw=$BATS_TEST_TMPDIR/admin.password
	(umask 077 && sandbox_admin_password >"$pw")
	run quickstart_samples "$DBREG" "${PGSANDBOX_HOST:-127.0.0.1}" "$PGSANDBOX_PORT" "$pw"
	assert_success
	assert_equal "$("$DBREG" list --names | sort | tr '\n' ' ')" 'analytics-replica shared-primary '
	vc --strict
	assert_success
	assert_equal "$(jq -c . <<<"$output")" '{"ok":true,"errors":0,"warnings":0,"findings":[]}'
}

@test "validate-config: -o json has exactly ok, errors, warnings and findings with their four keys" {
	reg_pw orders-db 'pw-orders-1'
	DB_ENCRYPTION_KEY=$(head -c32 /dev/urandom | base64 -w0)
	vc
	assert_failure 1
	assert_equal "$(jq -c 'keys' <<<"$output")" '["errors","findings","ok","warnings"]'
	assert_equal "$(jq -c '[.ok, .errors, .warnings] | map(type)' <<<"$output")" '["boolean","number","number"]'
	assert_equal "$(jq -c '.findings | map(keys) | unique' <<<"$output")" \
		'[["code","connection_name","message","severity"]]'
	assert_equal "$(jq -c '.findings | map(.connection_name | type) | unique' <<<"$output")" '["string"]'
	assert_equal "$(jq -r '.ok' <<<"$output")" false
	assert_equal "$(jq -r '.errors' <<<"$output")" 1
	# A finding about no connection has connection_name null.
	unset DB_ENCRYPTION_KEY
	vc
	assert_equal "$(jq -c '[.findings[] | select(.code == "key-missing") | .connection_name]' <<<"$output")" '[null]'
}

@test "validate-config: text is one line per finding, the connection in brackets, then the counts" {
	reg_pw orders-db 'pw-orders-1'
	reg dup-a
	reg dup-b
	DB_ENCRYPTION_KEY=$(head -c32 /dev/urandom | base64 -w0)
	run --separate-stderr "$DBREG" validate-config
	assert_failure 1
	assert_line --regexp '^error   conn-password: \[orders-db\] .*key [0-9a-f]{8}'
	# A group of duplicates is one line, every member in the brackets.
	assert_line "warning conn-duplicate: [dup-a, dup-b] same host, port, database and user (db.example.com:5432/app, user app_user)"
	assert_line --index 2 '1 error, 1 warning'
	[ "${#lines[@]}" -eq 3 ] || fail "expected 3 lines: $output"
	# No colour when not on a terminal; with --color=always, the severity is coloured.
	[[ $output != *$'\e['* ]] || fail "colour on a pipe: $output"
	run --separate-stderr "$DBREG" --color=always validate-config
	assert_line --regexp $'^\e\\[31merror'
}

# ---- ADMIN_DATABASE_URL ----

@test "validate-config: url-missing when ADMIN_DATABASE_URL is not set (exit 1, not 78)" {
	unset ADMIN_DATABASE_URL
	vc
	assert_failure 1
	assert_finding url-missing error
	[ "$(jq '.findings | length' <<<"$output")" -eq 1 ] || fail "$output"
}

@test "validate-config: url-syntax for a string libpq cannot parse" {
	ADMIN_DATABASE_URL='postgresql://[::1/db' vc
	assert_failure 1
	assert_finding url-syntax error
	ADMIN_DATABASE_URL="host='unterminated" vc
	assert_finding url-syntax error
}

@test "validate-config: url-keyword for an unknown keyword or URI parameter" {
	ADMIN_DATABASE_URL='host=127.0.0.1 nosuchkeyword=1' vc
	assert_failure 1
	assert_finding url-keyword error
	assert_output --partial nosuchkeyword
	ADMIN_DATABASE_URL='postgresql://127.0.0.1/db?nosuchparam=1' vc
	assert_finding url-keyword error
}

@test "validate-config: url-port for a port out of range, in any place of a multi-host list" {
	ADMIN_DATABASE_URL='postgresql://127.0.0.1:99999/db' vc --offline
	assert_failure 1
	assert_finding url-port error
	assert_output --partial '\"99999\" is not 1..65535'
	ADMIN_DATABASE_URL='host=127.0.0.1,127.0.0.2 port=5432,0' vc --offline
	assert_finding url-port error
	assert_output --partial '\"0\"'
	ADMIN_DATABASE_URL='host=127.0.0.1,127.0.0.2 port=5432,abc' vc --offline
	assert_finding url-port error
	ADMIN_DATABASE_URL='host=127.0.0.1,127.0.0.2,127.0.0.3 port=5432,5433' vc --offline
	assert_finding url-port error
	assert_output --partial '2 ports for 3 hosts'
	ADMIN_DATABASE_URL='host=127.0.0.1,127.0.0.2 port=5432,5433' vc --offline
	assert_success
	# The environment counts when the URL gives no port.
	PGPORT=70000 ADMIN_DATABASE_URL='host=127.0.0.1' vc --offline
	assert_finding url-port error
	assert_output --partial 'PGPORT'
}

@test "validate-config: url-service for a service no service file defines, without connecting" {
	local dir=$BATS_TEST_TMPDIR
	printf '# services\n[other]\nhost=127.0.0.1\n' >"$dir/user.conf"
	mkdir "$dir/sys"
	printf '[sysonly]\nhost=127.0.0.1\n' >"$dir/sys/pg_service.conf"
	export PGSERVICEFILE=$dir/user.conf PGSYSCONFDIR=$dir/sys
	ADMIN_DATABASE_URL='service=nosuchservice' vc
	assert_failure 1
	assert_finding url-service error
	assert_output --partial nosuchservice
	assert_output --partial "$dir/user.conf"
	refute_finding admin-unreachable
	# Defined in the user's file, or only in the system file: found.
	ADMIN_DATABASE_URL='service=other' vc --offline
	refute_finding url-service
	ADMIN_DATABASE_URL='service=sysonly' vc --offline
	refute_finding url-service
	# PGSERVICE counts when the URL names no service.
	PGSERVICE=nosuchservice ADMIN_DATABASE_URL='host=127.0.0.1' vc --offline
	assert_finding url-service error
	assert_output --partial PGSERVICE
}

@test "validate-config: a service that points at the admin database is followed, and passes" {
	printf '[registry]\nhost=%s\nport=%s\ndbname=%s\nuser=%s\n' "${PGSANDBOX_HOST:-127.0.0.1}" \
		"$PGSANDBOX_PORT" "$SCRATCH_REGISTRY" "$DBREG_ADMIN_ROLE" >"$BATS_TEST_TMPDIR/svc.conf"
	export PGSERVICEFILE=$BATS_TEST_TMPDIR/svc.conf
	ADMIN_DATABASE_URL='service=registry' vc
	assert_success
	assert_equal "$(jq -r .ok <<<"$output")" true
	# The service's own settings are checked as the URL's would be.
	printf '[bad]\nhost=db.example.com\nport=70000\n' >"$PGSERVICEFILE"
	ADMIN_DATABASE_URL='service=bad' vc --offline
	assert_finding url-port error
	assert_finding url-weak-ssl warning
}

@test "validate-config: url-password warns of a password in the URL, and never shows it" {
	local pw
	pw=$(sandbox_admin_password)
	ADMIN_DATABASE_URL="postgresql://$DBREG_ADMIN_ROLE:$pw@${PGSANDBOX_HOST:-127.0.0.1}:$PGSANDBOX_PORT/$SCRATCH_REGISTRY" vc
	assert_success
	assert_finding url-password warning
	assert_equal "$(jq -r '[.errors, .warnings] | @tsv' <<<"$output")" $'0\t1'
	assert_no_secret "$pw"
	ADMIN_DATABASE_URL="postgresql://u:hunter2-secret@127.0.0.1:1/db?nosuch=1" vc --offline
	assert_no_secret hunter2-secret
	ADMIN_DATABASE_URL="postgresql://u:hunter2%zzsecret@127.0.0.1:1/db" vc --offline
	assert_finding url-syntax error
	assert_no_secret hunter2
}

@test "validate-config: url-weak-ssl warns of sslmode disable, allow or prefer toward a non-local host" {
	ADMIN_DATABASE_URL='postgresql://u@db.example.com/db' vc --offline
	assert_success
	assert_finding url-weak-ssl warning
	assert_output --partial db.example.com
	ADMIN_DATABASE_URL='host=db1.example.com,127.0.0.1 sslmode=disable' vc --offline
	assert_finding url-weak-ssl warning
	local url
	for url in 'postgresql://u@db.example.com/db?sslmode=require' \
		'host=db.example.com sslmode=verify-full' \
		'postgresql://u@localhost/db' 'postgresql://u@127.0.0.1/db?sslmode=disable' \
		'host=::1 sslmode=allow' 'host=/var/run/postgresql' 'dbname=x'; do
		ADMIN_DATABASE_URL=$url vc --offline
		refute_finding url-weak-ssl
	done
	PGSSLMODE=require ADMIN_DATABASE_URL='postgresql://u@db.example.com/db' vc --offline
	refute_finding url-weak-ssl
}

@test "validate-config: url-sslmode for an sslmode libpq does not know" {
	ADMIN_DATABASE_URL='host=127.0.0.1 sslmode=sometimes' vc --offline
	assert_failure 1
	assert_finding url-sslmode error
}

# ---- --offline, --strict ----

@test "validate-config: --offline never connects: a closed port is no finding, and it returns at once" {
	ADMIN_DATABASE_URL='postgresql://u@127.0.0.1:1/db' vc --offline
	assert_success
	refute_finding admin-unreachable
	# An address that never answers would hold a connection for the 10 s timeout.
	ADMIN_DATABASE_URL='postgresql://u@10.255.255.1:5432/db?sslmode=require' run --separate-stderr \
		timeout 3 "$DBREG" validate-config --offline -o json
	assert_success
	refute_finding admin-unreachable
	# Online, the closed port is a finding, not exit 69.
	ADMIN_DATABASE_URL='postgresql://u@127.0.0.1:1/db' vc
	assert_failure 1
	assert_finding admin-unreachable error
}

@test "validate-config: --strict makes warnings fail" {
	# Two rows with one target: one conn-duplicate warning.
	reg dup-a
	reg dup-b
	vc
	assert_success
	assert_equal "$(jq -r '[.ok, .errors, .warnings] | @tsv' <<<"$output")" $'true\t0\t1'
	vc --strict
	assert_failure 1
	assert_equal "$(jq -r '[.ok, .errors, .warnings] | @tsv' <<<"$output")" $'false\t0\t1'
	run --separate-stderr "$DBREG" validate-config --strict
	assert_failure 1
	assert_line '0 errors, 1 warning'
}

# ---- the admin database and its schema ----

@test "validate-config: admin-refused when the server refuses the login" {
	ADMIN_DATABASE_URL="postgresql://no_such_role@${PGSANDBOX_HOST:-127.0.0.1}:$PGSANDBOX_PORT/$SCRATCH_REGISTRY" vc
	assert_failure 1
	assert_finding admin-refused error
	refute_finding admin-unreachable
}

@test "validate-config: schema-missing says run dbreg init (exit 1, not 78)" {
	drop_scratch_registry
	scratch_registry
	vc
	assert_failure 1
	assert_finding schema-missing error
	assert_output --partial 'dbreg init'
}

@test "validate-config: schema-old for a registry at an older version, still checking its rows" {
	reg dup-a
	reg dup-b
	psql_admin -c "DROP TABLE admin.tenants; DELETE FROM admin.dbreg_schema_migrations WHERE version > 1"
	vc
	assert_failure 1
	assert_finding schema-old error
	assert_output --partial 'dbreg init'
	assert_group conn-duplicate dup-a dup-b
}

@test "validate-config: schema-new says upgrade dbreg" {
	psql_admin -c "INSERT INTO admin.dbreg_schema_migrations (version, description) VALUES (999, 'future')"
	vc
	assert_failure 1
	assert_finding schema-new error
	assert_output --partial 'upgrade dbreg'
}

@test "validate-config: a missing column or one of an unexpected type is a finding, not an SQL error" {
	reg kept-db
	psql_admin <<-'EOF'
		ALTER TABLE admin.database_connections DROP COLUMN tags, DROP COLUMN metadata;
		ALTER TABLE admin.database_connections DROP CONSTRAINT IF EXISTS database_connections_port_check;
		ALTER TABLE admin.database_connections ALTER COLUMN port TYPE text;
		ALTER TABLE admin.database_connections ALTER COLUMN pool_pre_ping DROP DEFAULT,
			ALTER COLUMN pool_pre_ping TYPE integer USING 1;
	EOF
	vc
	assert_failure 1
	assert_equal "$(jq -r '[.findings[] | select(.code == "schema-column-missing") | .message] | @json' <<<"$output")" \
		'["admin.database_connections has no column metadata","admin.database_connections has no column tags"]'
	assert_equal "$(jq -r '[.findings[] | select(.code == "schema-column-type") | .message] | @json' <<<"$output")" \
		'["admin.database_connections: column port is text, not an integer","admin.database_connections: column pool_pre_ping is integer, not boolean"]'
	assert_equal "$stderr" ""
	refute_finding registry-read
	# The other commands refuse such a registry as a configuration error that names it.
	run --separate-stderr "$DBREG" list
	assert_failure 78
	[[ $stderr == *"lacks the registry's columns metadata, tags"* ]] || fail "$stderr"
	psql_admin <<-'EOF'
		ALTER TABLE admin.database_connections ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}',
			ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
	EOF
	run --separate-stderr "$DBREG" list
	assert_failure 78
	assert_equal "$stderr" 'dbreg: error: admin.database_connections in database "'"$SCRATCH_REGISTRY"'" has a column dbreg cannot read: column port is text, not an integer (and more: see dbreg validate-config)'
}

@test "validate-config: registry-read when a table cannot be read" {
	psql_admin -c "REVOKE SELECT ON admin.tenants FROM CURRENT_USER"
	vc
	assert_failure 1
	assert_finding registry-read error
}

# ---- keys ----

@test "validate-config: key-missing is an error when a connection has a password, and not otherwise" {
	reg plain-db
	unset DB_ENCRYPTION_KEY
	vc
	assert_success
	refute_finding key-missing
	make_key
	reg_pw orders-db 'pw-orders-1'
	unset DB_ENCRYPTION_KEY
	vc
	assert_failure 1
	assert_finding key-missing error
	assert_output --partial '1 connection has a stored password'
	refute_finding conn-password
	# Offline, whether a row needs it is not known: an error.
	unset DB_ENCRYPTION_KEY
	vc --offline
	assert_failure 1
	assert_finding key-missing error
}

@test "validate-config: key-both when DB_ENCRYPTION_KEY and DB_ENCRYPTION_KEY_FILE are both set" {
	local file=$BATS_TEST_TMPDIR/key
	(umask 077 && printf '%s\n' "$DB_ENCRYPTION_KEY" >"$file")
	DB_ENCRYPTION_KEY_FILE=$file vc --offline
	assert_failure 1
	assert_finding key-both error
	assert_no_secret "$DB_ENCRYPTION_KEY"
}

@test "validate-config: key-invalid for a key that is not 32 bytes, in the variable or the file" {
	local key=$DB_ENCRYPTION_KEY
	DB_ENCRYPTION_KEY=c2hvcnQta2V5 vc --offline
	assert_failure 1
	assert_finding key-invalid error
	assert_no_secret c2hvcnQta2V5
	local file=$BATS_TEST_TMPDIR/key
	(umask 077 && printf 'not-a-key-at-all\n' >"$file")
	unset DB_ENCRYPTION_KEY
	DB_ENCRYPTION_KEY_FILE=$file vc --offline
	assert_finding key-invalid error
	assert_no_secret not-a-key-at-all
	(umask 077 && printf '%s\n' "$key" >"$file")
	DB_ENCRYPTION_KEY_FILE=$file vc --offline
	assert_success
}

@test "validate-config: key-file for a key file that does not exist" {
	unset DB_ENCRYPTION_KEY
	DB_ENCRYPTION_KEY_FILE=$BATS_TEST_TMPDIR/no-such-key vc --offline
	assert_failure 1
	assert_finding key-file error
	assert_output --partial no-such-key
}

@test "validate-config: key-file-mode for a key file that group or others can read" {
	local file=$BATS_TEST_TMPDIR/key
	printf '%s\n' "$DB_ENCRYPTION_KEY" >"$file"
	chmod 640 "$file"
	unset DB_ENCRYPTION_KEY
	DB_ENCRYPTION_KEY_FILE=$file vc --offline
	assert_failure 1
	assert_finding key-file-mode error
	assert_output --partial 'chmod 600'
	chmod 600 "$file"
	DB_ENCRYPTION_KEY_FILE=$file vc --offline
	assert_success
}

@test "validate-config: old-key-invalid for each old key that does not decode" {
	local good
	good=$(head -c32 /dev/urandom | base64 -w0)
	DB_ENCRYPTION_OLD_KEYS="$good,not-a-key,$good,also-bad" vc --offline
	assert_failure 1
	assert_equal "$(count_findings old-key-invalid)" 2
	assert_output --partial 'item 2 '
	assert_output --partial 'item 4 '
	assert_no_secret "$good"
	assert_no_secret also-bad
}

# ---- connections ----

@test "validate-config: conn-password for a password the keyring cannot decrypt; never the stored text" {
	local old_key=$DB_ENCRYPTION_KEY stored
	reg_pw orders-db 'pw-orders-secret'
	stored=$(registry_field orders-db encrypted_password)
	make_key
	vc
	assert_failure 1
	assert_finding conn-password error orders-db
	assert_output --partial "${stored:9:8}"   # names the key id
	assert_no_secret "$stored"
	assert_no_secret "${stored:18}"
	assert_no_secret pw-orders-secret
	assert_no_secret "$DB_ENCRYPTION_KEY"
	# With the old key among the old keys, it decrypts; a warning says it is on an old key.
	DB_ENCRYPTION_OLD_KEYS=$old_key vc
	assert_success
	assert_finding key-old-in-use warning orders-db
	assert_output --partial "${stored:9:8}"
	refute_finding conn-password
	# A tampered text fails the authentication: an error, not garbage.
	DB_ENCRYPTION_KEY=$old_key
	psql_admin -c "UPDATE admin.database_connections
		SET encrypted_password = left(encrypted_password, -2) || 'AA' WHERE connection_name = 'orders-db'"
	vc
	assert_failure 1
	assert_finding conn-password error orders-db
	assert_no_secret pw-orders-secret
	run --separate-stderr "$DBREG" validate-config
	assert_no_secret pw-orders-secret
	assert_no_secret "$old_key"
}

@test "validate-config: conn-duplicate is one warning for two rows with the same host, port, database and user" {
	reg dup-b
	reg dup-a
	reg other-port --port 6432
	vc
	assert_success
	assert_equal "$(count_findings conn-duplicate)" 1
	assert_group conn-duplicate dup-a dup-b
	assert_equal "$(jq -r '.findings[0] | "\(.severity) \(.connection_name)"' <<<"$output")" 'warning null'
	assert_equal "$(jq -c '.findings[0] | keys' <<<"$output")" \
		'["code","connection_name","connection_names","message","severity"]'
	assert_equal "$(jq -r '.findings[0].message' <<<"$output")" \
		'same host, port, database and user (db.example.com:5432/app, user app_user)'
	# A deleted row is no duplicate.
	"$DBREG" deregister dup-b >/dev/null 2>&1
	vc
	refute_finding conn-duplicate
}

@test "validate-config: conn-duplicate for a group of three is one finding naming all three, sorted" {
	reg dup-c
	reg dup-a
	reg dup-b
	# The host compares without case, as DNS does.
	"$DBREG" register dup-d --host DB.Example.COM --database app --user app_user --no-password >/dev/null
	reg not-dup --user other_user
	vc
	assert_success
	assert_equal "$(count_findings conn-duplicate)" 1
	assert_group conn-duplicate dup-a dup-b dup-c dup-d
	run --separate-stderr "$DBREG" validate-config
	assert_success
	assert_line "warning conn-duplicate: [dup-a, dup-b, dup-c, dup-d] same host, port, database and user (db.example.com:5432/app, user app_user)"
	assert_line '0 errors, 1 warning'
}

@test "validate-config: conn-duplicate is one finding per group: two groups are two findings" {
	reg left-1
	reg left-2
	reg right-1 --port 6432
	reg right-2 --port 6432
	reg right-3 --port 6432
	vc
	assert_success
	assert_equal "$(count_findings conn-duplicate)" 2
	assert_group conn-duplicate left-1 left-2
	assert_group conn-duplicate right-1 right-2 right-3
	assert_equal "$(jq -r '.warnings' <<<"$output")" 2
	run --separate-stderr "$DBREG" validate-config
	assert_line --partial '[left-1, left-2] same host, port, database and user (db.example.com:5432/app,'
	assert_line --partial '[right-1, right-2, right-3] same host, port, database and user (db.example.com:6432/app,'
}

@test "validate-config: conn-duplicate names every member in full, however long the list" {
	local long name names=()
	long=$(printf 'n%.0s' {1..90})
	for i in $(seq -w 1 12); do
		name=dup-$i-$long
		reg "$name"
		names+=("$name")
	done
	vc
	assert_success
	assert_group conn-duplicate "${names[@]}"
	run --separate-stderr "$DBREG" validate-config
	assert_success
	local joined
	joined=$(printf '%s, ' "${names[@]}")
	assert_line "warning conn-duplicate: [${joined%, }] same host, port, database and user (db.example.com:5432/app, user app_user)"
}

@test "validate-config: conn-pool-bounds for a pool minimum below 0 or above the maximum" {
	reg pool-neg
	reg pool-over
	loosen_registry
	psql_admin -c "UPDATE admin.database_connections SET pool_min_size = -1 WHERE connection_name = 'pool-neg';
		UPDATE admin.database_connections SET pool_min_size = 30, pool_max_size = 20 WHERE connection_name = 'pool-over'"
	vc
	assert_failure 1
	assert_finding conn-pool-bounds error pool-neg
	assert_finding conn-pool-bounds error pool-over
}

@test "validate-config: conn-pool-timeout and conn-pool-recycle for values not above 0" {
	reg pool-timeout
	reg pool-recycle --port 6432
	loosen_registry
	psql_admin -c "UPDATE admin.database_connections SET pool_timeout_seconds = 0 WHERE connection_name = 'pool-timeout';
		UPDATE admin.database_connections SET pool_recycle_seconds = -5 WHERE connection_name = 'pool-recycle'"
	vc
	assert_failure 1
	assert_finding conn-pool-timeout error pool-timeout
	assert_finding conn-pool-recycle error pool-recycle
	refute_finding conn-duplicate
}

@test "validate-config: conn-ssl-mode and conn-port for values libpq would refuse" {
	reg bad-ssl
	reg bad-port --port 6432
	loosen_registry
	psql_admin -c "UPDATE admin.database_connections SET ssl_mode = 'sometimes' WHERE connection_name = 'bad-ssl';
		UPDATE admin.database_connections SET port = 70000 WHERE connection_name = 'bad-port'"
	vc
	assert_failure 1
	assert_finding conn-ssl-mode error bad-ssl
	assert_finding conn-port error bad-port
}

@test "validate-config: conn-name for a connection name that breaks the naming rule" {
	reg good-name
	loosen_registry
	psql_admin -c "UPDATE admin.database_connections SET connection_name = 'Bad Name; DROP TABLE x' WHERE connection_name = 'good-name'"
	vc
	assert_failure 1
	assert_finding conn-name error 'Bad Name; DROP TABLE x'
	assert_output --partial 'rule pattern'
	# The table is still there: the name was data, never SQL.
	run psql_admin -c "SELECT count(*) FROM admin.database_connections"
	assert_output 1
}

# ---- tenants ----

@test "validate-config: tenant-connection-missing for a tenant pointing at no connection" {
	loosen_registry
	psql_admin -c "INSERT INTO admin.tenants (slug, name, schema_name, status, database_connection_id)
		VALUES ('acme-corp', 'Acme', 'tenant_acme_corp', 'active', gen_random_uuid())"
	vc
	assert_failure 1
	assert_finding tenant-connection-missing error
	assert_output --partial "acme-corp"
}

@test "validate-config: tenant-connection-deleted for a tenant on a deleted connection" {
	reg orders-db
	tenant acme-corp tenant_acme_corp orders-db
	"$DBREG" deregister orders-db >/dev/null 2>&1
	vc
	assert_failure 1
	assert_finding tenant-connection-deleted error orders-db
}

@test "validate-config: tenant-connection-inactive warns of a tenant on an inactive connection" {
	reg orders-db --inactive
	tenant acme-corp tenant_acme_corp orders-db
	vc
	assert_success
	assert_finding tenant-connection-inactive warning orders-db
}

@test "validate-config: tenant-no-default when tenants rely on a shared-primary that is missing or inactive" {
	tenant acme-corp tenant_acme_corp
	tenant globex tenant_globex
	vc
	assert_failure 1
	assert_finding tenant-no-default error
	assert_output --partial "2 tenants"
	assert_output --partial "'shared-primary' is not registered"
	reg shared-primary --type SHARED --inactive
	vc
	assert_failure 1
	assert_finding tenant-no-default error shared-primary
	assert_output --partial "is inactive"
	"$DBREG" update shared-primary --activate >/dev/null
	vc
	assert_success
}

@test "validate-config: tenant-schema-name: an unusable stored schema is an error, one that only breaks dbreg's rules a warning" {
	reg orders-db
	loosen_registry
	tenant acme-corp 'select' orders-db
	tenant globex 'x"; DROP SCHEMA admin CASCADE; --' orders-db
	vc
	assert_failure 1
	assert_equal "$(count_findings tenant-schema-name)" 2
	assert_equal "$(jq -r '[.findings[] | select(.code == "tenant-schema-name") | .severity] | sort | @json' <<<"$output")" \
		'["error","warning"]'
	assert_equal "$(jq -r '.findings[] | select(.code == "tenant-schema-name" and .severity == "warning") | .message' <<<"$output")" \
		"tenant 'acme-corp': invalid schema name 'select': rule reserved-word: it must not be a reserved SQL word"
	# Usable, so it is compared with the slug's expected schema; the unusable one is not.
	assert_equal "$(count_findings tenant-schema-mismatch)" 1
	# The one that breaks only dbreg's own rules still resolves (quoted where SQL needs it).
	run --separate-stderr "$DBREG" resolve-schema acme-corp -o sql
	assert_success
	assert_output 'SET search_path TO "select", public;'
	run --separate-stderr "$DBREG" resolve-schema globex
	assert_failure 1
	[[ $stderr == *"rule pattern"* ]] || fail "$stderr"
}

@test "validate-config: tenant-schema-mismatch warns of a schema name that is not tenant_ + slug" {
	reg orders-db
	tenant acme-corp tenant_acme orders-db
	vc
	assert_success
	assert_finding tenant-schema-mismatch warning
	assert_output --partial "tenant_acme_corp"
}

@test "validate-config: tenant-slug: a slug no lookup can match is an error, one that only breaks dbreg's rules a warning" {
	reg orders-db
	loosen_registry
	tenant ab tenant_ab orders-db
	tenant admin tenant_admin orders-db
	tenant Acme_Corp tenant_acme_corp orders-db
	vc
	assert_failure 1
	assert_equal "$(count_findings tenant-slug)" 3
	assert_equal "$(jq -r '[.findings[] | select(.code == "tenant-slug") | .severity] | sort | @json' <<<"$output")" \
		'["error","warning","warning"]'
	assert_output --partial 'rule length'
	assert_output --partial 'rule reserved-slug'
	assert_equal "$(jq -r '.findings[] | select(.code == "tenant-slug" and .severity == "error") | .message' <<<"$output")" \
		"tenant 'Acme_Corp': invalid tenant slug 'Acme_Corp': rule pattern: it must match ^[a-z0-9][a-z0-9-]*[a-z0-9]\$"
	psql_admin <<<"DELETE FROM admin.tenants WHERE slug = 'Acme_Corp'"
	vc
	assert_success
	assert_equal "$(count_findings tenant-slug)" 2
}

# ---- usage ----

@test "validate-config: the test helpers catch a missing finding" {
	vc --offline
	local json=$output
	run assert_finding no-such-code error
	assert_failure
	output=$json
	refute_finding key-missing
	run refute_finding key-missing
	assert_success
	output=$json
	run count_findings key-missing
	assert_output 0
}

@test "validate-config: --help shows the options" {
	run --separate-stderr "$DBREG" validate-config --help
	assert_success
	assert_line --partial -- '--offline'
	assert_line --partial -- '--strict'
	assert_line --partial -- '--format'
}

@test "validate-config: Try to give an unknown option, a bad format or an argument (exit 2)" {
	run --separate-stderr "$DBREG" validate-config --no-such-option
	assert_failure 2
	[[ $stderr == *"Try 'dbreg validate-config --help'"* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" validate-config -o table
	assert_failure 2
	[[ $stderr == *"'table'"*json*text* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" validate-config -o
	assert_failure 2
	run --separate-stderr "$DBREG" validate-config extra
	assert_failure 2
}
