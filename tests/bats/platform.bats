#!/usr/bin/env bats
# The platform's own registry (PLATFORM-REGISTRY.md; tests/fixtures): enum types, region
# ids, Fernet passwords, names unique over all rows.  Every reading command works on it as
# it is; writing needs 'dbreg init', which adopts it without changing one upstream object.

load helper
load platform
load browser

setup_file() { platform_registry; }
teardown_file() {
	stop_pgbouncer
	drop_registry
}

setup() {
	require_sandbox
	unset DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE DB_ENCRYPTION_OLD_KEYS
	ADMIN_PW=$(sandbox_admin_password)
}

# jq_of NAME FILTER: FILTER on the JSON record of NAME in $output (list -o json, or health's results).
jq_of() {
	jq -r --arg n "$1" "(if type == \"array\" then .[] else .results[] end) | select(.connection_name == \$n) | $2" \
		<<<"$output"
}

@test "platform: --type and --region filters are checked against the enum's labels and the regions table" {
	run --separate-stderr "$DBREG" list --type PRIMARY
	assert_failure 1
	assert_equal "$stderr" "dbreg: error: --type: no type 'PRIMARY' in this registry; its types: primary, replica, analytics, backup"
	run --separate-stderr "$DBREG" list --type primary --names
	assert_success
	run --separate-stderr "$DBREG" list --region mars-1 --names
	assert_failure 1
	[[ $stderr == "dbreg: error: --region: no region 'mars-1'; known regions: "*us-east-1* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" health --region mars-1 --no-update
	assert_failure 3
	[[ $stderr == *"no region 'mars-1'"* ]] || fail "$stderr"
}

@test "platform: list reads it as it is: enum types, region codes, Fernet passwords, no password for ''" {
	run --separate-stderr "$DBREG" list -o json
	assert_success
	assert_equal "$(jq -r '[.[].connection_name] | join(" ")' <<<"$output")" \
		"neofast-analytics-eu neofast-dev-us-primary neofast-shared-us-primary neofast-shared-us-replica"
	assert_equal "$(jq_of neofast-shared-us-replica '.connection_type')" replica
	assert_equal "$(jq_of neofast-analytics-eu '.region_code')" eu-west-1
	[[ $(jq_of neofast-analytics-eu '.region_id') =~ $UUID_RE ]] || fail "region_id is not the uuid"
	assert_equal "$(jq_of neofast-shared-us-primary '[.has_password, .password_format, .key_id] | @json')" \
		'[true,"fernet",null]'
	assert_equal "$(jq_of neofast-dev-us-primary '[.has_password, .password_format] | @json')" '[false,null]'
	[[ $output != *gAAAAA* ]] || fail "a stored token in the output"
	run --separate-stderr "$DBREG" list
	assert_success
	assert_line --regexp '^neofast-analytics-eu +analytics +eu-west-1 '
	run --separate-stderr "$DBREG" list -o csv
	assert_success
	[[ ${lines[0]} == *,region_code ]] || fail "no region_code column: ${lines[0]}"
	run --separate-stderr "$DBREG" list --region eu-west-1 --names
	assert_output neofast-analytics-eu
	run --separate-stderr "$DBREG" list --type replica --names
	assert_output neofast-shared-us-replica
	run --separate-stderr "$DBREG" list --all --names
	assert_line old-backup-db
}

@test "platform: show names the region by code and never prints the token" {
	run --separate-stderr "$DBREG" show neofast-shared-us-primary
	assert_success
	assert_line --regexp '^region_code +us-east-1$'
	assert_line --regexp '^password_format +fernet$'
	assert_line --regexp '^connection_type +primary$'
	[[ $output != *gAAAAA* ]] || fail "the stored token was printed"
}

@test "platform: health --no-update logs in with the Fernet passwords; Prometheus labels carry the code" {
	run --separate-stderr "$DBREG" health --no-update -o json
	assert_success
	assert_equal "$(jq -r '.summary | [.healthy, .unhealthy, .unknown] | @json' <<<"$output")" '[4,0,0]'
	assert_no_secret "$ADMIN_PW"
	run --separate-stderr "$DBREG" health --no-update -o prometheus
	assert_success
	assert_output --partial 'dbreg_up{connection="neofast-analytics-eu",type="analytics",region="eu-west-1"} 1'
	run --separate-stderr "$DBREG" health --no-update --region eu-west-1 --type analytics -o nagios
	assert_success
	assert_output --regexp '^DBREG OK - 1 checked'
}

# probe_row NAME TYPE PORT: a copy of the seeded replica's row (its Fernet token is bound to
# nothing) as NAME, of TYPE, on 127.0.0.1:PORT; removed again in teardown.
probe_row() {
	psql_admin -v "n=$1" -v "t=$2" -v "p=$3" <<-'EOF'
		INSERT INTO admin.database_connections (region_id, connection_name, connection_type, host, port,
			database_name, ssl_mode, username, encrypted_password, metadata)
		SELECT region_id, :'n', :'t'::admin.connection_type, '127.0.0.1', :p, database_name, ssl_mode, username,
			encrypted_password, '{}'
		FROM admin.database_connections WHERE connection_name = 'neofast-shared-us-replica';
	EOF
}

teardown() {
	psql_admin <<<"DELETE FROM admin.database_connections WHERE connection_name LIKE 'probe-%';" || true
}

@test "platform: health --level deep checks the role by the enum's type: a replica on the primary or a primary on a standby is DEGRADED" {
	"$DBREG_SOURCE_ROOT/scripts/pg-sandbox" standby "$PGSANDBOX_DIR" >/dev/null 2>&1 3>&- || fail "no standby"
	local sport
	sport=$(cat "$PGSANDBOX_DIR/standby.port")
	probe_row probe-replica replica "$sport"
	probe_row probe-primary primary "$sport"
	run --separate-stderr "$DBREG" health --no-update --level deep -o json
	assert_failure 1
	assert_no_secret "$ADMIN_PW"
	# The seeded replica points at the sandbox itself, a primary.
	assert_equal "$(jq_of neofast-shared-us-replica '[.status, .expected_role, .error] | @json')" \
		'["DEGRADED","replica","registered as replica but the server is not in recovery (promoted?)"]'
	assert_equal "$(jq_of neofast-shared-us-primary '[.status, .expected_role, .replay_lag_bytes] | @json')" \
		'["HEALTHY","primary",null]'
	assert_equal "$(jq_of probe-replica '[.status, .expected_role, .in_recovery, (.replay_lag_bytes | type)] | @json')" \
		'["HEALTHY","replica",true,"number"]'
	assert_equal "$(jq_of probe-primary '[.status, .error] | @json')" \
		'["DEGRADED","registered as primary but the server is in recovery (a standby)"]'
	# analytics and backup say nothing of a role: not checked.
	assert_equal "$(jq_of neofast-analytics-eu '[.status, .expected_role] | @json')" '["HEALTHY",null]'
	# Below deep nothing is judged.
	run --separate-stderr "$DBREG" health --no-update --level extended -o json
	assert_success
}

@test "platform: health -o html: a page of the four, region codes and enum types as text, rendered by Chromium" {
	local page=$BATS_TEST_TMPDIR/health.html
	run --separate-stderr "$DBREG" health --no-update -o html --output "$page"
	assert_success
	assert_output ''
	assert_equal "$(stat -c %a "$page")" 644
	run cat "$page"
	assert_output --partial '<li class="tile st-healthy"><span class="n">4</span>'
	assert_output --partial 'data-label="NAME">neofast-analytics-eu</th>'
	assert_output --partial 'data-label="REGION">eu-west-1</td>'
	assert_output --partial 'data-label="TYPE">analytics</td>'
	refute_output --partial '<script'
	[[ $output != *gAAAAA* ]] || fail "a stored token is in the page"
	assert_no_secret "$ADMIN_PW"
	assert_no_secret "$DB_FERNET_PASSPHRASE"
	if command -v chromium >/dev/null || [ -n "${CI-}" ]; then
		require_browser
		browser_dom "$page" "$BATS_TEST_TMPDIR/dom.html" || fail "chromium failed"
		run cat "$BATS_TEST_TMPDIR/dom.html"
		assert_output --partial 'data-label="NAME">neofast-analytics-eu</th>'
		refute_output --partial '<script'
	fi
}

@test "platform: without the passphrase a Fernet row is UNKNOWN saying so; a wrong one names the connection" {
	local pass=$DB_FERNET_PASSPHRASE
	unset DB_FERNET_PASSPHRASE
	run --separate-stderr "$DBREG" health --no-update -o json
	assert_failure 3
	assert_equal "$(jq_of neofast-shared-us-primary .status)" UNKNOWN
	[[ $(jq_of neofast-shared-us-primary .error) == *"Fernet token; set DB_FERNET_PASSPHRASE"* ]] ||
		fail "$(jq_of neofast-shared-us-primary .error)"
	# The row without a password is still checked (the password file logs it in).
	assert_equal "$(jq_of neofast-dev-us-primary .status)" HEALTHY
	DB_FERNET_PASSPHRASE=not-the-passphrase run --separate-stderr "$DBREG" health --no-update -o json
	assert_failure 3
	[[ $(jq_of neofast-analytics-eu .error) == "connection 'neofast-analytics-eu': "*"wrong passphrase or altered token"* ]] ||
		fail "$(jq_of neofast-analytics-eu .error)"
	assert_no_secret "$pass"
	# The file form, private only.
	local file=$BATS_TEST_TMPDIR/passphrase
	printf '%s\n' "$pass" >"$file"
	chmod 600 "$file"
	DB_FERNET_PASSPHRASE_FILE=$file run --separate-stderr "$DBREG" health --no-update -o json
	assert_success
	chmod 640 "$file"
	DB_FERNET_PASSPHRASE_FILE=$file run --separate-stderr "$DBREG" health --no-update
	assert_failure 3
	[[ $stderr == *"chmod 600"* ]] || fail "$stderr"
}

@test "platform: a stored value in no known format is never used nor shown" {
	psql_admin <<<"UPDATE admin.database_connections SET encrypted_password = 'plain-text-secret'
		WHERE connection_name = 'neofast-shared-us-replica'"
	run --separate-stderr "$DBREG" health --no-update -o json
	assert_failure 3
	assert_equal "$(jq_of neofast-shared-us-replica .status)" UNKNOWN
	[[ $(jq_of neofast-shared-us-replica .error) == *"in no known format"* ]] || fail "$(jq_of neofast-shared-us-replica .error)"
	assert_no_secret plain-text-secret
	run --separate-stderr "$DBREG" list -o json
	assert_equal "$(jq_of neofast-shared-us-replica .password_format)" unknown
	assert_no_secret plain-text-secret
	run --separate-stderr "$DBREG" validate-config -o json
	assert_failure 1
	assert_equal "$(jq -r '.findings[] | select(.code == "conn-password") | .connection_name' <<<"$output")" \
		neofast-shared-us-replica
	assert_no_secret plain-text-secret
	fernet_token encrypt <<<"$ADMIN_PW" >"$BATS_TEST_TMPDIR/token"
	psql_admin -v tok="$(cat "$BATS_TEST_TMPDIR/token")" <<<"UPDATE admin.database_connections
		SET encrypted_password = :'tok' WHERE connection_name = 'neofast-shared-us-replica'"
}

@test "platform: pool-stats, resolve-schema and validate-config read it" {
	run --separate-stderr "$DBREG" pool-stats -o json
	assert_success
	assert_equal "$(jq '.connections | length' <<<"$output")" 4
	run --separate-stderr "$DBREG" resolve-schema acme -o json
	assert_success
	assert_equal "$(jq -r '[.schema, .connection.connection_name] | @json' <<<"$output")" \
		'["tenant_acme","neofast-shared-us-primary"]'
	run --separate-stderr "$DBREG" resolve-schema globex
	assert_failure 1
	[[ $stderr == *"is suspended, not active"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" validate-config -o json
	assert_success
	assert_equal "$(jq -r '[.findings[] | select(.severity == "error")] | length' <<<"$output")" 0
	assert_equal "$(jq -r '.findings[] | select(.code == "schema-unadopted") | .severity' <<<"$output")" warning
	# Fernet is this registry's own format: nothing to say of its tokens.
	assert_equal "$(jq -r '[.findings[] | select(.code == "password-fernet")] | length' <<<"$output")" 0
}

# platform_tenant SLUG SCHEMA [CONNECTION-NAME]: an active tenant as the platform stores one.
platform_tenant() {
	psql_admin -v slug="$1" -v schema="$2" -v conn="${3-}" <<-'EOF'
		INSERT INTO admin.tenants (organization_id, slug, name, schema_name, database_connection_id,
			external_auth_provider, external_auth_realm, external_user_id, status)
		SELECT id, :'slug', :'slug', :'schema',
			(SELECT id FROM admin.database_connections WHERE connection_name = :'conn'),
			'keycloak', 'tenant-' || :'slug', gen_random_uuid()::text, 'active'
		FROM admin.organizations WHERE slug = 'neofast';
	EOF
}

@test "platform: resolve-schema finds stored slugs outside dbreg's rules; validate-config warns of them" {
	platform_tenant ab tenant_ab neofast-shared-us-primary
	platform_tenant shared tenant_shared neofast-shared-us-primary
	platform_tenant acme--corp tenant_acme__corp neofast-shared-us-primary
	platform_tenant no-conn-corp tenant_no_conn_corp
	local slug
	for slug in ab shared acme--corp; do
		run --separate-stderr "$DBREG" resolve-schema "$slug" -o json
		[ "$status" -eq 0 ] || fail "$slug: exit $status: $stderr"
		assert_equal "$(jq -r .connection.connection_name <<<"$output")" neofast-shared-us-primary
	done
	run --separate-stderr "$DBREG" resolve-schema acme--corp
	assert_output tenant_acme__corp
	# No connection of its own: the default is shared-primary, which the platform does not have.
	run --separate-stderr "$DBREG" resolve-schema no-conn-corp -o json
	assert_failure 1
	assert_output ""
	[[ $stderr == *"'shared-primary'"*--default-connection* ]] || fail "$stderr"
	# Any active connection of any type can be the default (the platform's is a primary).
	run --separate-stderr "$DBREG" resolve-schema no-conn-corp -o json --default-connection neofast-shared-us-primary
	assert_success
	assert_equal "$(jq -r '[.schema, .connection.connection_name, .connection.connection_type] | @json' <<<"$output")" \
		'["tenant_no_conn_corp","neofast-shared-us-primary","primary"]'
	run --separate-stderr "$DBREG" resolve-schema no-conn-corp -o json --default-connection neofast-analytics-eu
	assert_success
	# Inactive or deleted: not a default.
	run --separate-stderr "$DBREG" resolve-schema no-conn-corp --default-connection old-backup-db -o json
	assert_failure 1
	[[ $stderr == *"'old-backup-db'"* ]] || fail "$stderr"
	# dbreg's own rules are warnings for what is stored, not errors.
	run --separate-stderr "$DBREG" validate-config -o json
	assert_equal "$(jq -r '[.findings[] | select(.code == "tenant-slug") | .severity] | unique | @json' <<<"$output")" \
		'["warning"]'
	assert_equal "$(jq -r '[.findings[] | select(.code == "tenant-slug")] | length' <<<"$output")" 3
	[[ $output == *"rule reserved-slug"* && $output == *"rule double-hyphen"* && $output == *"rule length"* ]] ||
		fail "$output"
	assert_equal "$(jq -r '.findings[] | select(.code == "tenant-no-default") | .severity' <<<"$output")" error
	psql_admin <<<"DELETE FROM admin.tenants WHERE slug IN ('ab', 'shared', 'acme--corp', 'no-conn-corp')"
}

@test "platform: before init nothing writes: register, update, deregister are 78; health without --no-update 3" {
	run --separate-stderr "$DBREG" register newone --host h --database d --user u --no-password --type primary
	assert_failure 78
	[[ $stderr == *"run 'dbreg init'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" update neofast-shared-us-primary --pool-max 60
	assert_failure 78
	run --separate-stderr "$DBREG" deregister neofast-analytics-eu
	assert_failure 78
	run --separate-stderr "$DBREG" health
	assert_failure 3
	[[ $stderr == *"run 'dbreg init'"* ]] || fail "$stderr"
	assert_equal "$(psql_admin <<<"SELECT count(*) FROM admin.database_connections WHERE last_health_check > now() - interval '1 hour'")" 0
	run --separate-stderr "$DBREG" health --history
	assert_failure 78
	[[ $stderr == *"no health history yet; run 'dbreg init'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" health --claim --every 5m
	assert_failure 3
	[[ $stderr == *"run 'dbreg init'"* ]] || fail "$stderr"
	# encrypt-password writes nothing, and what it prints is the format this registry is read in.
	run --separate-stderr "$DBREG" encrypt-password --password-stdin <<<"s3cret-pw"
	assert_success
	assert_equal "$(fernet_token decrypt <<<"$output")" s3cret-pw
}

@test "platform: init adopts it, changing no upstream object; a second init has nothing to do; then health writes back" {
	local before after
	before=$(platform_schema_dump)
	rows_before=$(psql_admin <<<"SELECT md5(string_agg(t::text, '|' ORDER BY connection_name)) FROM admin.database_connections t")
	run --separate-stderr "$DBREG" init
	assert_success
	assert_line --index 0 "adopted existing registry: connection_type enum admin.connection_type (primary, replica, analytics, backup), region_id → admin.regions.code, names unique over all rows, passwords: 4 fernet"
	after=$(platform_schema_dump)
	[ "$before" = "$after" ] || fail "init changed the platform's objects: $(diff <(echo "$before") <(echo "$after") | head -20)"
	assert_equal "$(psql_admin <<<"SELECT md5(string_agg(t::text, '|' ORDER BY connection_name)) FROM admin.database_connections t")" \
		"$rows_before"
	assert_equal "$(psql_admin <<<"SELECT value FROM admin.dbreg_settings WHERE name = 'password_format'")" fernet
	run --separate-stderr "$DBREG" init
	assert_success
	assert_output --regexp '^registry schema already at version [0-9]+; nothing to do$'
	run --separate-stderr "$DBREG" health -o json
	assert_success
	assert_equal "$(psql_admin <<<"SELECT count(*) FROM admin.database_connections
		WHERE deleted_at IS NULL AND last_health_check > now() - interval '1 hour'")" 4
}

@test "platform: adopted, health keeps its history and claims in dbreg's own tables; two --claim runs split the four" {
	local one two
	psql_admin <<<"DELETE FROM admin.dbreg_health_history; DELETE FROM admin.dbreg_health_claims;"
	"$DBREG" health --claim --every 10m --batch 1 --jobs 1 --checker-id p1 -o json >"$BATS_TEST_TMPDIR/p1.json" 3>&- &
	one=$!
	"$DBREG" health --claim --every 10m --batch 1 --jobs 1 --checker-id p2 -o json >"$BATS_TEST_TMPDIR/p2.json" 3>&- &
	two=$!
	wait "$one" "$two"
	assert_equal "$(psql_admin <<<"SELECT count(*), count(DISTINCT connection_id) FROM admin.dbreg_health_history")" "4|4"
	assert_equal "$(psql_admin <<<"SELECT count(*) FROM admin.dbreg_health_claims")" 0
	assert_equal "$(cat "$BATS_TEST_TMPDIR"/p?.json | jq -r '.results[].connection_name' | sort | tr '\n' ' ')" \
		"neofast-analytics-eu neofast-dev-us-primary neofast-shared-us-primary neofast-shared-us-replica "
	# Nothing more is due.
	run --separate-stderr "$DBREG" health --claim --every 10m
	assert_success
	assert_equal "$output$stderr" ""
	run --separate-stderr "$DBREG" health --history --region eu-west-1 -o json
	assert_success
	assert_equal "$(jq -c '[.[] | [.connection_name, .checks, .failures, .uptime_pct]]' <<<"$output")" \
		'[["neofast-analytics-eu",1,0,100]]'
	run --separate-stderr "$DBREG" health --history --type replica
	assert_success
	assert_line --index 1 --regexp '^neofast-shared-us-replica +1 +0 +100\.0 % '
	[[ $output != *gAAAAA* ]] || fail "a stored token in the output"
}

@test "platform: the platform's passphrase in DB_ENCRYPTION_KEY is refused, pointing at DB_FERNET_PASSPHRASE" {
	DB_ENCRYPTION_KEY=$DB_FERNET_PASSPHRASE run --separate-stderr "$DBREG" health --no-update
	assert_failure 3
	[[ $stderr == *"DB_ENCRYPTION_KEY: the key is not 32 bytes"*"DB_FERNET_PASSPHRASE"* ]] || fail "$stderr"
	assert_no_secret "$DB_FERNET_PASSPHRASE"
}

# ---- after init: writing ---------------------------------------------------------------

adopted() {
	[ "$(psql_admin <<<"SELECT to_regclass('admin.dbreg_settings') IS NOT NULL")" = t ] || "$DBREG" init >/dev/null
}

@test "platform: register writes a Fernet token the platform reads, the region by code, every default explicitly" {
	adopted
	run --separate-stderr "$DBREG" register tenant-db-us --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --type primary --region us-east-1 \
		--password-stdin --test <<<"$ADMIN_PW"
	assert_success
	assert_output --regexp "^registered tenant-db-us \(id [0-9a-f-]{36}\)$"
	local stored
	stored=$(registry_field tenant-db-us encrypted_password)
	[[ $stored == gAAAAA* ]] || fail "not a Fernet token: ${stored:0:12}..."
	assert_equal "$(fernet_token decrypt <<<"$stored")" "$ADMIN_PW"
	assert_equal "$(registry_field tenant-db-us "(SELECT code FROM admin.regions r WHERE r.id = region_id)")" us-east-1
	# The platform's default sslmode is 'require'; dbreg tested 'prefer' and wrote it.
	assert_equal "$(registry_field tenant-db-us ssl_mode)" prefer
	run --separate-stderr "$DBREG" show tenant-db-us -o json
	assert_equal "$(jq -r '[.region_code, .password_format, .connection_type] | @json' <<<"$output")" \
		'["us-east-1","fernet","primary"]'
}

@test "platform: --type is required where the registry has no SHARED; an unknown region names the known ones" {
	adopted
	run --separate-stderr "$DBREG" register no-type --host h --database d --user u --no-password
	assert_failure 2
	assert_equal "$stderr" "dbreg: error: --type is required in this registry: one of primary, replica, analytics, backup"
	run --separate-stderr "$DBREG" register no-region --host h --database d --user u --no-password \
		--type replica --region mars-1
	assert_failure 1
	assert_equal "$stderr" "dbreg: error: --region: no region 'mars-1'; known regions: eu-west-1, us-east-1"
	run --separate-stderr "$DBREG" register bad-type --host h --database d --user u --no-password --type SHARED --region us-east-1
	assert_failure 1
	[[ $stderr == *"primary, replica, analytics, backup"* ]] || fail "$stderr"
	assert_equal "$(registry_count "connection_name IN ('no-type', 'no-region', 'bad-type')")" 0
}

@test "platform: --no-password stores '' as the platform does; over 127 bytes is refused (a Fernet token would not fit)" {
	adopted
	"$DBREG" register nopw-db --host h --database d --user u --type backup --region eu-west-1 --no-password
	assert_equal "$(registry_field nopw-db "encrypted_password = ''")" t
	run --separate-stderr "$DBREG" register long-pw --host h --database d --user u --type backup --region eu-west-1 \
		--password-stdin <<<"$(head -c 128 /dev/zero | tr '\0' x)"
	assert_failure 2
	[[ $stderr == *"at most 127"* ]] || fail "$stderr"
	unset DB_FERNET_PASSPHRASE
	run --separate-stderr "$DBREG" update nopw-db --password-stdin <<<"pw"
	assert_failure 78
	[[ $stderr == *"DB_FERNET_PASSPHRASE"* ]] || fail "$stderr"
}

@test "platform: encrypt-password writes the registry's format; init --password-format changes what is written" {
	adopted
	run --separate-stderr "$DBREG" encrypt-password --password-stdin <<<"s3cret-pw"
	assert_success
	[[ $output == gAAAAA* ]] || fail "not a Fernet token: ${output:0:12}..."
	assert_equal "$(fernet_token decrypt <<<"$output")" s3cret-pw
	assert_no_secret s3cret-pw
	# No passphrase: a configuration error before the password is read, naming the variable.
	(unset DB_FERNET_PASSPHRASE; run --separate-stderr "$DBREG" encrypt-password --password-stdin <<<"s3cret-pw"
	 assert_failure 78
	 assert_output ""
	 [[ $stderr == *DB_FERNET_PASSPHRASE* ]] || fail "$stderr")
	# The other format on request, with dbreg's key.
	export DB_ENCRYPTION_KEY
	DB_ENCRYPTION_KEY=$("$DBREG" generate-key)
	run --separate-stderr "$DBREG" encrypt-password --password-stdin --password-format dbreg <<<"s3cret-pw"
	assert_failure 2
	run --separate-stderr "$DBREG" encrypt-password --password-stdin --password-format dbreg \
		--id 0F6B9A52-3C1E-4D7A-9B2F-5E8C1A7D3B40 --host h --port 5432 --database d --user u --ssl-mode require <<<"s3cret-pw"
	assert_success
	[[ $output == dbreg:v2:* ]] || fail "$output"

	run --separate-stderr "$DBREG" init --password-format dbreg
	assert_success
	assert_line "password format set to dbreg"
	assert_equal "$(psql_admin <<<"SELECT value FROM admin.dbreg_settings WHERE name = 'password_format'")" dbreg
	run --separate-stderr "$DBREG" encrypt-password "${V2_TARGET[@]}" --password-stdin <<<"s3cret-pw"
	[[ $output == dbreg:v2:* ]] || fail "$output"
	"$DBREG" register fmt-db --host h --database d --user u --type backup --region eu-west-1 --password-stdin <<<"pw"
	[[ $(registry_field fmt-db encrypted_password) == dbreg:v2:* ]] || fail "not dbreg's format"
	# Bound to a row of the platform's registry, read from it: what another writer would store.
	run --separate-stderr "$DBREG" encrypt-password --for fmt-db --password-stdin <<<"s3cret-pw"
	[[ $output == dbreg:v2:* ]] || fail "$output"
	psql_admin -v "s=$output" <<<"UPDATE admin.database_connections SET encrypted_password = :'s'
		WHERE connection_name = 'fmt-db'"
	run --separate-stderr "$DBREG" validate-config -o json
	assert_equal "$(jq '[.findings[] | select(.connection_name == "fmt-db" and .code == "conn-password")] | length' \
		<<<"$output")" 0
	# Fernet rows stay readable whatever is written; validate-config says they are not dbreg's.
	run --separate-stderr "$DBREG" show neofast-shared-us-primary -o json
	assert_equal "$(jq -r .password_format <<<"$output")" fernet
	run --separate-stderr "$DBREG" validate-config -o json
	assert_equal "$(jq -r '[.findings[] | select(.code == "password-fernet") | .severity] | unique | @json' <<<"$output")" \
		'["warning"]'
	[[ $(jq -r '[.findings[] | select(.code == "password-fernet") | .connection_name] | join(" ")' <<<"$output") == *neofast-shared-us-primary* ]] ||
		fail "$output"

	run --separate-stderr "$DBREG" init --password-format fernet
	assert_success
	assert_line "password format set to fernet"
	run --separate-stderr "$DBREG" init --password-format fernet
	assert_line "password format already fernet"
	run --separate-stderr "$DBREG" update fmt-db --password-stdin <<<"pw2"
	assert_success
	assert_equal "$(fernet_token decrypt <<<"$(registry_field fmt-db encrypted_password)")" pw2
	"$DBREG" deregister fmt-db --purge >/dev/null
	run --separate-stderr "$DBREG" init --password-format plain
	assert_failure 2
	[[ $stderr == *"unknown format 'plain' (known: dbreg, fernet)"* ]] || fail "$stderr"
	assert_equal "$(psql_admin <<<"SELECT value FROM admin.dbreg_settings WHERE name = 'password_format'")" fernet
}

@test "platform: update changes only the fields given, region by code and type among the enum's labels" {
	adopted
	local before_row before_updated
	before_row=$(registry_field neofast-shared-us-replica "row(host, port, database_name, username, ssl_mode, encrypted_password, pool_min_size)::text")
	before_updated=$(registry_field neofast-shared-us-replica "updated_at")
	run --separate-stderr "$DBREG" update neofast-shared-us-replica --pool-max 33 --region eu-west-1 --type analytics
	assert_success
	assert_equal "$(registry_field neofast-shared-us-replica "pool_max_size || ' ' || connection_type || ' ' || (SELECT code FROM admin.regions r WHERE r.id = region_id)")" \
		"33 analytics eu-west-1"
	assert_equal "$(registry_field neofast-shared-us-replica "row(host, port, database_name, username, ssl_mode, encrypted_password, pool_min_size)::text")" \
		"$before_row"
	# The platform's own trigger bumped updated_at; dbreg leaves it be.
	[ "$(registry_field neofast-shared-us-replica "updated_at > '$before_updated'::timestamptz")" = t ] || fail "updated_at not bumped"
	run --separate-stderr "$DBREG" update neofast-shared-us-replica --type SHARED
	assert_failure 1
	[[ $stderr == *"allowed values: primary, replica, analytics, backup"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" update neofast-shared-us-replica --region mars-1
	assert_failure 1
	[[ $stderr == *"known regions: eu-west-1, us-east-1"* ]] || fail "$stderr"
	"$DBREG" update neofast-shared-us-replica --pool-max 20 --region us-east-1 --type replica >/dev/null
	assert_equal "$(registry_field neofast-shared-us-replica "pool_max_size || ' ' || connection_type")" "20 replica"
}

@test "platform: the REPL's script mode works on it; the platform's passphrase as DB_ENCRYPTION_KEY is named wherever the key is needed" {
	adopted
	run --separate-stderr no_tty "$DBREG" repl <<-'EOF'
		list --names --type analytics
		show neofast-analytics-eu -o json
		resolve-schema acme
	EOF
	assert_success
	assert_line --index 0 neofast-analytics-eu
	assert_line tenant_acme
	[[ $output == *'"region_code":"eu-west-1"'* ]] || fail "$output"
	[[ $output != *gAAAAA* ]] || fail "a stored token in the output"
	local cmd
	for cmd in "pool-stats" "resolve-schema acme --check" "encrypt-password --password-stdin --password-format dbreg ${V2_TARGET[*]}"; do
		# shellcheck disable=SC2086
		DB_ENCRYPTION_KEY=$DB_FERNET_PASSPHRASE run --separate-stderr "$DBREG" $cmd <<<"pw"
		[ "$status" -ne 0 ] || fail "$cmd: exit 0"
		[[ $stderr == *"DB_FERNET_PASSPHRASE"* ]] || fail "$cmd: $stderr"
		assert_no_secret "$DB_FERNET_PASSPHRASE"
	done
}

@test "platform: registering a name whose only row is deleted revives it in place; a live name needs --replace" {
	adopted
	local id
	id=$(psql_admin <<<"SELECT id FROM admin.database_connections WHERE connection_name = 'old-backup-db'")
	run --separate-stderr "$DBREG" register old-backup-db --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --type backup --region us-east-1 --no-password
	assert_success
	assert_output "revived old-backup-db (id $id)"
	assert_equal "$(registry_field old-backup-db "id::text || ' ' || is_active || ' ' || consecutive_failures || ' ' || (last_health_check IS NULL)")" \
		"$id true 0 true"
	run --separate-stderr "$DBREG" register neofast-shared-us-replica --host h --database d --user u --type replica \
		--region us-east-1 --no-password
	assert_failure 1
	[[ $stderr == *"already registered; use --replace"* ]] || fail "$stderr"
	id=$(registry_field neofast-shared-us-replica id)
	run --separate-stderr "$DBREG" register neofast-shared-us-replica --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --type replica --region us-east-1 \
		--password-stdin --replace <<<"$ADMIN_PW"
	assert_success
	assert_equal "$(registry_field neofast-shared-us-replica id)" "$id"
}

@test "platform: deregister --purge is refused while any table references the row, whatever its ON DELETE" {
	adopted
	psql_admin <<<"DELETE FROM admin.tenants"
	local before
	before=$(psql_admin <<<"SELECT count(*) FROM admin.migration_rollbacks")
	run --separate-stderr "$DBREG" deregister neofast-shared-us-primary --purge
	assert_failure 1
	[[ $stderr == *"still referenced by admin.migration_batch_details (1 row), admin.migration_rollbacks (1 row); purge refused"* ]] ||
		fail "$stderr"
	assert_equal "$(psql_admin <<<"SELECT count(*) FROM admin.migration_rollbacks")" "$before"
	assert_equal "$(registry_count "connection_name = 'neofast-shared-us-primary'")" 1
	# A soft delete is fine.
	run --separate-stderr "$DBREG" deregister neofast-shared-us-primary
	assert_success
	run --separate-stderr "$DBREG" deregister neofast-analytics-eu --purge
	assert_success
	assert_equal "$(registry_count "connection_name = 'neofast-analytics-eu'")" 0
}

@test "platform: register --pooler merges into its nullable metadata; pool-stats reads the PgBouncer's pools" {
	start_pgbouncer
	require_pgbouncer
	adopted
	run --separate-stderr "$DBREG" register edge-bouncer --host 127.0.0.1 --port "$PGSANDBOX_PGBOUNCER_PORT" \
		--database "$DBREG_TEST_REGISTRY" --user "$BOUNCER_ROLE" --type primary --region us-east-1 \
		--pooler pgbouncer --password-stdin <<<"$BOUNCER_PW"
	assert_success
	assert_equal "$(registry_field edge-bouncer "metadata::jsonb")" '{"pooler": "pgbouncer", "pooler_db": "pgbouncer"}'
	# The platform's metadata may be NULL: update merges into nothing as into {}.
	psql_admin <<<"UPDATE admin.database_connections SET metadata = NULL WHERE connection_name = 'edge-bouncer'"
	run --separate-stderr "$DBREG" update edge-bouncer --pooler pgbouncer --pooler-db pgbouncer
	assert_success
	assert_equal "$(registry_field edge-bouncer "metadata::jsonb")" '{"pooler": "pgbouncer", "pooler_db": "pgbouncer"}'
	[[ $(registry_field edge-bouncer encrypted_password) == gAAAAA* ]] || fail "not a Fernet token"
	run --separate-stderr "$DBREG" pool-stats edge-bouncer -o json
	assert_success
	assert_equal "$(jq -r '.connections[0] | [.error, .pooler.type, (.pooler.pools | type)] | @json' <<<"$output")" \
		'[null,"pgbouncer","array"]'
	assert_equal "$(jq -r '[.connections[0].pooler.pools[] | select(.database == "pgbouncer")] | length' <<<"$output")" 0
	assert_no_secret "$BOUNCER_PW"
	"$DBREG" deregister edge-bouncer --purge >/dev/null
}
