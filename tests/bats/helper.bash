# Common setup for dbreg's bats tests: `load helper` at the top of every .bats file.
#
# Environment (set by meson's test env and by tests/run):
#   DBREG                     the dbreg binary under test (default: dbreg on PATH)
#   DBREG_SOURCE_ROOT, DBREG_BUILD_ROOT
#   ADMIN_DATABASE_URL, PGPASSFILE, PGSANDBOX_HOST, PGSANDBOX_PORT,
#   PGSANDBOX_SUPERUSER_URL   from `scripts/pg-sandbox env DIR`
#
# A file whose tests need the database:
#   setup_file()    { fresh_registry; }
#   teardown_file() { drop_registry; }
#   setup()         { require_sandbox; }
#
# Functions:
#   require_sandbox           skip unless a sandbox is set up (call from setup or a test)
#   fresh_registry            new empty database owned by dbreg_admin; exports
#                             ADMIN_DATABASE_URL pointing at it (call from setup_file;
#                             without a sandbox it does nothing, and require_sandbox skips)
#   drop_registry [DBNAME]    drop it again (call from teardown_file)
#   psql_admin [PSQL-ARG...]  psql -X -qAt -v ON_ERROR_STOP=1 on ADMIN_DATABASE_URL
#   psql_super [PSQL-ARG...]  the same as the sandbox superuser, on database postgres
#   make_key                  export DB_ENCRYPTION_KEY: 32 fresh random bytes, base64
#   assert_no_secret STRING   fail if $output (or $stderr) contains STRING
#   start_pgbouncer           a PgBouncer in front of the sandbox (scripts/pg-sandbox
#                             pgbouncer): exports PGSANDBOX_PGBOUNCER_PORT, BOUNCER_ROLE and
#                             BOUNCER_PW (a role it lets in and that may SHOW POOLS); sets
#                             PGBOUNCER_MISSING instead when pgbouncer is not installed
#   require_pgbouncer         skip (saying why) unless start_pgbouncer started one
#   stop_pgbouncer            stop it (call from teardown_file)

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

: "${DBREG:=dbreg}"
: "${DBREG_SOURCE_ROOT:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
export DBREG DBREG_SOURCE_ROOT

# The role that owns the sandbox's registries (scripts/pg-sandbox creates it).
: "${DBREG_ADMIN_ROLE:=dbreg_admin}"

_psql() {
	local psql=psql
	if [ -n "${PGSANDBOX_BINDIR-}" ] && [ -x "$PGSANDBOX_BINDIR/psql" ]; then
		psql=$PGSANDBOX_BINDIR/psql
	fi
	"$psql" "$@"
}

have_sandbox() {
	[ -n "${ADMIN_DATABASE_URL-}" ] && [ -n "${PGSANDBOX_SUPERUSER_URL-}" ]
}

require_sandbox() {
	if ! have_sandbox; then
		skip "no PostgreSQL sandbox: run tests/run, or eval \"\$(scripts/pg-sandbox start DIR)\" first"
	fi
}

psql_super() {
	_psql -X -qAt -v ON_ERROR_STOP=1 -d "$PGSANDBOX_SUPERUSER_URL" "$@"
}

psql_admin() {
	_psql -X -qAt -v ON_ERROR_STOP=1 -d "$ADMIN_DATABASE_URL" "$@"
}

# A new, empty admin database for this test file, owned by the non-superuser role that
# dbreg runs as.  Exports ADMIN_DATABASE_URL (same host, port and user as the sandbox's
# own URL) and DBREG_TEST_REGISTRY (its name).  bats 1.8 cannot skip from setup_file,
# so without a sandbox this does nothing and leaves the skipping to require_sandbox.
fresh_registry() {
	have_sandbox || return 0
	local db host port
	db=reg_$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
	host=${PGSANDBOX_HOST:-127.0.0.1}
	port=${PGSANDBOX_PORT:?PGSANDBOX_PORT is not set}
	psql_super -v "db=$db" -v "owner=$DBREG_ADMIN_ROLE" <<-'EOF' || return 1
		CREATE DATABASE :"db" OWNER :"owner";
	EOF
	# The sandbox's own URL, kept so that drop_registry can go back to it.
	: "${DBREG_SANDBOX_ADMIN_URL:=$ADMIN_DATABASE_URL}"
	export DBREG_SANDBOX_ADMIN_URL
	export DBREG_TEST_REGISTRY=$db
	export ADMIN_DATABASE_URL="postgresql://$DBREG_ADMIN_ROLE@$host:$port/$db"
}

