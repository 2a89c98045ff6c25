#!/usr/bin/env bats
# dbreg resolve-schema: tenant id or slug to schema name and connection (SPEC §6, §12).
# Every refusal rule of the slug and schema-name table is provoked and named, injection
# attempts among the inputs (refused, nothing run); tenants in every non-active status,
# a deleted one, one on its own connection and one on the shared default; the text, json
# and sql formats; --context, --default-connection, --check against the sandbox; and
# deregister refusing to purge a connection that live tenants still use.  No secret in any
# output.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

# Fixed tenant ids, so a test can look a tenant up by id.
ACME_ID=3f2b8c1e-7d4a-4e6b-9a1c-5e8f0d2b4a61
GLOBEX_ID=8a7c6e5d-4b3a-4f21-8e0d-1c2b3a4f5e6d

# Every status that is not `active` (SPEC §1).
OTHER_STATUSES=(pending provisioning suspended migrating archived deleted)

# reg NAME PW|- [REGISTER-OPTION...]: a connection to the test registry's own database as
# dbreg_admin, with the sandbox password ("pw") or without one ("-").
reg() {
	local name=$1 pw=$2
	shift 2
	if [ "$pw" = - ]; then
		"$DBREG" register "$name" --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
			--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --no-password "$@" >/dev/null
	else
		sandbox_admin_password | "$DBREG" register "$name" --host 127.0.0.1 \
			--port "$PGSANDBOX_PORT" --database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" \
			--password-stdin "$@" >/dev/null
	fi
}

# conn_id NAME: the id of the live connection NAME.
conn_id() {
	registry_field "$1" id
}

# tenant SLUG SCHEMA STATUS [CONNECTION-NAME|-] [ID]: insert a tenant.
tenant() {
	local slug=$1 schema=$2 status=$3 conn=${4:--} id=${5-}
	psql_admin -v "slug=$slug" -v "schema=$schema" -v "status=$status" -v "conn=$conn" \
		-v "id=$id" <<-'EOF'
		INSERT INTO admin.tenants (id, slug, name, schema_name, status, database_connection_id)
		VALUES (coalesce(nullif(:'id', '')::uuid, gen_random_uuid()), :'slug',
		        initcap(replace(:'slug', '-', ' ')), :'schema', :'status',
		        (SELECT id FROM admin.database_connections
		         WHERE connection_name = :'conn' AND deleted_at IS NULL));
	EOF
}

setup_file() {
	fresh_registry
	have_sandbox || return 0
	make_key
	"$DBREG" init >/dev/null
	# The shared default, another SHARED one, and ones --default-connection must not take.
	reg shared-primary pw
	reg shared-other pw
	reg shared-asleep pw --inactive
	reg reports-db pw --type ANALYTICS
	reg shared-retired pw
	"$DBREG" deregister shared-retired >/dev/null
	# Connections of their own: a dedicated database, one without a password (libpq finds
	# it in PGPASSFILE), one that cannot be reached.
	reg globex-db pw --type DEDICATED
	reg nopw-db - --type DEDICATED
	"$DBREG" register far-db --host 127.0.0.1 --port 1 --database nowhere --user nobody \
		--type DEDICATED --no-password >/dev/null

	tenant acme-corp tenant_acme_corp active - "$ACME_ID"
	psql_admin <<<"UPDATE admin.tenants SET name = 'Acme \"Corp\" & Sons, Ünïcode'
		WHERE slug = 'acme-corp';"
	tenant globex-inc tenant_globex_inc active globex-db "$GLOBEX_ID"
	tenant nopw-tenant tenant_nopw_tenant active nopw-db
	tenant far-tenant tenant_far_tenant active far-db
	tenant missing-schema tenant_missing_schema active
	# A stored schema that the server must quote: allowed by the rules, a keyword to SQL.
	tenant order-corp order active
	local st
	for st in "${OTHER_STATUSES[@]}"; do
		tenant "st-$st" "tenant_st_$st" "$st"
	done
	# Active, but soft-deleted.
	tenant gone-corp tenant_gone_corp active
	psql_admin <<<"UPDATE admin.tenants SET deleted_at = now() WHERE slug = 'gone-corp';"
	# The schemas that exist on the registry's database (tenant_missing_schema does not).
	psql_admin <<-'EOF'
		CREATE SCHEMA tenant_acme_corp;
		CREATE SCHEMA tenant_globex_inc;
		CREATE SCHEMA tenant_nopw_tenant;
		CREATE SCHEMA "order";
	EOF
}

