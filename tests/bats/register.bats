#!/usr/bin/env bats
# dbreg register: every option lands in its column, defaults are SPEC's, passwords are
# stored encrypted and never shown, --replace / --dry-run / --test do what they say,
# and every refusal leaves the registry as it was.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper

setup_file() { fresh_initialized_registry; }

teardown_file() { drop_registry; }

setup() {
	require_sandbox
	make_key
}

# reg NAME [OPTION...]: register NAME with host, database and user, and no password.
reg() {
	local name=$1
	shift
	"$DBREG" register "$name" --host db.example.com --database app --user app_user \
		--no-password "$@"
}

# json NAME [JQ-FILTER]: show NAME as JSON, through jq.
json() {
	"$DBREG" show "$1" -o json | jq -c "${2:-.}"
}

# The length in bytes of the plaintext inside a stored text (nonce and tag taken off).
stored_plain_len() {
	python3 -c 'import base64, sys
p = sys.argv[1].split(":")[3]
print(len(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) - 24 - 16)' "$1"
}

# refused STATUS COMMAND...: COMMAND exits STATUS with an error, and writes nothing.
# A usage error (2) must end with the --help hint, unless NO_HINT is set.
refused() {
	local want=$1 before after
	shift
	before=$(psql_admin <<<"SELECT count(*), coalesce(max(updated_at)::text, '') FROM admin.database_connections")
	run --separate-stderr "$@"
	after=$(psql_admin <<<"SELECT count(*), coalesce(max(updated_at)::text, '') FROM admin.database_connections")
	[ "$status" -eq "$want" ] || fail "exit $status, not $want: $*
stdout: $output
stderr: $stderr"
	[[ $stderr == *"dbreg: error: "* ]] || fail "no error message on stderr: $stderr"
	[ "$before" = "$after" ] || fail "the registry changed ($before -> $after): $*"
	if [ "$want" -eq 2 ] && [ -z "${NO_HINT-}" ]; then
		[[ $stderr == *"Try 'dbreg register --help' for more information."* ]] ||
			fail "a usage error without the hint: $stderr"
	fi
}

# ---- what lands in the row -----------------------------------------------------------------

@test "register: registers a connection and prints its id" {
	run --separate-stderr reg reg-basic
	assert_success
	assert_output --regexp '^registered reg-basic \(id [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)$'
	local id
	id=$(sed -E 's/.*\(id (.*)\)$/\1/' <<<"$output")
	run registry_field reg-basic id
	assert_output "$id"
	run registry_count "connection_name = 'reg-basic'"
	assert_output 1
}

@test "register: fills in SPEC's defaults" {
	reg reg-defaults >/dev/null
	run registry_field reg-defaults "connection_type, port, ssl_mode, pool_min_size,
		pool_max_size, pool_timeout_seconds, pool_recycle_seconds, pool_pre_ping, is_active,
		is_healthy, region_id IS NULL, encrypted_password IS NULL, tags, metadata, deleted_at IS NULL"
	assert_output 'SHARED|5432|prefer|5|20|30|3600|t|t|t|t|t|{}|{}|t'
	run json reg-defaults '[.connection_type, .port, .ssl_mode, .pool_min_size, .pool_max_size,
		.pool_timeout_seconds, .pool_recycle_seconds, .pool_pre_ping, .is_active, .region_id,
		.tags, .has_password, .key_id]'
	assert_output '["SHARED",5432,"prefer",5,20,30,3600,true,true,null,[],false,null]'
}

@test "register: every option lands in the row" {
	run --separate-stderr "$DBREG" register reg-full --host 10.1.2.3 --port 6432 \
		--database orders --user orders_rw --type ANALYTICS --region eu-west-1 \
		--ssl-mode verify-full --pool-min 2 --pool-max 50 --pool-timeout 15 \
		--pool-recycle 900 --no-pre-ping --inactive --tag blue --tag 'with space' --tag blue-2 \
		--no-password
	assert_success
	run registry_field reg-full "host, port, database_name, username, connection_type, region_id,
		ssl_mode, pool_min_size, pool_max_size, pool_timeout_seconds, pool_recycle_seconds,
		pool_pre_ping, is_active, array_to_json(tags), encrypted_password IS NULL"
	assert_output '10.1.2.3|6432|orders|orders_rw|ANALYTICS|eu-west-1|verify-full|2|50|15|900|f|f|["blue","with space","blue-2"]|t'
	run json reg-full '[.host, .port, .database_name, .username, .connection_type, .region_id,
		.ssl_mode, .pool_min_size, .pool_max_size, .pool_timeout_seconds, .pool_recycle_seconds,
		.pool_pre_ping, .is_active, .tags, .has_password]'
	assert_output '["10.1.2.3",6432,"orders","orders_rw","ANALYTICS","eu-west-1","verify-full",2,50,15,900,false,false,["blue","with space","blue-2"],false]'
}

