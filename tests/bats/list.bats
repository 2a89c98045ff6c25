#!/usr/bin/env bats
# dbreg list: table, json and csv shapes (SPEC §12), the filters, --all and --names;
# never a password nor its stored text, and no key needed.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

KEYS=(id connection_name connection_type region_id host port database_name username ssl_mode
	pool_min_size pool_max_size pool_timeout_seconds pool_recycle_seconds pool_pre_ping
	is_active is_healthy last_health_check consecutive_failures max_consecutive_failures
	metadata tags created_at updated_at deleted_at has_password key_id password_format)

LIST_PASSWORD=list-test-password-1

setup_file() {
	fresh_registry
	have_sandbox || return 0
	make_key
	"$DBREG" init >/dev/null
	"$DBREG" register lst-alpha --host db-a.example --database app --user app_user \
		--region us-east-1 --tag a --tag b --no-password >/dev/null
	"$DBREG" register lst-beta --host db-b.example --port 6432 --database reports \
		--user reader --type ANALYTICS --region eu-west-1 --inactive \
		--password-stdin <<<"$LIST_PASSWORD" >/dev/null
	"$DBREG" register lst-gamma --host db-c.example --database big --user owner \
		--type DEDICATED --region us-east-1 --tag 'with,comma' --tag 'with "quote"' \
		--password-stdin <<<"$LIST_PASSWORD" >/dev/null
	"$DBREG" register lst-delta --host db-d.example --database old --user old \
		--no-password >/dev/null
	"$DBREG" deregister lst-delta >/dev/null
	"$DBREG" register lst-epsilon --host db-e.example --database adm --user adm --type ADMIN \
		--region eu-west-1 --no-password >/dev/null
}

teardown_file() { drop_registry; }

setup() {
	require_sandbox
	unset DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE
}

teardown() { drop_scratch_registry; }

# names FILTER...: the names list --names prints with these options, on one line.
names() {
	"$DBREG" list --names "$@" | sort | paste -sd' '
}

# ---- table ----------------------------------------------------------------------------

@test "list: the table has a header row and one row per live connection" {
	run --separate-stderr "$DBREG" list
	assert_success
	assert_line --index 0 --regexp '^NAME +TYPE +REGION +HOST +PORT +DATABASE +USER +ACTIVE +HEALTHY *$'
	assert_equal "${#lines[@]}" 5
	assert_line --regexp '^lst-alpha +SHARED +us-east-1 +db-a\.example +5432 +app +app_user +yes +yes *$'
	assert_line --regexp '^lst-beta +ANALYTICS +eu-west-1 +db-b\.example +6432 +reports +reader +no +yes *$'
	assert_line --regexp '^lst-gamma +DEDICATED +'
	assert_line --regexp '^lst-epsilon +ADMIN +'
	refute_line --regexp '^lst-delta'
}

@test "list: -o table and --format=table are the default" {
	run --separate-stderr "$DBREG" list
	local plain=$output
	run --separate-stderr "$DBREG" list -o table
	assert_success
	assert_output "$plain"
	run --separate-stderr "$DBREG" list --format=table
	assert_output "$plain"
}

# ---- json --------------------------------------------------------------------------------

@test "list: json is an array of objects with exactly SPEC's keys" {
	run --separate-stderr "$DBREG" list -o json
	assert_success
	assert_equal "$(jq -r type <<<"$output")" array
	assert_equal "$(jq length <<<"$output")" 4
	local want
	want=$(printf '%s\n' "${KEYS[@]}" | sort | jq -Rsc 'split("\n") | map(select(. != ""))')
	run jq -c '[.[] | keys] | unique' <<<"$output"
	assert_output "[$want]"
	run --separate-stderr "$DBREG" list --format=json
	assert_success
	refute_output --partial encrypted_password
}