teardown_file() { drop_registry; }

teardown() { drop_scratch_registry; }

setup() {
	require_sandbox
	command -v jq >/dev/null || skip "jq is not installed"
	unset DB_ENCRYPTION_OLD_KEYS DB_ENCRYPTION_KEY_FILE
	ADMIN_PW=$(sandbox_admin_password)
}

# no_secrets: the last run printed neither the password, nor the key, nor stored text.
no_secrets() {
	assert_no_secret "$ADMIN_PW"
	[ -z "${DB_ENCRYPTION_KEY-}" ] || assert_no_secret "$DB_ENCRYPTION_KEY"
	assert_no_secret "dbreg:v"
}

# ---- text: the schema name alone ------------------------------------------------------

@test "resolve-schema: a slug prints the stored schema name alone" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp
	assert_success
	assert_output tenant_acme_corp
	assert_equal "${#lines[@]}" 1
	assert_equal "$stderr" ""
	run --separate-stderr "$DBREG" resolve-schema globex-inc -o text
	assert_success
	assert_output tenant_globex_inc
	run --separate-stderr "$DBREG" resolve-schema --format=text --context tenant acme-corp
	assert_success
	assert_output tenant_acme_corp
}

@test "resolve-schema: prints the stored schema_name, not one derived from the slug" {
	run --separate-stderr "$DBREG" resolve-schema order-corp
	assert_success
	assert_output order
}

@test "resolve-schema: a canonical UUID is a tenant id, in either case" {
	run --separate-stderr "$DBREG" resolve-schema "$ACME_ID"
	assert_success
	assert_output tenant_acme_corp
	run --separate-stderr "$DBREG" resolve-schema "${GLOBEX_ID^^}"
	assert_success
	assert_output tenant_globex_inc
}

@test "resolve-schema: an unknown id or slug is exit 1, naming it" {
	run --separate-stderr "$DBREG" resolve-schema nope-corp
	assert_failure 1
	assert_output ""
	assert_equal "$stderr" "dbreg: error: no tenant 'nope-corp'"
	run --separate-stderr "$DBREG" resolve-schema 00000000-0000-4000-8000-000000000000
	assert_failure 1
	assert_output ""
	[[ $stderr == *"no tenant '00000000-0000-4000-8000-000000000000'"* ]] || fail "stderr: $stderr"
	# 32 hex digits without hyphens are not a canonical UUID: a (valid) slug, not found.
	run --separate-stderr "$DBREG" resolve-schema "${ACME_ID//-/}"
	assert_failure 1
	[[ $stderr == *"no tenant '${ACME_ID//-/}'"* ]] || fail "stderr: $stderr"
}

@test "resolve-schema: a tenant in any status but active is exit 1, naming the status" {
	local st
	for st in "${OTHER_STATUSES[@]}"; do
		run --separate-stderr "$DBREG" resolve-schema "st-$st"
		[ "$status" -eq 1 ] || fail "st-$st: exit $status, not 1"
		assert_output ""
		[[ $stderr == *"tenant 'st-$st' is $st, not active"* ]] ||
			fail "st-$st: stderr does not name the status: $stderr"
		# The other formats and --check refuse it the same way.
		run --separate-stderr "$DBREG" resolve-schema "st-$st" -o json
		assert_failure 1
		assert_output ""
		run --separate-stderr "$DBREG" resolve-schema "st-$st" -o sql --check
		assert_failure 1
		assert_output ""
	done
}

@test "resolve-schema: a non-active tenant is refused by id too" {
	local id
	id=$(psql_admin <<<"SELECT id FROM admin.tenants WHERE slug = 'st-suspended';")
	run --separate-stderr "$DBREG" resolve-schema "$id"
	assert_failure 1
	assert_output ""
	[[ $stderr == *"tenant 'st-suspended' is suspended, not active"* ]] || fail "stderr: $stderr"
}

