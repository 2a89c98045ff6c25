#!/usr/bin/env bats
# dbreg repl: script mode (a command a line from a pipe: output only, failing lines
# reported by number, exit 1 if any failed, no password from stdin), and the interactive
# shell on a real terminal driven through tmux: a command and its output, Tab completion
# of commands, options, values and connection names, Ctrl-C that cancels a command (a
# health run, a query waiting on a lock) or clears the line, a kept admin connection that
# comes back after its backend is terminated, quit/exit/Ctrl-D, and the history file.
#
# Every tmux session runs on a private server (tmux -L) with an explicit environment
# (env -i), and is killed in teardown, as are the python3 listeners.

# $stderr is set by bats (run --separate-stderr); exports in a test stay in that test.
# shellcheck disable=SC2154,SC2030,SC2031
load helper
load servers
load tmux

setup_file() { fresh_initialized_registry; }

teardown_file() {
	drop_registry
}

setup() {
	require_sandbox
	command -v jq >/dev/null || skip "jq is not installed"
	# Every test starts from the same two connections.
	psql_admin <<<"DELETE FROM admin.database_connections;"
	make_key
	unset DB_ENCRYPTION_KEY_FILE DB_ENCRYPTION_OLD_KEYS
	"$DBREG" register shared-primary --host db1.example --database app --user app \
		--no-password >/dev/null
	"$DBREG" register shared-replica --host db2.example --database app --user app \
		--no-password >/dev/null
	PROMPT="dbreg $DBREG_TEST_REGISTRY> "
	BG_PIDS=$BATS_TEST_TMPDIR/background.pids
	LOCKER_APP=dbreg-test-locker-$$
}

teardown() {
	tmux_stop_all
	stop_background
	if [ -n "${LOCKER_APP-}" ] && have_sandbox; then
		psql_super -v "app=$LOCKER_APP" >/dev/null <<<"SELECT pg_terminate_backend(pid)
			FROM pg_stat_activity WHERE application_name = :'app';" || true
	fi
}

# ---- script mode -----------------------------------------------------------------------

# script TEXT: run `dbreg repl` in a new session (no controlling terminal) with TEXT on
# its standard input; stdout in $output, stderr in $stderr.
script() {
	run --separate-stderr no_tty "$DBREG" repl <<<"$1"
}

# refute_prompt: neither stdout nor stderr of the last run shows a prompt or the banner.
refute_prompt() {
	refute_output --partial "dbreg $DBREG_TEST_REGISTRY>"
	refute_output --partial "type 'help'"
	[[ $stderr != *"dbreg $DBREG_TEST_REGISTRY>"* ]] || fail "a prompt on stderr: $stderr"
	[[ $stderr != *"type 'help'"* ]] || fail "the banner on stderr: $stderr"
}

@test "repl: script mode prints the output of each line in order, nothing else" {
	script "list --names
register aaa-new --host h --database d --user u --no-password
list --names
deregister aaa-new
list --names"
	assert_success
	refute_prompt
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 9
	assert_line --index 0 shared-primary
	assert_line --index 1 shared-replica
	assert_line --index 2 --regexp '^registered aaa-new \(id [0-9a-f-]{36}\)$'
	assert_line --index 3 aaa-new
	assert_line --index 4 shared-primary
	assert_line --index 5 shared-replica
	assert_line --index 6 "deregistered aaa-new"
	assert_line --index 7 shared-primary
	assert_line --index 8 shared-replica
}

@test "repl: script mode reports each failing line by its number, carries on, exits 1" {
	script "list --names
bogus
show no-such-connection
repl
list --names"
	assert_failure 1
	refute_prompt
	# Lines 1 and 5 both ran.
	assert_output "$(printf '%s\n' shared-primary shared-replica shared-primary shared-replica)"
	[[ $stderr == *"unknown command 'bogus'"* ]] || fail "no error for bogus: $stderr"
	[[ $stderr == *"no connection named 'no-such-connection'"* ]] ||
		fail "no error for show: $stderr"
	[[ $stderr == *"dbreg: line 2 failed (exit status 2)"* ]] || fail "line 2: $stderr"
	[[ $stderr == *"dbreg: line 3 failed (exit status 1)"* ]] || fail "line 3: $stderr"
	[[ $stderr == *"dbreg: line 4 failed (exit status 2)"* ]] || fail "line 4: $stderr"
	[[ $stderr != *"line 1 failed"* && $stderr != *"line 5 failed"* ]] ||
		fail "a good line reported as failed: $stderr"
}