@test "list: json values have the right types" {
	run --separate-stderr "$DBREG" list -o json
	assert_success
	local json=$output check
	# shellcheck disable=SC2016
	for check in \
		'.id | test($uuid)' \
		'.connection_name | type == "string"' \
		'.connection_type | type == "string"' \
		'.region_id | type == "string" or . == null' \
		'.host | type == "string"' \
		'.port | type == "number"' \
		'.database_name | type == "string"' \
		'.username | type == "string"' \
		'.ssl_mode | type == "string"' \
		'[.pool_min_size, .pool_max_size, .pool_timeout_seconds, .pool_recycle_seconds,
		  .consecutive_failures, .max_consecutive_failures] | all(type == "number")' \
		'[.pool_pre_ping, .is_active, .is_healthy, .has_password] | all(type == "boolean")' \
		'.last_health_check == null' \
		'.metadata | type == "object"' \
		'.tags | type == "array" and all(type == "string")' \
		'.created_at | test($ts)' \
		'.updated_at | test($ts)' \
		'.deleted_at == null' \
		'if .has_password then (.key_id | test("^[0-9a-f]{8}$")) else .key_id == null end' \
		'if .has_password then .password_format == "dbreg" else .password_format == null end'; do
		run jq --arg uuid "$UUID_RE" --arg ts "$TS_RE" "[.[] | $check] | all" <<<"$json"
		[ "$output" = true ] || fail "not true for every row: $check"
	done
}

@test "list: json carries the registered values" {
	run --separate-stderr "$DBREG" list -o json
	assert_success
	run jq -c '.[] | select(.connection_name == "lst-beta") | [.connection_type, .region_id,
		.host, .port, .database_name, .username, .is_active, .has_password, .tags]' <<<"$output"
	assert_output '["ANALYTICS","eu-west-1","db-b.example",6432,"reports","reader",false,true,[]]'
	run --separate-stderr "$DBREG" list -o json
	run jq -c '.[] | select(.connection_name == "lst-gamma") | .tags' <<<"$output"
	assert_output '["with,comma","with \"quote\""]'
	run --separate-stderr "$DBREG" list -o json
	run jq -r '.[] | select(.connection_name == "lst-beta") | .key_id' <<<"$output"
	assert_output "$(registry_field lst-beta "split_part(encrypted_password, ':', 3)")"
}

@test "list: json timestamps are RFC 3339 in UTC, whatever the session time zone" {
	psql_admin -c "UPDATE admin.database_connections
		SET last_health_check = '2024-01-02 03:04:05+02' WHERE connection_name = 'lst-epsilon'"
	export PGTZ=America/New_York
	run --separate-stderr "$DBREG" list -o json
	assert_success
	run jq -r '.[] | select(.connection_name == "lst-epsilon") | .last_health_check' <<<"$output"
	assert_output 2024-01-02T01:04:05Z
	psql_admin -c "UPDATE admin.database_connections SET last_health_check = NULL
		WHERE connection_name = 'lst-epsilon'"
}

# ---- csv -----------------------------------------------------------------------------------

@test "list: csv has SPEC's keys as header row, then one record per connection" {
	run --separate-stderr "$DBREG" list -o csv
	assert_success
	local header
	header=$(IFS=,; echo "${KEYS[*]}")
	assert_line --index 0 "$header"
	# Parsed as CSV: 27 fields a record, quoting intact.
	run python3 -c 'import csv, json, sys
rows = list(csv.reader(sys.stdin))
assert all(len(r) == 27 for r in rows), [len(r) for r in rows]
body = [dict(zip(rows[0], r)) for r in rows[1:]]
print(len(body))
for r in sorted(body, key=lambda r: r["connection_name"]):
    print(r["connection_name"], r["connection_type"], r["port"], r["is_active"], r["has_password"],
          json.dumps(json.loads(r["tags"])) if r["tags"] else "-")' <<<"$output"
	assert_success
	assert_output "$(cat <<-'EOF'
		4
		lst-alpha SHARED 5432 true false ["a", "b"]
		lst-beta ANALYTICS 6432 false true []
		lst-epsilon ADMIN 5432 true false []
		lst-gamma DEDICATED 5432 true true ["with,comma", "with \"quote\""]
	EOF
	)"
}

@test "list: csv ids and names match json" {
	run --separate-stderr "$DBREG" list -o json
	local from_json
	from_json=$(jq -r '.[] | "\(.id),\(.connection_name)"' <<<"$output" | sort)
	run --separate-stderr "$DBREG" list -o csv
	assert_equal "$(tail -n +2 <<<"$output" | cut -d, -f1,2 | sort)" "$from_json"
}

