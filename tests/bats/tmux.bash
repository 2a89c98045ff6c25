# tmux.bash — a real terminal for the bats tests, driven through tmux: each session on a
# private server (tmux -L) named after the test, killed by tmux_stop_all in teardown.
# shellcheck shell=bash

# tx TMUX-ARG...: tmux on this test's current private server.
tx() {
	TMUX='' tmux -L "$TMUX_SOCKET" -f /dev/null "$@" 3>&-
}

# tmux_run COLS ROWS WHAT COMMAND-WORD...: run COMMAND on a fresh COLSxROWS terminal of a
# new private tmux server; when it ends, print "WHAT exited with status S" (also added
# to $BATS_TEST_TMPDIR/exit.status) and linger 5 s so that the end shows; a pane whose
# shell dies (killed with the program) stays, to be looked at.
tmux_run() {
	command -v tmux >/dev/null || skip "tmux is not installed"
	local cols=$1 rows=$2 what=$3 cmd status_file
	shift 3
	TMUX_STARTS=$((${TMUX_STARTS:-0} + 1))
	TMUX_SOCKET=dbreg-$BATS_TEST_NUMBER-$$-$TMUX_STARTS
	echo "$TMUX_SOCKET" >>"$BATS_TEST_TMPDIR/tmux.sockets"
	cmd=$(printf '%q ' "$@")
	status_file=$(printf '%q' "$BATS_TEST_TMPDIR/exit.status")
	tx new-session -d -s repl -x "$cols" -y "$rows" \
		"$cmd; s=\$?; echo \"$what exited with status \$s\"; echo \$s >>$status_file; sleep 5" \; \
		set-option -t repl remain-on-exit on ||
		fail "tmux did not start"
}

# tmux_stop_all: kill every tmux server this test started.
tmux_stop_all() {
	local sock
	[ -f "$BATS_TEST_TMPDIR/tmux.sockets" ] || return 0
	while read -r sock; do
		TMUX='' tmux -L "$sock" kill-server 2>/dev/null 3>&- || true
		rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$sock"
	done <"$BATS_TEST_TMPDIR/tmux.sockets"
	rm -f "$BATS_TEST_TMPDIR/tmux.sockets"
}

# pane: everything on the terminal so far, scrollback included, wrapped lines joined,
# trailing blanks dropped.
pane() {
	tx capture-pane -p -J -S - -t repl 2>/dev/null | sed 's/[[:blank:]]*$//'
}

# poll SECONDS COMMAND...: run COMMAND every 50 ms until it succeeds; 1 on timeout.
poll() {
	local deadline=$((${EPOCHREALTIME/./} + ${1%.*} * 1000000))
	shift
	until "$@"; do
		((${EPOCHREALTIME/./} < deadline)) || return 1
		sleep 0.05
	done
}

pane_has() { [[ $(pane) == *"$1"* ]]; }

# wait_for TEXT [SECONDS]: until the pane shows TEXT (default 5 s).
wait_for() {
	poll "${2:-5}" pane_has "$1" ||
		fail "the terminal never showed '$1'; it shows:
$(pane)"
}

# type_keys TEXT: type TEXT (literally, no Enter).
type_keys() {
	tx send-keys -t repl -l -- "$1"
}

# keys KEY...: send tmux key names (Enter, Tab, C-c, C-d, Up, ...).
keys() {
	tx send-keys -t repl "$@"
}

