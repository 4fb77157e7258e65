#!/bin/sh
# examples/meson-project and examples/cmake-project, built as a user would
# (in a fresh build directory, with this build's agc) and run: agc turns
# line.graph into C at build time, and the program fits y = 2x + 1 with it.
# usage: build_examples.sh meson|cmake AGC SOURCE_DIR
set -u
KIND=$1
AGC=$2
SRC=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
case $KIND in
meson)
  meson setup "$T/b" "$SRC/examples/meson-project" -Dagc="$AGC" > "$T/log" 2>&1 &&
    ninja -C "$T/b" >> "$T/log" 2>&1 || { cat "$T/log"; echo "FAIL: building examples/meson-project"; exit 1; } ;;
cmake)
  command -v cmake > /dev/null || { echo "SKIP: cmake is not installed (apt-get install cmake)"; exit 77; }
  cmake -S "$SRC/examples/cmake-project" -B "$T/b" -DAGC="$AGC" > "$T/log" 2>&1 &&
    cmake --build "$T/b" >> "$T/log" 2>&1 || { cat "$T/log"; echo "FAIL: building examples/cmake-project"; exit 1; } ;;
esac
grep -i "warning" "$T/log" && { echo "FAIL: the generated C compiled with warnings"; exit 1; }
[ -f "$T/b/line.c" ] && [ -f "$T/b/line.h" ] || { echo "FAIL: agc did not write line.c/line.h into the build directory"; exit 1; }
out=$("$T/b/fit_line")
echo "$out"
echo "$out" | grep -Eqx 'w = 2\.000  b = 1\.000  loss = [0-9.]+e-(0[7-9]|[1-9][0-9])' ||
  { echo "FAIL: fit_line did not recover w = 2, b = 1"; exit 1; }
echo "$KIND project: ok"