# ---- filters, --all, --names -----------------------------------------------------------

@test "list: --names prints one name per line" {
	run --separate-stderr "$DBREG" list --names
	assert_success
	assert_equal "$(sort <<<"$output" | paste -sd' ')" "lst-alpha lst-beta lst-epsilon lst-gamma"
	assert_equal "${#lines[@]}" 4
	assert_equal "$stderr" ""
}

@test "list: --type filters by type" {
	run names --type ANALYTICS
	assert_output lst-beta
	run names --type SHARED
	assert_output lst-alpha
	run names --type DEDICATED
	assert_output lst-gamma
}

@test "list: Try a --type the registry cannot hold: exit 1 naming its types" {
	run --separate-stderr "$DBREG" list --type shared
	assert_failure 1
	assert_output ""
	assert_equal "$stderr" "dbreg: error: --type: no type 'shared' in this registry; its types: ADMIN, SHARED, ANALYTICS, DEDICATED"
	run --separate-stderr "$DBREG" list --type NOSUCH -o json
	assert_failure 1
	assert_output ""
}

@test "list: --region filters by region" {
	run names --region us-east-1
	assert_output "lst-alpha lst-gamma"
	run names --region eu-west-1
	assert_output "lst-beta lst-epsilon"
	run names --region nowhere-1
	assert_output ""
}

@test "list: --tag filters by tag; repeated, a connection must have every one" {
	run names --tag a
	assert_output lst-alpha
	run names --tag a --tag b
	assert_output lst-alpha
	run names --tag a --tag 'with,comma'
	assert_output ""
	run names --tag 'with "quote"'
	assert_output lst-gamma
	run names --tag a --region eu-west-1
	assert_output ""
	run --separate-stderr "$DBREG" list --tag nosuch
	assert_success
	assert_equal "$stderr" "no connections registered match"
}

@test "list: --active and --inactive filter by state" {
	run names --active
	assert_output "lst-alpha lst-epsilon lst-gamma"
	run names --inactive
	assert_output lst-beta
}

@test "list: filters combine" {
	run names --region eu-west-1 --active
	assert_output lst-epsilon
	run names --region us-east-1 --type DEDICATED
	assert_output lst-gamma
	run names --region eu-west-1 --type SHARED
	assert_output ""
	run --separate-stderr "$DBREG" list --type ADMIN --region eu-west-1 -o json
	assert_success
	assert_equal "$(jq -c 'map(.connection_name)' <<<"$output")" '["lst-epsilon"]'
}

@test "list: filters apply to every format" {
	run --separate-stderr "$DBREG" list --inactive -o json
	assert_equal "$(jq -c 'map(.connection_name)' <<<"$output")" '["lst-beta"]'
	run --separate-stderr "$DBREG" list --inactive -o csv
	assert_equal "${#lines[@]}" 2
	assert_line --index 1 --regexp '^[0-9a-f-]{36},lst-beta,'
	run --separate-stderr "$DBREG" list --inactive
	assert_equal "${#lines[@]}" 2
	assert_line --index 1 --regexp '^lst-beta '
}

@test "list: a filter that matches nothing is an empty answer, not an error" {
	run --separate-stderr "$DBREG" list --region nowhere-1 -o json
	assert_success
	assert_output '[]'
	run --separate-stderr "$DBREG" list --region nowhere-1 --names
	assert_success
	assert_output ''
}

@test "list: --all includes deregistered connections" {
	run names --all
	assert_output "lst-alpha lst-beta lst-delta lst-epsilon lst-gamma"
	run --separate-stderr "$DBREG" list --all -o json
	assert_success
	run jq -r --arg ts "$TS_RE" '.[] | select(.connection_name == "lst-delta") | .deleted_at | test($ts)' <<<"$output"
	assert_output true
	run --separate-stderr "$DBREG" list --all
	assert_line --regexp '^lst-delta '
	run --separate-stderr "$DBREG" list --all -o csv
	assert_equal "${#lines[@]}" 6
}

@test "list: --all keeps the other filters" {
	run names --all --type SHARED
	assert_output "lst-alpha lst-delta"
}

