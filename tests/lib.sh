# tests/lib.sh — what the shell tests share, sourced by them: a temporary
# directory $T, removed at exit, and the counters of passed and failed
# checks (ok, bad MESSAGE).
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