@test "register: the options also take --opt=value" {
	run --separate-stderr "$DBREG" register reg-equals --host=h.example --database=d \
		--user=u --port=7000 --type=DEDICATED --no-password
	assert_success
	run registry_field reg-equals "host, database_name, username, port, connection_type"
	assert_output 'h.example|d|u|7000|DEDICATED'
}

@test "register: accepts every connection type" {
	local t
	for t in ADMIN SHARED ANALYTICS DEDICATED; do
		run --separate-stderr reg "reg-type-${t,,}" --type "$t"
		[ "$status" -eq 0 ] || fail "--type $t: exit $status: $stderr"
		run registry_field "reg-type-${t,,}" connection_type
		assert_output "$t"
	done
}

@test "register: accepts every libpq ssl mode" {
	local m
	for m in disable allow prefer require verify-ca verify-full; do
		run --separate-stderr reg "reg-ssl-$m" --ssl-mode "$m"
		[ "$status" -eq 0 ] || fail "--ssl-mode $m: exit $status: $stderr"
		run registry_field "reg-ssl-$m" ssl_mode
		assert_output "$m"
	done
}

@test "register: accepts the extreme ports and pool bounds" {
	run --separate-stderr reg reg-port-1 --port 1 --pool-min 0 --pool-max 0
	assert_success
	run --separate-stderr reg reg-port-65535 --port 65535 --pool-min 7 --pool-max 7
	assert_success
	run registry_field reg-port-1 "port, pool_min_size, pool_max_size"
	assert_output '1|0|0'
	run registry_field reg-port-65535 "port, pool_min_size, pool_max_size"
	assert_output '65535|7|7'
}

@test "register: accepts a Unix-socket directory as host" {
	run --separate-stderr reg reg-socket --host /var/run/postgresql
	assert_success
	run registry_field reg-socket host
	assert_output /var/run/postgresql
}

@test "register: accepts every character connection names allow" {
	local name
	for name in 0db reg.dot reg_under reg-dash a "$(printf 'n%.0s' {1..100})"; do
		run --separate-stderr reg "$name"
		[ "$status" -eq 0 ] || fail "'$name': exit $status: $stderr"
	done
}

@test "register: --url fills host, port, database, user and ssl mode" {
	run --separate-stderr "$DBREG" register reg-url \
		--url 'postgresql://url_user@url-host.example:6432/url_db?sslmode=require' --no-password
	assert_success
	run registry_field reg-url "host, port, database_name, username, ssl_mode"
	assert_output 'url-host.example|6432|url_db|url_user|require'
}

@test "register: --url takes a key=value connection string too" {
	run --separate-stderr "$DBREG" register reg-url-kv \
		--url 'host=kv-host port=6543 dbname=kv_db user=kv_user sslmode=disable' --no-password
	assert_success
	run registry_field reg-url-kv "host, port, database_name, username, ssl_mode"
	assert_output 'kv-host|6543|kv_db|kv_user|disable'
}

@test "register: options given beside --url win, whatever their order" {
	run --separate-stderr "$DBREG" register reg-url-win --port 7000 --user me \
		--url 'postgresql://url_user@url-host:6432/url_db?sslmode=require' \
		--ssl-mode disable --database mine --no-password
	assert_success
	run registry_field reg-url-win "host, port, database_name, username, ssl_mode"
	assert_output 'url-host|7000|mine|me|disable'
}

