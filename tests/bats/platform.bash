# A registry in the platform's shape (PLATFORM-REGISTRY.md), for bats tests:
#   load helper
#   load platform
#   setup_file()    { platform_registry; }
#   teardown_file() { drop_registry; }
#   setup()         { require_sandbox; }
#
# Functions:
#   platform_registry      fresh_registry (a new database owned by dbreg_admin; exports
#                          ADMIN_DATABASE_URL and DBREG_TEST_REGISTRY), then builds in it,
#                          from tests/fixtures: platform-extensions.sql as the superuser,
#                          platform-registry.sql and platform-seed.sql as dbreg_admin.
#                          Every seeded connection points at the sandbox (PGSANDBOX_HOST,
#                          PGSANDBOX_PORT, the new database, user dbreg_admin) and stores
#                          a Fernet token of dbreg_admin's password, made with a passphrase
#                          that is new for each call and exported as DB_FERNET_PASSPHRASE
#                          (neofast-dev-us-primary stores the empty string instead).
#                          Without a sandbox it does nothing (require_sandbox skips).
#   platform_schema_dump [URL]
#                          pg_dump --schema-only --no-owner of URL (default
#                          ADMIN_DATABASE_URL) without dbreg's own objects: tables, views
#                          and sequences admin.dbreg_*, and any other object (function,
#                          type, trigger, index, constraint, policy, comment...) whose name
#                          has a part starting with dbreg_.  Compare two dumps byte for
#                          byte to check that dbreg changed nothing of the platform's.
#   fernet_token encrypt|decrypt
#                          tests/fixtures/fernet-token: the platform's Fernet encryption,
#                          with the passphrase of DB_FERNET_PASSPHRASE(_FILE); stdin to
#                          stdout.
#
# Needs /usr/bin/python3 with python3-cryptography (Debian's package).

PLATFORM_FIXTURES=$DBREG_SOURCE_ROOT/tests/fixtures

fernet_token() {
	"$PLATFORM_FIXTURES/fernet-token" "$@"
}

# _pg_tool NAME: the sandbox's NAME (pg_dump, pg_restore) when it has one, else PATH's.
_pg_tool() {
	if [ -n "${PGSANDBOX_BINDIR-}" ] && [ -x "$PGSANDBOX_BINDIR/$1" ]; then
		printf '%s\n' "$PGSANDBOX_BINDIR/$1"
	else
		printf '%s\n' "$1"
	fi
}

platform_registry() {
	have_sandbox || return 0
	fresh_registry || return 1
	local db=$DBREG_TEST_REGISTRY password pw_primary pw_replica pw_analytics pw_backup
	unset DB_FERNET_PASSPHRASE_FILE
	DB_FERNET_PASSPHRASE=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	export DB_FERNET_PASSPHRASE

	# The extension, as the superuser, in the new database (\connect keeps the rest of
	# the superuser's connection parameters).
	psql_super -v "db=$db" -v "file=$PLATFORM_FIXTURES/platform-extensions.sql" <<-'EOF' || return 1
		\connect :"db"
		\i :file
	EOF
	psql_admin --single-transaction -f "$PLATFORM_FIXTURES/platform-registry.sql" || return 1

	password=$(sandbox_admin_password) || return 1
	pw_primary=$(fernet_token encrypt <<<"$password") || return 1
	pw_replica=$(fernet_token encrypt <<<"$password") || return 1
	pw_analytics=$(fernet_token encrypt <<<"$password") || return 1
	pw_backup=$(fernet_token encrypt <<<"$password") || return 1
	psql_admin --single-transaction \
		-v "target_host=${PGSANDBOX_HOST:-127.0.0.1}" \
		-v "target_port=${PGSANDBOX_PORT:?PGSANDBOX_PORT is not set}" \
		-v "target_db=$db" \
		-v "target_user=$DBREG_ADMIN_ROLE" \
		-v "pw_primary=$pw_primary" \
		-v "pw_replica=$pw_replica" \
		-v "pw_analytics=$pw_analytics" \
		-v "pw_backup=$pw_backup" \
		-f "$PLATFORM_FIXTURES/platform-seed.sql" || return 1
}

platform_schema_dump() {
	local url=${1:-${ADMIN_DATABASE_URL:?ADMIN_DATABASE_URL is not set}}
	local pg_dump pg_restore tmp rc=0
	pg_dump=$(_pg_tool pg_dump)
	pg_restore=$(_pg_tool pg_restore)
	tmp=$(mktemp -d) || return 1
	# A custom-format dump, its table of contents without dbreg's entries, then the plain
	# SQL of what is left: the same text as pg_dump --schema-only --no-owner would print,
	# less the \restrict and \unrestrict lines (pg_dump 17.6, 16.10, 15.14... and later),
	# whose key is new on every run.
	# A TOC line is "ID; TABLEOID OID TYPE SCHEMA NAME... OWNER"; the owner (dbreg_admin)
	# is dropped before looking for a name part that starts with dbreg_.
	"$pg_dump" --schema-only --no-owner --exclude-table='admin.dbreg_*' -Fc \
		-f "$tmp/dump" -d "$url" &&
		"$pg_restore" -l "$tmp/dump" >"$tmp/toc" &&
		awk '
			/^;/ { print; next }
			{
				line = $0
				sub(/^[^;]*; [0-9]+ [0-9]+ /, "", line)	# ID; TABLEOID OID
				sub(/ [^ ]*$/, "", line)		# OWNER
				if (line ~ /(^| |\.|\(|")dbreg_/) next
				print
			}' "$tmp/toc" >"$tmp/toc.kept" &&
		"$pg_restore" --no-owner -L "$tmp/toc.kept" -f "$tmp/schema.sql" "$tmp/dump" &&
		sed -e '/^\\restrict /d' -e '/^\\unrestrict /d' "$tmp/schema.sql" || rc=1
	rm -rf "$tmp"
	return "$rc"
}
