#!/usr/bin/env bats
# dbreg health -o html: one page that stands alone (no script, nothing fetched), loaded from
# disk in a real headless browser (Chromium, offline) and read back from its DOM: every
# target, the summary counts, failing first, markup in a stored value shown as text, a
# phone-width screenshot and a printout.  The page's text is also checked without a browser.
#
# Targets are the sandbox itself (healthy) and a closed loopback port (unhealthy).

load helper
load browser

setup_file() { fresh_initialized_registry; }

teardown_file() {
	drop_registry
}

setup() {
	require_sandbox
	command -v python3 >/dev/null || skip "python3 is not installed"
	psql_admin <<<"DELETE FROM admin.database_connections;"
	make_key
	ADMIN_PW=$(sandbox_admin_password)
	PAGE=$BATS_TEST_TMPDIR/health.html
}

# reg_ok NAME [REGISTER-OPTION...]: the sandbox, with the right password.
reg_ok() {
	local name=$1
	shift
	printf '%s\n' "$ADMIN_PW" | "$DBREG" register "$name" --host 127.0.0.1 --port "$PGSANDBOX_PORT" \
		--database "$DBREG_TEST_REGISTRY" --user "$DBREG_ADMIN_ROLE" --password-stdin "$@" >/dev/null
}

# fleet: three healthy targets (one of them with markup for a region, set in the registry
# itself, as another tool could), one refusing (127.0.0.1:1), one inactive (UNKNOWN when named).
XSS='<script>alert(1)</script>'
fleet() {
	reg_ok ok-alpha --type SHARED --region eu-west-1
	reg_ok ok-beta
	reg_ok ok-xss
	"$DBREG" register closed --host 127.0.0.1 --port 1 --database "$DBREG_TEST_REGISTRY" \
		--user "$DBREG_ADMIN_ROLE" --no-password >/dev/null
	reg_ok sleeping --inactive
	psql_admin -v "r=$XSS" <<<"UPDATE admin.database_connections SET region_id = :'r' WHERE connection_name = 'ok-xss';"
	psql_admin <<<"UPDATE admin.database_connections SET region_id = 'a&b''c\"d' WHERE connection_name = 'ok-beta';"
	NAMES=(ok-alpha ok-beta ok-xss closed sleeping)
}

# A tile's count as the page writes it (and as the DOM keeps it).
tile() {
	printf '<li class="tile st-%s"><span class="n">%s</span><span class="l">%s</span></li>' \
		"${1,,}" "$2" "$1"
}

