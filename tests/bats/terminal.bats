#!/usr/bin/env bats
# Output for a person on a real terminal (tmux): tables sized to the width (COLUMNS or the
# tty) with long cells cut by "…", -o wide and --no-headers, and the pager ($DBREG_PAGER,
# $PAGER, less -FRX) when the output is taller than the screen, never on a pipe.

# $stderr is set by bats (run --separate-stderr).
# shellcheck disable=SC2154
load helper
load tmux

LONG_HOST=a-very-long-host-name.region-one.internal.example.com

setup_file() {
	fresh_initialized_registry
	# 30 rows, each wider than 80 columns: a table that must be cut and a screen it overflows.
	local i
	for i in $(seq -w 1 30); do
		"$DBREG" register "tenant-shard-with-a-long-name-$i" --host "$i.$LONG_HOST" --port 5432 \
			--database app --user app_user --no-password --tag fleet >/dev/null
	done
	# Nothing listens on port 1: health fails fast, without a name to resolve.
	"$DBREG" register short --host 127.0.0.1 --port 1 --database d --user u --no-password >/dev/null
	"$DBREG" register refused-with-a-long-name-for-the-table --host 127.0.0.1 --port 1 --database d \
		--user u --no-password >/dev/null
}

teardown_file() { drop_registry; }

setup() {
	require_sandbox
	make_key
}

teardown() { tmux_stop_all; }

# on_terminal COLS ROWS SHELL-COMMAND [VAR=VALUE...]: run SHELL-COMMAND (with $DBREG on its
# PATH as dbreg) on a COLSxROWS tmux terminal, in a clean environment with the registry's
# URL and these variables; waits for it to end.  The pane is in $output.
on_terminal() {
	local cols=$1 rows=$2 cmd=$3
	shift 3
	tmux_run "$cols" "$rows" "dbreg" env -i HOME="$BATS_TEST_TMPDIR" TERM=screen LANG=C.UTF-8 \
		PATH="$(dirname "$DBREG"):/usr/bin:/bin" ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL" \
		PGPASSFILE="$PGPASSFILE" DB_ENCRYPTION_KEY="$DB_ENCRYPTION_KEY" "$@" bash --norc -c "$cmd"
	wait_for "dbreg exited with status" 15
	output=$(tx capture-pane -p -S - -t repl | sed 's/[[:blank:]]*$//')
	mapfile -t lines <<<"$output"
}

# widest_line: the longest line of $output, in characters.
widest_line() {
	python3 -c 'import sys; print(max((len(l) for l in sys.stdin.read().splitlines()), default=0))' <<<"$output"
}

@test "terminal: at 80 columns the list fits, long cells cut with …, headers whole" {
	on_terminal 80 60 'dbreg list --no-pager'
	assert_line "dbreg exited with status 0"
	(($(widest_line) <= 80)) || fail "a line is wider than 80 columns:
$output"
	assert_line --regexp '^NAME +TYPE +REGION +HOST +PORT +DATABASE +USER +ACTIVE +HEALTHY$'
	assert_line --regexp '^tenant-shard-with-[^ ]*… .* 07\.[^ ]*… +5432 +app '
	refute_output --partial "$LONG_HOST"
	# Cells that fit their column stay whole.
	assert_line --regexp '^short +[^ ]+ +- +[^ ]+ +1 +d +u +yes +yes$'
}

@test "terminal: at 200 columns nothing is cut" {
	on_terminal 200 60 'dbreg list --no-pager'
	assert_line "dbreg exited with status 0"
	assert_line --regexp "^tenant-shard-with-a-long-name-07 +SHARED +- +07\\.$LONG_HOST +5432 +app +app_user +yes +yes$"
	refute_output --partial …
}

@test "terminal: COLUMNS overrides the terminal's width" {
	on_terminal 200 60 'dbreg list --no-pager' COLUMNS=70
	(($(widest_line) <= 70)) || fail "a line is wider than 70 columns:
$output"
	assert_line --partial …
}

@test "terminal: -o wide shows every cell whole, at any width" {
	on_terminal 80 60 'dbreg list -o wide --no-pager | cat; dbreg list -o wide --no-pager'
	assert_line "dbreg exited with status 0"
	refute_output --partial …
	local joined
	joined=$(tx capture-pane -p -J -S - -t repl)
	[[ $joined =~ tenant-shard-with-a-long-name-07\ +SHARED\ +-\ +07\.$LONG_HOST\ +5432 ]] ||
		fail "a wide row is not whole: $joined"
}

@test "terminal: the health table fits 80 columns too" {
	on_terminal 80 60 'dbreg health --no-pager --no-update --timeout 1 short refused-with-a-long-name-for-the-table'
	(($(widest_line) <= 80)) || fail "a line is wider than 80 columns:
$output"
	assert_line --regexp '^NAME +STATUS +LATENCY +ERROR$'
	assert_line --regexp '^2 checked in [0-9.]+ s: 2 unhealthy$'
	assert_line --regexp '^refused-with-a-long-name-for-the-table +UNHEALTHY +[0-9]+ ms +.*…$'
}

