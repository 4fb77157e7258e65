#!/bin/sh
# Builds the fuzz targets with libFuzzer (clang -fsanitize=fuzzer,address,
# undefined) and runs each of them.
#   tests/fuzz/fuzz.sh [SECONDS] [TARGET...]     (default: 60 s each, all)
# Targets: compile (the compiler: .graph text -> C), npy (the .npy reader),
# run (`agc run` end to end on a small graph with a fuzzed x.npy). A run
# shorter than 600 s starts from every 8th input of a corpus of more than
# 400 (CI's 60 s runs): the whole corpus would take the minute to load.
# Builds in $FUZZ_BUILD (default build-fuzz/ at the top of the tree). New
# corpus entries go to build-fuzz/corpus-TARGET (the committed corpus in
# tests/fuzz/corpus/TARGET is read, not written); a crash or hang leaves
# crash-*/timeout-* files in build-fuzz/ and makes this script fail: commit
# it to tests/fuzz/corpus/TARGET, where the replay test keeps it fixed.
# Needs clang with libFuzzer and the Debian libtcc-dev/tcc packages.
set -eu
SECS=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-compile npy run}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
B=${FUZZ_BUILD:-$SRC/build-fuzz}
CC=${FUZZ_CC:-clang}
TCC_LIBDIR=${TCC_LIBDIR:-/usr/lib/x86_64-linux-gnu/tcc}
mkdir -p "$B"
FLAGS="-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
# the compiler library as compiler/meson.build lists it, with the kernels'
# text embedded as the build does (compiler/embed.c)
K=$SRC/runtime/kernels
COMP="$(sed -n "/static_library('agc_compiler'/,/dependencies/p" "$SRC/compiler/meson.build" |
  grep -o "'[a-z_]*\.c'" | tr -d "'" | sed "s|^|$SRC/compiler/|" | tr '\n' ' ') $B/kernel_text.c"
cc -std=c11 -O1 "$SRC/compiler/embed.c" -o "$B/embed"
"$B/embed" agc_text_gemm "$K/gemm.c" agc_text_im2col "$K/im2col.c" agc_text_pool "$K/pool.c" \
  agc_text_tanhf "$K/tanhf.c" agc_text_expf "$K/expf.c" agc_text_gemm_mt "$K/gemm_mt.c" \
  agc_text_parts "$K/parts.c" \
  > "$B/kernel_text.c"
# the kernels the JIT links against, as runtime/meson.build lists them
KSRC="$(sed -n "/^kernel_srcs = /,/]/p" "$SRC/runtime/meson.build" |
  grep -o "'kernels/[a-z_0-9]*\.c'" | tr -d "'" | sed "s|^|$SRC/runtime/|" | tr '\n' ' ')"
INC="-I$SRC/compiler -I$SRC/runtime"
need() { # TARGET: rebuild when a source is newer
  [ ! -x "$B/fuzz_$1" ] || [ -n "$(find "$SRC/compiler" "$SRC/runtime" "$SRC/tests/fuzz" -newer "$B/fuzz_$1" -name '*.[ch]' | head -1)" ]
}
for t in $TARGETS; do
  need "$t" || continue
  echo "== building fuzz_$t"
  case $t in
  compile)
    $CC $FLAGS $INC "$SRC/tests/fuzz/fuzz_compile.c" $COMP -lm -o "$B/fuzz_compile" ;;
  npy)
    $CC $FLAGS $INC "$SRC/tests/fuzz/fuzz_npy.c" "$SRC/runtime/npy.c" -o "$B/fuzz_npy" ;;
  run)
    # the kernels the JIT links against (runtime/kernels), as the meson
    # build compiles them
    $CC $FLAGS $INC -DAGC_TCC_LIBDIR="\"$TCC_LIBDIR\"" -Dmain=agc_main \
      "$SRC/tests/fuzz/fuzz_run.c" "$SRC/compiler/main.c" "$SRC/compiler/cli_files.c" \
      "$SRC/compiler/cli_run.c" "$SRC/runtime/agc_graph.c" \
      "$SRC/runtime/npy.c" "$SRC/runtime/jit.c" $KSRC $COMP \
      /usr/lib/x86_64-linux-gnu/libtcc.a -pthread -ldl -lm -o "$B/fuzz_run" ;;
  *) echo "fuzz.sh: no target '$t' (compile, npy, run)" >&2; exit 2 ;;
  esac
done
rc=0
for t in $TARGETS; do
  mkdir -p "$B/corpus-$t"
  echo "== fuzz_$t for $SECS s"
  # A short run (CI's 60 s) starts from every 8th input of a large committed
  # corpus: loading all 2,500 inputs of the compile corpus took the whole
  # minute (2,498 execs, nothing new tried). The suite's replay test runs
  # every input anyway.
  seeds="$SRC/tests/fuzz/corpus/$t"
  if [ "$SECS" -lt 600 ] && [ "$(ls "$seeds" | wc -l)" -gt 400 ]; then
    rm -rf "$B/seeds-$t"
    mkdir -p "$B/seeds-$t"
    ls "$seeds" | awk 'NR % 8 == 1' | while read -r f; do cp "$seeds/$f" "$B/seeds-$t/"; done
    seeds="$B/seeds-$t"
  fi
  # stderr of the target (agc's own error lines) is closed: -close_fd_mask=2
  (cd "$B" && ./"fuzz_$t" -max_total_time="$SECS" -max_len=4096 -timeout=10 \
     -rss_limit_mb=2560 -close_fd_mask=2 -print_final_stats=1 \
     -dict="$SRC/tests/fuzz/$t.dict" "corpus-$t" "$seeds") \
     > "$B/fuzz_$t.log" 2>&1 || rc=1
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|^==.*ERROR|SUMMARY" "$B/fuzz_$t.log" || true
  echo "corpus-$t: $(ls "$B/corpus-$t" | wc -l) new entries"
done
exit $rc
