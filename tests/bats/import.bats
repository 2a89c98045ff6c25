#!/usr/bin/env bats
# dbreg import: a service file (passwords from a .pgpass or, with a warning, the file)
# or a CSV of list's columns, registered in one transaction: an invalid row leaves the
# registry as it was and names FILE:LINE; the CSV of list -o csv recreates the rows;
# on dbreg's own registry and on the platform's; no password is ever printed.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper
load platform

setup_file() { fresh_initialized_registry; }

teardown_file() { drop_registry; }

setup() {
	require_sandbox
	make_key
	cd "$BATS_TEST_TMPDIR" || return 1
	HOST=${PGSANDBOX_HOST:-127.0.0.1}
	ADMIN_PW=$(sandbox_admin_password)
}

teardown() {
	drop_scratch_registry
	if [ -n "${PLATFORM_DB-}" ]; then
		drop_registry "$PLATFORM_DB"
	fi
}

# rows_state: what refused() compares before and after.
rows_state() {
	psql_admin <<<"SELECT count(*), coalesce(max(updated_at)::text, '') FROM admin.database_connections"
}

# refused STATUS COMMAND...: COMMAND exits STATUS with an error, and writes nothing.
refused() {
	local want=$1 before after
	shift
	before=$(rows_state)
	run --separate-stderr "$@"
	after=$(rows_state)
	[ "$status" -eq "$want" ] || fail "exit $status, not $want: $*
stdout: $output
stderr: $stderr"
	[[ $stderr == *"dbreg: error: "* ]] || fail "no error message on stderr: $stderr"
	[ "$before" = "$after" ] || fail "the registry changed ($before -> $after): $*"
}

# sandbox_section NAME: a service-file section that points at the sandbox's registry.
sandbox_section() {
	printf '[%s]\nhost=%s\nport=%s\ndbname=%s\nuser=%s\n' "$1" "$HOST" "$PGSANDBOX_PORT" \
		"$DBREG_TEST_REGISTRY" "$DBREG_ADMIN_ROLE"
}

# private_pgpass FILE LINE...: a .pgpass of these lines, mode 0600.
private_pgpass() {
	local file=$1
	shift
	printf '%s\n' "$@" >"$file"
	chmod 600 "$file"
}

# json_rows [JQ-SELECT]: list -o json without what differs from one registry to another.
json_rows() {
	"$DBREG" list -o json | jq -c --sort-keys "[.[] | ${1:-.} | del(.id, .created_at, .updated_at,
		.last_health_check)]"
}

# ---- the command line ----------------------------------------------------------------------

@test "import: --help names every option" {
	run --separate-stderr "$DBREG" import --help
	assert_success
	for opt in --from --pgpass --type --region --dry-run --replace --help; do
		assert_output --partial -- "$opt"
	done
}

@test "import: Try to import without --from, with an unknown kind, or without a FILE" {
	refused 2 "$DBREG" import x.conf
	[[ $stderr == *"--from"* && $stderr == *"Try 'dbreg import --help'"* ]] || fail "$stderr"
	refused 2 "$DBREG" import --from yaml x.conf
	refused 2 "$DBREG" import --from csv
	refused 2 "$DBREG" import --from csv x.csv --pgpass p
	refused 2 "$DBREG" import --from csv x.csv --bogus
	refused 2 "$DBREG" import --from csv no-such-file.csv
	[[ $stderr == *no-such-file.csv* ]] || fail "$stderr"
}

# ---- the CSV round trip (first: the registry holds only these rows) -------------------------

