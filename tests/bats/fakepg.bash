# Fake PostgreSQL servers (tests/fakepg.py) for tests of hostile and broken targets:
# `load fakepg` in a .bats file next to this one.  Each server listens on 127.0.0.1 on a
# port of its own; its files are $BATS_FILE_TMPDIR/fakepg-NAME.{port,log,pid,stderr}, and
# fakepg-NAME.port.mode holds the mode of the connections that start after it is written.
#
# Functions:
#   fakepg_start NAME [ARG...]   start one (ARG: --auth, --mode, --notice, --version,
#                                --listen-only; see tests/fakepg.py --help); exports
#                                FAKEPG_PORT_<NAME> (upper-cased, - becomes _) and
#                                FAKEPG_PORT.  Fails, saying why on stderr, if it does
#                                not come up within 10 s.
#   fakepg_stop [NAME]           stop it (without NAME: every one started in this file)
#   fakepg_mode NAME MODE        the mode of its next connections (empty MODE: back to
#                                the one it was started with)
#   fakepg_log NAME              print the path of its log (JSON lines: startup,
#                                password, query, cancel)
#   fakepg_clear NAME            empty its log
#
# A server started in setup_file can be stopped in teardown_file; one started in a test
# or setup is best stopped in teardown.

_fakepg_base() {
	printf '%s/fakepg-%s' "${BATS_FILE_TMPDIR:?BATS_FILE_TMPDIR is not set}" "$1"
}

_fakepg_check_name() {
	if [[ ! ${1-} =~ ^[A-Za-z0-9_-]+$ ]]; then
		echo "fakepg: bad server name '${1-}' (letters, digits, _ and - only)" >&2
		return 2
	fi
}

fakepg_start() {
	local name=${1-} base pid var port i
	_fakepg_check_name "$name" || return
	shift
	base=$(_fakepg_base "$name")
	if [ -f "$base.pid" ] && kill -0 "$(cat "$base.pid")" 2>/dev/null; then
		echo "fakepg_start: fakepg $name is already running (pid $(cat "$base.pid"))" >&2
		return 1
	fi
	rm -f "$base.port" "$base.port.mode"
	python3 "${DBREG_SOURCE_ROOT:?DBREG_SOURCE_ROOT is not set}/tests/fakepg.py" \
		--port-file "$base.port" --log "$base.log" "$@" \
		</dev/null >>"$base.stderr" 2>&1 3>&- &
	pid=$!
	echo "$pid" >"$base.pid"
	for ((i = 0; i < 200; i++)); do
		[ -s "$base.port" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s "$base.port" ]; then
		echo "fakepg_start: fakepg $name did not come up; its stderr:" >&2
		sed 's/^/  /' "$base.stderr" >&2
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		rm -f "$base.pid"
		return 1
	fi
	port=$(<"$base.port")
	var=${name^^}
	var=FAKEPG_PORT_${var//-/_}
	printf -v "$var" '%s' "$port"
	export "${var?}"
	export FAKEPG_PORT=$port
}

# _fakepg_gone PID: true once PID has exited (a zombie counts as exited).
_fakepg_gone() {
	local state
	kill -0 "$1" 2>/dev/null || return 0
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ "$state" = Z ]
}

_fakepg_stop_one() {
	local base=$1 pid i
	[ -f "$base.pid" ] || return 0
	pid=$(<"$base.pid")
	rm -f "$base.pid"
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	# our own child: wait reaps it; otherwise (started in setup_file, stopped in a test)
	# watch it go, and kill it for good after 5 s
	wait "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		_fakepg_gone "$pid" && return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	return 0
}

fakepg_stop() {
	local f
	if [ $# -gt 0 ]; then
		_fakepg_check_name "$1" || return
		_fakepg_stop_one "$(_fakepg_base "$1")"
		return 0
	fi
	for f in "${BATS_FILE_TMPDIR:?BATS_FILE_TMPDIR is not set}"/fakepg-*.pid; do
		[ -e "$f" ] || continue
		_fakepg_stop_one "${f%.pid}"
	done
	return 0
}

fakepg_mode() {
	local name=${1-} mode=${2-} base
	_fakepg_check_name "$name" || return
	base=$(_fakepg_base "$name")
	if [ -z "$mode" ]; then
		rm -f "$base.port.mode"
		return 0
	fi
	printf '%s\n' "$mode" >"$base.port.mode.tmp" && mv -f "$base.port.mode.tmp" "$base.port.mode"
}

fakepg_log() {
	_fakepg_check_name "${1-}" || return
	printf '%s\n' "$(_fakepg_base "$1").log"
}

fakepg_clear() {
	_fakepg_check_name "${1-}" || return
	: >"$(_fakepg_base "$1").log"
}
