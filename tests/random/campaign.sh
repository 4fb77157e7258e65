#!/bin/sh
# A long random campaign: one agc_random per job, each with its own seed,
# for a given time; repro files in OUT/failures-SEED, logs in OUT/SEED.log.
# usage: campaign.sh AGC_RANDOM OUT SECONDS [JOBS [FIRST_SEED [EXTRA ARGS...]]]
# e.g.   tests/random/campaign.sh build/tests/random/agc_random camp 3600 2 100 --no-asan
set -u
BIN=$1 OUT=$2 SECS=$3 JOBS=${4:-2} SEED=${5:-100}
shift 5 2>/dev/null || shift $#
mkdir -p "$OUT"
pids=""
j=0
while [ $j -lt "$JOBS" ]; do
  s=$((SEED + j))
  "$BIN" --n 100000000 --seed $s --time-limit "$SECS" --repro "$OUT/failures-$s" "$@" \
    >"$OUT/$s.log" 2>&1 &
  pids="$pids $!"
  j=$((j + 1))
done
rc=0
for p in $pids; do wait $p || rc=1; done
tail -n 4 "$OUT"/*.log
exit $rc