@test "repl: script mode exits 0 when every line succeeds, 0 for an empty script" {
	script "list --names
show shared-primary -o json"
	assert_success
	assert_equal "$stderr" ""
	assert_line --index 0 shared-primary
	run jq -r .connection_name <<<"$(sed 1,2d <<<"$output")"
	assert_output shared-primary

	run --separate-stderr no_tty "$DBREG" repl </dev/null
	assert_success
	assert_output ""
	assert_equal "$stderr" ""
}

@test "repl: script mode counts a non-zero health status as a failed line" {
	# The sandbox itself, logging in through the sandbox's password file: healthy.
	"$DBREG" register self --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --no-password >/dev/null
	# A closed port: unhealthy.
	"$DBREG" register closed --host 127.0.0.1 --port 1 --database d --user u \
		--no-password >/dev/null
	run "$DBREG" health closed
	local want=$status
	[ "$want" -ne 0 ] || fail "health of a closed port exited 0"

	script "health self"
	assert_success
	assert_line --regexp '^self +HEALTHY '
	assert_equal "$stderr" ""

	script "health self
health closed
list --names"
	assert_failure 1
	assert_line --regexp '^self +HEALTHY '
	assert_line --regexp '^closed +UNHEALTHY '
	assert_line shared-primary
	[[ $stderr == *"dbreg: line 2 failed (exit status $want)"* ]] || fail "line 2: $stderr"
	[[ $stderr != *"line 1 failed"* && $stderr != *"line 3 failed"* ]] ||
		fail "a good line reported as failed: $stderr"
}

@test "repl: script mode refuses --password-stdin and never reads a password" {
	script "register pw --host h --database d --user u --password-stdin
list --names
encrypt-password --password-stdin
register pw2 --host h --database d --user u"
	assert_failure 1
	# Line 2 is a command, not the password of line 1.
	assert_output "$(printf '%s\n' shared-primary shared-replica)"
	[[ $stderr == *"--password-stdin cannot be used in a script"* ]] ||
		fail "no reason given: $stderr"
	[[ $stderr == *"dbreg: line 1 failed (exit status 2)"* ]] || fail "line 1: $stderr"
	[[ $stderr == *"dbreg: line 3 failed (exit status 2)"* ]] || fail "line 3: $stderr"
	# Without --no-password, register would prompt: there is no terminal to ask on.
	[[ $stderr == *"dbreg: line 4 failed (exit status 2)"* ]] || fail "line 4: $stderr"
	[[ $stderr != *"line 2 failed"* ]] || fail "line 2 failed: $stderr"
	assert_equal "$(registry_count "connection_name IN ('pw', 'pw2')")" 0
}

@test "repl: COMMAND | SHELL-COMMAND pipes the output through the shell" {
	script "list --names | sort -r
list --names | tr a-z A-Z | head -1
show shared-primary -o json | jq -r .host
list --names --bogus | cat"
	assert_failure 1
	assert_output "$(printf '%s\n' shared-replica shared-primary SHARED-PRIMARY db1.example)"
	# dbreg's own failure is the line's (as with pipefail).
	[[ $stderr == *"dbreg: line 4 failed (exit status 2)"* ]] || fail "$stderr"
}

@test "repl: a pipe's status is the shell command's when that fails; a '|' in quotes is a word" {
	script "list --names | grep -q no-such-name
list --names | grep -q shared-replica
list --names '|' x"
	assert_failure 1
	[[ $stderr == *"dbreg: line 1 failed (exit status 1)"* ]] || fail "$stderr"
	[[ $stderr != *"line 2 failed"* ]] || fail "$stderr"
	[[ $stderr == *"unexpected argument '|'"* ]] || fail "a quoted | was taken as a pipe: $stderr"
}

@test "repl: Try a pipe with nothing on one side" {
	script "list --names |
| sort"
	assert_failure 1
	assert_output ""
	assert_equal "$(grep -c 'a pipe needs a command on each side: COMMAND | SHELL-COMMAND' <<<"$stderr")" 2
}