@test "terminal: no terminal, no cutting: a pipe gets every cell whole" {
	run --separate-stderr env COLUMNS=40 "$DBREG" list
	assert_success
	assert_line --partial "07.$LONG_HOST"
	refute_output --partial …
}

@test "terminal: --no-headers leaves out the header line (and health's footer)" {
	run --separate-stderr "$DBREG" list --no-headers --tag fleet
	assert_success
	assert_equal "${#lines[@]}" 30
	refute_line --partial NAME
	assert_line --index 0 --regexp '^tenant-shard-with-a-long-name-01 +SHARED'
	run --separate-stderr "$DBREG" health --no-headers --no-update --timeout 1 short
	assert_failure 2
	assert_equal "${#lines[@]}" 1
	assert_line --index 0 --regexp '^short +UNHEALTHY '
}

@test "terminal: Try -o with an unknown format names wide among the others" {
	run --separate-stderr "$DBREG" list -o narrow
	assert_failure 2
	assert_equal "$stderr" "dbreg: error: -o/--format: 'narrow' is not one of table, wide, json, csv
Try 'dbreg list --help' for more information."
}

@test "terminal: output taller than the screen goes through \$PAGER; a screenful does not" {
	on_terminal 80 30 'dbreg list; dbreg show short' PAGER='sed s/^/paged:/'
	assert_line "dbreg exited with status 0"
	assert_line --regexp '^paged:NAME +TYPE'
	assert_line --regexp '^paged:tenant-shard-with-a-…  SHA…  -       30\.… '
	# show's 27 lines fit on 30 rows: no pager.
	assert_line --regexp '^connection_name +short$'
	refute_line --regexp '^paged:connection_name'
}

@test "terminal: \$DBREG_PAGER comes before \$PAGER; --no-pager and dbreg --no-pager turn it off" {
	on_terminal 80 24 'dbreg list --tag fleet; dbreg list --no-pager --tag fleet | head -0; dbreg list --no-pager; dbreg --no-pager list' \
		PAGER='sed s/^/pager:/' DBREG_PAGER='sed s/^/dbreg-pager:/'
	assert_line "dbreg exited with status 0"
	assert_line --regexp '^dbreg-pager:NAME'
	refute_line --regexp '^pager:'
	# Twice without a pager (head -0 shows nothing).
	assert_equal "$(grep -c '^NAME' <<<"$output")" 2
}

@test "terminal: the pager is never used on a pipe" {
	run --separate-stderr env PAGER='sed s/^/paged:/' "$DBREG" list
	assert_success
	refute_output --partial paged:
}

@test "terminal: the default pager is less -FRX, and q quits it" {
	command -v less >/dev/null || skip "less is not installed"
	tmux_run 80 24 "dbreg" env -i HOME="$BATS_TEST_TMPDIR" TERM=screen LANG=C.UTF-8 \
		PATH="$(dirname "$DBREG"):/usr/bin:/bin" ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL" \
		PGPASSFILE="$PGPASSFILE" bash --norc -c 'dbreg list'
	# The first screenful, and less's prompt at the bottom.
	wait_for "20.…"
	sleep 0.5
	run pane
	refute_line --partial "dbreg exited"
	refute_line --partial "21.…"
	assert_equal "${#lines[@]}" 24
	assert_line --index 23 :
	keys q
	wait_for "dbreg exited with status 0"
}

@test "terminal: the pager's environment has no key, no admin URL" {
	on_terminal 80 24 'dbreg list' DBREG_PAGER="env > $BATS_TEST_TMPDIR/pager.env"
	assert_line "dbreg exited with status 0"
	run cat "$BATS_TEST_TMPDIR/pager.env"
	assert_line --regexp '^LESS='
	assert_line TERM=screen
	refute_line --partial DB_ENCRYPTION_KEY
	refute_line --partial ADMIN_DATABASE_URL
	refute_line --partial PGPASSFILE
	assert_no_secret "$DB_ENCRYPTION_KEY"
}

@test "terminal: pool-stats fits 80 columns and takes --no-headers and -o wide" {
	on_terminal 80 60 'dbreg pool-stats --no-pager short refused-with-a-long-name-for-the-table'
	assert_line "dbreg exited with status 1"
	(($(widest_line) <= 80)) || fail "a line is wider than 80 columns:
$output"
	assert_line --regexp '^short +.*…$'
	run --separate-stderr "$DBREG" pool-stats --no-headers -o wide short
	assert_failure 1
	refute_line --partial NAME
	refute_line --partial SERVER
	assert_line --regexp '^short +5 +20 .*Connection refused'
}