@test "register: --url without a port or ssl mode leaves SPEC's defaults" {
	run --separate-stderr "$DBREG" register reg-url-min --url 'postgresql://u@h/d' --no-password
	assert_success
	run registry_field reg-url-min "host, port, database_name, username, ssl_mode"
	assert_output 'h|5432|d|u|prefer'
}

# ---- passwords -------------------------------------------------------------------------------

@test "register: stores the password from --password-stdin encrypted, never in clear" {
	local pw='S3cret-pw-for-register'
	run --separate-stderr "$DBREG" register reg-pw --host h --database d --user u \
		--password-stdin <<<"$pw"
	assert_success
	assert_output --regexp '^registered reg-pw '
	assert_no_secret "$pw"
	assert_no_secret dbreg:v
	local stored
	stored=$(registry_field reg-pw encrypted_password)
	[[ $stored =~ $STORED_RE ]] || fail "stored text not in dbreg:v2 format: ${stored:0:20}..."
	[[ $stored != *"$pw"* ]] || fail "the plaintext is in the stored text"
	run registry_count "to_jsonb(database_connections)::text LIKE '%$pw%'"
	assert_output 0
	assert_equal "$(stored_plain_len "$stored")" "${#pw}"

	# show and list tell that there is one and its key id, never the text.
	run --separate-stderr "$DBREG" show reg-pw -o json
	assert_success
	assert_equal "$(jq -r .has_password <<<"$output")" true
	assert_equal "$(jq -r .key_id <<<"$output")" "$(cut -d: -f3 <<<"$stored")"
	assert_no_secret "$pw"
	assert_no_secret "$stored"
	assert_no_secret "dbreg:v"
	run --separate-stderr "$DBREG" show reg-pw
	assert_no_secret "$pw"
	assert_no_secret "dbreg:v"
	local fmt
	for fmt in table json csv; do
		run --separate-stderr "$DBREG" list -o "$fmt"
		assert_success
		assert_no_secret "$pw"
		assert_no_secret "dbreg:v"
	done
}

