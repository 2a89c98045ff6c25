#!/usr/bin/env bats
# dbreg export: a pg_service.conf (stdout or --output, 0644, never a password) and a
# .pgpass (a file only, 0600, : and \ escaped, an existing one only with --force); the
# selection by NAME, --type, --region and --tag; what psql logs in with; failures that
# write nothing; never a password on stdout or stderr; both registry shapes.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper
load platform

ESC_PW='pw:with\back:slash'

setup_file() {
	have_sandbox || return 0
	platform_registry
	export PLATFORM_URL=$ADMIN_DATABASE_URL PLATFORM_DB=$DBREG_TEST_REGISTRY
	fresh_registry
	export OWN_URL=$ADMIN_DATABASE_URL OWN_DB=$DBREG_TEST_REGISTRY
	make_key
	local pw host=${PGSANDBOX_HOST:-127.0.0.1} suffix
	pw=$(sandbox_admin_password)
	"$DBREG" init >/dev/null
	"$DBREG" register ex-a --host "$host" --port "$PGSANDBOX_PORT" --database "$OWN_DB" \
		--user "$DBREG_ADMIN_ROLE" --region us-east-1 --tag a --tag b \
		--password-stdin <<<"$pw" >/dev/null
	"$DBREG" register ex-b --host "$host" --port "$PGSANDBOX_PORT" --database "$OWN_DB" \
		--user "$DBREG_ADMIN_ROLE" --type ANALYTICS --region eu-west-1 --tag a --inactive \
		--password-stdin <<<"$pw" >/dev/null
	"$DBREG" register ex-nopw --host db.example --database app --user app --region us-east-1 \
		--tag b --no-password >/dev/null
	"$DBREG" register ex-esc --host 'h:o\st' --port 6432 --database 'd:b\x' --user 'u:s\r' \
		--type DEDICATED --tag esc --password-stdin <<<"$ESC_PW" >/dev/null
	"$DBREG" register ex-gone --host db.example --database app --user app --no-password >/dev/null
	"$DBREG" deregister ex-gone >/dev/null
	# A real role whose password has : and \ (and a space), and names that need quoting.
	suffix=$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
	export ODD_ROLE="ex o:d\\d $suffix" ODD_DB="ex d:b\\x $suffix" ODD_PW='p:w\o r\:d'
	role_create "$ODD_ROLE" "$ODD_DB" "$ODD_PW"
	"$DBREG" register ex-odd --host "$host" --port "$PGSANDBOX_PORT" --database "$ODD_DB" \
		--user "$ODD_ROLE" --type DEDICATED --tag odd --password-stdin <<<"$ODD_PW" >/dev/null
}

teardown_file() {
	role_drop "${ODD_ROLE-}" "${ODD_DB-}"
	drop_registry "${PLATFORM_DB-}"
	drop_registry
}

teardown() { drop_scratch_registry; }

setup() {
	require_sandbox
	export ADMIN_DATABASE_URL=$OWN_URL
	ADMIN_PW=$(sandbox_admin_password)
	PASSFILE=$BATS_TEST_TMPDIR/pgpass
	SERVICEFILE=$BATS_TEST_TMPDIR/pg_service.conf
}

# sections [EXPORT-ARG...]: the section names of the service file export prints, on one line.
sections() {
	"$DBREG" export --service-file "$@" | sed -n 's/^\[\(.*\)\]$/\1/p' | paste -sd' '
}

# no_secrets: neither password was printed by the last run.
no_secrets() {
	assert_no_secret "$ADMIN_PW"
	assert_no_secret "$ESC_PW"
	assert_no_secret "$ODD_PW"
}

mode_of() {
	stat -c %a "$1"
}

# ---- the service file ----------------------------------------------------------------------

@test "export: --service-file prints one section per connection, never a password" {
	run --separate-stderr "$DBREG" export ex-a ex-nopw --service-file
	assert_success
	assert_output "$(printf '%s\n' '[ex-a]' "host=${PGSANDBOX_HOST:-127.0.0.1}" "port=$PGSANDBOX_PORT" \
		"dbname=$OWN_DB" "user=$DBREG_ADMIN_ROLE" sslmode=prefer '' '[ex-nopw]' host=db.example \
		port=5432 dbname=app user=app sslmode=prefer)"
	[[ $output != *password* ]] || fail "a password line: $output"
	no_secrets
}

