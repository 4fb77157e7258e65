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
# The matrix kernel's vector width comes from the compiler's target macros
# (64 bytes with __AVX512F__, else 32): the examples' host C compiles
# strictly with -mavx512f, and forced to the wide kernel
# (-DAGC_VEC_BYTES=64, which any x86 runs) it stays inside the workspace
# under ASan and gives the bytes of the default width.
for g in "$SRC"/examples/*.graph; do
  for dt in f32 f64; do
    real=float
    [ $dt = f64 ] && real=double
    "$AGC" "$g" --dtype $dt --name test_case -o "$T/gen.c" --header "$T/gen.h" 2>/dev/null || continue
    grep -q '_gemm(' "$T/gen.c" || continue
    for cc in gcc clang; do
      command -v $cc >/dev/null || continue
      $cc $STRICT -mavx512f -c "$T/gen.c" -o "$T/gen.o" 2>"$T/err" ||
        bad "$g ($dt, -mavx512f): $cc: $(head -3 "$T/err")"
    done
    for vb in 32 64; do
      gcc -std=c99 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
        -DAGC_VEC_BYTES=$vb -DTEST_CASE_REAL=$real -I"$T" "$SRC/tests/asan_driver.c" \
        "$T/gen.c" -o "$T/run$vb" -lm 2>"$T/err" || bad "$g ($dt): width $vb build: $(head -3 "$T/err")"
      ASAN_OPTIONS=detect_leaks=1 "$T/run$vb" >"$T/out$vb" 2>&1 ||
        bad "$g ($dt): width $vb ASan run: $(grep -m2 -E 'ERROR|SUMMARY|error' "$T/out$vb")"
    done
    cmp -s "$T/out32" "$T/out64" || bad "$g ($dt): the 64-byte kernel differs from the 32-byte one"
    pass=$((pass + 1))
  done
done

# $T/gen.c compiles with -pthread, warning-free, with each compiler here
strict_threaded() {
  for cc in gcc clang tcc; do
    command -v $cc >/dev/null || continue
    $cc $STRICT -pthread -c "$T/gen.c" -o "$T/gen.o" 2>"$T/err" ||
      bad "$1: $cc: $(head -3 "$T/err")"
  done
}

# --threads: the products and element-wise loops on several threads. The
# C compiles strictly (with -pthread), runs under ASan with exact buffers
# and under ThreadSanitizer, and gives the same bytes with 1, 2 and 3 threads at run
# time (AGC_NUM_THREADS) as the one-thread build, in f32 and f64.
cat > "$T/thr.graph" <<'EOF2'
input x[512, 256]
input t[512, 10]
input z[1024, 1024]
param W1[256, 256]
param b1[256]
param W2[256, 10]
param s[1024]
param q[1024, 4]
param p[1024, 1024]
loss = mean((tanh(x @ W1 + b1) @ W2 - t) ** 2) + mean(sin(z * s) * z) + mean(tanh(z * 0.5) @ q) + mean(exp(p * 0.1) * z)
output loss
backward loss
EOF2
for dt in f32 f64; do
  real=float
  [ $dt = f64 ] && real=double
  "$AGC" "$T/thr.graph" --dtype $dt --name test_case -o "$T/one.c" 2>"$T/err" ||
    { bad "threads ($dt): agc --threads 1 failed: $(head -1 "$T/err")"; continue; }
  grep -q pthread "$T/one.c" && bad "threads ($dt): one-thread C mentions pthread"
  "$AGC" "$T/thr.graph" --dtype $dt --threads 3 --name test_case -o "$T/gen.c" --header "$T/gen.h" 2>"$T/err" ||
    { bad "threads ($dt): agc --threads 3 failed: $(head -1 "$T/err")"; continue; }
  [ "$(grep -c 'test_case_gemm_mt(.*, 3);' "$T/gen.c")" -ge 2 ] ||
    bad "threads ($dt): the products should run on 3 threads"
  # 2^20 elements: the loops of sin(z * s) * z (partial sums and grad_s's
  # sum over z's rows: parts along the columns), of exp(p * 0.1) and of
  # its gradient (partial sums: along the columns), tanh(z * 0.5) (flat),
  # and the store of grad_p, an expression of stored values (flat)
  [ "$(grep -c 'test_case_parts(test_case_loop[0-9]*, &a, 1024, 3);' "$T/gen.c")" = 3 ] &&
    [ "$(grep -c 'test_case_parts(test_case_loop[0-9]*, &a, 1048576, 3);' "$T/gen.c")" = 2 ] ||
    bad "threads ($dt): the element-wise loops should run in parts on 3 threads"
  grep -q 'malloc' "$T/gen.c" && bad "threads ($dt): generated C mentions malloc"
  strict_threaded "threads ($dt)"
  gcc -std=c99 -g -fsanitize=address,undefined -fno-sanitize-recover=all -pthread \
    -DTEST_CASE_REAL=$real -I"$T" "$SRC/tests/asan_driver.c" "$T/gen.c" \
    -o "$T/run" -lm 2>"$T/err" || { bad "threads ($dt): driver build: $(head -3 "$T/err")"; continue; }
  cp "$T/gen.h" "$T/gen3.h"
  cp "$T/one.c" "$T/gen.c"
  "$AGC" "$T/thr.graph" --dtype $dt --name test_case --emit h > "$T/gen.h" 2>/dev/null
  gcc -std=c99 -O1 -DTEST_CASE_REAL=$real -I"$T" "$SRC/tests/asan_driver.c" "$T/gen.c" \
    -o "$T/run1" -lm 2>"$T/err" || { bad "threads ($dt): one-thread build: $(head -3 "$T/err")"; continue; }
  "$T/run1" > "$T/want" 2>&1 || bad "threads ($dt): one-thread run failed"
  for n in 1 2 3 64; do
    AGC_NUM_THREADS=$n ASAN_OPTIONS=detect_leaks=1 "$T/run" > "$T/got" 2>&1 ||
      { bad "threads ($dt): ASan run, AGC_NUM_THREADS=$n: $(grep -m2 -E 'ERROR|SUMMARY|error' "$T/got")"; continue; }
    cmp -s "$T/want" "$T/got" || bad "threads ($dt): AGC_NUM_THREADS=$n differs from one thread: $(diff "$T/want" "$T/got" | head -3)"
  done
  "$AGC" "$T/thr.graph" --dtype $dt --threads 3 --name test_case -o "$T/gen.c" 2>/dev/null
  cp "$T/gen3.h" "$T/gen.h"
  if gcc -std=c99 -g -O1 -fsanitize=thread -pthread -DTEST_CASE_REAL=$real -I"$T" \
       "$SRC/tests/asan_driver.c" "$T/gen.c" -o "$T/tsan" -lm 2>"$T/err"; then
    if AGC_NUM_THREADS=3 "$T/tsan" > "$T/got" 2>&1; then
      cmp -s "$T/want" "$T/got" || bad "threads ($dt): the TSan run differs from one thread"
    elif grep -q "FATAL: ThreadSanitizer" "$T/got"; then
      # its runtime cannot start here (e.g. "unexpected memory mapping"
      # with a kernel's larger mmap randomization): not the code's fault
      echo "threads ($dt): ThreadSanitizer cannot run here, skipped: $(grep -m1 FATAL "$T/got")"
    else
      bad "threads ($dt): ThreadSanitizer: $(grep -m2 -E 'WARNING|ERROR|SUMMARY' "$T/got")"
    fi
  else
    echo "threads ($dt): no ThreadSanitizer here, skipped: $(head -1 "$T/err")"
  fi
  pass=$((pass + 1))
done

# --threads in a training step: Adam's update of a 1024x1024 param runs in
# parts, which read the optimizer state's slots themselves (the step
# function then names none of them: a declaration it does not use was a
# warning). Strict with each compiler; three steps under ASan with exact
# buffers give the one-thread build's bytes.
cat > "$T/thr_adam.graph" <<'EOF2'
input x[8, 1024]
input t[8, 1024]
param W[1024, 1024]
loss = mean((tanh(x @ W) - t) ** 2)
output loss
backward loss
optimizer adam(lr=0.01)
EOF2
"$AGC" "$T/thr_adam.graph" --threads 3 --name test_case -o "$T/gen.c" --header "$T/gen.h" 2>"$T/err" ||
  bad "threads (adam): agc failed: $(head -1 "$T/err")"
[ "$(grep -c 'test_case_update_parts(test_case_update_loop[0-9]*, &a, [0-9]*, 3);' "$T/gen.c")" -ge 1 ] ||
  bad "threads (adam): the update should run in parts"
strict_threaded "threads (adam)"
gcc -std=c99 -g -fsanitize=address,undefined -fno-sanitize-recover=all -pthread \
  -DTEST_CASE_REAL=float -I"$T" "$SRC/tests/asan_driver.c" "$T/gen.c" -o "$T/run" -lm 2>"$T/err" &&
  ASAN_OPTIONS=detect_leaks=1 "$T/run" > "$T/got" 2>&1 ||
  bad "threads (adam): ASan: $(grep -m2 -E 'ERROR|SUMMARY|error' "$T/got" "$T/err")"
"$AGC" "$T/thr_adam.graph" --name test_case -o "$T/gen.c" --header "$T/gen.h" 2>/dev/null
gcc -std=c99 -O1 -DTEST_CASE_REAL=float -I"$T" "$SRC/tests/asan_driver.c" "$T/gen.c" \
  -o "$T/run1" -lm && "$T/run1" > "$T/want" 2>&1 && cmp -s "$T/want" "$T/got" ||
  bad "threads (adam): the 3-thread steps differ from one thread"
pass=$((pass + 1))
echo "generated C: $((pass - fail)) passed, $fail failed"
[ $fail -eq 0 ]