@test "import: list -o csv | import --from csv - on an empty registry recreates the rows" {
	"$DBREG" register rt-a --host db1.example.com --port 6001 --database app --user app_user \
		--type ANALYTICS --region eu-west-1 --ssl-mode require --pool-min 1 --pool-max 9 \
		--pool-timeout 7 --pool-recycle 70 --no-pre-ping --inactive --tag 'a,b' \
		--tag 'say "hi"' --no-password >/dev/null
	"$DBREG" register rt-b --host /var/run/postgresql --database 'my db' --user u2 \
		--no-password >/dev/null
	"$DBREG" register rt-c --host db3.example.com --database d3 --user u3 \
		--password-stdin <<<"rt-secret-pw" >/dev/null
	psql_admin -c "UPDATE admin.database_connections SET metadata = '{\"k\": [1, 2.50],
		\"s\": \"x,\\\"y\\\"\"}' WHERE connection_name = 'rt-a'" >/dev/null
	local before csv
	before=$(json_rows 'del(.has_password, .key_id, .password_format)')
	csv=$("$DBREG" list -o csv)
	scratch_registry
	"$DBREG" init >/dev/null
	run --separate-stderr "$DBREG" import --from csv - <<<"$csv"
	assert_success
	assert_line --index 0 --regexp '^registered rt-a \(id [0-9a-f-]{36}\)$'
	assert_line --index 1 --regexp '^registered rt-b \(id [0-9a-f-]{36}\)$'
	assert_line --index 2 --regexp '^registered rt-c \(id [0-9a-f-]{36}\)$'
	assert_no_secret rt-secret-pw
	run json_rows 'del(.has_password, .key_id, .password_format)'
	assert_output "$before"
	# A CSV carries no password.
	run registry_field rt-c "encrypted_password IS NULL"
	assert_output t
}

@test "import: a CSV's quoted fields may hold commas, quotes and line breaks; lines are physical" {
	cat >q.csv <<-'EOF'
		connection_name,host,database_name,username,tags,metadata,id,is_healthy
		q-one,"h,1.example.com",db,u,"[""x,y"", ""z\""""]","{""a"":
		1}",ignored-id,false
		q-two,h2.example.com,db,u,,,,
	EOF
	run --separate-stderr "$DBREG" import --from csv q.csv
	assert_success
	run registry_field q-one "host || '|' || array_to_string(tags, ';') || '|' || (metadata->>'a') || '|' || is_healthy"
	assert_output 'h,1.example.com|x,y;z"|1|true'
	# The header's unknown columns are ignored, with a warning.
	printf 'connection_name,host,database_name,username,colour\nq-three,h,db,u,blue\n' >w.csv
	run --separate-stderr "$DBREG" import --from csv w.csv
	assert_success
	[[ $stderr == *"w.csv:1:"*colour* ]] || fail "$stderr"
}

# ---- a service file and its .pgpass -----------------------------------------------------

@test "import: --replace of a row by one without a password keeps it, re-encrypted for the new target" {
	register_sandbox imp-rebind
	local stored
	stored=$(registry_field imp-rebind encrypted_password)
	[[ $stored =~ $STORED_RE ]] || fail "no v2 password"
	printf '[imp-rebind]\nhost=localhost\nport=%s\ndbname=%s\nuser=%s\n' "$PGSANDBOX_PORT" \
		"$DBREG_TEST_REGISTRY" "$DBREG_ADMIN_ROLE" >rebind.conf
	run --separate-stderr "$DBREG" import --from service rebind.conf --replace
	assert_success
	[ "$(registry_field imp-rebind encrypted_password)" != "$stored" ] || fail "not re-encrypted for the new host"
	assert_equal "$(registry_field imp-rebind host)" localhost
	run --separate-stderr "$DBREG" health imp-rebind --no-update -o json
	assert_equal "$(jq -r '.results[0].status' <<<"$output")" HEALTHY
	# Without the key it cannot be: nothing written.
	local before
	before=$(registry_field imp-rebind "to_jsonb(database_connections)::text")
	sed -i 's/^host=localhost$/host=127.0.0.1/' rebind.conf
	(unset DB_ENCRYPTION_KEY
	 run --separate-stderr "$DBREG" import --from service rebind.conf --replace
	 [ "$status" -eq 78 ] || fail "exit $status: $stderr")
	assert_equal "$(registry_field imp-rebind "to_jsonb(database_connections)::text")" "$before"
}

