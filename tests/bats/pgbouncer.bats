#!/usr/bin/env bats
# A registered PgBouncer (issue 12): register/update --pooler and --pooler-db write
# metadata.pooler and metadata.pooler_db; pool-stats reads the bouncer's admin console
# (SHOW POOLS, SHOW DATABASES) in every format; health logs in through the bouncer to the
# database behind (no options startup parameter, which PgBouncer 1.18 refuses) and sees that
# database go while the bouncer stays up.  A real PgBouncer (scripts/pg-sandbox pgbouncer)
# on 127.0.0.1 and a free port, in front of the sandbox.  No secret in any output.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

POOLER_KEYS='["pools","type"]'
POOL_KEYS='["cl_active","cl_waiting","database","maxwait","pool_mode","pool_size","sv_active","sv_idle","sv_used","user"]'

# reg_bouncer NAME [REGISTER-OPTION...]: a connection through the bouncer to PGB_DB.
reg_bouncer() {
	local name=$1
	shift
	printf '%s\n' "$BOUNCER_PW" | "$DBREG" register "$name" --host 127.0.0.1 --port "$PGSANDBOX_PGBOUNCER_PORT" \
		--database "$PGB_DB" --user "$BOUNCER_ROLE" --password-stdin "$@" >/dev/null
}

setup_file() {
	fresh_registry
	have_sandbox || return 0
	make_key
	"$DBREG" init >/dev/null
	start_pgbouncer
	[ -z "${PGBOUNCER_MISSING-}" ] || return 0
	export PGB_DB=pgbtgt_$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
	psql_super -v "db=$PGB_DB" -v "owner=$BOUNCER_ROLE" <<<'CREATE DATABASE :"db" OWNER :"owner";'
	reg_bouncer pgb-main --pooler pgbouncer
	# A server's row beside it: pool-stats measures it as before, without a pooler key.
	printf '%s\n' "$(sandbox_admin_password)" | "$DBREG" register plain-db --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --password-stdin >/dev/null
}

teardown_file() {
	if [ -n "${PGB_DB-}" ]; then
		psql_super -v "db=$PGB_DB" <<<'DROP DATABASE IF EXISTS :"db" WITH (FORCE);' || true
	fi
	stop_pgbouncer
	drop_registry
}

setup() {
	require_sandbox
	require_pgbouncer
}

@test "pgbouncer: register --pooler pgbouncer stores metadata.pooler and the default pooler_db" {
	assert_equal "$(registry_field pgb-main "metadata->>'pooler'")" pgbouncer
	assert_equal "$(registry_field pgb-main "metadata->>'pooler_db'")" pgbouncer
	reg_bouncer pgb-other --pooler pgbouncer --pooler-db pgbouncer --tag edge
	assert_equal "$(registry_field pgb-other "metadata::jsonb")" '{"pooler": "pgbouncer", "pooler_db": "pgbouncer"}'
	run --separate-stderr "$DBREG" show pgb-other -o json
	assert_success
	assert_equal "$(jq -c .metadata <<<"$output")" '{"pooler":"pgbouncer","pooler_db":"pgbouncer"}'
	assert_no_secret "$BOUNCER_PW"
}

@test "pgbouncer: update merges --pooler and --pooler-db into the metadata, other keys kept; --pooler none removes them" {
	reg_bouncer pgb-upd
	psql_admin -c "UPDATE admin.database_connections SET metadata = '{\"owner\": \"team-a\"}' WHERE connection_name = 'pgb-upd'"
	run --separate-stderr "$DBREG" update pgb-upd --pooler pgbouncer
	assert_success
	assert_equal "$(registry_field pgb-upd "metadata::jsonb")" '{"owner": "team-a", "pooler": "pgbouncer", "pooler_db": "pgbouncer"}'
	run --separate-stderr "$DBREG" update pgb-upd --pooler-db console
	assert_success
	assert_equal "$(registry_field pgb-upd "metadata::jsonb")" '{"owner": "team-a", "pooler": "pgbouncer", "pooler_db": "console"}'
	# A second --pooler keeps the console database it has.
	run --separate-stderr "$DBREG" update pgb-upd --pooler pgbouncer
	assert_equal "$(registry_field pgb-upd "metadata->>'pooler_db'")" console
	run --separate-stderr "$DBREG" update pgb-upd --pooler none
	assert_success
	assert_equal "$(registry_field pgb-upd "metadata::jsonb")" '{"owner": "team-a"}'
	"$DBREG" deregister pgb-upd --purge >/dev/null
}