@test "resolve-schema: a soft-deleted tenant is exit 1 'is deleted', even when active" {
	run --separate-stderr "$DBREG" resolve-schema gone-corp
	assert_failure 1
	assert_output ""
	[[ $stderr == *"tenant 'gone-corp' is deleted"* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" resolve-schema gone-corp -o json
	assert_failure 1
	assert_output ""
}

# ---- slug rules ---------------------------------------------------------------------------

# refused_slug RULE SLUG: resolve-schema SLUG is exit 2, before any query, naming RULE.
refused_slug() {
	run --separate-stderr "$DBREG" resolve-schema -- "$2"
	[ "$status" -eq 2 ] || fail "slug '$2': exit $status, not 2 (stderr: $stderr)"
	[ -z "$output" ] || fail "slug '$2': printed '$output'"
	[[ $stderr == *"rule $1"* ]] || fail "slug '$2': stderr does not name rule $1: $stderr"
}

@test "resolve-schema: a TENANT that no stored slug can match is exit 2, naming the rule" {
	refused_slug length a
	refused_slug length "$(printf 'a%.0s' {1..64})"
	refused_slug pattern Acme-Corp
	refused_slug pattern acme_corp
	refused_slug pattern acme-
	refused_slug pattern 'acme corp'
	refused_slug pattern acme.corp
	refused_slug pattern "acmé-corp"
}

@test "resolve-schema: a slug that starts with a hyphen, after --, breaks the pattern rule" {
	refused_slug pattern -acme
	refused_slug pattern --acme
}

# looked_up SLUG: resolve-schema SLUG asks the registry (no such tenant, exit 1).
looked_up() {
	run --separate-stderr "$DBREG" resolve-schema -- "$1"
	[ "$status" -eq 1 ] || fail "slug '$1': exit $status, not 1 (stderr: $stderr)"
	[[ $stderr == *"no tenant '$1'"* ]] || fail "slug '$1': stderr: $stderr"
}

@test "resolve-schema: dbreg's stricter slug rules are for what it writes: any stored slug is looked up" {
	# 2 and 63 characters, a double hyphen, reserved names: a registry dbreg did not fill
	# may hold them (the platform's CHECK allows them), so they are looked up, not refused.
	looked_up ab
	looked_up abc
	looked_up "$(printf 'a%.0s' {1..55})"
	looked_up "$(printf 'a%.0s' {1..63})"
	looked_up acme--corp
	local word
	for word in admin api app www mail ftp test dev staging prod production platform system \
		root tenant organization org public private shared; do
		looked_up "$word"
	done
}

@test "resolve-schema: injection attempts as TENANT are refused by the rules, nothing runs" {
	local before after attempt
	before=$(psql_admin <<<"SELECT count(*) FROM admin.tenants;")
	for attempt in \
		"acme-corp'; DROP TABLE admin.tenants; --" \
		"acme-corp' OR '1'='1" \
		"$ACME_ID' OR '1'='1" \
		'acme-corp"; DROP SCHEMA admin CASCADE; --' \
		"acme-corp;DROP TABLE admin.tenants" \
		"$(printf 'acme-corp\nDROP TABLE admin.tenants')"; do
		run --separate-stderr "$DBREG" resolve-schema "$attempt"
		[ "$status" -eq 2 ] || fail "'$attempt': exit $status, not 2"
		assert_output ""
		[[ $stderr == *"rule pattern"* ]] || fail "'$attempt': stderr: $stderr"
	done
	after=$(psql_admin <<<"SELECT count(*) FROM admin.tenants;")
	assert_equal "$after" "$before"
	run psql_admin <<<"SELECT to_regnamespace('admin') IS NOT NULL;"
	assert_output t
}

# ---- --validate: the schema-name rules ----------------------------------------------------

# refused_schema RULE NAME: --validate NAME is exit 1, naming RULE.
refused_schema() {
	run --separate-stderr "$DBREG" resolve-schema --validate "$2"
	[ "$status" -eq 1 ] || fail "schema '$2': exit $status, not 1 (stderr: $stderr)"
	[ -z "$output" ] || fail "schema '$2': printed '$output'"
	[[ $stderr == *"rule $1"* ]] || fail "schema '$2': stderr does not name rule $1: $stderr"
}

@test "resolve-schema: --validate accepts valid schema names" {
	local name
	for name in tenant_acme_corp a a1 shared tenant_template x_ "$(printf 'a%.0s' {1..63})" \
		order public pgx p_g_x information_schema_x users; do
		run --separate-stderr "$DBREG" resolve-schema --validate "$name"
		[ "$status" -eq 0 ] || fail "'$name': exit $status: $stderr"
		assert_output "$name: valid schema name"
		assert_equal "$stderr" ""
	done
}

@test "resolve-schema: --validate refuses each rule with exit 1 and names it" {
	refused_schema length ""
	refused_schema length "$(printf 'a%.0s' {1..64})"
	refused_schema pattern Tenant_acme
	refused_schema pattern 1tenant
	refused_schema pattern _tenant
	refused_schema pattern tenant-acme
	refused_schema pattern 'tenant acme'
	refused_schema pattern tenant.acme
	refused_schema pattern "tenant_é"
	refused_schema pg-prefix pg_catalog
	refused_schema pg-prefix pg_temp_1
	refused_schema pg-prefix pg_
	refused_schema information-schema information_schema
	local word
	for word in user table index where select insert update delete create drop alter grant \
		revoke commit rollback; do
		refused_schema reserved-word "$word"
	done
}

@test "resolve-schema: --validate refuses injection attempts, and nothing is dropped" {
	local attempt
	for attempt in \
		'x; DROP SCHEMA admin CASCADE' \
		'tenant_a"b' \
		'tenant_a"; DROP SCHEMA admin CASCADE; --' \
		"tenant_a'; DROP TABLE admin.tenants; --" \
		'admin CASCADE' \
		"$(printf 'tenant_a\nDROP SCHEMA admin')" \
		"$(printf 'tenant_a\tx')"; do
		refused_schema pattern "$attempt"
	done
	run psql_admin <<<"SELECT to_regclass('admin.tenants') IS NOT NULL AND to_regclass('admin.database_connections') IS NOT NULL;"
	assert_output t
}

@test "resolve-schema: --validate shows a control character escaped, not raw" {
	run --separate-stderr "$DBREG" resolve-schema --validate "$(printf 'bad\033[2Jname')"
	assert_failure 1
	[[ $stderr != *$'\033'* ]] || fail "the escape character reached the terminal"
	[[ $stderr == *"rule pattern"* ]] || fail "stderr: $stderr"
}

@test "resolve-schema: --validate needs no registry, no database and no key" {
	unset ADMIN_DATABASE_URL DB_ENCRYPTION_KEY
	run --separate-stderr "$DBREG" resolve-schema --validate tenant_ok
	assert_success
	assert_output "tenant_ok: valid schema name"
	run --separate-stderr "$DBREG" resolve-schema --validate 'x; DROP SCHEMA admin CASCADE'
	assert_failure 1
}

@test "resolve-schema: --validate takes no TENANT" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp --validate tenant_ok
	assert_failure 2
	assert_output ""
}

# ---- --context --------------------------------------------------------------------------

@test "resolve-schema: --context admin, shared and template print their fixed schemas" {
	run --separate-stderr "$DBREG" resolve-schema --context admin
	assert_success
	assert_output admin
	run --separate-stderr "$DBREG" resolve-schema --context shared
	assert_success
	assert_output shared
	run --separate-stderr "$DBREG" resolve-schema --context template
	assert_success
	assert_output tenant_template
	run --separate-stderr "$DBREG" resolve-schema --context=template -o sql
	assert_success
	assert_output "SET search_path TO tenant_template, public;"
}

@test "resolve-schema: the fixed contexts need no database nor key" {
	unset ADMIN_DATABASE_URL DB_ENCRYPTION_KEY
	local ctx want
	for ctx in admin shared template; do
		want=$ctx
		[ "$ctx" = template ] && want=tenant_template
		run --separate-stderr "$DBREG" resolve-schema --context "$ctx"
		[ "$status" -eq 0 ] || fail "--context $ctx: exit $status: $stderr"
		assert_output "$want"
		run --separate-stderr "$DBREG" resolve-schema --context "$ctx" -o sql
		assert_success
		assert_output "SET search_path TO $want, public;"
		run --separate-stderr "$DBREG" resolve-schema --context "$ctx" -o json
		assert_success
		run jq -c '[.schema, .context]' <<<"$output"
		assert_output "[\"$want\",\"$ctx\"]"
	done
}

@test "resolve-schema: the fixed contexts in json have the four keys" {
	run --separate-stderr "$DBREG" resolve-schema --context admin -o json
	assert_success
	run jq -c 'keys' <<<"$output"
	assert_output '["connection","context","schema","tenant"]'
}

@test "resolve-schema: a TENANT with a fixed context is a usage error" {
	local ctx
	for ctx in admin shared template; do
		run --separate-stderr "$DBREG" resolve-schema acme-corp --context "$ctx"
		[ "$status" -eq 2 ] || fail "--context $ctx with a TENANT: exit $status, not 2"
		assert_output ""
	done
}

@test "resolve-schema: the tenant context needs a TENANT; an unknown context is a usage error" {
	run --separate-stderr "$DBREG" resolve-schema
	assert_failure 2
	assert_output ""
	run --separate-stderr "$DBREG" resolve-schema --context tenant
	assert_failure 2
	run --separate-stderr "$DBREG" resolve-schema --context public
	assert_failure 2
	[[ $stderr == *public* ]] || fail "stderr does not name the context: $stderr"
	run --separate-stderr "$DBREG" resolve-schema --context
	assert_failure 2
}

# ---- json ---------------------------------------------------------------------------------

@test "resolve-schema: json has schema, context, tenant and connection, exactly" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp -o json
	assert_success
	local json=$output
	run jq -c 'keys' <<<"$json"
	assert_output '["connection","context","schema","tenant"]'
	run jq -c '[.schema, .context]' <<<"$json"
	assert_output '["tenant_acme_corp","tenant"]'
	run jq -c '.tenant | keys' <<<"$json"
	assert_output '["id","name","slug"]'
	run jq -r '.tenant | [.id, .slug, .name] | join("|")' <<<"$json"
	assert_output "$ACME_ID|acme-corp|Acme \"Corp\" & Sons, Ünïcode"
	run jq -r --arg re "$UUID_RE" '.connection.id | test($re)' <<<"$json"
	assert_output true
}