@test "import: a service file with a .pgpass: passwords stored encrypted, the login works" {
	{
		printf '# the services\n\n'
		sandbox_section svc-sbx
		printf 'application_name=dbreg-test\n\n'
		printf '[svc-other]\nhost=db.example.com\ndbname=app\nuser=app\nsslmode=require\n'
	} >svc.conf
	private_pgpass pgpass "*:*:*:nobody:wrong-one" \
		"$HOST:$PGSANDBOX_PORT:*:$DBREG_ADMIN_ROLE:$ADMIN_PW" "*:*:*:$DBREG_ADMIN_ROLE:wrong-two"
	run --separate-stderr "$DBREG" import --from service svc.conf --pgpass pgpass
	assert_success
	assert_line --index 0 --regexp '^registered svc-sbx \(id [0-9a-f-]{36}\)$'
	assert_line --index 1 --regexp '^registered svc-other \(id [0-9a-f-]{36}\)$'
	[[ $stderr == *"svc.conf:8:"*application_name*ignored* ]] || fail "$stderr"
	assert_no_secret "$ADMIN_PW"
	run registry_field svc-sbx encrypted_password
	assert_output --regexp "$STORED_RE"
	run registry_field svc-other "encrypted_password IS NULL, ssl_mode, port"
	assert_output 't|require|5432'
	# The first matching line won: the login works.
	run --separate-stderr "$DBREG" health svc-sbx --no-update
	assert_success
	assert_output --partial HEALTHY
}

@test "import: a password= line in the service file is used, with a warning that does not show it" {
	{
		sandbox_section pw-line
		printf 'password=%s\n' "$ADMIN_PW"
	} >pw.conf
	run --separate-stderr "$DBREG" import --from service pw.conf
	assert_success
	[[ $stderr == *"dbreg: warning: pw.conf:6:"*password* ]] || fail "$stderr"
	assert_no_secret "$ADMIN_PW"
	run registry_field pw-line encrypted_password
	assert_output --regexp "$STORED_RE"
	run --separate-stderr "$DBREG" health pw-line --no-update
	assert_success
	assert_output --partial HEALTHY
}

@test "import: .pgpass escapes: \\: and \\\\ in a field" {
	printf '[esc]\nhost=db.example.com\ndbname=a:b\nuser=u\\v\n' >esc.conf
	# A password with an escaped colon and backslash, matched by escaped fields.
	private_pgpass esc.pass 'db.example.com:5432:a\:b:u\\v:pw\:x\\y'
	run --separate-stderr "$DBREG" import --from service esc.conf --pgpass esc.pass
	assert_success
	assert_no_secret 'pw:x\y'
	run registry_field esc "encrypted_password IS NOT NULL, database_name, username"
	assert_output 't|a:b|u\v'
}

@test "import: Try to use a .pgpass that group or others can read" {
	sandbox_section open-pass >open.conf
	private_pgpass open.pass "*:*:*:*:$ADMIN_PW"
	chmod 640 open.pass
	refused 78 "$DBREG" import --from service open.conf --pgpass open.pass
	[[ $stderr == *open.pass* && $stderr == *"chmod 600"* ]] || fail "$stderr"
	assert_no_secret "$ADMIN_PW"
	run registry_count "connection_name = 'open-pass'"
	assert_output 0
}

@test "import: Try to import a service file with an invalid section in the middle: nothing written" {
	{
		sandbox_section mid-one
		printf '[mid-two]\nhost=h\ndbname=d\nuser=u\nport=99999\n'
		sandbox_section mid-three
	} >mid.conf
	refused 2 "$DBREG" import --from service mid.conf
	[[ $stderr == *"mid.conf:10:"* && $stderr == *99999* ]] || fail "$stderr"
	run registry_count "connection_name LIKE 'mid-%'"
	assert_output 0
	# A section name against the naming rule, a missing user, a syntax error.
	printf '[Bad_Name]\nhost=h\ndbname=d\nuser=u\n' >bad.conf
	refused 2 "$DBREG" import --from service bad.conf
	[[ $stderr == *"bad.conf:1:"* ]] || fail "$stderr"
	printf '[ok-one]\nhost=h\ndbname=d\nuser=u\n[no-user]\nhost=h\ndbname=d\n' >nouser.conf
	refused 2 "$DBREG" import --from service nouser.conf
	[[ $stderr == *"nouser.conf:5:"*user* ]] || fail "$stderr"
	printf '[syn]\nhost=h\njunk line\n' >syn.conf
	refused 2 "$DBREG" import --from service syn.conf
	[[ $stderr == *"syn.conf:3:"* ]] || fail "$stderr"
}

# ---- all or none -------------------------------------------------------------------------------

