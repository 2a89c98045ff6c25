#!/bin/sh
# The shared library exports only dbreg_* symbols, each under a version node, with a versioned soname (TAP).
#   tests/abi-test.sh LIBDBREG.so
set -u
lib=$1
echo "1..3"
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
