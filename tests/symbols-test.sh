#!/bin/sh
# debian/libdbreg0.symbols says what lib/libdbreg.sym says: every symbol under its node,
# the version that introduced it the node's (LIBDBREG_0.N: 0.N.0), no other (TAP).
#   tests/symbols-test.sh LIBDBREG.SYM LIBDBREG0.SYMBOLS
set -u
sym=$1
symbols=$2
echo "1..3"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk '
	/^[A-Z0-9_.]+ *\{/ { node = $1; v = node; sub(/^LIBDBREG_/, "", v); v = v ".0"; print node "@" node " " v; next }
	/^\}/ { node = ""; next }
	node != "" && $1 ~ /^dbreg_[a-z0-9_]*;$/ { sub(/;$/, "", $1); print $1 "@" node " " v }
' "$sym" | sort >"$tmp/want"
grep '^ ' "$symbols" | sed 's/^ *//' | sort >"$tmp/have"
if head -1 "$symbols" | grep -qx 'libdbreg.so.0 libdbreg0 #MINVER#'; then
	echo "ok 1 - the symbols file is libdbreg.so.0's, in libdbreg0"
else
	echo "not ok 1 - the symbols file is libdbreg.so.0's, in libdbreg0"
fi
missing=$(comm -23 "$tmp/want" "$tmp/have")
if [ -z "$missing" ]; then
	echo "ok 2 - every symbol of the version script is listed with its node's version ($(wc -l <"$tmp/want"))"
else
	echo "not ok 2 - every symbol of the version script is listed with its node's version"
	printf '%s\n' "$missing" | sed 's/^/# missing or other: /'
fi
extra=$(comm -13 "$tmp/want" "$tmp/have")
if [ -z "$extra" ]; then
	echo "ok 3 - the symbols file lists nothing else"
else
	echo "not ok 3 - the symbols file lists nothing else"
	printf '%s\n' "$extra" | sed 's/^/# extra: /'
fi