@test "register: the key id is the BLAKE2b id of the current key" {
	local pw=another-pw
	"$DBREG" register reg-keyid --host h --database d --user u --password-stdin <<<"$pw" >/dev/null
	local want
	want=$(python3 -c 'import base64, hashlib, sys
print(hashlib.blake2b(base64.b64decode(sys.argv[1]), digest_size=32).hexdigest()[:8])' "$DB_ENCRYPTION_KEY")
	run registry_field reg-keyid "split_part(encrypted_password, ':', 3)"
	assert_output "$want"
	run json reg-keyid .key_id
	assert_output "\"$want\""
}

@test "register: --password-stdin takes the first line and strips \\r\\n" {
	run --separate-stderr "$DBREG" register reg-pw-crlf --host h --database d --user u \
		--password-stdin < <(printf 'crlf-pw\r\nsecond line\n')
	assert_success
	assert_no_secret crlf-pw
	assert_equal "$(stored_plain_len "$(registry_field reg-pw-crlf encrypted_password)")" 7
	run --separate-stderr "$DBREG" register reg-pw-nonl --host h --database d --user u \
		--password-stdin < <(printf 'no-newline')
	assert_success
	assert_equal "$(stored_plain_len "$(registry_field reg-pw-nonl encrypted_password)")" 10
}

@test "register: two connections with the same password store different texts" {
	"$DBREG" register reg-same-1 --host h --database d --user u --password-stdin <<<"same-pw" >/dev/null
	"$DBREG" register reg-same-2 --host h --database d --user u --password-stdin <<<"same-pw" >/dev/null
	local a b
	a=$(registry_field reg-same-1 encrypted_password)
	b=$(registry_field reg-same-2 encrypted_password)
	[[ $a =~ $STORED_RE && $b =~ $STORED_RE ]] || fail "not stored texts"
	[ "$a" != "$b" ] || fail "the same stored text twice: the nonce is not fresh"
}

@test "register: a password of 138 bytes fits" {
	local pw
	pw=$(head -c 200 /dev/zero | tr '\0' 'p' | head -c 138)
	run --separate-stderr "$DBREG" register reg-pw-138 --host h --database d --user u \
		--password-stdin <<<"$pw"
	assert_success
	assert_no_secret "$pw"
	local stored
	stored=$(registry_field reg-pw-138 encrypted_password)
	[ "${#stored}" -le 256 ] || fail "stored text is ${#stored} characters"
	assert_equal "$(stored_plain_len "$stored")" 138
	# Bytes, not characters: 69 two-byte characters fit.
	pw=$(printf 'é%.0s' {1..69})
	run --separate-stderr "$DBREG" register reg-pw-utf8 --host h --database d --user u \
		--password-stdin <<<"$pw"
	assert_success
}

@test "register: --no-password stores no password" {
	run --separate-stderr reg reg-nopw
	assert_success
	run registry_field reg-nopw "encrypted_password IS NULL"
	assert_output t
	run json reg-nopw '[.has_password, .key_id]'
	assert_output '[false,null]'
}

@test "register: --no-password needs no key" {
	unset DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE
	run --separate-stderr reg reg-nokey
	assert_success
}

@test "register: Try to register a password longer than 138 bytes" {
	local pw
	pw=$(head -c 200 /dev/zero | tr '\0' 'q' | head -c 139)
	NO_HINT=1 refused 2 "$DBREG" register reg-pw-139 --host h --database d --user u \
		--password-stdin <<<"$pw"
	assert_no_secret "$pw"
	[[ $stderr == *138* ]] || fail "the limit is not named: $stderr"
	pw=$(printf 'é%.0s' {1..70})
	NO_HINT=1 refused 2 "$DBREG" register reg-pw-140 --host h --database d --user u \
		--password-stdin <<<"$pw"
	pw=$(head -c 5000 /dev/zero | tr '\0' 'r')
	NO_HINT=1 refused 2 "$DBREG" register reg-pw-5000 --host h --database d --user u \
		--password-stdin <<<"$pw"
	run registry_count "connection_name IN ('reg-pw-139', 'reg-pw-140', 'reg-pw-5000')"
	assert_output 0
}

@test "register: Try to register an empty password" {
	NO_HINT=1 refused 2 "$DBREG" register reg-pw-empty --host h --database d --user u \
		--password-stdin <<<""
	NO_HINT=1 refused 2 "$DBREG" register reg-pw-none --host h --database d --user u \
		--password-stdin </dev/null
}

@test "register: a password refused with exit 2 comes with the --help hint" {
	local pw
	pw=$(head -c 200 /dev/zero | tr '\0' 'q' | head -c 139)
	run --separate-stderr "$DBREG" register reg-pw-hint --host h --database d --user u \
		--password-stdin <<<"$pw"
	assert_failure 2
	if [[ $stderr != *"Try 'dbreg register --help' for more information."* ]]; then
		fail "unexpected: [[ \$stderr != *\"Try 'dbreg register --help' for more information.\"* ]]"
	fi
	run --separate-stderr "$DBREG" register reg-pw-hint --host h --database d --user u \
		--password-stdin <<<""
	assert_failure 2
	[[ $stderr == *"Try 'dbreg register --help' for more information."* ]] || fail "stderr: $stderr"
}

@test "register: Try to register without a terminal and without a password option" {
	refused 2 no_tty "$DBREG" register reg-notty --host h --database d --user u </dev/null
	[[ $stderr == *--password-stdin* ]] || fail "stderr: $stderr"
}

@test "register: Try to give two password options" {
	refused 2 "$DBREG" register reg-pw-two --host h --database d --user u --password-stdin \
		--no-password <<<"pw-two"
	assert_no_secret pw-two
	refused 2 "$DBREG" register reg-pw-prompt --host h --database d --user u --password-prompt
}

@test "register: Try to put a password inside --url" {
	refused 2 "$DBREG" register reg-url-pw --url 'postgresql://u:hunter2-url@h/d' --no-password
	assert_no_secret hunter2-url
	refused 2 "$DBREG" register reg-url-pw --url 'host=h dbname=d user=u password=hunter3-kv' \
		--no-password
	assert_no_secret hunter3-kv
	refused 2 "$DBREG" register reg-url-pw --url 'postgresql://u@h/d?password=hunter4-q' \
		--no-password
	assert_no_secret hunter4-q
	# A URL libpq cannot parse: its error quotes the broken part, which holds the password.
	refused 2 "$DBREG" register reg-url-pw --url 'postgresql://u:hunter5%zz@h/d' --no-password
	assert_no_secret hunter5
}

@test "register: Try to give an unparseable or multi-host --url" {
	refused 2 "$DBREG" register reg-url-bad --url 'postgresql://h/d?nosuchparam=1' --no-password
	refused 2 "$DBREG" register reg-url-bad --url 'host=h bogus=1' --no-password
	refused 2 "$DBREG" register reg-url-multi --url 'postgresql://u@h1:5432,h2:5433/d' --no-password
}

# ---- the key ----------------------------------------------------------------------------------

@test "register: Try to store a password without a key" {
	unset DB_ENCRYPTION_KEY DB_ENCRYPTION_KEY_FILE
	refused 78 "$DBREG" register reg-nokey-pw --host h --database d --user u --password-stdin \
		<<<"pw-without-key"
	[[ $stderr == *generate-key* ]] || fail "no hint at dbreg generate-key: $stderr"
	assert_no_secret pw-without-key
}

@test "register: Try to store a password with a malformed key" {
	local key
	for key in not-a-key "$(head -c 31 /dev/urandom | base64 -w0)" \
		"$(head -c 33 /dev/urandom | base64 -w0)" "$(head -c 32 /dev/urandom | xxd -p -c 64)ab" \
		"$(head -c 31 /dev/urandom | xxd -p -c 64)" " "; do
		export DB_ENCRYPTION_KEY=$key
		refused 78 "$DBREG" register reg-badkey --host h --database d --user u --password-stdin \
			<<<"pw-bad-key"
		assert_no_secret pw-bad-key
		[ -z "${key// /}" ] || assert_no_secret "$key"
	done
}

@test "register: Try to use a key file readable by others" {
	unset DB_ENCRYPTION_KEY
	head -c 32 /dev/urandom | base64 >"$BATS_TEST_TMPDIR/key"
	chmod 0644 "$BATS_TEST_TMPDIR/key"
	export DB_ENCRYPTION_KEY_FILE=$BATS_TEST_TMPDIR/key
	refused 78 "$DBREG" register reg-keyfile --host h --database d --user u --password-stdin \
		<<<"pw-key-file"
	[[ $stderr == *"$BATS_TEST_TMPDIR/key"* ]] || fail "the file is not named: $stderr"
	chmod 0640 "$BATS_TEST_TMPDIR/key"
	refused 78 "$DBREG" register reg-keyfile --host h --database d --user u --password-stdin \
		<<<"pw-key-file"
	chmod 0600 "$BATS_TEST_TMPDIR/key"
	run --separate-stderr "$DBREG" register reg-keyfile --host h --database d --user u \
		--password-stdin <<<"pw-key-file"
	assert_success
	assert_no_secret pw-key-file
}

@test "register: Try to give both DB_ENCRYPTION_KEY and DB_ENCRYPTION_KEY_FILE" {
	head -c 32 /dev/urandom | base64 >"$BATS_TEST_TMPDIR/key"
	chmod 0600 "$BATS_TEST_TMPDIR/key"
	export DB_ENCRYPTION_KEY_FILE=$BATS_TEST_TMPDIR/key
	refused 78 "$DBREG" register reg-twokeys --host h --database d --user u --password-stdin \
		<<<"pw-two-keys"
	[[ $stderr == *DB_ENCRYPTION_KEY_FILE* ]] || fail "stderr: $stderr"
}

@test "register: Try to use a key file that does not exist" {
	unset DB_ENCRYPTION_KEY
	export DB_ENCRYPTION_KEY_FILE=$BATS_TEST_TMPDIR/no-such-key
	refused 78 "$DBREG" register reg-nokeyfile --host h --database d --user u --password-stdin \
		<<<"pw-no-file"
}

# ---- usage errors: exit 2, nothing written ---------------------------------------------------

@test "register: Try to register without a NAME" {
	refused 2 "$DBREG" register --host h --database d --user u --no-password
}

@test "register: Try to register two NAMEs" {
	refused 2 "$DBREG" register reg-a reg-b --host h --database d --user u --no-password
}

@test "register: Try to register bad connection names" {
	local name
	for name in Bad UPPER "a'b" 'a b' '.dot' '_under' 'semi;colon' 'é' '' \
		"$(printf 'n%.0s' {1..101})"; do
		refused 2 "$DBREG" register --host h --database d --user u --no-password -- "$name"
	done
	# A name that looks like an option is an unknown option.
	refused 2 "$DBREG" register -x --host h --database d --user u --no-password
	refused 2 "$DBREG" register --host h --database d --user u --no-password -- -x
}

@test "register: Try to leave out --host, --database or --user" {
	refused 2 "$DBREG" register reg-miss --database d --user u --no-password
	[[ $stderr == *--host* ]] || fail "stderr: $stderr"
	refused 2 "$DBREG" register reg-miss --host h --user u --no-password
	[[ $stderr == *--database* ]] || fail "stderr: $stderr"
	refused 2 "$DBREG" register reg-miss --host h --database d --no-password
	[[ $stderr == *--user* ]] || fail "stderr: $stderr"
	refused 2 "$DBREG" register reg-miss --host '' --database d --user u --no-password
}

@test "register: Try to give a port that is no port" {
	local port
	for port in 0 70000 65536 abc -1 '' 5432x 1e3 ' 5432' 99999999999999999999; do
		refused 2 reg reg-badport --port "$port"
		[[ $stderr == *--port* ]] || fail "--port '$port': stderr: $stderr"
	done
}

@test "register: Try to give pool sizes and times out of bounds" {
	refused 2 reg reg-pool --pool-min 21
	[[ $stderr == *--pool-min* && $stderr == *--pool-max* ]] || fail "stderr: $stderr"
	refused 2 reg reg-pool --pool-min 10 --pool-max 9
	refused 2 reg reg-pool --pool-max 4
	refused 2 reg reg-pool --pool-min -1
	refused 2 reg reg-pool --pool-max abc
	refused 2 reg reg-pool --pool-timeout 0
	refused 2 reg reg-pool --pool-recycle 0
	refused 2 reg reg-pool --pool-recycle -5
}

@test "register: Try to give an option without its value" {
	refused 2 "$DBREG" register reg-noval --database d --user u --no-password --host
	[[ $stderr == *--host* ]] || fail "stderr: $stderr"
}

@test "register: Try to use options of update" {
	refused 2 reg reg-upd --activate
	refused 2 reg reg-upd --deactivate
	refused 2 reg reg-upd --pre-ping
}

# ---- the database refuses: exit 1, the field and allowed values named ------------------------

@test "register: Try to register an unknown type" {
	refused 1 reg reg-type --type FOO
	[[ $stderr == *connection_type* ]] || fail "the field is not named: $stderr"
	local t
	for t in ADMIN SHARED ANALYTICS DEDICATED; do
		[[ $stderr == *"$t"* ]] || fail "$t is not among the allowed values: $stderr"
	done
	[[ $stderr == *FOO* ]] || fail "the refused value is not named: $stderr"
}

@test "register: Try to register an unknown ssl mode" {
	refused 1 reg reg-ssl --ssl-mode nope
	[[ $stderr == *ssl_mode* ]] || fail "the field is not named: $stderr"
	local m
	for m in disable allow prefer require verify-ca verify-full; do
		[[ $stderr == *"$m"* ]] || fail "$m is not among the allowed values: $stderr"
	done
}

@test "register: Try to register a value too long for its column" {
	refused 1 reg reg-long --database "$(printf 'd%.0s' {1..64})"
	[[ $stderr == *database_name* ]] || fail "stderr: $stderr"
	[[ $stderr == *63* ]] || fail "the limit is not named: $stderr"
}

# ---- an existing name, --replace -------------------------------------------------------------

@test "register: Try to register a name that is already registered" {
	reg reg-dup --port 5433 --tag keep >/dev/null
	local before
	before=$(psql_admin <<<"SELECT to_jsonb(c) FROM admin.database_connections c WHERE connection_name = 'reg-dup'")
	refused 1 "$DBREG" register reg-dup --host other --database other --user other --no-password
	[[ $stderr == *reg-dup* && $stderr == *--replace* ]] || fail "stderr: $stderr"
	run psql_admin <<<"SELECT to_jsonb(c) FROM admin.database_connections c WHERE connection_name = 'reg-dup'"
	assert_output "$before"
	# With a password too: nothing written, the old row intact.
	refused 1 "$DBREG" register reg-dup --host other --database other --user other \
		--password-stdin <<<"dup-pw"
	assert_no_secret dup-pw
	run psql_admin <<<"SELECT to_jsonb(c) FROM admin.database_connections c WHERE connection_name = 'reg-dup'"
	assert_output "$before"
}

@test "register: --replace rewrites the row in place from this invocation" {
	"$DBREG" register reg-repl --host old-host --port 6000 --database old_db --user old_user \
		--type ANALYTICS --region eu-west-1 --ssl-mode require --pool-min 1 --pool-max 2 \
		--pool-timeout 3 --pool-recycle 4 --no-pre-ping --inactive --tag old \
		--password-stdin <<<"old-password" >/dev/null
	local id created
	id=$(registry_field reg-repl id)
	created=$(registry_field reg-repl "created_at::text")
	run --separate-stderr "$DBREG" register reg-repl --host new-host --database new_db \
		--user new_user --no-password --replace
	assert_success
	assert_output "registered reg-repl (id $id)"
	run registry_field reg-repl "id, host, port, database_name, username, connection_type,
		region_id IS NULL, ssl_mode, pool_min_size, pool_max_size, pool_timeout_seconds,
		pool_recycle_seconds, pool_pre_ping, is_active, tags, encrypted_password IS NULL"
	assert_output "$id|new-host|5432|new_db|new_user|SHARED|t|prefer|5|20|30|3600|t|t|{}|t"
	run registry_count "connection_name = 'reg-repl'"
	assert_output 1
	run registry_field reg-repl "created_at::text"
	assert_output "$created"
}

@test "register: --replace with a new password replaces the password" {
	"$DBREG" register reg-repl-pw --host h --database d --user u --password-stdin \
		<<<"first-password" >/dev/null
	local old
	old=$(registry_field reg-repl-pw encrypted_password)
	run --separate-stderr "$DBREG" register reg-repl-pw --host h --database d --user u \
		--password-stdin --replace <<<"second-pw"
	assert_success
	assert_no_secret second-pw
	assert_no_secret dbreg:v
	local new
	new=$(registry_field reg-repl-pw encrypted_password)
	[[ $new =~ $STORED_RE ]] || fail "not a stored text"
	[ "$new" != "$old" ] || fail "the password was not replaced"
	assert_equal "$(stored_plain_len "$new")" 9
}

@test "register: --replace of a name not yet registered registers it" {
	run --separate-stderr reg reg-repl-new --replace
	assert_success
	assert_output --regexp '^registered reg-repl-new '
	run registry_count "connection_name = 'reg-repl-new'"
	assert_output 1
}

@test "register: Try to --replace with values the database refuses" {
	reg reg-repl-bad >/dev/null
	local before
	before=$(psql_admin <<<"SELECT to_jsonb(c) FROM admin.database_connections c WHERE connection_name = 'reg-repl-bad'")
	refused 1 reg reg-repl-bad --replace --type FOO
	run psql_admin <<<"SELECT to_jsonb(c) FROM admin.database_connections c WHERE connection_name = 'reg-repl-bad'"
	assert_output "$before"
}

@test "register: a deregistered name can be registered again" {
	reg reg-again >/dev/null
	local old_id
	old_id=$(registry_field reg-again id)
	"$DBREG" deregister reg-again >/dev/null
	run --separate-stderr reg reg-again --port 7777
	assert_success
	run registry_field reg-again "id <> '$old_id', port"
	assert_output 't|7777'
	run registry_count "connection_name = 'reg-again'"
	assert_output 2
	"$DBREG" deregister reg-again --purge >/dev/null
	run --separate-stderr reg reg-again
	assert_success
}

# ---- --dry-run --------------------------------------------------------------------------------

@test "register: --dry-run describes the row and writes nothing" {
	local before
	before=$(registry_count)
	run --separate-stderr reg reg-dry --port 6543 --type DEDICATED --dry-run
	assert_success
	assert_line --index 0 --regexp '^dry run:'
	assert_output --partial reg-dry
	assert_output --partial 6543
	assert_output --partial DEDICATED
	run registry_count
	assert_output "$before"
	run --separate-stderr "$DBREG" show reg-dry
	assert_failure 1
}

@test "register: --dry-run with a password shows neither it nor its stored text" {
	local before
	before=$(registry_count)
	run --separate-stderr "$DBREG" register reg-dry-pw --host h --database d --user u \
		--password-stdin --dry-run <<<"dry-run-password"
	assert_success
	assert_line --index 0 --regexp '^dry run:'
	assert_no_secret dry-run-password
	assert_no_secret dbreg:v
	run registry_count
	assert_output "$before"
}

@test "register: --dry-run still reports what would be refused" {
	refused 1 reg reg-dry-bad --type FOO --dry-run
	[[ $stderr == *connection_type* ]] || fail "stderr: $stderr"
	refused 1 reg reg-dry-ssl --ssl-mode nope --dry-run
	refused 2 reg reg-dry-port --port 0 --dry-run
	reg reg-dry-dup >/dev/null
	refused 1 reg reg-dry-dup --dry-run
	[[ $stderr == *--replace* ]] || fail "stderr: $stderr"
	unset DB_ENCRYPTION_KEY
	refused 78 "$DBREG" register reg-dry-key --host h --database d --user u --password-stdin \
		--dry-run <<<"dry-pw"
}

@test "register: --dry-run --replace writes nothing" {
	reg reg-dry-repl --port 5555 >/dev/null
	local before
	before=$(psql_admin <<<"SELECT to_jsonb(c) FROM admin.database_connections c WHERE connection_name = 'reg-dry-repl'")
	run --separate-stderr reg reg-dry-repl --replace --dry-run --port 6666
	assert_success
	assert_line --index 0 --regexp '^dry run:'
	run psql_admin <<<"SELECT to_jsonb(c) FROM admin.database_connections c WHERE connection_name = 'reg-dry-repl'"
	assert_output "$before"
}

# ---- --test -------------------------------------------------------------------------------------

@test "register: --test logs in with the right credentials, then registers" {
	local pw
	pw=$(sandbox_admin_password)
	[ -n "$pw" ] || skip "the sandbox's dbreg_admin password is not readable"
	run --separate-stderr "$DBREG" register reg-test-ok --host "${PGSANDBOX_HOST:-127.0.0.1}" \
		--port "$PGSANDBOX_PORT" --database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" \
		--password-stdin --test <<<"$pw"
	assert_success
	assert_output --regexp '^registered reg-test-ok '
	assert_equal "$stderr" "login test passed"
	assert_no_secret "$pw"
	assert_no_secret dbreg:v
	run registry_count "connection_name = 'reg-test-ok'"
	assert_output 1
}

@test "register: Try to --test with a wrong password" {
	run sandbox_admin_password
	refused 1 "$DBREG" register reg-test-badpw --host "${PGSANDBOX_HOST:-127.0.0.1}" \
		--port "$PGSANDBOX_PORT" --database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" \
		--password-stdin --test <<<"wrong-test-password"
	assert_no_secret wrong-test-password
	[[ $stderr == *"$DBREG_ADMIN_ROLE"* ]] || fail "stderr: $stderr"
}

@test "register: Try to --test a port nobody listens on" {
	SECONDS=0
	refused 1 timeout 30 "$DBREG" register reg-test-closed --host 127.0.0.1 --port 1 \
		--database d --user u --password-stdin --test <<<"closed-port-pw"
	assert_no_secret closed-port-pw
	[ "$SECONDS" -le 15 ] || fail "took $SECONDS s"
}

@test "register: --test --dry-run logs in and writes nothing" {
	local pw before
	pw=$(sandbox_admin_password)
	before=$(registry_count)
	run --separate-stderr "$DBREG" register reg-test-dry --host "${PGSANDBOX_HOST:-127.0.0.1}" \
		--port "$PGSANDBOX_PORT" --database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" \
		--password-stdin --test --dry-run <<<"$pw"
	assert_success
	assert_line --index 0 --regexp '^dry run:'
	assert_no_secret "$pw"
	run registry_count
	assert_output "$before"
}