@test "resolve-schema: a tenant without its own connection gets shared-primary, as show prints it" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp -o json
	assert_success
	local conn
	conn=$(jq -S .connection <<<"$output")
	run --separate-stderr "$DBREG" show shared-primary -o json
	assert_success
	assert_equal "$conn" "$(jq -S . <<<"$output")"
}

@test "resolve-schema: a tenant on its own connection gets that one, whatever the default" {
	run --separate-stderr "$DBREG" resolve-schema globex-inc -o json
	assert_success
	local conn
	conn=$(jq -S .connection <<<"$output")
	assert_equal "$(jq -r .connection_name <<<"$conn")" globex-db
	assert_equal "$(jq -r .id <<<"$conn")" "$(conn_id globex-db)"
	run --separate-stderr "$DBREG" show globex-db -o json
	assert_equal "$conn" "$(jq -S . <<<"$output")"
	run --separate-stderr "$DBREG" resolve-schema "$GLOBEX_ID" -o json --default-connection shared-other
	assert_success
	run jq -r .connection.connection_name <<<"$output"
	assert_output globex-db
}

@test "resolve-schema: --default-connection picks another active connection, of any type" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp -o json --default-connection shared-other
	assert_success
	run jq -r '[.schema, .connection.connection_name] | join(" ")' <<<"$output"
	assert_output "tenant_acme_corp shared-other"
	run --separate-stderr "$DBREG" resolve-schema acme-corp -o json --default-connection reports-db
	assert_success
	run jq -r '[.connection.connection_name, .connection.connection_type] | join(" ")' <<<"$output"
	assert_output "reports-db ANALYTICS"
}

