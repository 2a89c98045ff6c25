# tests/bench/bench-lib.sh — what the benchmarks in tests/bench/ share; sourced, not run.
#
# The sourcing script sets `prog` (its name for messages), `here` (this directory),
# `top` (the source tree) and `keep` (1: leave the work directory and the sandbox),
# then calls, in this order:
#   bench_tools            GNU time (installed when missing and root), python3, dbreg
#                          (built when missing; DBREG overrides): sets python, dbreg
#   bench_sandbox MAXCONN  a fresh /tmp/dbreg-bench.XXXXXX with a pg-sandbox in it, stopped
#                          and removed on exit (Ctrl-C too): sets work, sandbox, admin_pw,
#                          port, bindir, psql, postmaster; exports ADMIN_DATABASE_URL,
#                          PGPASSFILE; defines sql (psql on the admin database)
#   bench_registry         dbreg init, dbreg generate-key (exported DB_ENCRYPTION_KEY)
# and then, as needed, insert_targets, bench_proxy / bench_proxy_stop, refused_port,
# server_quiet (after setting base_children=$(server_children)), json_summary and
# json_errors.  Exit statuses: 1 problems (problem), 3 could not run (die).
# shellcheck shell=bash disable=SC2034,SC2154  # sets and reads the caller's globals

say() { printf '%s\n' "$*"; }
note() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 3; }

# dbreg misbehaving is reported, counted, and the run goes on.
problems=0
problem() {
	problems=$((problems + 1))
	printf '%s: PROBLEM: %s\n' "$prog" "$*" >&2
	printf '  PROBLEM: %s\n' "$*"
}