@test "pgbouncer: Try --pooler with another value, --pooler-db without a pooler, an empty one: exit 2, nothing written" {
	run --separate-stderr "$DBREG" register bad-pooler --host 127.0.0.1 --database d --user u --no-password --pooler odyssey
	assert_failure 2
	[[ $stderr == *"--pooler: 'odyssey' is not a pooler dbreg knows (pgbouncer"* ]] || fail "$stderr"
	[[ $stderr == *"Try 'dbreg register --help'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" register bad-pooler --host 127.0.0.1 --database d --user u --no-password --pooler-db pgbouncer
	assert_failure 2
	[[ $stderr == *"--pooler-db needs --pooler pgbouncer"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" register bad-pooler --host 127.0.0.1 --database d --user u --no-password \
		--pooler pgbouncer --pooler-db ''
	assert_failure 2
	[[ $stderr == *"--pooler-db: the database name cannot be empty"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" register bad-pooler --host 127.0.0.1 --database d --user u --no-password --pooler none
	assert_failure 2
	assert_equal "$(registry_count "connection_name = 'bad-pooler'")" 0
	# update: --pooler-db alone only on a row that is a pooler already.
	run --separate-stderr "$DBREG" update plain-db --pooler-db pgbouncer
	assert_failure 2
	[[ $stderr == *"connection 'plain-db' is not a pooler"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" update plain-db --pooler pgbouncer1
	assert_failure 2
	assert_equal "$(registry_field plain-db "metadata::jsonb")" '{}'
}

@test "pgbouncer: health logs in through the bouncer to the database behind (no options parameter), every level" {
	run --separate-stderr "$DBREG" health pgb-main --no-update --level deep -o json
	assert_success
	assert_equal "$(jq -r '.results[0] | [.status, .in_recovery, (.backends >= 1)] | @json' <<<"$output")" '["HEALTHY",false,true]'
	run --separate-stderr "$DBREG" health pgb-main
	assert_success
	assert_equal "$(registry_field pgb-main is_healthy)" t
	assert_no_secret "$BOUNCER_PW"
}

@test "pgbouncer: pool-stats reads SHOW POOLS and SHOW DATABASES: JSON keys and integers, not the console's own pool" {
	# A session through the bouncer, so that its pool exists.
	"$DBREG" health pgb-main --no-update >/dev/null
	run --separate-stderr "$DBREG" pool-stats pgb-main plain-db -o json
	assert_success
	local b
	b=$(jq -c '.connections[] | select(.connection_name == "pgb-main")' <<<"$output")
	assert_equal "$(jq -c '.pooler | keys' <<<"$b")" "$POOLER_KEYS"
	assert_equal "$(jq -r '.pooler.type' <<<"$b")" pgbouncer
	assert_equal "$(jq -c '.pooler.pools[0] | keys' <<<"$b")" "$POOL_KEYS"
	assert_equal "$(jq -r --arg db "$PGB_DB" '[.pooler.pools[] | select(.database == $db)] | length' <<<"$b")" 1
	assert_equal "$(jq -r '[.pooler.pools[] | select(.database == "pgbouncer")] | length' <<<"$b")" 0
	assert_equal "$(jq -r --arg db "$PGB_DB" '.pooler.pools[] | select(.database == $db) |
		[.user, .pool_mode, .pool_size, ([.cl_active, .cl_waiting, .sv_active, .sv_idle, .sv_used, .maxwait, .pool_size]
		 | map(type == "number" and . == floor and . >= 0) | all)] | @json' <<<"$b")" \
		"[\"$BOUNCER_ROLE\",\"session\",5,true]"
	assert_equal "$(jq -r '[.error, .pool_max_size, .backends.total, .saturation] | @json' <<<"$b")" '[null,20,null,null]'
	# A server's row has no pooler key, and its server is in the servers list; the bouncer is not.
	assert_equal "$(jq -r '.connections[] | select(.connection_name == "plain-db") | has("pooler")' <<<"$output")" false
	assert_equal "$(jq -r --arg p "$PGSANDBOX_PGBOUNCER_PORT" '[.servers[] | select(.port == ($p | tonumber))] | length' <<<"$output")" 0
	assert_no_secret "$BOUNCER_PW"
}

@test "pgbouncer: pool-stats table shows the bouncer's pools beside the registry's pool" {
	"$DBREG" health pgb-main --no-update >/dev/null
	run --separate-stderr "$DBREG" pool-stats pgb-main
	assert_success
	assert_line --regexp '^NAME +DATABASE +USER +MODE +CL-ACTIVE +CL-WAITING +SV-ACTIVE +SV-IDLE +SV-USED +MAXWAIT +POOL-SIZE +REGISTRY-MAX$'
	assert_line --regexp "^pgb-main +$PGB_DB +$BOUNCER_ROLE +session +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ s +5 +20\$"
	refute_line --regexp '^pgb-main +pgbouncer '
	assert_no_secret "$BOUNCER_PW"
}

@test "pgbouncer: pool-stats -o prometheus: dbreg_pool_* families with HELP and TYPE, the bouncer's pools labelled" {
	"$DBREG" health pgb-main --no-update >/dev/null
	run --separate-stderr "$DBREG" pool-stats pgb-main plain-db -o prometheus
	assert_success
	local family
	for family in dbreg_pool_up dbreg_pool_connections dbreg_pool_max_size dbreg_pool_saturation \
		dbreg_pool_pgbouncer_cl_active dbreg_pool_pgbouncer_cl_waiting dbreg_pool_pgbouncer_sv_active \
		dbreg_pool_pgbouncer_sv_idle dbreg_pool_pgbouncer_sv_used dbreg_pool_pgbouncer_maxwait_seconds \
		dbreg_pool_pgbouncer_pool_size dbreg_pool_run_success; do
		assert_line --regexp "^# HELP $family .+"
		assert_line "# TYPE $family gauge"
	done
	assert_line 'dbreg_pool_up{connection="pgb-main"} 1'
	assert_line 'dbreg_pool_max_size{connection="pgb-main"} 20'
	assert_line --regexp '^dbreg_pool_connections\{connection="plain-db",state="active"\} [0-9]+$'
	assert_line --regexp '^dbreg_pool_saturation\{connection="plain-db"\} [0-9.e-]+$'
	assert_line "dbreg_pool_pgbouncer_pool_size{connection=\"pgb-main\",database=\"$PGB_DB\",user=\"$BOUNCER_ROLE\"} 5"
	assert_line --regexp "^dbreg_pool_pgbouncer_cl_active\\{connection=\"pgb-main\",database=\"$PGB_DB\",user=\"$BOUNCER_ROLE\"\\} [0-9]+\$"
	refute_line --partial 'database="pgbouncer"'
	assert_line 'dbreg_pool_run_success 1'
	# A pool whose database name needs escaping in a label value: \\ and \" (the bouncer
	# makes a pool for any database behind it once a client has logged in to it).
	local odd='pgb"odd\db'
	psql_super -v "db=$odd" -v "owner=$BOUNCER_ROLE" <<<'CREATE DATABASE :"db" OWNER :"owner";'
	PGPASSWORD=$BOUNCER_PW _psql -X -qAt -w -c 'SELECT 1' \
		"host=127.0.0.1 port=$PGSANDBOX_PGBOUNCER_PORT user=$BOUNCER_ROLE dbname='pgb\"odd\\\\db'" >/dev/null
	run --separate-stderr "$DBREG" pool-stats pgb-main -o prometheus
	psql_super -v "db=$odd" <<<'DROP DATABASE :"db" WITH (FORCE);'
	assert_success
	assert_line --regexp '^dbreg_pool_pgbouncer_sv_idle\{connection="pgb-main",database="pgb\\"odd\\\\db",user="dbreg_bouncer"\} [0-9]+$'
	# Every sample line is NAME{LABELS} VALUE or NAME VALUE.
	refute_line --regexp '^[^#][^ ]* [^ ]+ '
	assert_no_secret "$BOUNCER_PW"
	# --output: the same report, written atomically.
	run --separate-stderr "$DBREG" pool-stats pgb-main -o prometheus --output "$BATS_TEST_TMPDIR/pool.prom"
	assert_success
	assert_output ''
	grep -q "^dbreg_pool_pgbouncer_pool_size{connection=\"pgb-main\"" "$BATS_TEST_TMPDIR/pool.prom"
	run ! grep -qF "$BOUNCER_PW" "$BATS_TEST_TMPDIR/pool.prom"
	run --separate-stderr "$DBREG" pool-stats --output "$BATS_TEST_TMPDIR/x" --watch 2
	assert_failure 2
}

@test "pgbouncer: rotate-password refuses a row registered with --pooler" {
	run --separate-stderr "$DBREG" rotate-password pgb-main
	assert_failure 1
	[[ $stderr == *"is a pooler's"* ]] || fail "$stderr"
	assert_no_secret "$BOUNCER_PW"
}

@test "pgbouncer: the database behind gone, the bouncer still up: health is UNHEALTHY, pool-stats still reads the console" {
	run --separate-stderr "$DBREG" health pgb-main --no-update
	assert_success
	psql_super -v "db=$PGB_DB" <<<'DROP DATABASE :"db" WITH (FORCE);'
	run --separate-stderr "$DBREG" health pgb-main --timeout 3 -o json
	assert_failure 2
	assert_equal "$(jq -r '.results[0].status' <<<"$output")" UNHEALTHY
	assert_equal "$(registry_field pgb-main "consecutive_failures > 0")" t
	assert_no_secret "$BOUNCER_PW"
	# The bouncer itself answers: its console, as pool-stats asks it.
	run --separate-stderr "$DBREG" pool-stats pgb-main -o json
	assert_success
	assert_equal "$(jq -r '.connections[0] | [.error, .pooler.type] | @json' <<<"$output")" '[null,"pgbouncer"]'
	assert_no_secret "$BOUNCER_PW"
	psql_super -v "db=$PGB_DB" -v "owner=$BOUNCER_ROLE" <<<'CREATE DATABASE :"db" OWNER :"owner";'
}
