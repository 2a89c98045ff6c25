#!/usr/bin/env bats
# The library from outside: install dbreg into a temporary DESTDIR, build examples/connect.c
# against the installed libdbreg.pc with pkg-config alone, and open a registered connection
# by name with it, on both registry shapes.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper
load platform

setup_file() {
	fresh_initialized_registry
	have_sandbox || return 0
	make_key
	register_sandbox sbx
	# One install and one build for every test of the file.
	export STAGE=$BATS_FILE_TMPDIR/stage
	meson install -C "$DBREG_BUILD_ROOT" --destdir "$STAGE" --no-rebuild --quiet >/dev/null 2>&1 || return 0
	local pc cflags="" prefix
	pc=$(find "$STAGE" -name libdbreg.pc | head -1)
	# The installed file, its prefix moved into the stage (pkg-config's --define-variable
	# would move libpq's too).
	prefix=$(pkg-config --variable=prefix "$pc")
	mkdir -p "$BATS_FILE_TMPDIR/pc"
	sed "s|^prefix=.*|prefix=$STAGE$prefix|" "$pc" >"$BATS_FILE_TMPDIR/pc/libdbreg.pc"
	export PKG_CONFIG_PATH=$BATS_FILE_TMPDIR/pc
	export STAGE_LIBDIR
	STAGE_LIBDIR=$(dirname "$(find "$STAGE" -name 'libdbreg.so*' | head -1)")
	# A sanitized library wants a sanitized program.
	[ -z "${ASAN_OPTIONS-}" ] || cflags="-fsanitize=address,undefined"
	# shellcheck disable=SC2046,SC2086
	cc $cflags -Wall -Wextra -Werror -o "$BATS_FILE_TMPDIR/connect" "$DBREG_SOURCE_ROOT/examples/connect.c" \
		$(pkg-config --cflags --libs libdbreg) 2>"$BATS_FILE_TMPDIR/cc.log" || true
}

teardown_file() { drop_registry; }

setup() {
	require_sandbox
	command -v pkg-config >/dev/null || skip "pkg-config is not installed"
}

connect() {
	LD_LIBRARY_PATH=$STAGE_LIBDIR "$BATS_FILE_TMPDIR/connect" "$@"
}

@test "library: the installed package has the header, the library and a libdbreg.pc that requires libpq" {
	[ -n "$(find "$STAGE" -name dbreg.h)" ] || fail "no dbreg.h installed"
	[ -n "$STAGE_LIBDIR" ] || fail "no libdbreg.so installed"
	run pkg-config --print-requires libdbreg
	assert_success
	assert_line --regexp '^libpq'
}

@test "library: examples/connect.c builds against the installed libdbreg.pc with pkg-config" {
	[ -x "$BATS_FILE_TMPDIR/connect" ] || fail "it did not build: $(cat "$BATS_FILE_TMPDIR/cc.log")"
}

@test "library: connect NAME prints user|database of the registered connection" {
	run --separate-stderr connect sbx
	assert_success
	assert_output "$DBREG_ADMIN_ROLE|$DBREG_TEST_REGISTRY"
	assert_no_secret "$(sandbox_admin_password)"
}

@test "library: connect names what went wrong: an unknown name, no key" {
	run --separate-stderr connect no-such-db
	assert_failure 1
	[[ $stderr == *"no-such-db"* ]] || fail "$stderr"
	unset DB_ENCRYPTION_KEY
	run --separate-stderr connect sbx
	assert_failure 1
	[[ $stderr == *DB_ENCRYPTION_KEY* ]] || fail "$stderr"
}

@test "library: dbreg_open_tenant connects to the tenant's connection with search_path at its schema" {
	psql_admin <<-'EOF'
		INSERT INTO admin.tenants (slug, name, schema_name, status, database_connection_id)
		VALUES ('acme-corp', 'Acme', 'tenant_acme_corp', 'active',
		        (SELECT id FROM admin.database_connections WHERE connection_name = 'sbx'));
	EOF
	run --separate-stderr "$DBREG_BUILD_ROOT/tests/open-tenant" acme-corp
	assert_success
	assert_output "tenant_acme_corp|tenant_acme_corp, public|$DBREG_ADMIN_ROLE"
	run --separate-stderr "$DBREG_BUILD_ROOT/tests/open-tenant" no-such-tenant
	assert_failure 1
	[[ $stderr == *"no tenant 'no-such-tenant'"* ]] || fail "$stderr"
}

@test "library: connect works on the platform's registry, its password a Fernet token" {
	local saved_url=$ADMIN_DATABASE_URL saved_db=$DBREG_TEST_REGISTRY
	platform_registry
	run --separate-stderr connect neofast-shared-us-replica
	assert_success
	assert_output "$DBREG_ADMIN_ROLE|$DBREG_TEST_REGISTRY"
	drop_registry
	export ADMIN_DATABASE_URL=$saved_url DBREG_TEST_REGISTRY=$saved_db
}

@test "library: dbreg_filter_set_fields reads only the fields asked for, by stream and whole" {
	local mode
	for mode in stream list; do
		run --separate-stderr "$DBREG_BUILD_ROOT/tests/list-fields" "$mode" host port
		assert_success
		assert_output "connection_name=sbx host=$PGSANDBOX_HOST port=$PGSANDBOX_PORT"
	done
	# No field: every field, as dbreg_list always read them.
	run --separate-stderr "$DBREG_BUILD_ROOT/tests/list-fields" stream
	assert_success
	[[ $output == "id="*" connection_name=sbx "*" metadata="*" tags="*" password_format="* ]] || fail "$output"
	run --separate-stderr "$DBREG_BUILD_ROOT/tests/list-fields" stream host no_such_field
	assert_failure 1
	assert_output ""
	[[ $stderr == *"no such field"* ]] || fail "$stderr"
}

@test "library: dbreg_filter_set_fields on the platform's registry: region_id brings its code" {
	local saved_url=$ADMIN_DATABASE_URL saved_db=$DBREG_TEST_REGISTRY
	platform_registry
	run --separate-stderr "$DBREG_BUILD_ROOT/tests/list-fields" stream region_id is_active
	assert_success
	[[ ${lines[*]} == *"connection_name=neofast-shared-us-replica region_id="*" is_active=true region_code=us-east-1"* ]] ||
		fail "$output"
	[[ $output != *"host="* && $output != *"password"* ]] || fail "$output"
	# Its code alone: the same two.
	run --separate-stderr "$DBREG_BUILD_ROOT/tests/list-fields" list region_code
	assert_success
	[[ ${lines[*]} == *"connection_name=neofast-shared-us-replica region_id="*" region_code=us-east-1"* ]] ||
		fail "$output"
	drop_registry
	export ADMIN_DATABASE_URL=$saved_url DBREG_TEST_REGISTRY=$saved_db
}