@test "export: --service-file --output writes FILE 0644; psql logs in by service with the exported pgpass" {
	run --separate-stderr "$DBREG" export ex-a ex-odd --service-file --output "$SERVICEFILE"
	assert_success
	assert_output ""
	no_secrets
	assert_equal "$(mode_of "$SERVICEFILE")" 644
	grep -q '^\[ex-odd\]$' "$SERVICEFILE" || fail "no section ex-odd: $(cat "$SERVICEFILE")"
	if grep -qi password "$SERVICEFILE"; then fail "a password in the service file"; fi
	run --separate-stderr "$DBREG" export ex-a ex-odd --pgpass "$PASSFILE"
	assert_success
	no_secrets
	run --separate-stderr env PGSERVICEFILE="$SERVICEFILE" PGPASSFILE="$PASSFILE" \
		psql -X -w -At "service=ex-a" -c 'SELECT current_user, current_database()'
	assert_success
	assert_output "$DBREG_ADMIN_ROLE|$OWN_DB"
	run --separate-stderr env PGSERVICEFILE="$SERVICEFILE" PGPASSFILE="$PASSFILE" \
		psql -X -w -At "service=ex-odd" -c 'SELECT current_user, current_database()'
	assert_success
	assert_output "$ODD_ROLE|$ODD_DB"
	# Without the password file, the service alone cannot log in.
	run --separate-stderr env PGSERVICEFILE="$SERVICEFILE" PGPASSFILE=/dev/null \
		psql -X -w -At "service=ex-a" -c 'SELECT 1'
	assert_failure
}

@test "export: --service-file needs no key" {
	unset DB_ENCRYPTION_KEY
	run --separate-stderr "$DBREG" export --service-file
	assert_success
	no_secrets
}

@test "export: Try --output over an existing FILE without --force: exit 1, FILE unchanged; --force replaces it" {
	echo keep >"$SERVICEFILE"
	run --separate-stderr "$DBREG" export ex-a --service-file --output "$SERVICEFILE"
	assert_failure 1
	[[ $stderr == *"$SERVICEFILE already exists; use --force to replace it"* ]] || fail "$stderr"
	assert_equal "$(cat "$SERVICEFILE")" keep
	run --separate-stderr "$DBREG" export ex-a --service-file --output "$SERVICEFILE" --force
	assert_success
	grep -q '^\[ex-a\]$' "$SERVICEFILE" || fail "not replaced"
}

# ---- the password file ---------------------------------------------------------------------

@test "export: --pgpass writes FILE 0600, host:port:dbname:user:password, : and \\ escaped" {
	run --separate-stderr "$DBREG" export ex-a ex-esc ex-nopw --pgpass "$PASSFILE"
	assert_success
	assert_output ""
	no_secrets
	[[ $stderr == *"wrote 2 passwords to $PASSFILE (1 connection without a password skipped)"* ]] ||
		fail "$stderr"
	assert_equal "$(mode_of "$PASSFILE")" 600
	assert_equal "$(wc -l <"$PASSFILE")" 2
	# ex-a, then ex-esc (by name); ex-nopw has no line.
	assert_equal "$(sed -n 1p "$PASSFILE")" \
		"${PGSANDBOX_HOST:-127.0.0.1}:$PGSANDBOX_PORT:$OWN_DB:$DBREG_ADMIN_ROLE:$ADMIN_PW"
	assert_equal "$(sed -n 2p "$PASSFILE")" 'h\:o\\st:6432:d\:b\\x:u\:s\\r:pw\:with\\back\:slash'
	if grep -q db.example "$PASSFILE"; then fail "a line for a connection without a password"; fi
}

@test "export: libpq reads the escaped password back: psql logs in as a role whose password has : and \\" {
	run --separate-stderr "$DBREG" export ex-odd --pgpass "$PASSFILE"
	assert_success
	no_secrets
	grep -qF 'p\:w\\o r\\\:d' "$PASSFILE" || fail "the password is not escaped"
	run --separate-stderr env PGPASSFILE="$PASSFILE" psql -X -w -At "$("$DBREG" conninfo ex-odd)" \
		-c 'SELECT current_user'
	assert_success
	assert_output "$ODD_ROLE"
}