bench_tools() {
	if [ ! -x /usr/bin/time ]; then
		if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
			note "installing GNU time (apt-get install -y time)"
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null 2>&1 \
				|| { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null 2>&1; } \
				|| die "could not install GNU time"
		fi
		[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is needed: apt-get install time"
	fi
	python=$(command -v python3 || true)
	[ -n "$python" ] || die "python3 is needed (JSON and the delay proxy)"
	dbreg=${DBREG:-}
	if [ -z "$dbreg" ]; then
		dbreg=$top/build/cmd/dbreg
		if [ ! -x "$dbreg" ]; then
			note "building dbreg (meson setup build && meson compile -C build)"
			(cd "$top" && { [ -d build ] || meson setup build >/dev/null; } && meson compile -C build >/dev/null) \
				|| die "could not build dbreg"
		fi
	fi
	[ -x "$dbreg" ] || die "dbreg not found at $dbreg (set DBREG)"
	dbreg=$(cd "$(dirname "$dbreg")" && pwd -P)/$(basename "$dbreg")
}

bench_pids=()      # background helpers (the delay proxies), stopped on exit
work=
sandbox=
bench_cleanup() {
	local rc=$? p
	set +e
	for p in "${bench_pids[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ -n "$work" ]; then
		if [ "${keep:-0}" = 1 ]; then
			note "kept $work (stop with: scripts/pg-sandbox stop $sandbox)"
		else
			[ -z "$sandbox" ] || "$top/scripts/pg-sandbox" stop "$sandbox" >/dev/null 2>&1
			rm -rf "$work"
		fi
	fi
	exit "$rc"
}

bench_sandbox() { # MAX_CONNECTIONS
	work=$(mktemp -d /tmp/dbreg-bench.XXXXXX)
	chmod 0755 "$work"     # the server user must reach $work/pg
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	sandbox=$work/pg
	note "starting a PostgreSQL sandbox in $sandbox (max_connections $1)"
	"$top/scripts/pg-sandbox" start "$sandbox" --max-connections "$1" >"$work/sandbox.env" 2>"$work/sandbox.err" \
		|| { cat "$work/sandbox.err" >&2; die "the sandbox did not start"; }
	# shellcheck disable=SC1091
	. "$work/sandbox.env"
	admin_pw=$(cat "$sandbox/admin.password")
	port=$PGSANDBOX_PORT
	bindir=$PGSANDBOX_BINDIR
	psql=$bindir/psql
	[ -x "$psql" ] || psql=$(command -v psql || true)
	[ -n "$psql" ] || die "psql not found"
	postmaster=$(head -n1 "$sandbox/data/postmaster.pid")
	export ADMIN_DATABASE_URL PGPASSFILE
}

# The postmaster's children; server_quiet waits (at most 10 s) until no more than
# base_children (counted once the sandbox is idle) are left: the last run's backends
# are gone and reaped.
server_children() { ps -o pid= --ppid "$postmaster" 2>/dev/null | wc -l; }
base_children=
server_quiet() {
	local i
	for i in $(seq 1 100); do
		[ "$(server_children)" -le "$base_children" ] && return 0
		sleep 0.1
	done
}

sql() { "$psql" -X -q -w -v ON_ERROR_STOP=1 "$ADMIN_DATABASE_URL" "$@"; }

bench_registry() {
	"$dbreg" init >"$work/init.out" 2>&1 || { cat "$work/init.out" >&2; die "dbreg init failed"; }
	DB_ENCRYPTION_KEY=$("$dbreg" generate-key) || die "dbreg generate-key failed"
	export DB_ENCRYPTION_KEY
}

# insert_targets PREFIX REGION FIRST LAST PORT WITH_PASSWORD(0|1): rows PREFIX00001...,
# 127.0.0.1:PORT, database platform_admin, user dbreg_admin, with the password of
# dbreg_admin or none.  A stored password is bound to its row's id and target, so every
# row gets its own text: `dbreg encrypt-password --id ... --ssl-mode ...` per row (a
# process each, 2 x nproc at a time), then one UPDATE.
insert_targets() {
	local rows=$work/bind-$1-$3
	sql -v prefix="$1" -v region="$2" -v first="$3" -v last="$4" -v port="$5" <<'EOF'
INSERT INTO admin.database_connections
	(connection_name, connection_type, region_id, host, port, database_name, username)
SELECT :'prefix' || lpad(g::text, 5, '0'), 'SHARED', :'region', '127.0.0.1', :port,
       'platform_admin', 'dbreg_admin'
FROM generate_series(:first, :last) AS g;
EOF
	[ "$6" = 1 ] || return 0
	sql -At -F ' ' -v prefix="$1" -v region="$2" -v first="$3" -v last="$4" >"$rows.in" <<'EOF'
SELECT id, host, port, database_name, username, ssl_mode FROM admin.database_connections
WHERE region_id = :'region' AND encrypted_password IS NULL
  AND connection_name BETWEEN :'prefix' || lpad(:'first', 5, '0') AND :'prefix' || lpad(:'last', 5, '0');
EOF
	# The password through the environment, never on a command line.
	# shellcheck disable=SC2016
	BENCH_PW=$admin_pw xargs -P "$(($(nproc 2>/dev/null || echo 1) * 2))" -n 6 sh -c '
		t=$(printf "%s\n" "$BENCH_PW" | "$0" encrypt-password --password-stdin --password-format dbreg \
			--id "$1" --host "$2" --port "$3" --database "$4" --user "$5" --ssl-mode "$6") || exit 255
		printf "%s\t%s\n" "$1" "$t"' "$dbreg" <"$rows.in" >"$rows.pw" \
		|| die "dbreg encrypt-password failed"
	[ "$(grep -c $'\tdbreg:v2:' "$rows.pw")" = "$(wc -l <"$rows.in")" ] || die "dbreg encrypt-password gave no stored text"
	sql -c 'CREATE TEMP TABLE bench_pw (id uuid, pw text)' -c "\\copy bench_pw FROM '$rows.pw'" \
		-c 'UPDATE admin.database_connections d SET encrypted_password = p.pw FROM bench_pw p WHERE d.id = p.id' \
		>/dev/null
	rm -f "$rows.in" "$rows.pw"
}

# refused_port: a port on 127.0.0.1 below 1024 that refuses (1, unless someone listens).
refused_port() {
	local p=1
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
		p=$((p + 1))
		[ "$p" -lt 1024 ] || die "no refused port found on 127.0.0.1 below 1024"
	done
	printf '%s\n' "$p"
}

# bench_proxy NAME UPSTREAM_PORT DELAY_MS LIFETIME_S: starts delay-proxy.py on a free
# port of 127.0.0.1 (its stderr in $work/NAME.err); sets proxy_pid and proxy_port.
bench_proxy() {
	local i
	"$python" "$here/delay-proxy.py" --upstream-port "$2" --delay-ms "$3" \
		--lifetime "$4" --port-file "$work/$1.port" >"$work/$1.out" 2>"$work/$1.err" &
	proxy_pid=$!
	bench_pids+=("$proxy_pid")
	for i in $(seq 1 100); do
		[ -s "$work/$1.port" ] && break
		kill -0 "$proxy_pid" 2>/dev/null || break
		sleep 0.1
	done
	[ -s "$work/$1.port" ] || { cat "$work/$1.err" >&2; die "the delay proxy did not start"; }
	proxy_port=$(cat "$work/$1.port")
}
bench_proxy_stop() { # PID
	local p rest=()
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	for p in "${bench_pids[@]}"; do [ "$p" = "$1" ] || rest+=("$p"); done
	bench_pids=("${rest[@]}")
}

json_summary() { # FILE -> "healthy degraded unhealthy unknown results"
	"$python" - "$1" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    s = d["summary"]
    print(s["healthy"], s["degraded"], s["unhealthy"], s["unknown"], len(d["results"]))
except Exception:
    print("-1 -1 -1 -1 -1")   # not the JSON expected
EOF
}
json_errors() { # FILE STATUS... -> the commonest errors of results not in those statuses
	"$python" - "$@" <<'EOF'
import json, sys, collections
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("    (no JSON: %s)" % e); sys.exit(0)
c = collections.Counter((r["status"], r.get("error")) for r in d["results"] if r["status"] not in sys.argv[2:])
for (st, err), n in c.most_common(3):
    print("    %d x %s: %s" % (n, st, err))
EOF
}