@test "resolve-schema: --default-connection must be a registered, active connection" {
	local name
	# Not registered; inactive; deregistered.
	for name in no-such-db shared-asleep shared-retired; do
		run --separate-stderr "$DBREG" resolve-schema acme-corp -o json --default-connection "$name"
		[ "$status" -eq 1 ] || fail "--default-connection $name: exit $status, not 1"
		assert_output ""
		[[ $stderr == *"no active connection '$name' (see --default-connection)"* ]] ||
			fail "--default-connection $name: stderr: $stderr"
	done
}

@test "resolve-schema: without shared-primary, a tenant without its own connection has none" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp -o json --default-connection shared-gone
	assert_failure 1
	assert_output ""
	[[ $stderr == *shared-gone* ]] || fail "stderr: $stderr"
}

@test "resolve-schema: an invalid --default-connection name is a usage error" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp -o json \
		--default-connection "x'; DROP TABLE admin.tenants; --"
	assert_failure 2
	assert_output ""
	[[ $stderr == *"rule pattern"* ]] || fail "stderr: $stderr"
	run psql_admin <<<"SELECT to_regclass('admin.tenants') IS NOT NULL;"
	assert_output t
}

@test "resolve-schema: json needs no key and prints no secret" {
	unset DB_ENCRYPTION_KEY
	run --separate-stderr "$DBREG" resolve-schema globex-inc -o json
	assert_success
	run jq -c '.connection | [.has_password, (.key_id | test("^[0-9a-f]{8}$"))]' <<<"$output"
	assert_output '[true,true]'
	run --separate-stderr "$DBREG" resolve-schema globex-inc -o json
	no_secrets
	refute_output --partial encrypted_password
}

