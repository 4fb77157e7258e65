#!/bin/sh
# The generated C as a product: for every example and every PyTorch
# fixture graph, in f32 and f64,
#  - it compiles warning-free under gcc, clang and tcc with
#    -std=c99 -Wall -Wextra -pedantic -Werror, and calls no malloc;
#  - the same graph twice gives byte-identical C;
#  - it runs under AddressSanitizer with a heap workspace of exactly
#    NAME_WORK_BYTES bytes and exactly sized input/output buffers (a
#    training graph: three steps, with a state of NAME_STATE_BYTES);
#  - the same for --target mcu, built with gcc and the contract's extra
#    flags (-Wdouble-promotion in f32, -Wcast-align, -Wmissing-prototypes).
# usage: generated_c.sh AGC SOURCE_DIR
set -u
AGC=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
STRICT="-std=c99 -Wall -Wextra -pedantic -Werror"
pass=0
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

graphs="$SRC/examples/*.graph"
for c in $(awk '{print $1}' "$SRC/tests/pytorch/MANIFEST"); do
  graphs="$graphs $SRC/tests/pytorch/cases/$c/model.graph"
done
for g in $graphs; do
  for tdt in host-f32 host-f64 mcu-f32 mcu-f64; do
    tg=${tdt%-*}
    dt=${tdt#*-}
    "$AGC" "$g" --dtype $dt --target $tg --name test_case -o "$T/gen.c" --header "$T/gen.h" 2>"$T/err" ||
      { bad "$g ($tdt): agc failed: $(head -1 "$T/err")"; continue; }
    "$AGC" "$g" --dtype $dt --target $tg --name test_case -o "$T/gen2.c" 2>/dev/null
    cmp -s "$T/gen.c" "$T/gen2.c" || bad "$g ($tdt): output differs between two runs"
    grep -q 'malloc' "$T/gen.c" && bad "$g ($tdt): generated C mentions malloc"
    ccs="gcc clang tcc"
    flags=$STRICT
    if [ $tg = mcu ]; then
      ccs=gcc
      flags="$STRICT -Wcast-align -Wmissing-prototypes"
      [ $dt = f32 ] && flags="$flags -Wdouble-promotion"
    fi
    for cc in $ccs; do
      command -v $cc >/dev/null || continue
      $cc $flags -c "$T/gen.c" -o "$T/gen.o" 2>"$T/err" ||
        bad "$g ($tdt): $cc: $(head -3 "$T/err")"
    done
    gcc $STRICT -c -x c "$T/gen.h" -o "$T/h.o" 2>"$T/err" ||
      bad "$g ($tdt): header: $(head -3 "$T/err")"
    real=float
    [ $dt = f64 ] && real=double
    gcc -std=c99 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
      -DTEST_CASE_REAL=$real -I"$T" "$SRC/tests/asan_driver.c" "$T/gen.c" \
      -o "$T/run" -lm 2>"$T/err" || { bad "$g ($tdt): driver build: $(head -3 "$T/err")"; continue; }
    ASAN_OPTIONS=detect_leaks=1 "$T/run" >"$T/out" 2>&1 ||
      bad "$g ($tdt): ASan run: $(grep -m2 -E 'ERROR|SUMMARY|error' "$T/out")"
    pass=$((pass + 1))
  done
done
echo "generated C: $((pass - fail)) passed, $fail failed"
[ $fail -eq 0 ]