@test "export: Try --pgpass -: exit 2, never standard output" {
	run --separate-stderr "$DBREG" export ex-a --pgpass -
	assert_failure 2
	assert_output ""
	[[ $stderr == *"never written to standard output"* ]] || fail "$stderr"
	[ ! -e ./- ] || fail "a file named - was written"
	no_secrets
}

@test "export: Try --pgpass over an existing FILE without --force: exit 1, FILE unchanged" {
	echo 'keep:me' >"$PASSFILE"
	chmod 600 "$PASSFILE"
	run --separate-stderr "$DBREG" export ex-a --pgpass "$PASSFILE"
	assert_failure 1
	assert_output ""
	[[ $stderr == *"$PASSFILE already exists; use --force to replace it"* ]] || fail "$stderr"
	assert_equal "$(cat "$PASSFILE")" 'keep:me'
	no_secrets
}

@test "export: --pgpass --force replaces FILE, and makes it 0600 whatever it was" {
	echo old >"$PASSFILE"
	chmod 644 "$PASSFILE"
	run --separate-stderr "$DBREG" export ex-a --pgpass "$PASSFILE" --force
	assert_success
	no_secrets
	assert_equal "$(mode_of "$PASSFILE")" 600
	assert_equal "$(wc -l <"$PASSFILE")" 1
	[ -z "$(find "$BATS_TEST_TMPDIR" -name '.pgpass.*')" ] || fail "a temporary file was left behind"
}

@test "export: --pgpass of connections without a password writes an empty FILE" {
	run --separate-stderr "$DBREG" export ex-nopw --pgpass "$PASSFILE"
	assert_success
	[[ $stderr == *"wrote 0 passwords"* ]] || fail "$stderr"
	[ -f "$PASSFILE" ] && [ ! -s "$PASSFILE" ] || fail "not an empty file"
}

# ---- decryption failures -------------------------------------------------------------------

@test "export: Try --pgpass without the key: exit 78 naming the connection, nothing written" {
	unset DB_ENCRYPTION_KEY
	run --separate-stderr "$DBREG" export ex-a ex-esc --pgpass "$PASSFILE"
	assert_failure 78
	[[ $stderr == *"connection 'ex-a'"* ]] || fail "$stderr"
	[ ! -e "$PASSFILE" ] || fail "a file was written"
	no_secrets
	# The rows without a password need no key.
	run --separate-stderr "$DBREG" export ex-nopw --pgpass "$PASSFILE"
	assert_success
}

@test "export: Try --pgpass with another key: exit 78 naming the connection and its key, nothing written" {
	make_key
	run --separate-stderr "$DBREG" export ex-a --pgpass "$PASSFILE"
	assert_failure 78
	[[ $stderr == *"connection 'ex-a'"* && $stderr == *DB_ENCRYPTION_OLD_KEYS* ]] || fail "$stderr"
	[ ! -e "$PASSFILE" ] || fail "a file was written"
}

@test "export: Try --pgpass with a stored password that does not decrypt: exit 1 naming it, FILE unchanged" {
	"$DBREG" register ex-bad --host db.example --database app --user app --tag bad \
		--password-stdin <<<"bad-password" >/dev/null
	psql_admin <<<"UPDATE admin.database_connections SET encrypted_password =
		overlay(encrypted_password PLACING 'AAAA' FROM length(encrypted_password) - 3)
		WHERE connection_name = 'ex-bad';"
	echo keep >"$PASSFILE"
	run --separate-stderr "$DBREG" export ex-a ex-bad --pgpass "$PASSFILE" --force
	assert_failure 1
	[[ $stderr == *"connection 'ex-bad'"* ]] || fail "$stderr"
	assert_equal "$(cat "$PASSFILE")" keep
	no_secrets
	assert_no_secret bad-password
	"$DBREG" deregister --purge ex-bad >/dev/null
}