# ---- sql ------------------------------------------------------------------------------------

@test "resolve-schema: sql prints a SET search_path line, the name bare when it may be" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp -o sql
	assert_success
	assert_output "SET search_path TO tenant_acme_corp, public;"
	assert_equal "$stderr" ""
	run --separate-stderr "$DBREG" resolve-schema "$GLOBEX_ID" --format sql
	assert_success
	assert_output "SET search_path TO tenant_globex_inc, public;"
}

@test "resolve-schema: sql quotes a stored name that is an SQL keyword" {
	run --separate-stderr "$DBREG" resolve-schema order-corp -o sql
	assert_success
	assert_output 'SET search_path TO "order", public;'
}

@test "resolve-schema: the sql line works in psql" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp -o sql
	assert_success
	local line=$output
	run psql_admin <<<"$line
SHOW search_path;"
	assert_success
	assert_output "tenant_acme_corp, public"
	run --separate-stderr "$DBREG" resolve-schema order-corp -o sql
	line=$output
	run psql_admin <<<"$line
SELECT current_schemas(false)::text;"
	assert_success
	assert_output '{order,public}'
}

@test "resolve-schema: unknown formats are usage errors" {
	local fmt
	for fmt in table csv yaml; do
		run --separate-stderr "$DBREG" resolve-schema acme-corp -o "$fmt"
		[ "$status" -eq 2 ] || fail "-o $fmt: exit $status, not 2"
		assert_output ""
	done
}

# ---- --check --------------------------------------------------------------------------------

@test "resolve-schema: --check logs in and confirms the schema exists" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp --check
	assert_success
	assert_output tenant_acme_corp
	no_secrets
	run --separate-stderr "$DBREG" resolve-schema globex-inc --check -o json
	assert_success
	run jq -r '[.schema, .connection.connection_name] | join(" ")' <<<"$output"
	assert_output "tenant_globex_inc globex-db"
	run --separate-stderr "$DBREG" resolve-schema order-corp --check -o sql
	assert_success
	assert_output 'SET search_path TO "order", public;'
}

@test "resolve-schema: --check is exit 1 when the schema does not exist there" {
	run --separate-stderr "$DBREG" resolve-schema missing-schema --check
	assert_failure 1
	assert_output ""
	[[ $stderr == *"schema tenant_missing_schema does not exist on connection 'shared-primary'"* ]] ||
		fail "stderr: $stderr"
	no_secrets
	# Without --check, the stored name resolves all the same.
	run --separate-stderr "$DBREG" resolve-schema missing-schema
	assert_success
	assert_output tenant_missing_schema
}

@test "resolve-schema: --check looks on the --default-connection" {
	# The same database under another name: the schema is there too.
	run --separate-stderr "$DBREG" resolve-schema acme-corp --check --default-connection shared-other
	assert_success
	run --separate-stderr "$DBREG" resolve-schema missing-schema --check --default-connection shared-other
	assert_failure 1
	[[ $stderr == *"on connection 'shared-other'"* ]] || fail "stderr: $stderr"
}