@test "repl: the pipe's shell command gets no key and no admin URL" {
	script "list --names | env > $BATS_TEST_TMPDIR/pipe.env"
	assert_success
	run cat "$BATS_TEST_TMPDIR/pipe.env"
	refute_line --partial DB_ENCRYPTION_KEY
	refute_line --partial ADMIN_DATABASE_URL
	assert_no_secret "$DB_ENCRYPTION_KEY"
}

@test "repl: a usage error's hint says 'help COMMAND', not 'dbreg COMMAND --help'" {
	script "list --bogus
bogus"
	assert_failure 1
	[[ $stderr == *"Try 'help list' for more information."* ]] || fail "$stderr"
	[[ $stderr == *"Try 'help' for the commands."* ]] || fail "$stderr"
	[[ $stderr != *"Try 'dbreg"* ]] || fail "$stderr"
}

@test "repl: script mode splits words as a shell does" {
	# shellcheck disable=SC2016
	script "register quoted --host h --database 'my db' --user u --no-password --tag \"a \\\"b\\\" \\\\ c\" --tag d\\ e --tag 'f\\g' --tag 'h'\"i j\"k --tag x#y --tag '\$HOME'
show quoted -o json"
	assert_success
	assert_equal "$stderr" ""
	assert_line --index 0 --regexp '^registered quoted '
	local json
	json=$(sed 1d <<<"$output")
	assert_equal "$(jq -r .database_name <<<"$json")" "my db"
	# shellcheck disable=SC2016
	assert_equal "$(jq -c .tags <<<"$json")" '["a \"b\" \\ c","d e","f\\g","hi jk","x#y","$HOME"]'
	assert_equal "$(registry_field quoted database_name)" "my db"
}

@test "repl: script mode fails a line with an unterminated quote" {
	script "show 'shared-primary
list --names"
	assert_failure 1
	assert_output "$(printf '%s\n' shared-primary shared-replica)"
	[[ $stderr == *"unterminated quote"* ]] || fail "no reason given: $stderr"
	[[ $stderr == *"dbreg: line 1 failed (exit status 2)"* ]] || fail "line 1: $stderr"
}

@test "repl: script mode skips comments and blank lines, and still counts them" {
	script "# a comment

   
	# an indented comment
list --names   # a comment after a command
bogus"
	assert_failure 1
	assert_output "$(printf '%s\n' shared-primary shared-replica)"
	[[ $stderr == *"dbreg: line 6 failed (exit status 2)"* ]] || fail "line 6: $stderr"
	local n
	n=$(grep -c 'failed (exit status' <<<"$stderr")
	assert_equal "$n" 1
}

@test "repl: script mode knows help, quit and a pasted 'dbreg' prefix" {
	script "help
help list
dbreg list --names
quit
bogus"
	assert_success
	refute_prompt
	assert_line --partial "Commands"
	assert_line --regexp '^  list +'
	refute_line --regexp '^  repl +'
	assert_line --regexp '^Usage: dbreg list '
	assert_line shared-replica
	# Nothing after quit ran.
	assert_equal "$stderr" ""

	script "list --names
exit
bogus"
	assert_success
	assert_output "$(printf '%s\n' shared-primary shared-replica)"
	assert_equal "$stderr" ""
}

@test "repl: --help, and usage errors exit 2" {
	run --separate-stderr "$DBREG" repl --help </dev/null
	assert_success
	assert_line --index 0 --regexp '^Usage: dbreg repl'
	assert_line --partial -- '--help'
	run --separate-stderr "$DBREG" repl -h </dev/null
	assert_success
	run --separate-stderr "$DBREG" repl --bogus </dev/null
	assert_failure 2
	assert_output ""
	[[ $stderr == *"--bogus"* ]] || fail "the bad option is not named: $stderr"
	run --separate-stderr "$DBREG" repl extra </dev/null
	assert_failure 2
	assert_output ""
}

@test "repl: a bare dbreg without a terminal prints the usage on stderr, exit 2" {
	run --separate-stderr "$DBREG" </dev/null
	assert_failure 2
	assert_output ""
	[[ $stderr == *"Usage: dbreg"* ]] || fail "no usage on stderr: $stderr"
	run --separate-stderr no_tty "$DBREG" <<<"list --names"
	assert_failure 2
	assert_output ""
}

