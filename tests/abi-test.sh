#!/bin/sh
# The shared library exports only dbreg_* symbols, each under a version node, with a versioned
# soname, and exactly the symbols the version script names, each in its section (TAP).
#   tests/abi-test.sh LIBDBREG.so LIBDBREG.SYM
set -u
lib=$1
sym=$2
echo "1..5"
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRV]$/ { print $3 }')
bad=$(printf '%s\n' "$exported" | grep -v '^dbreg_' | grep -v '^$' || true)
if [ -z "$bad" ] && [ -n "$exported" ]; then
	echo "ok 1 - only dbreg_* symbols are exported ($(printf '%s\n' "$exported" | wc -l))"
else
	echo "not ok 1 - only dbreg_* symbols are exported"
	printf '%s\n' "$bad" | sed 's/^/# unexpected: /'
fi
if nm -D --defined-only --with-symbol-versions "$lib" 2>/dev/null | awk '$3 ~ /^dbreg_/' | grep -qv '@@LIBDBREG_'; then
	echo "not ok 2 - every export carries a LIBDBREG_ version"
else
	echo "ok 2 - every export carries a LIBDBREG_ version"
fi
if readelf -d "$lib" | grep -q 'SONAME.*libdbreg\.so\.[0-9]'; then
	echo "ok 3 - versioned soname"
else
	echo "not ok 3 - versioned soname"
fi

# "name@@NODE" for every export, and for every name the script lists in its sections.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only --with-symbol-versions "$lib" | awk '$3 ~ /^dbreg_/ { print $3 }' | sort >"$tmp/exported"
awk '
	/^[A-Z0-9_.]+ *\{/ { node = $1; next }
	/^\}/ { node = ""; next }
	node != "" && $1 ~ /^dbreg_[a-z0-9_]*;$/ { sub(/;$/, "", $1); print $1 "@@" node }
' "$sym" | sort >"$tmp/listed"
if grep -q 'dbreg_\*' "$sym"; then
	echo "not ok 4 - the version script names every symbol (no glob)"
else
	echo "ok 4 - the version script names every symbol (no glob)"
fi
if cmp -s "$tmp/exported" "$tmp/listed"; then
	echo "ok 5 - the exports are exactly the version script's, each in its section ($(wc -l <"$tmp/listed"))"
else
	echo "not ok 5 - the exports are exactly the version script's, each in its section"
	comm -23 "$tmp/exported" "$tmp/listed" | sed 's/^/# exported, not listed so: /'
	comm -13 "$tmp/exported" "$tmp/listed" | sed 's/^/# listed, not exported so: /'
fi