@test "resolve-schema: --check needs the key for a connection with a password" {
	unset DB_ENCRYPTION_KEY
	run --separate-stderr "$DBREG" resolve-schema acme-corp --check
	assert_failure 78
	assert_output ""
	[[ $stderr == *key* ]] || fail "stderr does not mention the key: $stderr"
	[[ $stderr == *shared-primary* ]] || fail "stderr does not name the connection: $stderr"
}

@test "resolve-schema: --check with the wrong key names the connection, prints no secret" {
	local right=$DB_ENCRYPTION_KEY
	make_key
	run --separate-stderr "$DBREG" resolve-schema globex-inc --check
	assert_failure 78
	assert_output ""
	[[ $stderr == *globex-db* ]] || fail "stderr: $stderr"
	no_secrets
	assert_no_secret "$right"
}

@test "resolve-schema: --check on a connection without a password needs no key" {
	unset DB_ENCRYPTION_KEY
	run --separate-stderr "$DBREG" resolve-schema nopw-tenant --check
	assert_success
	assert_output tenant_nopw_tenant
}

@test "resolve-schema: --check on an unreachable connection fails with the reason" {
	run --separate-stderr timeout 30 "$DBREG" resolve-schema far-tenant --check
	assert_failure 1
	assert_output ""
	[[ $stderr == *"127.0.0.1:1"* ]] || fail "stderr: $stderr"
	# Without --check the tenant resolves without a login.
	run --separate-stderr "$DBREG" resolve-schema far-tenant
	assert_success
	assert_output tenant_far_tenant
}

@test "resolve-schema: --check with a fixed context is a usage error" {
	run --separate-stderr "$DBREG" resolve-schema --context admin --check
	assert_failure 2
	assert_output ""
}

# ---- the registry ------------------------------------------------------------------------

@test "resolve-schema: init created admin.tenants with the slug, schema and status checks" {
	local bad
	for bad in \
		"('Bad_Slug', 'tenant_bad_slug_a', 'active')" \
		"('test', 'tenant_test_x', 'active')" \
		"('bad--slug', 'tenant_bad_slug_b', 'active')" \
		"('good-slug-a', 'pg_evil', 'active')" \
		"('good-slug-b', 'select', 'active')" \
		"('good-slug-c', 'Tenant_x', 'active')" \
		"('good-slug-d', 'information_schema', 'active')" \
		"('good-slug-e', 'x; drop schema admin', 'active')" \
		"('good-slug-f', 'tenant_good_slug_f', 'bogus')"; do
		run psql_admin <<<"INSERT INTO admin.tenants (slug, schema_name, status, name)
			SELECT s, sc, st, 'n' FROM (VALUES $bad) v (s, sc, st);"
		[ "$status" -ne 0 ] || fail "the table accepted $bad"
		[[ $output == *check* ]] || fail "$bad: not refused by a check: $output"
	done
	# A tenant's connection must exist.
	run psql_admin <<<"INSERT INTO admin.tenants (slug, schema_name, status, name, database_connection_id)
		VALUES ('good-slug-g', 'tenant_good_slug_g', 'active', 'n', gen_random_uuid());"
	assert_failure
	assert_output --partial foreign key
}

@test "resolve-schema: init is idempotent over the tenants migration" {
	local before
	before=$(psql_admin <<<"SELECT count(*) FROM admin.tenants;")
	run --separate-stderr "$DBREG" init
	assert_success
	assert_equal "$(psql_admin <<<"SELECT count(*) FROM admin.tenants;")" "$before"
}

# ---- deregister and tenants ------------------------------------------------------------------

@test "resolve-schema: deregister --purge is refused while live tenants use the connection" {
	reg doomed-db pw --type DEDICATED
	tenant doomed-one tenant_doomed_one active doomed-db
	tenant doomed-two tenant_doomed_two suspended doomed-db
	run --separate-stderr "$DBREG" deregister doomed-db --purge
	assert_failure 1
	[[ $stderr == *doomed-one* && $stderr == *doomed-two* ]] ||
		fail "stderr does not name the tenants: $stderr"
	assert_equal "$(registry_count "connection_name = 'doomed-db' AND deleted_at IS NULL")" 1
	run psql_admin <<<"SELECT count(*) FROM admin.tenants t JOIN admin.database_connections d
		ON d.id = t.database_connection_id WHERE d.connection_name = 'doomed-db';"
	assert_output 2
	run --separate-stderr "$DBREG" resolve-schema doomed-one -o json
	assert_success
	run jq -r .connection.connection_name <<<"$output"
	assert_output doomed-db
}

