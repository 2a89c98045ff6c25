# servers.bash: small python3 servers for the health tests, started per test in the
# background (their pids in $BG_PIDS) and stopped by stop_background: a listener that never
# answers, and a proxy that delays each new connection.  Only 127.0.0.1.

# A listener that accepts every TCP connection and never says a word.
BLACKHOLE_PY='
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(128)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    c, _ = s.accept()
    held.append(c)
'

# A TCP proxy to 127.0.0.1:UPSTREAM that sleeps DELAY_MS on each new connection first.
SLOWPROXY_PY='
import os, socket, sys, threading, time
portfile, upstream, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1000.0
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(128)
def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for x in (a, b):
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(c):
    time.sleep(delay)
    try:
        u = socket.create_connection(("127.0.0.1", upstream))
    except OSError:
        c.close()
        return
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    pump(u, c)
open(portfile + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'

# start_server VAR SCRIPT [ARG...]: run a python3 server in the background; set VAR to
# the port it listens on.
start_server() {
	local var=$1 script=$2 portfile i
	shift 2
	portfile=$(mktemp -u "$BATS_TEST_TMPDIR/port.XXXXXX")
	python3 -c "$script" "$portfile" "$@" </dev/null >/dev/null 2>&1 3>&- &
	echo $! >>"$BG_PIDS"
	for ((i = 0; i < 100; i++)); do
		[ -s "$portfile" ] && break
		sleep 0.05
	done
	[ -s "$portfile" ] || fail "the python3 server did not start"
	printf -v "$var" '%s' "$(cat "$portfile")"
}

start_blackhole() { start_server BLACKHOLE_PORT "$BLACKHOLE_PY"; }
start_slow_proxy() { start_server PROXY_PORT "$SLOWPROXY_PY" "$PGSANDBOX_PORT" "${1:-300}"; }

stop_background() {
	local pid
	[ -f "${BG_PIDS-}" ] || return 0
	while read -r pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done <"$BG_PIDS"
	rm -f "$BG_PIDS"
}