# ---- the selection -------------------------------------------------------------------------

@test "export: the selection: every live connection, active or not, by name" {
	run sections
	assert_output "ex-a ex-b ex-esc ex-nopw ex-odd"
	run sections ex-nopw ex-b
	assert_output "ex-b ex-nopw"
}

@test "export: the selection by --type, --region and --tag (repeated: all of them)" {
	run sections --type DEDICATED
	assert_output "ex-esc ex-odd"
	run sections --region eu-west-1
	assert_output "ex-b"
	run sections --tag a
	assert_output "ex-a ex-b"
	run sections --tag a --tag b
	assert_output "ex-a"
	run sections --region us-east-1 --tag b
	assert_output "ex-a ex-nopw"
	run sections ex-a ex-esc --type DEDICATED
	assert_output "ex-esc"
}

@test "export: Try an unregistered or deregistered NAME: exit 1 naming it, nothing written" {
	run --separate-stderr "$DBREG" export ex-a ex-nobody --pgpass "$PASSFILE"
	assert_failure 1
	[[ $stderr == *"no connection named 'ex-nobody'"* ]] || fail "$stderr"
	[ ! -e "$PASSFILE" ] || fail "a file was written"
	run --separate-stderr "$DBREG" export ex-gone --service-file
	assert_failure 1
	assert_output ""
	[[ $stderr == *"no connection named 'ex-gone'"* ]] || fail "$stderr"
}

@test "export: Try a selection that matches nothing: exit 1, nothing written" {
	run --separate-stderr "$DBREG" export --tag nowhere --service-file --output "$SERVICEFILE"
	assert_failure 1
	[[ $stderr == *"no connection matches the selection"* ]] || fail "$stderr"
	[ ! -e "$SERVICEFILE" ] || fail "a file was written"
}

# ---- usage ---------------------------------------------------------------------------------