@test "resolve-schema: plain deregister of a connection with tenants warns and succeeds" {
	reg doomed-soft pw --type DEDICATED
	tenant doomed-three tenant_doomed_three active doomed-soft
	run --separate-stderr "$DBREG" deregister doomed-soft
	assert_success
	assert_output "deregistered doomed-soft"
	[[ $stderr == *tenant* ]] || fail "no warning about tenants on stderr: $stderr"
	[[ $stderr == *doomed-soft* ]] || fail "the warning does not name the connection: $stderr"
	assert_equal "$(registry_count "connection_name = 'doomed-soft' AND deleted_at IS NOT NULL")" 1
	# The tenant's own connection is gone: no silent fallback to the shared default.
	run --separate-stderr "$DBREG" resolve-schema doomed-three -o json
	assert_failure 1
	assert_output ""
}

@test "resolve-schema: deregister without tenants on the connection does not warn" {
	reg lonely-db pw --type DEDICATED
	run --separate-stderr "$DBREG" deregister lonely-db
	assert_success
	[[ $stderr != *tenant* ]] || fail "warned without tenants: $stderr"
	reg lonely-db2 pw --type DEDICATED
	run --separate-stderr "$DBREG" deregister lonely-db2 --purge
	assert_success
	assert_equal "$(registry_count "connection_name = 'lonely-db2'")" 0
}

@test "resolve-schema: deregister --purge is allowed once the tenants have moved" {
	reg moving-db pw --type DEDICATED
	tenant moving-co tenant_moving_co active moving-db
	run --separate-stderr "$DBREG" deregister moving-db --purge
	assert_failure 1
	psql_admin <<<"UPDATE admin.tenants SET database_connection_id = NULL WHERE slug = 'moving-co';"
	run --separate-stderr "$DBREG" deregister moving-db --purge
	assert_success
	assert_equal "$(registry_count "connection_name = 'moving-db'")" 0
	run --separate-stderr "$DBREG" resolve-schema moving-co -o json
	assert_success
	run jq -r .connection.connection_name <<<"$output"
	assert_output shared-primary
}

# ---- usage -----------------------------------------------------------------------------------

@test "resolve-schema: --help prints the usage and exits 0" {
	run --separate-stderr "$DBREG" resolve-schema --help
	assert_success
	assert_output --partial resolve-schema
	assert_output --partial --validate
	run --separate-stderr "$DBREG" resolve-schema -h
	assert_success
}

@test "resolve-schema: a second TENANT or an unknown option is a usage error" {
	run --separate-stderr "$DBREG" resolve-schema acme-corp globex-inc
	assert_failure 2
	assert_output ""
	run --separate-stderr "$DBREG" resolve-schema acme-corp --bogus
	assert_failure 2
	run --separate-stderr "$DBREG" resolve-schema --validate
	assert_failure 2
	run --separate-stderr "$DBREG" resolve-schema acme-corp --default-connection
	assert_failure 2
}

@test "resolve-schema: an unknown short option in a cluster is named in the error" {
	run --separate-stderr "$DBREG" resolve-schema -acme
	assert_failure 2
	if [[ $stderr != *"'-a"* ]]; then
		fail "unexpected: [[ \$stderr != *\"'-a\"* ]]"
	fi
}

@test "resolve-schema: a registry without the schema is a configuration error" {
	scratch_registry
	run --separate-stderr "$DBREG" resolve-schema acme-corp
	assert_failure 78
	[[ $stderr == *"dbreg init"* ]] || fail "stderr: $stderr"
}

@test "resolve-schema: an unreachable admin database is exit 69" {
	export ADMIN_DATABASE_URL="postgresql://$DBREG_ADMIN_ROLE@127.0.0.1:1/nowhere?connect_timeout=3"
	run --separate-stderr "$DBREG" resolve-schema acme-corp
	assert_failure 69
	assert_output ""
}