# ---- a real terminal, through tmux -----------------------------------------------------

# repl_env: the environment of the program in the pane, nothing else (env -i).
repl_env() {
	REPL_ENV=(
		HOME="$BATS_TEST_TMPDIR/home"
		PATH="$PATH"
		TERM=screen
		ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL"
		PGPASSFILE="$PGPASSFILE"
		DB_ENCRYPTION_KEY="$DB_ENCRYPTION_KEY"
		XDG_STATE_HOME="$BATS_TEST_TMPDIR/state"
	)
}

# tmux_start [COMMAND-WORD...]: run COMMAND (default: dbreg repl) on a fresh 200x50
# terminal (tmux_run), in the environment REPL_ENV (repl_env's unless set), then print
# "repl exited with status S" and linger 5 s so that the end shows.  Waits for the first
# prompt unless TMUX_NO_WAIT is set.
tmux_start() {
	[ $# -gt 0 ] || set -- "$DBREG" repl
	[ -n "${REPL_ENV+set}" ] || repl_env
	mkdir -p "$BATS_TEST_TMPDIR/home"
	tmux_run 200 50 "repl" env -i "${REPL_ENV[@]}" "$@"
	[ -n "${TMUX_NO_WAIT-}" ] || wait_for_prompts 1
}

# require_libedit: skip unless dbreg was built with libedit (completion and history);
# without it the REPL reads plain lines.
require_libedit() {
	local config=${DBREG_BUILD_ROOT-}/config.h
	if [ -n "${DBREG_BUILD_ROOT-}" ] && [ -f "$config" ]; then
		grep -q '^#define HAVE_LIBEDIT 1$' "$config" || skip "dbreg was built without libedit"
	elif command -v ldd >/dev/null; then
		ldd "$(command -v "$DBREG")" | grep -q libedit || skip "dbreg was built without libedit"
	fi
}

# prompts: how many lines of the pane start with the prompt.
prompts() {
	pane | grep -c "^dbreg $DBREG_TEST_REGISTRY>"
}

# cursor_line: the cursor's line up to the cursor, trailing blanks kept: what was typed
# and what completion put there.
cursor_line() {
	local x y line
	read -r x y < <(tx display -p -t repl '#{cursor_x} #{cursor_y}')
	line=$(tx capture-pane -p -N -t repl -S "$y" -E "$y")
	printf '%s' "${line:0:x}"
}

prompts_at_least() { (($(prompts) >= $1)); }
cursor_line_is() { [[ $(cursor_line) == "$1" ]]; }

# wait_for_prompts N [SECONDS]: until N prompt lines are on the pane.
wait_for_prompts() {
	poll "${2:-5}" prompts_at_least "$1" ||
		fail "no prompt number $1 on the terminal (exit status: $(cat "$BATS_TEST_TMPDIR/exit.status" 2>&1); pane dead, status, signal: $(tx list-panes -a -F "#{pane_dead} #{pane_dead_status} #{pane_dead_signal}" 2>&1)); it shows:
$(pane)"
}

# wait_for_cursor_line TEXT: until the cursor's line, up to the cursor, is exactly TEXT.
wait_for_cursor_line() {
	poll "${2:-5}" cursor_line_is "$1" ||
		fail "the line being edited is '$(cursor_line)', not '$1'; the terminal shows:
$(pane)"
}

# command_line TEXT: type TEXT and Enter, and wait until the next prompt.
command_line() {
	local n
	n=$(prompts)
	type_keys "$1"
	keys Enter
	wait_for_prompts $((n + 1)) "${2:-10}"
}

# pane_after N: the pane from the Nth prompt line on (1-based): the Nth command line typed
# (each command_line adds one), its output, and everything after.
pane_after() {
	pane | awk -v p="^dbreg $DBREG_TEST_REGISTRY>" -v n="$1" '$0 ~ p { k++ } k >= n'
}

@test "repl: on a terminal it shows the banner and the prompt, runs commands, survives errors" {
	tmux_start
	wait_for "type 'help'"
	wait_for_cursor_line "$PROMPT"
	command_line "list --names"
	run pane_after 1
	assert_line --index 0 "${PROMPT}list --names"
	assert_line --index 1 shared-primary
	assert_line --index 2 shared-replica
	command_line "bogus"
	wait_for "unknown command 'bogus'"
	command_line "help"
	run pane_after 3
	assert_line --regexp '^  show +'
	command_line "show shared-replica"
	run pane_after 4
	assert_line --regexp '^connection_name +shared-replica$'
	assert_line --regexp '^host +db2\.example$'
	[[ $(pane) != *"repl exited"* ]] || fail "the session ended: $(pane)"
}

@test "repl: a bare dbreg on a terminal starts the REPL; with stdout not a terminal, exit 2" {
	tmux_start "$DBREG"
	command_line "list --names"
	wait_for shared-replica
	type_keys quit
	keys Enter
	wait_for "repl exited with status 0"

	TMUX_NO_WAIT=1 tmux_start sh -c "exec \"\$0\" >\"\$1\" 2>\"\$2\"" "$DBREG" \
		"$BATS_TEST_TMPDIR/bare.out" "$BATS_TEST_TMPDIR/bare.err"
	wait_for "repl exited with status 2"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/bare.out")" ""
	grep -q '^Usage: dbreg' "$BATS_TEST_TMPDIR/bare.err" ||
		fail "no usage on stderr: $(cat "$BATS_TEST_TMPDIR/bare.err")"
}

@test "repl: Tab completes a command, and a unique completion adds a space" {
	require_libedit
	tmux_start
	type_keys li
	keys Tab
	wait_for_cursor_line "${PROMPT}list "
	type_keys --names
	keys Enter
	wait_for_prompts 2
	run pane_after 1
	assert_line "${PROMPT}list --names"
	assert_line shared-primary
	# After help, a command name.
	type_keys "help sh"
	keys Tab
	wait_for_cursor_line "${PROMPT}help show "
	keys Enter
	wait_for "Usage: dbreg show"
}

@test "repl: Tab completes options and their values" {
	require_libedit
	tmux_start
	type_keys "list --na"
	keys Tab
	wait_for_cursor_line "${PROMPT}list --names "
	type_keys "--type AN"
	keys Tab
	wait_for_cursor_line "${PROMPT}list --names --type ANALYTICS "
	type_keys "-o cs"
	keys Tab
	wait_for_cursor_line "${PROMPT}list --names --type ANALYTICS -o csv "
	keys C-u
	wait_for_cursor_line "$PROMPT"
	type_keys "health -o pro"
	keys Tab
	wait_for_cursor_line "${PROMPT}health -o prometheus "
	keys C-u
	type_keys "register x --ssl-mode verify-f"
	keys Tab
	wait_for_cursor_line "${PROMPT}register x --ssl-mode verify-full "
	keys C-u
	type_keys "list --na"
	keys Tab
	wait_for_cursor_line "${PROMPT}list --names "
	keys Enter
	wait_for_prompts 2
	run pane_after 1
	assert_line shared-primary
	assert_line shared-replica
}

@test "repl: Tab completes connection names, refreshed after a command changes the registry" {
	require_libedit
	tmux_start
	type_keys "show shared-pr"
	keys Tab
	wait_for_cursor_line "${PROMPT}show shared-primary "
	keys Enter
	wait_for_prompts 2
	run pane_after 1
	assert_line --regexp '^connection_name +shared-primary$'
	# Two candidates: their common prefix, no space.
	type_keys "show sh"
	keys Tab
	wait_for_cursor_line "${PROMPT}show shared-"
	keys C-u
	wait_for_cursor_line "$PROMPT"
	command_line "register shared-new --host h --database d --user u --no-password"
	wait_for "registered shared-new"
	type_keys "show shared-n"
	keys Tab
	wait_for_cursor_line "${PROMPT}show shared-new "
	keys Enter
	wait_for_prompts 4
	run pane_after 3
	assert_line --index 0 "${PROMPT}show shared-new"
	assert_line --regexp '^connection_name +shared-new$'
}

# ---- background servers ----------------------------------------------------------------

@test "repl: Ctrl-C stops a slow health run with a one-line summary, and the session goes on" {
	start_blackhole
	"$DBREG" register hole --host 127.0.0.1 --port "$BLACKHOLE_PORT" --database d --user u \
		--no-password >/dev/null
	tmux_start
	type_keys "health --timeout 30 hole"
	keys Enter
	wait_for_cursor_line ""
	sleep 1
	local t0=${EPOCHREALTIME/./}
	keys C-c
	wait_for_prompts 2 3
	local ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	((ms < 3000)) || fail "the prompt came back after $ms ms"
	run pane_after 1
	# One line of what was checked, not a row for every cancelled check.
	assert_line --regexp '^cancelled: 0 of 1 checked in [0-9.]+ s$'
	refute_line --regexp '^hole +UNKNOWN'
	refute_line --partial NAME
	assert_line cancelled
	refute_line --partial "repl exited"
	command_line "list --names"
	run pane_after 2
	assert_line hole
	assert_line shared-primary
}

@test "repl: Ctrl-C cancels a query waiting on a lock" {
	tmux_start
	# Another session holds the registry table until it is terminated (here or teardown).
	PGAPPNAME=$LOCKER_APP psql_admin -c "BEGIN; LOCK TABLE admin.database_connections;
		SELECT pg_sleep(60);" </dev/null >/dev/null 2>&1 3>&- &
	echo $! >>"$BG_PIDS"
	poll 5 locked || fail "the table was never locked"
	type_keys "list --names"
	keys Enter
	poll 5 dbreg_waits_on_lock || fail "list never waited on the lock:
$(pane)"
	keys C-c
	wait_for_prompts 2 3
	run pane_after 1
	assert_line cancelled
	refute_line shared-primary
	# The lock is still held: it was the query that was cancelled.
	locked || fail "the lock was released"
	psql_super -v "app=$LOCKER_APP" >/dev/null <<<"SELECT pg_terminate_backend(pid)
		FROM pg_stat_activity WHERE application_name = :'app';"
	command_line "list --names"
	run pane_after 2
	assert_line shared-primary
	assert_line shared-replica
}

# locked: the locker session holds its lock.
locked() {
	[ "$(psql_super -v "app=$LOCKER_APP" <<<"SELECT count(*) FROM pg_locks l
		JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = :'app' AND l.mode = 'AccessExclusiveLock'
		AND l.granted;")" -gt 0 ]
}

# dbreg_waits_on_lock: a dbreg backend on the registry waits for a lock.
dbreg_waits_on_lock() {
	[ "$(psql_super -v "db=$DBREG_TEST_REGISTRY" <<<"SELECT count(*) FROM pg_stat_activity
		WHERE datname = :'db' AND application_name = 'dbreg'
		AND wait_event_type = 'Lock';")" -gt 0 ]
}

@test "repl: Ctrl-C at the prompt clears the line and keeps the session" {
	tmux_start
	type_keys "deregister shared-primary"
	wait_for_cursor_line "${PROMPT}deregister shared-primary"
	keys C-c
	wait_for_prompts 2
	wait_for_cursor_line "$PROMPT"
	command_line "list --names"
	run pane_after 2
	assert_line --index 0 "${PROMPT}list --names"
	assert_line shared-primary
	refute_line --partial "unknown command"
	assert_equal "$(registry_count "connection_name = 'shared-primary' AND deleted_at IS NULL")" 1
	refute_line --partial "repl exited"
}

@test "repl: the admin connection comes back after its backend is terminated, said once" {
	tmux_start
	command_line "list --names"
	run psql_super -v "db=$DBREG_TEST_REGISTRY" <<<"SELECT pg_terminate_backend(pid)
		FROM pg_stat_activity WHERE datname = :'db' AND application_name = 'dbreg';"
	assert_success
	assert_line t
	command_line "show shared-primary"
	run pane_after 2
	assert_line "dbreg: the admin connection was lost; reconnected"
	assert_line --regexp '^connection_name +shared-primary$'
	command_line "list --names"
	run pane_after 3
	assert_line shared-replica
	local n
	n=$(pane | grep -c reconnected)
	assert_equal "$n" 1
}

@test "repl: quit, exit and Ctrl-D end the session with status 0" {
	tmux_start
	type_keys quit
	keys Enter
	wait_for "repl exited with status 0"
	tmux_start
	type_keys exit
	keys Enter
	wait_for "repl exited with status 0"
	tmux_start
	keys C-d
	wait_for "repl exited with status 0"
}

# history_entries FILE: the entries of a libedit history file, decoded, one per line.
history_entries() {
	sed -e '1{/^_HiStOrY_V2_$/d}' -e 's/\\040/ /g' "$1"
}

@test "repl: history goes to \$XDG_STATE_HOME/dbreg/history, mode 0600, and comes back" {
	require_libedit
	local hist=$BATS_TEST_TMPDIR/state/dbreg/history
	tmux_start
	command_line "list --names"
	command_line "show shared-primary"
	type_keys quit
	keys Enter
	wait_for "repl exited with status 0"
	[ -f "$hist" ] || fail "no history file at $hist"
	assert_equal "$(stat -c %a "$hist")" 600
	assert_equal "$(stat -c %a "$(dirname "$hist")")" 700
	run history_entries "$hist"
	assert_line "list --names"
	assert_line "show shared-primary"
	# The next session recalls them.
	tmux_start
	keys Up
	wait_for_cursor_line "${PROMPT}quit"
	keys Up
	wait_for_cursor_line "${PROMPT}show shared-primary"
}

@test "repl: history defaults to ~/.local/state/dbreg/history and keeps 1000 entries" {
	require_libedit
	local home=$BATS_TEST_TMPDIR/home hist i
	hist=$home/.local/state/dbreg/history
	mkdir -p "$(dirname "$hist")"
	{
		echo _HiStOrY_V2_
		for ((i = 1; i <= 1100; i++)); do echo "old-$i"; done
	} >"$hist"
	chmod 644 "$hist"
	repl_env
	local kept=()
	for i in "${REPL_ENV[@]}"; do
		[[ $i == XDG_STATE_HOME=* ]] || kept+=("$i")
	done
	REPL_ENV=("${kept[@]}")
	tmux_start
	command_line "list --names"
	type_keys quit
	keys Enter
	wait_for "repl exited with status 0"
	[ ! -e "$BATS_TEST_TMPDIR/state" ] || fail "XDG_STATE_HOME's default was not used"
	assert_equal "$(stat -c %a "$hist")" 600
	run history_entries "$hist"
	assert_equal "${#lines[@]}" 1000
	assert_line --index 999 quit
	assert_line --index 998 "list --names"
	refute_line old-1
	refute_line old-102
	assert_line --index 0 old-103
}

@test "repl: a refused line is not kept in the history: it may hold a password" {
	require_libedit
	local hist=$BATS_TEST_TMPDIR/state/dbreg/history
	tmux_start
	command_line "register leaky --url postgresql://u:hunter2-in-url@db.example/app --no-password"
	wait_for "contains a password"
	command_line "list --bogus hunter3-as-word"
	command_line "list --names"
	type_keys quit
	keys Enter
	wait_for "repl exited with status 0"
	run history_entries "$hist"
	assert_line "list --names"
	refute_output --partial hunter2-in-url
	refute_output --partial hunter3-as-word
}

@test "repl: --password-stdin typed at the terminal is not echoed" {
	tmux_start
	type_keys "encrypt-password --password-stdin --id 0f6b9a52-3c1e-4d7a-9b2f-5e8c1a7d3b40 --host h --port 5432 --database d --user u --ssl-mode prefer"
	keys Enter
	wait_for "Password for u@h:5432/d:"
	type_keys "typed-secret-42"
	keys Enter
	wait_for "dbreg:v2:"
	[[ $(pane) != *typed-secret-42* ]] || fail "the password was echoed: $(pane)"
}

@test "repl: psql gets the terminal, Ctrl-C cancels its query, and the REPL has it back after" {
	register_sandbox sbx
	tmux_start
	type_keys "psql sbx -- -X"
	keys Enter
	wait_for "$DBREG_TEST_REGISTRY=>"
	# \g, not ';': tmux reads a trailing ';' as its own command separator.
	type_keys 'SELECT 40 + 2 AS answer \g'
	keys Enter
	wait_for "(1 row)"
	type_keys 'SELECT pg_sleep(30) \g'
	keys Enter
	sleep 0.5
	keys C-c
	wait_for "canceling statement due to user request"
	[[ $(pane) != *"repl exited"* ]] || fail "Ctrl-C ended the REPL: $(pane)"
	type_keys '\q'
	keys Enter
	wait_for_prompts 2
	command_line "list --names"
	run pane_after 2
	assert_line sbx
	[[ $(pane) != *"repl exited"* ]] || fail "the session ended: $(pane)"
}