# Drop the registry made by fresh_registry (or DBNAME).  DBREG_KEEP_REGISTRY=1 keeps it
# for a look after a failure.
drop_registry() {
	local db=${1:-${DBREG_TEST_REGISTRY-}}
	[ -n "$db" ] || return 0
	[ -n "${PGSANDBOX_SUPERUSER_URL-}" ] || return 0
	if [ -z "${DBREG_KEEP_REGISTRY-}" ]; then
		psql_super -v "db=$db" <<-'EOF' || return 1
			DROP DATABASE IF EXISTS :"db" WITH (FORCE);
		EOF
	fi
	if [ -z "${1-}" ] || [ "$db" = "${DBREG_TEST_REGISTRY-}" ]; then
		unset DBREG_TEST_REGISTRY
		if [ -n "${DBREG_SANDBOX_ADMIN_URL-}" ]; then
			export ADMIN_DATABASE_URL=$DBREG_SANDBOX_ADMIN_URL
		fi
	fi
}

make_key() {
	unset DB_ENCRYPTION_KEY_FILE
	DB_ENCRYPTION_KEY=$(head -c32 /dev/urandom | base64 -w0)
	export DB_ENCRYPTION_KEY
}

# stored_v1 PASSWORD [KEY]: PASSWORD in stored format v1 (no longer written by dbreg, still
# read) under KEY (base64; default $DB_ENCRYPTION_KEY), sealed by libsodium itself through
# python's ctypes: the associated data is the header dbreg:v1:<key-id> alone.
stored_v1() {
	python3 - "$1" "${2:-$DB_ENCRYPTION_KEY}" <<-'EOF'
		import base64, ctypes, ctypes.util, hashlib, os, sys
		na = ctypes.CDLL(ctypes.util.find_library("sodium"))
		assert na.sodium_init() >= 0
		key = base64.b64decode(sys.argv[2])
		header = ("dbreg:v1:" + hashlib.blake2b(key, digest_size=32).hexdigest()[:8]).encode()
		pw, nonce = sys.argv[1].encode(), os.urandom(24)
		out = ctypes.create_string_buffer(len(pw) + 16)
		outlen = ctypes.c_ulonglong(0)
		na.crypto_aead_xchacha20poly1305_ietf_encrypt(out, ctypes.byref(outlen), pw, ctypes.c_ulonglong(len(pw)),
		    header, ctypes.c_ulonglong(len(header)), None, nonce, key)
		blob = nonce + out.raw[:outlen.value]
		print(header.decode() + ":" + base64.urlsafe_b64encode(blob).decode().rstrip("="))
	EOF
}

# Fails when the last `run` printed STRING on stdout or (with --separate-stderr) stderr.
# The secret itself is not repeated in the failure message.
assert_no_secret() {
	local secret=${1:?assert_no_secret: missing STRING}
	local where=
	[[ ${output-} == *"$secret"* ]] && where="output"
	[[ ${stderr-} == *"$secret"* ]] && where="${where:+$where and }stderr"
	if [ -n "$where" ]; then
		batslib_print_kv_single 8 'secret' "<${#secret} characters>" \
			| batslib_decorate "secret found in $where" \
			| fail
	fi
}

# ---- shared by the tests of the registry commands (init, register, update, list, ...) ----

# registry_count [CONDITION]: rows in admin.database_connections, deleted ones included,
# optionally only those WHERE CONDITION.
registry_count() {
	psql_admin <<<"SELECT count(*) FROM admin.database_connections${1:+ WHERE $1};"
}

# registry_field NAME EXPR: EXPR (a column, or any SQL expression over the row) of the
# live row NAME, as psql -At prints it (t/f for booleans, empty for NULL).
registry_field() {
	psql_admin -v "name=$1" <<<"SELECT $2 FROM admin.database_connections
		WHERE connection_name = :'name' AND deleted_at IS NULL;"
}

# role_create ROLE DATABASE PASSWORD: a login role with PASSWORD and a database it owns,
# made by the superuser (names and password taken as they are, however odd).
role_create() {
	psql_super -v "role=$1" -v "db=$2" -v "pw=$3" <<-'EOF'
		CREATE ROLE :"role" LOGIN PASSWORD :'pw';
		CREATE DATABASE :"db" OWNER :"role";
	EOF
}

# role_drop ROLE DATABASE: undo role_create (nothing when ROLE is empty or there is no sandbox).
role_drop() {
	[ -n "$1" ] && [ -n "${PGSANDBOX_SUPERUSER_URL-}" ] || return 0
	psql_super -v "role=$1" -v "db=$2" <<-'EOF'
		DROP DATABASE IF EXISTS :"db" WITH (FORCE);
		DROP ROLE IF EXISTS :"role";
	EOF
}