@test "export: Try neither or both of --service-file and --pgpass: exit 2" {
	run --separate-stderr "$DBREG" export ex-a
	assert_failure 2
	[[ $stderr == *"one of --service-file and --pgpass FILE is required"* ]] || fail "$stderr"
	[[ $stderr == *"Try 'dbreg export --help'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" export ex-a --service-file --pgpass "$PASSFILE"
	assert_failure 2
	[[ $stderr == *"exclude each other"* ]] || fail "$stderr"
	[ ! -e "$PASSFILE" ] || fail "a file was written"
}

@test "export: Try --output without --service-file, --force without a FILE, bad names and options: exit 2" {
	run --separate-stderr "$DBREG" export ex-a --pgpass "$PASSFILE" --output "$SERVICEFILE"
	assert_failure 2
	run --separate-stderr "$DBREG" export ex-a --service-file --force
	assert_failure 2
	[[ $stderr == *"--force needs"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" export 'Bad Name' --service-file
	assert_failure 2
	run --separate-stderr "$DBREG" export --service-file --bogus
	assert_failure 2
	[[ $stderr == *"unknown option '--bogus'"* ]] || fail "$stderr"
	run --separate-stderr "$DBREG" export --service-file --tag
	assert_failure 2
	[[ $stderr == *"option '--tag' needs a value"* ]] || fail "$stderr"
	assert_output ""
	[ ! -e "$PASSFILE" ] && [ ! -e "$SERVICEFILE" ] || fail "a file was written"
}

@test "export: Try without ADMIN_DATABASE_URL (78) or with the admin database down (69)" {
	unset ADMIN_DATABASE_URL
	run --separate-stderr "$DBREG" export --pgpass "$PASSFILE"
	assert_failure 78
	[ ! -e "$PASSFILE" ] || fail "a file was written"
	export ADMIN_DATABASE_URL='postgresql://x@127.0.0.1:1/db'
	run --separate-stderr "$DBREG" export --service-file
	assert_failure 69
	assert_output ""
}

@test "export: -h and --help print the usage and every option" {
	run --separate-stderr "$DBREG" export --help
	assert_success
	[[ ${lines[0]} == "Usage: dbreg export [NAME...] "* ]] || fail "${lines[0]}"
	local opt
	for opt in --type --region --tag --service-file --pgpass --output --force --help; do
		[[ $output == *"$opt"* ]] || fail "no $opt in the help"
	done
	run --separate-stderr "$DBREG" export -h
	assert_success
}

# ---- the platform's registry ---------------------------------------------------------------

@test "export: platform registry: the service file of every live connection, by type, region and tags" {
	export ADMIN_DATABASE_URL=$PLATFORM_URL
	run sections
	assert_output "neofast-analytics-eu neofast-dev-us-primary neofast-shared-us-primary neofast-shared-us-replica"
	run sections --type replica
	assert_output neofast-shared-us-replica
	run sections --region eu-west-1
	assert_output neofast-analytics-eu
	run sections --tag shared --tag us
	assert_output "neofast-shared-us-primary neofast-shared-us-replica"
	run --separate-stderr "$DBREG" export old-backup-db --service-file
	assert_failure 1
	run --separate-stderr "$DBREG" export --service-file
	[[ $output != *gAAAAA* ]] || fail "a stored token in the output"
	no_secrets
}

@test "export: platform registry: --pgpass decrypts the Fernet tokens (none for ''); psql logs in by service" {
	export ADMIN_DATABASE_URL=$PLATFORM_URL
	run --separate-stderr "$DBREG" export --pgpass "$PASSFILE"
	assert_success
	no_secrets
	[[ $stderr == *"wrote 3 passwords to $PASSFILE (1 connection without a password skipped)"* ]] ||
		fail "$stderr"
	assert_equal "$(mode_of "$PASSFILE")" 600
	assert_equal "$(sort -u "$PASSFILE")" \
		"${PGSANDBOX_HOST:-127.0.0.1}:$PGSANDBOX_PORT:$PLATFORM_DB:$DBREG_ADMIN_ROLE:$ADMIN_PW"
	"$DBREG" export --service-file --output "$SERVICEFILE"
	run --separate-stderr env PGSERVICEFILE="$SERVICEFILE" PGPASSFILE="$PASSFILE" \
		psql -X -w -At "service=neofast-shared-us-replica" -c 'SELECT current_database()'
	assert_success
	assert_output "$PLATFORM_DB"
}

@test "export: platform registry: a NULL port and sslmode are 5432 and prefer; a Fernet password with : and \\ is escaped" {
	export ADMIN_DATABASE_URL=$PLATFORM_URL
	local token
	token=$(fernet_token encrypt <<<"$ESC_PW")
	psql_admin -v "token=$token" <<<"UPDATE admin.database_connections SET port = NULL, ssl_mode = NULL,
		encrypted_password = :'token' WHERE connection_name = 'neofast-analytics-eu';"
	run --separate-stderr "$DBREG" export neofast-analytics-eu --service-file
	assert_success
	assert_line port=5432
	assert_line sslmode=prefer
	run --separate-stderr "$DBREG" export neofast-analytics-eu --pgpass "$PASSFILE"
	assert_success
	no_secrets
	assert_equal "$(cat "$PASSFILE")" \
		"${PGSANDBOX_HOST:-127.0.0.1}:5432:$PLATFORM_DB:$DBREG_ADMIN_ROLE:pw\\:with\\\\back\\:slash"
	token=$(fernet_token encrypt <<<"$ADMIN_PW")
	psql_admin -v "token=$token" -v "port=$PGSANDBOX_PORT" <<<"UPDATE admin.database_connections
		SET port = :port, ssl_mode = 'prefer', encrypted_password = :'token'
		WHERE connection_name = 'neofast-analytics-eu';"
}

@test "export: platform registry: Try --pgpass without the passphrase (78) or with another (1): nothing written" {
	export ADMIN_DATABASE_URL=$PLATFORM_URL
	(
		unset DB_FERNET_PASSPHRASE
		run --separate-stderr "$DBREG" export neofast-shared-us-primary --pgpass "$PASSFILE"
		assert_failure 78
		[[ $stderr == *"connection 'neofast-shared-us-primary'"* ]] || fail "$stderr"
		[[ $stderr == *DB_FERNET_PASSPHRASE* ]] || fail "$stderr"
	)
	run --separate-stderr env DB_FERNET_PASSPHRASE=another-passphrase "$DBREG" export \
		neofast-shared-us-primary --pgpass "$PASSFILE"
	assert_failure 1
	[[ $stderr == *"connection 'neofast-shared-us-primary'"* ]] || fail "$stderr"
	[ ! -e "$PASSFILE" ] || fail "a file was written"
	no_secrets
}

# many_rows: a scratch registry of 20,000 rows without a password, big-00001..big-20000.
many_rows() {
	scratch_registry
	"$DBREG" init >/dev/null
	psql_admin <<<"INSERT INTO admin.database_connections
		(connection_name, connection_type, region_id, host, port, database_name, username)
		SELECT 'big-' || lpad(g::text, 5, '0'), 'SHARED', 'eu', 'db.example', 5432, 'app', 'app'
		FROM generate_series(1, 20000) AS g;" >/dev/null
}

@test "export: --service-file of 20,000 rows is written as they come, under 16 MB, and an empty selection writes nothing" {
	[ -x /usr/bin/time ] || skip "GNU time is not installed"
	many_rows
	/usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" "$DBREG" export --service-file >"$BATS_TEST_TMPDIR/out.conf"
	assert_equal "$(grep -c '^\[big-[0-9]*\]$' "$BATS_TEST_TMPDIR/out.conf")" 20000
	assert_equal "$(grep -c '^$' "$BATS_TEST_TMPDIR/out.conf")" 19999
	run --separate-stderr "$DBREG" export --service-file --output "$SERVICEFILE"
	assert_success
	cmp "$SERVICEFILE" "$BATS_TEST_TMPDIR/out.conf"
	# ASan's shadow memory makes any ceiling meaningless.
	if ! ldd "$DBREG" | grep -q libasan; then
		rss=$(tail -n1 "$BATS_TEST_TMPDIR/rss")
		((rss < 16 * 1024)) || fail "peak RSS $rss KB for 20,000 sections"
	fi
	rm -f "$SERVICEFILE"
	run --separate-stderr "$DBREG" export --service-file --region nowhere --output "$SERVICEFILE"
	assert_failure 1
	[[ $stderr == *"no connection matches the selection"* ]] || fail "$stderr"
	[ ! -e "$SERVICEFILE" ] || fail "an empty selection wrote $SERVICEFILE"
}

@test "export: --pgpass of 20,000 rows reads them as they come, under 16 MB; an empty selection writes nothing" {
	[ -x /usr/bin/time ] || skip "GNU time is not installed"
	many_rows
	# Two among them with a password, each bound to its own row.
	"$DBREG" register big-00007 --host 127.0.0.1 --database app --user u7 --region eu --replace \
		--password-stdin <<<"pw-seven" >/dev/null
	"$DBREG" register big-19999 --host 127.0.0.1 --database app --user u9 --region eu --replace \
		--password-stdin <<<"pw:nine" >/dev/null
	/usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" "$DBREG" export --pgpass "$PASSFILE" 2>"$BATS_TEST_TMPDIR/err"
	[[ $(cat "$BATS_TEST_TMPDIR/err") == *"wrote 2 passwords"*"(19998 connections without a password skipped)"* ]] ||
		fail "$(cat "$BATS_TEST_TMPDIR/err")"
	assert_equal "$(cat "$PASSFILE")" "127.0.0.1:5432:app:u7:pw-seven
127.0.0.1:5432:app:u9:pw\:nine"
	assert_equal "$(stat -c %a "$PASSFILE")" 600
	# ASan's shadow memory makes any ceiling meaningless.
	if ! ldd "$DBREG" | grep -q libasan; then
		rss=$(tail -n1 "$BATS_TEST_TMPDIR/rss")
		((rss < 16 * 1024)) || fail "peak RSS $rss KB for a password file of 20,000 rows"
	fi
	rm -f "$PASSFILE"
	run --separate-stderr "$DBREG" export --pgpass "$PASSFILE" --region nowhere
	assert_failure 1
	[[ $stderr == *"no connection matches the selection"* ]] || fail "$stderr"
	[ ! -e "$PASSFILE" ] || fail "an empty selection wrote $PASSFILE"
}
