#!/bin/sh
# Compile the public header alone under each C standard we promise, printing TAP.
#   tests/header-test.sh SRCDIR CC [CC-ARG...]
set -u
if [ $# -lt 2 ]; then
	echo "usage: $0 SRCDIR CC [CC-ARG...]" >&2
	exit 2
fi
srcdir=$1
shift
stds="c99 c11 c17"
echo "1..3"
n=0
failed=0
for std in $stds; do
	n=$((n + 1))
	if out=$(printf '#include "dbreg.h"\nint main(void){return 0;}\n' |
		"$@" "-std=$std" -pedantic -Werror -Wall -Wextra -I "$srcdir/lib" -x c - -o /dev/null 2>&1); then
		echo "ok $n - dbreg.h compiles alone under -std=$std -pedantic"
	else
		echo "not ok $n - dbreg.h compiles alone under -std=$std -pedantic"
		printf '%s\n' "$out" | sed 's/^/# /'
		failed=1
	fi
done
exit $failed