# register_sandbox NAME [OPTION...]: register NAME as the sandbox's own registry database,
# logged in as dbreg_admin with its password (a target every command can reach).
register_sandbox() {
	local name=$1
	shift
	printf '%s\n' "$(sandbox_admin_password)" | "$DBREG" register "$name" --host "${PGSANDBOX_HOST:-127.0.0.1}" \
		--port "$PGSANDBOX_PORT" --database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" \
		--password-stdin "$@" >/dev/null
}

# sandbox_admin_password: the password of the sandbox role dbreg_admin.
sandbox_admin_password() {
	if [ -n "${PGSANDBOX_DIR-}" ] && [ -r "$PGSANDBOX_DIR/admin.password" ]; then
		cat "$PGSANDBOX_DIR/admin.password"
	else
		awk -F: -v role="$DBREG_ADMIN_ROLE" '$4 == role { print $5; exit }' "${PGPASSFILE:?}"
	fi
}

# no_tty COMMAND [ARG...]: run COMMAND in a new session, without a controlling terminal,
# so that it cannot open /dev/tty (redirect its standard input too).
no_tty() {
	setsid -w "$@"
}

# scratch_registry: one more new, empty database owned by dbreg_admin, for one test
# (e.g. a registry without the schema); exports ADMIN_DATABASE_URL pointing at it and
# SCRATCH_REGISTRY (its name).  Call drop_scratch_registry from teardown.
scratch_registry() {
	local host=${PGSANDBOX_HOST:-127.0.0.1} port=${PGSANDBOX_PORT:?PGSANDBOX_PORT is not set}
	SCRATCH_REGISTRY=scratch_$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
	export SCRATCH_REGISTRY
	psql_super -v "db=$SCRATCH_REGISTRY" -v "owner=$DBREG_ADMIN_ROLE" <<-'EOF' || return 1
		CREATE DATABASE :"db" OWNER :"owner";
	EOF
	export ADMIN_DATABASE_URL="postgresql://$DBREG_ADMIN_ROLE@$host:$port/$SCRATCH_REGISTRY"
}

drop_scratch_registry() {
	[ -n "${SCRATCH_REGISTRY-}" ] || return 0
	[ -n "${DBREG_KEEP_REGISTRY-}" ] && return 0
	psql_super -v "db=$SCRATCH_REGISTRY" <<-'EOF'
		DROP DATABASE IF EXISTS :"db" WITH (FORCE);
	EOF
	unset SCRATCH_REGISTRY
}

# Patterns that several files check output against.
# shellcheck disable=SC2034
STORED_RE='^dbreg:v2:[0-9a-f]{8}:[A-Za-z0-9_-]+$'
# A row id and target for encrypt-password, which binds a dbreg:v2 text to them.
# shellcheck disable=SC2034
V2_TARGET=(--id 0f6b9a52-3c1e-4d7a-9b2f-5e8c1a7d3b40 --host db.internal --port 5432 --database app --user app_user
	--ssl-mode verify-full)
# shellcheck disable=SC2034
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
# shellcheck disable=SC2034
TS_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

# fresh_registry, with the registry schema in it (dbreg init) when there is a sandbox.
fresh_initialized_registry() {
	fresh_registry || return 1
	if have_sandbox; then
		"$DBREG" init >/dev/null
	fi
}

# ---- PgBouncer in front of the sandbox ----------------------------------------------------
start_pgbouncer() {
	have_sandbox || return 0
	if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
		export PGBOUNCER_MISSING="pgbouncer is not installed (scripts/bootstrap installs Debian's package)"
		return 0
	fi
	local env
	# It outlives this call: none of bats' descriptors go with it.
	env=$("$DBREG_SOURCE_ROOT/scripts/pg-sandbox" pgbouncer "${PGSANDBOX_DIR:?PGSANDBOX_DIR is not set}" 3>&-) || return 1
	eval "$(grep '^export PGSANDBOX_PGBOUNCER_PORT=' <<<"$env")"
	export BOUNCER_ROLE=dbreg_bouncer
	BOUNCER_PW=$(cat "$PGSANDBOX_DIR/bouncer.password")
	export BOUNCER_PW
}

require_pgbouncer() {
	[ -z "${PGBOUNCER_MISSING-}" ] || skip "$PGBOUNCER_MISSING"
	[ -n "${PGSANDBOX_PGBOUNCER_PORT-}" ] || skip "no PgBouncer was started (start_pgbouncer)"
}

stop_pgbouncer() {
	[ -n "${PGSANDBOX_DIR-}" ] || return 0
	"$DBREG_SOURCE_ROOT/scripts/pg-sandbox" pgbouncer-stop "$PGSANDBOX_DIR" 3>&-
}
