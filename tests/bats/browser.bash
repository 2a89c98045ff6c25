# A real headless browser for the pages dbreg writes (health -o html): `load browser`.
#
# Chromium (Debian's chromium, which scripts/bootstrap installs) runs without the network
# (a network namespace of its own: unshare -n as root, else unshare -rn), with its profile,
# HOME and caches in the test's own directory, and at most 60 s (a cold start is slow).
#
#   require_browser           skip unless Chromium is installed and can run offline; in CI
#                             (CI set) fail instead: there the browser test must run
#   browser ARG...            Chromium headless with ARG... (e.g. --dump-dom URL)
#   browser_dom FILE OUT      the DOM of FILE after it is loaded and rendered, into OUT
#   browser_shot FILE W H OUT a screenshot of FILE at W x H pixels, into OUT (PNG)
#   png_width FILE            the width of a PNG, from its header

require_browser() {
	CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
	if [ -z "$CHROMIUM" ]; then
		if [ -n "${CI-}" ]; then
			fail "chromium is not installed (scripts/bootstrap installs it); in CI this test must run"
		fi
		skip "chromium is not installed (scripts/bootstrap installs it)"
	fi
	# Its own network namespace: nothing but the page on disk can reach it.
	if unshare -n true 2>/dev/null; then
		OFFLINE=(unshare -n)
	elif unshare -rn true 2>/dev/null; then
		OFFLINE=(unshare -rn)
	elif [ -n "${CI-}" ]; then
		fail "cannot run chromium without the network (unshare -n, unshare -rn)"
	else
		skip "cannot run chromium without the network (unshare -n, unshare -rn)"
	fi
}

browser() {
	local home=$BATS_TEST_TMPDIR/browser-home
	mkdir -p "$home"
	# As root Chromium needs --no-sandbox; its crash reporter and first-run work are off.
	HOME=$home XDG_CONFIG_HOME=$home/.config XDG_CACHE_HOME=$home/.cache \
		timeout 60 "${OFFLINE[@]}" "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
		--disable-extensions --disable-breakpad --user-data-dir="$BATS_TEST_TMPDIR/browser-profile" "$@" \
		2>>"$BATS_TEST_TMPDIR/browser.stderr" 3>&-
}

browser_dom() {
	browser --dump-dom "file://$1" >"$2"
}

browser_shot() {
	(cd "$BATS_TEST_TMPDIR" && browser --screenshot="$4" --window-size="$2,$3" --hide-scrollbars "file://$1" >/dev/null)
}

png_width() {
	[ "$(head -c8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || return 1
	od -An -tu1 -j16 -N4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'
}
