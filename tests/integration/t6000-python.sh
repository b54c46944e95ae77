#!/usr/bin/env bash
# tests/integration/t6000-python.sh - the Python package's tests (tests/python, pytest) on the real broker
#
# Prints pytest's report with one "ok - NAME" / "not ok - NAME" line per test
# (tests/python/conftest.py writes them) for tests/run.sh to count.  The
# package is python/ in the tree and the library the one it finds:
# TRACESIFT_LIBRARY, else lib/libtracesift.so.1.  Under make test that is the
# sanitizer build (make SAN=1), which only loads into a process whose first
# library is the ASan runtime: it is preloaded here, for Python processes only
# (the tests hand it on to the Python children they start, not to kcat), and
# leak detection is off for them (CPython does not free everything at exit).
set -u
top=${TS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
lib=${TRACESIFT_LIBRARY:-$top/lib/libtracesift.so.1}
py=${PYTHON:-python3}

if [ ! -e "$lib" ]; then
	echo "not ok - python: $lib is not built (make)"
	exit 1
fi
if ! "$py" -c 'import pytest' 2>/dev/null; then
	echo "not ok - python: pytest is missing for $py (make deps installs python3-pytest)"
	exit 1
fi
asan=$(ldd "$lib" 2>/dev/null | awk '/libasan\.so/ { print $3; exit }')
if [ -n "$asan" ]; then
	export LD_PRELOAD=$asan${LD_PRELOAD:+:$LD_PRELOAD}
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
	export TS_EXPECT_ASAN=1
	echo "# $lib is an ASan build: LD_PRELOAD=$asan"
fi
export PYTHONDONTWRITEBYTECODE=1
cd "$top" || exit 1
# a test stuck for 5 minutes (scaled) prints every thread's stack
exec "$py" -m pytest -p no:cacheprovider -q -rfE -o faulthandler_timeout=$((300 * ${TS_TIMEOUT_SCALE:-1})) tests/python