# Balanced tags: every element opened is closed, in order (void elements and <x/> apart).
well_formed() {
	python3 - "$1" <<-'EOF'
		import html.parser, sys
		VOID = {"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "wbr", "source"}
		class P(html.parser.HTMLParser):
		    def __init__(self):
		        super().__init__(convert_charrefs=True)
		        self.stack = []
		    def handle_starttag(self, tag, attrs):
		        if tag not in VOID:
		            self.stack.append(tag)
		    def handle_startendtag(self, tag, attrs):
		        pass
		    def handle_endtag(self, tag):
		        if not self.stack or self.stack[-1] != tag:
		            sys.exit(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
		        self.stack.pop()
		p = P()
		p.feed(open(sys.argv[1], encoding="utf-8").read())
		p.close()
		if p.stack:
		    sys.exit(f"never closed: {p.stack}")
	EOF
}

@test "health-html: -o html is a format of health, in --help" {
	run "$DBREG" health --help
	assert_success
	assert_line --regexp '^Formats \(-o\):.*\bhtml\b'
	run "$DBREG" health -o htm
	assert_failure 3
}

@test "health-html: the page on stdout stands alone: a doctype, balanced tags, no script, nothing fetched" {
	fleet
	run --separate-stderr "$DBREG" health "${NAMES[@]}" -o html --no-update
	assert_failure 2  # CRITICAL: one is unhealthy
	printf '%s\n' "$output" >"$PAGE"
	[[ $output == '<!DOCTYPE html>'* ]] || fail "no doctype first: ${output:0:40}"
	assert_output --partial '</html>'
	well_formed "$PAGE"
	run grep -ic '<script' "$PAGE"
	assert_output 0
	# Nothing fetched, linked or run: no URL, no link, no source, no CSS import or url().
	run grep -Eic 'https?:|<link|<a |href=|src=|@import|url\(|<iframe|<object|<embed|javascript:| on[a-z]+=' "$PAGE"
	assert_output 0
	run grep -c 'Content-Security-Policy' "$PAGE"
	assert_output 1
	assert_no_secret "$ADMIN_PW"
	assert_no_secret "$DB_ENCRYPTION_KEY"
}

@test "health-html: every value is escaped, the error text is whole, the report time and checker are there" {
	fleet
	run --separate-stderr "$DBREG" health "${NAMES[@]}" -o html --no-update
	assert_failure 2
	assert_output --partial '&lt;script&gt;alert(1)&lt;/script&gt;'
	refute_output --partial "$XSS"
	assert_output --partial 'a&amp;b&#39;c&quot;d'
	# libpq's whole message, its quotes escaped, never cut.
	assert_output --regexp 'port 1 failed: Connection refused.*Is the server running on that host and accepting TCP/IP connections\?'
	assert_output --partial 'connection to server at &quot;127.0.0.1&quot;'
	assert_output --regexp '<dt>checked at</dt><dd>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z</dd>'
	assert_output --regexp '<dt>checker</dt><dd>[^<]+</dd>'
	assert_output --partial 'inactive: not checked'
}

@test "health-html: --output writes the page atomically, mode 0644, and nothing to stdout" {
	fleet
	run --separate-stderr "$DBREG" health "${NAMES[@]}" -o html --no-update --output "$PAGE"
	assert_failure 2
	assert_output ''
	[ -s "$PAGE" ]
	assert_equal "$(stat -c %a "$PAGE")" 644
	# No temp file left beside it.
	run find "$BATS_TEST_TMPDIR" -maxdepth 1 -name '.health.html.*'
	assert_output ''
	run head -c15 "$PAGE"
	assert_output '<!DOCTYPE html>'
}

@test "health-html: failing first (UNHEALTHY, UNKNOWN, DEGRADED, HEALTHY), as --sort status" {
	fleet
	"$DBREG" health "${NAMES[@]}" -o html --no-update --output "$PAGE" || true
	run python3 - "$PAGE" <<-'EOF'
		import re, sys
		print(" ".join(re.findall(r'<th scope="row" data-label="NAME">([^<]*)</th>', open(sys.argv[1]).read())))
	EOF
	assert_output 'closed sleeping ok-alpha ok-beta ok-xss'
	"$DBREG" health "${NAMES[@]}" -o html --no-update --sort name --output "$PAGE" || true
	run grep -o '<th scope="row" data-label="NAME">[a-z-]*' "$PAGE"
	assert_equal "$(printf '%s\n' "${lines[@]##*>}" | paste -sd' ')" 'closed ok-alpha ok-beta ok-xss sleeping'
}

@test "health-html: the history is shown, or 'no history' when it cannot be read; the run goes on" {
	fleet
	# Two runs that write back, so that a history (where there is one) has rows.
	"$DBREG" health ok-alpha closed >/dev/null 2>&1 || true
	"$DBREG" health ok-alpha closed >/dev/null 2>&1 || true
	run --separate-stderr "$DBREG" health ok-alpha closed -o json --no-update
	local json_status=$status
	run --separate-stderr "$DBREG" health ok-alpha closed -o html --no-update --output "$PAGE"
	assert_equal "$status" "$json_status"
	assert_equal "$stderr" ''
	if grep -q '<dt>history</dt><dd>not available' "$PAGE"; then
		# The page without it: each row says so, nothing else is missing.
		assert_equal "$(grep -o '>no history<' "$PAGE" | wc -l)" 4
		run grep -c '<svg' "$PAGE"
		assert_output 0
	else
		grep -q '<dt>history</dt><dd>the last 7 days</dd>' "$PAGE"
		# A sparkline (inline SVG) and an uptime for each target checked before.
		assert_equal "$(grep -o '<svg class="spark"' "$PAGE" | wc -l)" 2
		grep -Eq '[0-9.]+ % of [0-9]+ checks' "$PAGE"
	fi
}

@test "health-html: Chromium renders it from disk: every target, the counts, no script element, markup as text" {
	require_browser
	fleet
	run --separate-stderr "$DBREG" health "${NAMES[@]}" -o html --no-update --output "$PAGE"
	assert_failure 2
	browser_dom "$PAGE" "$BATS_TEST_TMPDIR/dom.html" || fail "chromium failed: $(tail -5 "$BATS_TEST_TMPDIR/browser.stderr")"
	run cat "$BATS_TEST_TMPDIR/dom.html"
	assert_output --partial '<h1>dbreg health</h1>'
	for name in "${NAMES[@]}"; do
		assert_output --partial "data-label=\"NAME\">$name</th>"
	done
	assert_output --partial "$(tile HEALTHY 3)"
	assert_output --partial "$(tile DEGRADED 0)"
	assert_output --partial "$(tile UNHEALTHY 1)"
	assert_output --partial "$(tile UNKNOWN 1)"
	# The stored markup is text in the DOM: escaped when serialised, no element made of it.
	assert_output --partial '&lt;script&gt;alert(1)&lt;/script&gt;'
	refute_output --partial '<script'
	refute_output --partial 'alert(1)</script>'
	# The error text whole, as the browser read it.
	assert_output --regexp 'Connection refused.*accepting TCP/IP connections\?'
}

@test "health-html: at phone width and printed, Chromium draws it (a PNG 390 px wide, a PDF)" {
	require_browser
	fleet
	"$DBREG" health "${NAMES[@]}" -o html --no-update --output "$PAGE" || true
	browser_shot "$PAGE" 390 844 "$BATS_TEST_TMPDIR/phone.png" ||
		fail "chromium failed: $(tail -5 "$BATS_TEST_TMPDIR/browser.stderr")"
	[ -s "$BATS_TEST_TMPDIR/phone.png" ]
	run png_width "$BATS_TEST_TMPDIR/phone.png"
	assert_success
	assert_output 390
	(cd "$BATS_TEST_TMPDIR" && browser --print-to-pdf="$BATS_TEST_TMPDIR/page.pdf" --no-pdf-header-footer \
		"file://$PAGE" >/dev/null) || fail "chromium failed: $(tail -5 "$BATS_TEST_TMPDIR/browser.stderr")"
	[ -s "$BATS_TEST_TMPDIR/page.pdf" ]
	assert_equal "$(head -c5 "$BATS_TEST_TMPDIR/page.pdf")" '%PDF-'
}

@test "health-html: --failing: only the rows not HEALTHY, and the tiles count those" {
	fleet
	run --separate-stderr "$DBREG" health "${NAMES[@]}" -o html --no-update --failing
	assert_failure 2
	assert_output --partial "$(tile HEALTHY 0)"
	assert_output --partial "$(tile UNHEALTHY 1)"
	assert_output --partial "$(tile UNKNOWN 1)"
	refute_output --partial '>ok-alpha</th>'
	assert_output --partial '>closed</th>'
}

@test "health-html: --level deep adds the lag and certificate columns; a basic run has none of them" {
	reg_ok ok-alpha
	run --separate-stderr "$DBREG" health -o html --no-update
	assert_success
	refute_output --partial 'REPLAY LAG'
	refute_output --partial 'CERTIFICATE EXPIRES'
	refute_output --partial '>VERSION</th>'
	run --separate-stderr "$DBREG" health -o html --no-update --level deep
	assert_success
	assert_output --partial '>REPLAY LAG</th>'
	assert_output --partial '>CERTIFICATE EXPIRES</th>'
	assert_output --partial '>VERSION</th>'
	assert_output --regexp 'data-label="VERSION">[0-9]+'
	assert_output --partial 'data-label="ROLE">primary</td>'
	assert_output --partial '<dt>level</dt><dd>deep</dd>'
}

@test "health-html: the other formats are unchanged by the page's columns" {
	reg_ok ok-alpha --type SHARED --region eu-west-1
	run --separate-stderr "$DBREG" health -o json --no-update
	assert_success
	refute_output --partial 'uptime'
	refute_output --partial 'latencies'
	run --separate-stderr "$DBREG" health --no-update --no-headers
	assert_success
	refute_output --partial 'no history'
	run --separate-stderr "$DBREG" health --no-update
	refute_output --partial 'UPTIME'
	refute_output --partial 'REGION'
}
