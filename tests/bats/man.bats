#!/usr/bin/env bats
# Man pages: every scdoc source builds, has the sections a reader looks for, and
# dbreg(1) leads to a page for every command of this milestone.

load helper

# The commands that have their own page.  A later milestone adds its commands here.
MILESTONE_COMMANDS=(init register update list show deregister encrypt-password generate-key
	health validate-config repl resolve-schema pool-stats psql exec conninfo export import rotate-key rotate-password)

# Every command of the command line (SPEC §11): dbreg(1) lists all of them.
ALL_COMMANDS=(init register update list show deregister encrypt-password generate-key
	health resolve-schema pool-stats validate-config repl psql exec conninfo export import rotate-key rotate-password)

setup() {
	MAN_DIR=$DBREG_SOURCE_ROOT/man
}

# The commands named in the COMMANDS section of dbreg.1.scd, one per line.
listed_commands() {
	awk '/^# COMMANDS/ { on = 1; next } /^# / { on = 0 } on && /^\*[a-z]/' \
		"$MAN_DIR/dbreg.1.scd" | sed -E 's/^\*([a-z-]+)\*.*/\1/'
}

@test "man: every page builds with scdoc" {
	command -v scdoc >/dev/null || skip "scdoc is not installed"
	local page
	for page in "$MAN_DIR"/*.scd; do
		run --separate-stderr scdoc <"$page"
		[ "$status" -eq 0 ] || fail "$(basename "$page"): scdoc failed: $stderr"
		[ -n "$output" ] || fail "$(basename "$page"): scdoc printed nothing"
	done
}

@test "man: every page renders without groff warnings" {
	command -v scdoc >/dev/null || skip "scdoc is not installed"
	command -v groff >/dev/null || skip "groff is not installed"
	local page roff
	roff=$BATS_TEST_TMPDIR/page.1
	for page in "$MAN_DIR"/*.scd; do
		scdoc <"$page" >"$roff"
		run groff -man -Tutf8 -ww -z "$roff"
		[ -z "$output" ] || fail "$(basename "$page"): $output"
	done
}

@test "man: every page's title matches its file name" {
	local page name
	for page in "$MAN_DIR"/*.scd; do
		name=$(basename "$page" .scd)        # dbreg-list.1
		run head -n 1 "$page"
		assert_output --regexp "^${name%.*}\\(${name##*.}\\) "
	done
}

@test "man: every page has the usual sections" {
	local page section
	for page in "$MAN_DIR"/*.1.scd; do
		for section in NAME SYNOPSIS DESCRIPTION OPTIONS EXAMPLES ENVIRONMENT \
			'EXIT STATUS' 'SEE ALSO'; do
			grep -qx "# $section" "$page" ||
				fail "$(basename "$page") has no $section section"
		done
	done
	# The library's pages (section 3) say what a call returns instead.
	for page in "$MAN_DIR"/*.3.scd; do
		for section in NAME SYNOPSIS DESCRIPTION ENVIRONMENT 'RETURN VALUE' EXAMPLE 'SEE ALSO'; do
			grep -qx "# $section" "$page" ||
				fail "$(basename "$page") has no $section section"
		done
	done
}

@test "man: every command page has an EXIT STATUS section" {
	local page
	for page in "$MAN_DIR"/dbreg-*.1.scd; do
		grep -qx '# EXIT STATUS' "$page" ||
			fail "$(basename "$page") has no EXIT STATUS section"
	done
}

@test "man: every command page documents -h and --help" {
	local page
	for page in "$MAN_DIR"/dbreg-*.1.scd; do
		grep -q '^\*-h\*, \*--help\*$' "$page" ||
			fail "$(basename "$page") does not document -h, --help"
	done
}

@test "man: dbreg(1) lists every command of the command line" {
	run listed_commands
	assert_success
	local cmd
	for cmd in "${ALL_COMMANDS[@]}"; do
		assert_line "$cmd"
	done
}

@test "man: every command of this milestone listed in dbreg(1) has a page" {
	run listed_commands
	local cmd
	for cmd in "${MILESTONE_COMMANDS[@]}"; do
		assert_line "$cmd"
		[ -f "$MAN_DIR/dbreg-$cmd.1.scd" ] || fail "no page man/dbreg-$cmd.1.scd for '$cmd'"
		grep -q "\*dbreg-$cmd\*(1)" "$MAN_DIR/dbreg.1.scd" ||
			fail "dbreg.1.scd does not refer to dbreg-$cmd(1)"
	done
}

@test "man: dbreg(1)'s SEE ALSO names every page of man/" {
	local see_also page name
	see_also=$(awk '/^# SEE ALSO/ { on = 1; next } /^# / { on = 0 } on' "$MAN_DIR/dbreg.1.scd")
	for page in "$MAN_DIR"/*.scd; do
		name=$(basename "$page" .scd)        # dbreg-list.1
		[ "$name" = dbreg.1 ] && continue
		[[ $see_also == *"*${name%.*}*(${name##*.})"* ]] ||
			fail "SEE ALSO in dbreg.1.scd does not name ${name%.*}(${name##*.})"
	done
}

@test "man: dbreg(1) and dbreg-init(1) give the schema version of lib/migrations.c" {
	local current page v
	current=$(sed -nE 's/^\t\{ ([0-9]+), ".*/\1/p' "$DBREG_SOURCE_ROOT/lib/migrations.c" | sort -n | tail -n 1)
	[ -n "$current" ] || fail "no migrations found in lib/migrations.c"
	for page in dbreg.1.scd dbreg-init.1.scd; do
		grep -q "schema at version $current" "$MAN_DIR/$page" || fail "$page never says version $current"
		for v in $(grep -oE '(at|to|schema) version [0-9]+' "$MAN_DIR/$page" | grep -oE '[0-9]+$'); do
			[ "$v" = "$current" ] || fail "$page says version $v; lib/migrations.c is at $current"
		done
	done
	grep -q "^\*$current\* " "$MAN_DIR/dbreg-init.1.scd" || fail "SCHEMA VERSIONS in dbreg-init.1.scd lacks $current"
}

@test "man: every page referred to exists" {
	local page ref
	for page in "$MAN_DIR"/*.scd; do
		for ref in $(grep -o '\*dbreg[a-z-]*\*([0-9])' "$page" | tr -d '*' | sort -u); do
			# dbreg-list(1) -> dbreg-list.1.scd
			ref=${ref/(/.}
			ref=${ref%)}
			[ -f "$MAN_DIR/$ref.scd" ] ||
				fail "$(basename "$page") refers to $ref, which has no page"
		done
	done
}

@test "man: every page is built by man/meson.build" {
	local page name
	for page in "$MAN_DIR"/*.scd; do
		name=$(basename "$page" .scd)
		name=${name%.[0-9]}
		grep -q "^  '$name',\$" "$MAN_DIR/meson.build" ||
			fail "$name is missing from man_pages in man/meson.build"
	done
}