# ---- secrets and the key ---------------------------------------------------------------------

@test "list: never prints a password nor its stored text" {
	local fmt stored
	stored=$(registry_field lst-gamma encrypted_password)
	[[ $stored == dbreg:v2:* ]] || fail "no stored password in the fixture"
	for fmt in table json csv; do
		run --separate-stderr "$DBREG" list --all -o "$fmt"
		assert_success
		assert_no_secret "$LIST_PASSWORD"
		assert_no_secret "$stored"
		assert_no_secret dbreg:v
	done
}

@test "list: needs no key, and ignores a malformed one" {
	run --separate-stderr "$DBREG" list -o json
	assert_success
	assert_equal "$(jq length <<<"$output")" 4
	export DB_ENCRYPTION_KEY=not-a-key
	run --separate-stderr "$DBREG" list --names
	assert_success
	assert_equal "${#lines[@]}" 4
}

# ---- an empty registry ----------------------------------------------------------------------

@test "list: an empty registry is [] in json, a header in csv, nothing with --names" {
	scratch_registry
	"$DBREG" init >/dev/null
	run --separate-stderr "$DBREG" list -o json
	assert_success
	assert_output '[]'
	run --separate-stderr "$DBREG" list -o csv
	assert_success
	assert_output "$(IFS=,; echo "${KEYS[*]}")"
	run --separate-stderr "$DBREG" list --names
	assert_success
	assert_output ''
	run --separate-stderr "$DBREG" list
	assert_success
}

# ---- refusals -------------------------------------------------------------------------------

@test "list: Try to ask for an unknown format" {
	run --separate-stderr "$DBREG" list -o yaml
	assert_failure 2
	assert_output ''
	[[ $stderr == "dbreg: error: "*yaml* ]] || fail "stderr: $stderr"
	[[ $stderr == *"Try 'dbreg list --help' for more information."* ]] || fail "stderr: $stderr"
	run --separate-stderr "$DBREG" list -o text
	assert_failure 2
	run --separate-stderr "$DBREG" list -o
	assert_failure 2
}

@test "list: Try to give --active and --inactive together" {
	run --separate-stderr "$DBREG" list --active --inactive
	assert_failure 2
	[[ $stderr == *"Try 'dbreg list --help' for more information."* ]] || fail "stderr: $stderr"
}

@test "list: Try to give an argument" {
	run --separate-stderr "$DBREG" list lst-alpha
	assert_failure 2
	[[ $stderr == *lst-alpha* ]] || fail "stderr: $stderr"
}

@test "list: Try to list an admin database that is down" {
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	run --separate-stderr timeout 20 "$DBREG" list -o json
	assert_failure 69
	assert_output ''
}

# ---- many rows: read and written as they come --------------------------------------------

# many_rows N: N rows big-00001... in a scratch registry, inserted in one statement.
many_rows() {
	scratch_registry
	"$DBREG" init >/dev/null
	psql_admin -v n="$1" <<<"INSERT INTO admin.database_connections
		(connection_name, connection_type, host, port, database_name, username, tags, metadata)
		SELECT 'big-' || lpad(g::text, 5, '0'), 'SHARED', 'db.example', 5432, 'app', 'app',
		       ARRAY['t'], '{\"k\": 1}'
		FROM generate_series(1, :n) AS g;" >/dev/null
}

@test "list: json is compact when stdout is not a terminal, indented with --pretty, the same document" {
	run --separate-stderr "$DBREG" list -o json
	assert_success
	assert_equal "${#lines[@]}" 1
	[[ $output == '[{"id":'* ]] || fail "not compact: $output"
	compact=$(jq -S . <<<"$output")
	run --separate-stderr "$DBREG" list -o json --pretty
	assert_success
	assert_line --index 0 '['
	assert_line --index 1 '  {'
	assert_equal "$(jq -S . <<<"$output")" "$compact"
	run --separate-stderr "$DBREG" show lst-alpha -o json --pretty
	assert_success
	assert_line --index 0 '{'
	run --separate-stderr "$DBREG" show lst-alpha -o json
	assert_success
	assert_equal "${#lines[@]}" 1
}