@test "import: Try to import a CSV with a row dbreg refuses in the middle: exit 2, nothing written" {
	cat >bad.csv <<-'EOF'
		connection_name,host,database_name,username,port,metadata
		bad-one,h,db,u,5432,"{""x"":
		1}"
		bad-two,h,db,u,99999,
		bad-three,h,db,u,5432,
	EOF
	refused 2 "$DBREG" import --from csv bad.csv
	[[ $stderr == *"bad.csv:4:"* && $stderr == *bad-two* ]] || fail "$stderr"
	run registry_count "connection_name LIKE 'bad-%'"
	assert_output 0
	printf 'connection_name,host,database_name,username,pool_min_size,pool_max_size\nbad-pool,h,d,u,9,2\n' >pool.csv
	refused 2 "$DBREG" import --from csv pool.csv
	[[ $stderr == *"pool.csv:2:"* ]] || fail "$stderr"
	printf 'connection_name,host,database_name,username\nbad-x,h,d,u\nbad-x,h,d,u\n' >twice.csv
	refused 2 "$DBREG" import --from csv twice.csv
	[[ $stderr == *"twice.csv:3:"*twice* ]] || fail "$stderr"
	printf 'connection_name,host,database_name,username\nbad-q,"h,d,u\n' >open.csv
	refused 2 "$DBREG" import --from csv open.csv
	[[ $stderr == *"open.csv:2:"* ]] || fail "$stderr"
}

@test "import: Try to import a row the database refuses in the middle: exit 1, nothing written" {
	printf 'connection_name,host,database_name,username,connection_type\ndb-one,h,d,u,SHARED\ndb-two,h,d,u,BOGUS\ndb-three,h,d,u,\n' >type.csv
	refused 1 "$DBREG" import --from csv type.csv
	[[ $stderr == *"type.csv:3:"* && $stderr == *BOGUS* && $stderr == *SHARED* ]] || fail "$stderr"
	run registry_count "connection_name LIKE 'db-%'"
	assert_output 0
	# --type fills the rows that lack one: here a type the CHECK refuses.
	printf '[db-svc]\nhost=h\ndbname=d\nuser=u\n' >type.conf
	refused 1 "$DBREG" import --from service type.conf --type NOPE
	[[ $stderr == *"type.conf:1:"* && $stderr == *NOPE* ]] || fail "$stderr"
}

@test "import: --type and --region fill the rows that lack them" {
	printf 'connection_name,host,database_name,username,connection_type,region_id\nfill-a,h,d,u,,\nfill-b,h,d,u,ADMIN,us-west-2\n' >fill.csv
	run --separate-stderr "$DBREG" import --from csv fill.csv --type DEDICATED --region eu-central-1
	assert_success
	run registry_field fill-a "connection_type || ' ' || region_id"
	assert_output 'DEDICATED eu-central-1'
	run registry_field fill-b "connection_type || ' ' || region_id"
	assert_output 'ADMIN us-west-2'
}

@test "import: --dry-run checks everything and writes nothing" {
	printf 'connection_name,host,database_name,username\ndry-a,h,d,u\ndry-b,h2,d,u\n' >dry.csv
	local before
	before=$(rows_state)
	run --separate-stderr "$DBREG" import --from csv dry.csv --dry-run
	assert_success
	assert_line --index 0 'dry run: would register 2 connections as:'
	assert_line --partial dry-a
	assert_line --partial dry-b
	assert_equal "$(rows_state)" "$before"
	# It checks what the database checks.
	printf 'connection_name,host,database_name,username,ssl_mode\ndry-c,h,d,u,sometimes\n' >dry2.csv
	refused 1 "$DBREG" import --from csv dry2.csv --dry-run
	[[ $stderr == *"dry2.csv:2:"* ]] || fail "$stderr"
}

@test "import: an existing name is refused unless --replace, which rewrites it in place" {
	"$DBREG" register rep-a --host old --database d --user u --no-password >/dev/null
	local id
	id=$(registry_field rep-a id)
	printf 'connection_name,host,database_name,username\nrep-new,h,d,u\nrep-a,new-host,d,u\n' >rep.csv
	refused 1 "$DBREG" import --from csv rep.csv
	[[ $stderr == *"rep.csv:3:"* && $stderr == *--replace* ]] || fail "$stderr"
	run registry_count "connection_name = 'rep-new'"
	assert_output 0
	run --separate-stderr "$DBREG" import --from csv rep.csv --replace
	assert_success
	assert_line "registered rep-a (id $id)"
	run registry_field rep-a "id || ' ' || host"
	assert_output "$id new-host"
}