@test "list: a table longer than its window keeps its columns; a later, wider cell is whole on a pipe" {
	many_rows 1500
	psql_admin <<<"UPDATE admin.database_connections SET host = 'a-much-longer-host-name.example'
		WHERE connection_name = 'big-01400';" >/dev/null
	run --separate-stderr "$DBREG" list
	assert_success
	assert_equal "${#lines[@]}" 1501
	assert_line --index 0 --regexp '^NAME +TYPE +REGION +HOST +PORT'
	# The window's widths hold for the rows after it.
	header_port=$(awk 'NR == 1 { print index($0, "PORT") }' <<<"$output")
	assert_equal "$(awk -v c="$header_port" 'NR > 1 && NR != 1401 && substr($0, c, 4) != "5432"' <<<"$output" | wc -l)" 0
	assert_line --regexp '^big-01400 +SHARED +- +a-much-longer-host-name\.example +5432 '
	run --separate-stderr "$DBREG" list --no-headers -o csv
	assert_success
	assert_equal "${#lines[@]}" 1501
	run --separate-stderr "$DBREG" list --names
	assert_equal "${#lines[@]}" 1500
	assert_line --index 1499 big-01500
}

@test "list: -o json of 20,000 rows stays under 16 MB, whatever the row count" {
	[ -x /usr/bin/time ] || skip "GNU time is not installed"
	# ASan's shadow memory makes any ceiling meaningless.
	if ldd "$DBREG" | grep -q libasan; then skip "an ASan build"; fi
	many_rows 20000
	/usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" "$DBREG" list -o json >"$BATS_TEST_TMPDIR/out.json"
	assert_equal "$(jq length "$BATS_TEST_TMPDIR/out.json")" 20000
	rss=$(tail -n1 "$BATS_TEST_TMPDIR/rss")
	((rss < 16 * 1024)) || fail "peak RSS $rss KB for 20,000 rows"
	/usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" "$DBREG" list >"$BATS_TEST_TMPDIR/out.txt"
	rss=$(tail -n1 "$BATS_TEST_TMPDIR/rss")
	((rss < 16 * 1024)) || fail "peak RSS $rss KB for a table of 20,000 rows"
}

@test "list: -o json made by helper threads is the document one thread makes, byte for byte, in order" {
	command -v taskset >/dev/null || skip "taskset is not installed"
	[ "$(nproc)" -ge 2 ] || skip "one CPU: there are no helpers"
	many_rows 3000
	# Rows that differ from the one before now and then, so that each helper's cache changes.
	psql_admin <<<"UPDATE admin.database_connections
		SET metadata = jsonb_build_object('k', id::text), tags = ARRAY['t', connection_name],
		    port = 6000 + (right(connection_name, 3)::int % 7), is_active = (right(connection_name, 1)::int % 3 <> 0)
		WHERE right(connection_name, 2)::int % 5 = 0" >/dev/null
	"$DBREG" list -o json >"$BATS_TEST_TMPDIR/helpers.json"
	# On one CPU the rows are written by the reading thread itself.
	taskset -c 0 "$DBREG" list -o json >"$BATS_TEST_TMPDIR/one.json"
	cmp "$BATS_TEST_TMPDIR/helpers.json" "$BATS_TEST_TMPDIR/one.json" || fail "the two documents differ"
	assert_equal "$(jq length "$BATS_TEST_TMPDIR/helpers.json")" 3000
	assert_equal "$(jq -r '.[].connection_name' "$BATS_TEST_TMPDIR/helpers.json")" \
		"$(jq -r '.[].connection_name' "$BATS_TEST_TMPDIR/helpers.json" | LC_ALL=C sort)"
	assert_equal "$(jq -r '.[] | select(.connection_name == "big-00010") | .metadata.k' "$BATS_TEST_TMPDIR/helpers.json" |
		grep -c .)" 1
	assert_equal "$(jq -c '.[] | select(.connection_name == "big-00011") | [.metadata, .tags, .port]' \
		"$BATS_TEST_TMPDIR/helpers.json")" '[{"k":1},["t"],5432]'
	# A closed pipe ends it as it ends any writer.
	run bash -c '"$DBREG" list -o json | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}"'
	assert_output 141
}