@test "import: --replace keeps the stored password of a row the file gives none (a CSV round trip)" {
	printf 'keep-me\n' | "$DBREG" register rep-pw --host old --database d --user u --password-stdin >/dev/null
	local stored
	stored=$(registry_field rep-pw encrypted_password)
	[[ $stored == dbreg:v2:* ]] || fail "no stored password"
	"$DBREG" list -o csv >fleet.csv
	run --separate-stderr "$DBREG" import --from csv fleet.csv --replace
	assert_success
	assert_equal "$(registry_field rep-pw encrypted_password)" "$stored"
	assert_no_secret keep-me
}

# ---- the platform's registry -------------------------------------------------------------------

# platform: a platform registry adopted by dbreg init, dropped by teardown.
platform() {
	platform_registry
	PLATFORM_DB=$DBREG_TEST_REGISTRY
	"$DBREG" init >/dev/null
}

@test "import: platform: a service file and .pgpass, with an enum type and a region code" {
	platform
	{
		sandbox_section plat-sbx
		printf '[plat-other]\nhost=h\ndbname=d\nuser=u\n'
	} >plat.conf
	private_pgpass plat.pass "$HOST:$PGSANDBOX_PORT:$DBREG_TEST_REGISTRY:$DBREG_ADMIN_ROLE:$ADMIN_PW" \
		'h:*:d:u:pw\:x\\y:ignored'
	# The enum has no SHARED: a type is needed; the region is a reference: a code.
	refused 2 "$DBREG" import --from service plat.conf --pgpass plat.pass --region us-east-1
	[[ $stderr == *"plat.conf:1:"* && $stderr == *primary* ]] || fail "$stderr"
	refused 1 "$DBREG" import --from service plat.conf --pgpass plat.pass --type bogus --region us-east-1
	[[ $stderr == *"plat.conf:1:"* && $stderr == *"primary, replica, analytics, backup"* ]] || fail "$stderr"
	refused 1 "$DBREG" import --from service plat.conf --pgpass plat.pass --type primary --region xx-nowhere-9
	run --separate-stderr "$DBREG" import --from service plat.conf --pgpass plat.pass --type primary \
		--region us-east-1
	assert_success
	assert_no_secret "$ADMIN_PW"
	assert_no_secret "$DB_FERNET_PASSPHRASE"
	run registry_field plat-sbx "left(encrypted_password, 6), connection_type,
		(SELECT code FROM admin.regions r WHERE r.id = region_id)"
	assert_output 'gAAAAA|primary|us-east-1'
	run --separate-stderr "$DBREG" health plat-sbx --no-update
	assert_success
	assert_output --partial HEALTHY
	run fernet_token decrypt <<<"$(registry_field plat-sbx encrypted_password)"
	assert_output "$ADMIN_PW"
	# The password field de-escaped, up to its first unescaped colon.
	run fernet_token decrypt <<<"$(registry_field plat-other encrypted_password)"
	assert_output 'pw:x\y'
}

@test "import: platform: list -o csv | import recreates the rows, region codes and enum labels kept" {
	platform
	local fields='{connection_type, region_code, host, port, database_name, username, ssl_mode,
		pool_min_size, pool_max_size, pool_timeout_seconds, pool_recycle_seconds, pool_pre_ping,
		is_active, tags, metadata}'
	local before csv
	before=$("$DBREG" list -o json | jq -c --sort-keys "[.[] | $fields]")
	# The same rows under new names, into the same registry.
	csv=$("$DBREG" list -o csv | sed -E '2,$ s/^([^,]*),([^,]*),/\1,copy-\2,/')
	run --separate-stderr "$DBREG" import --from csv - <<<"$csv"
	assert_success
	run bash -c "'$DBREG' list -o json | jq -c --sort-keys '[.[] | select(.connection_name | startswith(\"copy-\")) | $fields]'"
	assert_output "$before"
	# In one transaction here too: a name taken aborts everything.
	refused 1 "$DBREG" import --from csv - <<<"$csv"
	[[ $stderr == *"stdin:2:"* ]] || fail "$stderr"
}
