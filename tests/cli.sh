#!/bin/sh
# The agc command line, as outside tests drive it (shared/cli-and-c-api.md):
# exit statuses, atomic output files, run/check/emit, accumulation.
# usage: cli.sh AGC SOURCE_DIR
set -u
AGC=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
expect_rc() { # WANT DESCRIPTION CMD...
  want=$1; what=$2; shift 2
  "$@" >"$T/stdout" 2>"$T/stderr"
  rc=$?
  [ $rc -eq "$want" ] && ok || bad "$what: exit $rc, wanted $want ($(head -1 "$T/stderr"))"
}
# a .npy writer for float64 vectors, in sh (no Python in CI)
npy_f64() { # FILE V1 V2 ...
  f=$1; shift
  n=$#
  hdr="{'descr': '<f8', 'fortran_order': False, 'shape': ($n,), }"
  len=$((10 + ${#hdr} + 1))
  pad=$(( (64 - len % 64) % 64 ))
  { printf '\223NUMPY\001\000'
    printf "$(printf '\\%03o\\%03o' $(( (${#hdr} + pad + 1) % 256 )) $(( (${#hdr} + pad + 1) / 256 )))"
    printf '%s' "$hdr"; printf "%${pad}s" ''; printf '\n'
    for v in "$@"; do printf "$(perl -e 'print join "", map { sprintf "\\%03o", $_ } unpack "C*", pack "d<", $ARGV[0]' "$v")"; done
  } > "$f"
}

expect_rc 0 "--help" "$AGC" --help
grep -q -- "--accumulate" "$T/stdout" && ok || bad "--help lacks --accumulate"
expect_rc 0 "--version" "$AGC" --version
expect_rc 2 "no arguments" "$AGC"
expect_rc 2 "unknown option" "$AGC" "$SRC/examples/mlp.graph" --bogus
expect_rc 2 "bad --dtype" "$AGC" "$SRC/examples/mlp.graph" --dtype f16 -o "$T/x.c"
expect_rc 2 "bad --repeat" "$AGC" run "$SRC/examples/mlp.graph" --repeat 0
expect_rc 1 "missing graph file" "$AGC" "$T/nope.graph" -o "$T/x.c"

# compile errors: located, exit 1, an existing output left untouched
echo "keep" > "$T/out.c"
printf 'input x[2, 2]\ninput y[4]\nz = x - y\noutput z\n' > "$T/bad.graph"
expect_rc 1 "shape error" "$AGC" "$T/bad.graph" -o "$T/out.c"
grep -q "bad.graph:3:7: error: shapes \[2, 2\] and \[4\] cannot be broadcast" "$T/stderr" && ok ||
  bad "shape error message: $(head -1 "$T/stderr")"
[ "$(cat "$T/out.c")" = keep ] && ok || bad "failed compile touched the output file"
ls "$T" | grep -q tmp && bad "temporary file left behind" || ok

# emit kinds
expect_rc 0 "--emit ir" "$AGC" "$SRC/examples/mlp.graph" --emit ir
grep -q "matmul" "$T/stdout" && ok || bad "--emit ir shows no matmul"
expect_rc 0 "--emit dot" "$AGC" "$SRC/examples/mlp.graph" --emit dot
head -1 "$T/stdout" | grep -q "^digraph" && ok || bad "--emit dot is not a digraph"
expect_rc 0 "--emit h" "$AGC" "$SRC/examples/mlp.graph" --emit h
grep -q "#define MLP_WORK_BYTES" "$T/stdout" && ok || bad "header lacks MLP_WORK_BYTES"
expect_rc 0 "--no-grad" "$AGC" "$SRC/examples/mlp.graph" --no-grad --emit c
grep -q "grad_W1" "$T/stdout" && bad "--no-grad still produces gradients" || ok
expect_rc 0 "--name" "$AGC" "$SRC/examples/mlp.graph" --name net --emit c
grep -q "^int net(" "$T/stdout" && ok || bad "--name did not rename the function"
"$AGC" "$SRC/examples/mlp.graph" --emit ir --after parse > "$T/ir0" 2>/dev/null
"$AGC" "$SRC/examples/mlp.graph" --emit ir > "$T/ir1" 2>/dev/null
grep -q "= id " "$T/ir0" && ! grep -q "= id " "$T/ir1" && ok ||
  bad "--after parse should show named values (id) that strip removes"
# each pass of the pipeline does its own visible job (passes.c)
cat > "$T/passes.graph" <<'EOF2'
input x: f32[3]
param w: f32[3]
k = exp(zeros([3]))
u = sin(w) * x * k
v = sin(w) * x * k
loss = sum(u + v)
backward loss
EOF2
for p in parse strip fold simplify cse dce; do
  "$AGC" "$T/passes.graph" --emit ir --after $p > "$T/ir_$p" 2>/dev/null || bad "--after $p failed"
done
grep -q "= id " "$T/ir_parse" && ! grep -q "= id " "$T/ir_strip" && ok ||
  bad "strip should remove named values (id)"
grep -q "= exp " "$T/ir_strip" && ! grep -q "= exp " "$T/ir_fold" && ok ||
  bad "fold should evaluate exp(zeros)"
grep -q "const value=1 : f\[3\]" "$T/ir_fold" && ! grep -q "const value=1 : f\[3\]" "$T/ir_simplify" && ok ||
  bad "simplify should drop the multiplications by ones"
[ "$(grep -c "= cos " "$T/ir_simplify")" = 2 ] && [ "$(grep -c "= cos " "$T/ir_cse")" = 1 ] && ok ||
  bad "cse should share the two cos(w) of the backward"
head -1 "$T/ir_cse" | grep -q "after cse: \([0-9]*\) nodes, \1 live" && bad "cse left no dead nodes to test dce on" || ok
head -1 "$T/ir_dce" | grep -q "after dce: \([0-9]*\) nodes, \1 live" && ok || bad "dce should leave no dead nodes"
expect_rc 0 "check the pass demo graph" "$AGC" check "$T/passes.graph"
# loop fusion (plan.c): tanh, its backward and both sums run in one loop;
# tanh's value is a local of that loop, never stored. Workspace, by hand:
# the [1, 8] partial sums of grad_w (32 bytes -> 64 aligned) and the loss's
# row of 8 double partial sums (64 bytes): 128. -O0 stores every value.
cat > "$T/fuse.graph" <<'EOF2'
input x: f32[4, 8]
param w: f32[8]
y = tanh(x * w)
loss = sum(y)
output loss
backward loss
EOF2
"$AGC" "$T/fuse.graph" -o "$T/fuse.c" --header "$T/fuse.h" 2>/dev/null || bad "fuse graph failed"
grep -q "define FUSE_WORK_BYTES 128 " "$T/fuse.h" && ok || bad "fused workspace: $(grep 'define FUSE_WORK_BYTES' "$T/fuse.h")"
[ "$(grep -c 'for (long i0 = 0; i0 < 4;' "$T/fuse.c")" = 1 ] && ok || bad "tanh, its backward and the sums should share one loop"
grep -q "fuse_tanhf" "$T/fuse.c" && [ "$(grep -c 'fuse_tanhf(' "$T/fuse.c")" = 2 ] && ok || bad "tanh should be computed once (definition + one call)"
o0=$("$AGC" "$T/fuse.graph" -O0 --emit h 2>/dev/null | sed -n 's/^#define FUSE_WORK_BYTES \([0-9]*\) .*/\1/p')
[ -n "$o0" ] && [ "$o0" -ge 256 ] && ok || bad "-O0 stores tanh and x*w ([4, 8] each, 128 bytes): workspace $o0 < 256"
expect_rc 0 "check the fused graph" "$AGC" check "$T/fuse.graph"
expect_rc 2 "--after unknown pass" "$AGC" "$SRC/examples/mlp.graph" --emit ir --after nope
expect_rc 2 "--after without --emit ir" "$AGC" "$SRC/examples/mlp.graph" -o "$T/x.c" --after parse
expect_rc 0 "-O0 compiles" "$AGC" "$SRC/examples/mlp.graph" -O0 -o "$T/o0.c"
expect_rc 1 "--name keyword" "$AGC" "$SRC/examples/mlp.graph" --name float --emit c

# run: autograd-concepts example 3, then accumulation doubles the gradient
printf 'param x[2]\nz = sin(x ** 2)\noutput z\nbackward z\n' > "$T/ex3.graph"
npy_f64 "$T/x.npy" 1 2
npy_f64 "$T/grad_z.npy" 1 1
for be in tcc cc; do
  rm -rf "$T/o"
  expect_rc 0 "run ex3 ($be)" "$AGC" run "$T/ex3.graph" --dtype f64 --backend $be \
    x="$T/x.npy" grad_z="$T/grad_z.npy" --out "$T/o"
  expect_rc 0 "run ex3 accumulate ($be)" "$AGC" run "$T/ex3.graph" --dtype f64 \
    --backend $be --accumulate x="$T/x.npy" grad_z="$T/grad_z.npy" --out "$T/o"
  # grad_x = 2 * 2x cos(x^2) = [2.16121, -5.22915]; read the doubles back
  got=$(tail -c 16 "$T/o/grad_x.npy" | perl -e 'local $/; printf "%.4f %.4f", unpack "d<2", <STDIN>')
  [ "$got" = "2.1612 -5.2291" ] && ok || bad "accumulated grad_x ($be): $got"
done
expect_rc 2 "run with -o" "$AGC" run "$T/ex3.graph" -o "$T/x.c"
expect_rc 1 "wrong dtype" "$AGC" run "$T/ex3.graph" x="$T/x.npy" grad_z="$T/grad_z.npy" --out "$T/o"
grep -q "dtype f64, expected f32" "$T/stderr" && ok || bad "dtype message: $(cat "$T/stderr")"
printf 'garbage' > "$T/junk.npy"
expect_rc 1 "malformed npy" "$AGC" run "$T/ex3.graph" --dtype f64 x="$T/junk.npy" grad_z="$T/grad_z.npy" --out "$T/o"
expect_rc 1 "unknown input name" "$AGC" run "$T/ex3.graph" --dtype f64 q="$T/x.npy" --out "$T/o"
expect_rc 0 "--repeat" "$AGC" run "$T/ex3.graph" --dtype f64 x="$T/x.npy" grad_z="$T/grad_z.npy" --out "$T/o" --repeat 5
grep -Eq "^median_us=[0-9.]+ calls=5$" "$T/stderr" && ok || bad "--repeat line: $(cat "$T/stderr")"

# ---- output files: where they go, their mode, all or nothing ----
G="$SRC/examples/mlp.graph"
mkdir "$T/w"
# a symbolic link is followed: the link stays, its target gets the code
echo old > "$T/w/real.c"; chmod 0600 "$T/w/real.c"; ln -s real.c "$T/w/link.c"
expect_rc 0 "-o through a symlink" "$AGC" "$G" -o "$T/w/link.c"
[ -L "$T/w/link.c" ] && grep -q "^int mlp(" "$T/w/real.c" && ok || bad "-o replaced the symlink instead of writing its target"
[ "$(stat -c %a "$T/w/real.c")" = 600 ] && ok || bad "-o changed the mode of an existing file: $(stat -c %a "$T/w/real.c")"
# a new file: 0666 & ~umask
(umask 027; "$AGC" "$G" -o "$T/w/new.c") 2>/dev/null
[ "$(stat -c %a "$T/w/new.c")" = 640 ] && ok || bad "new output file ignores the umask: $(stat -c %a "$T/w/new.c")"
# a FIFO, a directory: refused, left as they are
mkfifo "$T/w/fifo.c"; mkdir "$T/w/dir.c"
expect_rc 1 "-o names a FIFO" "$AGC" "$G" -o "$T/w/fifo.c"
grep -q "fifo.c': it is a FIFO, not a regular file" "$T/stderr" && [ -p "$T/w/fifo.c" ] && ok || bad "FIFO: $(cat "$T/stderr")"
expect_rc 1 "-o names a directory" "$AGC" "$G" -o "$T/w/dir.c"
grep -q "dir.c': it is a directory" "$T/stderr" && [ -d "$T/w/dir.c" ] && ok || bad "directory: $(cat "$T/stderr")"
# the header cannot be written: the .c is not replaced either
echo keep > "$T/w/keep.c"
expect_rc 1 "--header in a missing directory" "$AGC" "$G" -o "$T/w/keep.c" --header "$T/w/nodir/keep.h"
[ "$(cat "$T/w/keep.c")" = keep ] && ok || bad "a failed header write replaced the .c"
expect_rc 1 "--header names a directory" "$AGC" "$G" -o "$T/w/keep.c" --header "$T/w/dir.c"
[ "$(cat "$T/w/keep.c")" = keep ] && ok || bad "a refused header replaced the .c"
# -o X --header X: one file cannot be both
expect_rc 1 "-o X --header X" "$AGC" "$G" -o "$T/w/keep.c" --header "$T/w/keep.c"
grep -q "are the same file" "$T/stderr" && [ "$(cat "$T/w/keep.c")" = keep ] && ok || bad "-o X --header X: $(cat "$T/stderr")"
expect_rc 1 "-o LINK --header TARGET" "$AGC" "$G" -o "$T/w/link.c" --header "$T/w/real.c"
ls "$T/w" | grep -q "agc-tmp\|agc-old" && bad "temporaries left in $T/w: $(ls "$T/w")" || ok
# agc run --out: all outputs or none (grad_x.npy is a directory here)
mkdir -p "$T/ro/grad_x.npy"; echo old > "$T/ro/z.npy"
expect_rc 1 "run: an output name taken by a directory" "$AGC" run "$T/ex3.graph" --dtype f64 \
  x="$T/x.npy" grad_z="$T/grad_z.npy" --out "$T/ro"
[ "$(cat "$T/ro/z.npy")" = old ] && ok || bad "run replaced z.npy although grad_x.npy could not be written"
ls "$T/ro" | grep -q "agc-tmp" && bad "run left temporaries: $(ls "$T/ro")" || ok
# SIGTERM during --backend cc: no temporary directory, no compiler left
awk 'BEGIN { print "param x[4]\nv0 = x"; for (i = 1; i <= 3000; i++) printf "v%d = sin(v%d) * 0.5 + x\n", i, i - 1;
             print "l = sum(v3000)\noutput l\nbackward l" }' > "$T/slow.graph"
mkdir "$T/tmpdir"
TMPDIR="$T/tmpdir" "$AGC" run "$T/slow.graph" --backend cc --out "$T/so" 2>/dev/null &
pid=$!
sleep 1.5
kill -TERM $pid
wait $pid 2>/dev/null
rc=$?
sleep 0.5
[ $rc -eq 143 ] && ok || bad "SIGTERM during --backend cc: exit $rc, wanted 143 (killed by SIGTERM)"
[ -z "$(ls -A "$T/tmpdir")" ] && ok || bad "SIGTERM during --backend cc left $(ls -AR "$T/tmpdir" | tr '\n' ' ')"

# ---- the command line and inputs ----
expect_rc 2 "the same input twice" "$AGC" run "$T/ex3.graph" x="$T/x.npy" x="$T/grad_z.npy"
grep -q "input given twice: 'x=" "$T/stderr" && ok || bad "input twice: $(head -1 "$T/stderr")"
expect_rc 2 "--repeat beyond MAX_REPEAT" "$AGC" run "$T/ex3.graph" --repeat 1000001
# a FIFO whose header claims 2^34 elements: refused by its shape, unread
mkfifo "$T/huge.npy"
hdr="{'descr': '<f8', 'fortran_order': False, 'shape': (17179869184,), }"
( printf '\223NUMPY\001\000'; printf "$(printf '\\%03o\\%03o' $(( (${#hdr} + 1) % 256 )) $(( (${#hdr} + 1) / 256 )))";
  printf '%s\n' "$hdr"; head -c 400000000 /dev/zero ) > "$T/huge.npy" 2>/dev/null &
fpid=$!
/usr/bin/env time -f "%M" -o "$T/rss" "$AGC" run "$T/ex3.graph" --dtype f64 x="$T/huge.npy" grad_z="$T/grad_z.npy" --out "$T/o" 2>"$T/stderr" ||
  rc=$?
{ kill $fpid; wait $fpid; } 2>/dev/null
grep -q "input 'x': .*huge.npy: shape \[17179869184\], expected \[2\]" "$T/stderr" && ok || bad "huge FIFO: $(cat "$T/stderr")"
[ -s "$T/rss" ] && [ "$(tail -1 "$T/rss")" -lt 200000 ] && ok || bad "huge FIFO: max RSS $(tail -1 "$T/rss") KB"
# agc check: its allocations are checked (1e9 f64 elements under a 2 GB limit)
if ! ldd "$AGC" 2>/dev/null | grep -q libasan; then  # ASan needs its address space
  printf 'param x[1000000000]\nl = sum(x * x)\noutput l\nbackward l\n' > "$T/huge.graph"
  (ulimit -v 2000000; exec "$AGC" check "$T/huge.graph") >"$T/stdout" 2>"$T/stderr"
  rc=$?
  [ $rc -eq 1 ] && grep -q "out of memory" "$T/stderr" && ok || bad "check under a memory limit: exit $rc ($(tail -1 "$T/stderr"))"
fi
# names: agc_gemm_f32 and co. are the runtime's, a leading underscore C's;
# a value may be called agc_root_* (agc check tells its own roots apart)
printf 'param x[2]\nagc_root_l = sum(x * x)\noutput agc_root_l\nbackward agc_root_l\n' > "$T/root.graph"
expect_rc 0 "a value named agc_root_* is checked like any other" "$AGC" check "$T/root.graph"
grep -q "grad_x .* ok" "$T/stdout" && ok || bad "agc_root_ output: $(cat "$T/stdout")"
expect_rc 1 "--name agc_gemm_f32" "$AGC" run "$T/ex3.graph" --name agc_gemm_f32
grep -q "'agc_gemm_f32' cannot name the generated function: it is a function of the agc runtime" "$T/stderr" && ok || bad "--name agc_gemm_f32: $(head -1 "$T/stderr")"
expect_rc 1 "--name _graph" "$AGC" "$G" --name _graph --emit c
cp "$T/ex3.graph" "$T/.graph"
expect_rc 0 "a file named .graph" "$AGC" "$T/.graph" --emit c
grep -q "^int graph(" "$T/stdout" && ok || bad "a file named .graph: $(grep -m1 '^int ' "$T/stdout")"

# check: passes on the examples, catches a gradient that is deliberately
# not the derivative (detach makes AD and finite differences disagree)
expect_rc 0 "check mlp" "$AGC" check "$SRC/examples/mlp.graph" --inputs "$SRC/examples/data"
expect_rc 0 "check logreg" "$AGC" check "$SRC/examples/logreg.graph"
printf 'param x[3]\nloss = sum(x * detach(x))\noutput loss\nbackward loss\n' > "$T/wrong.graph"
expect_rc 1 "check catches a wrong gradient" "$AGC" check "$T/wrong.graph"
grep -q "FAILED" "$T/stdout" && ok || bad "check did not say FAILED"

# f32 constants: a fold that would overflow f32 is left to run time (the C
# has no literal for an infinity), a literal beyond f32 is a located error
for e in "x * 1e30 * 1e30" "x * exp(100)" "x * (3e38 * 10)"; do
  printf 'param x[2]\ny = %s\nl = sum(y)\noutput y\nbackward l\n' "$e" > "$T/big.graph"
  expect_rc 0 "f32 overflow fold: $e" "$AGC" "$T/big.graph" -o "$T/big.c"
  ${CC:-cc} -std=c99 -Wall -Wextra -pedantic -Werror -c "$T/big.c" -o "$T/big.o" 2>"$T/cc.err" && ok ||
    bad "f32 overflow fold: C for '$e' does not compile: $(head -2 "$T/cc.err")"
done
printf 'input x[2]\ny = x * 1e39\noutput y\n' > "$T/big.graph"
expect_rc 1 "f32 literal beyond FLT_MAX" "$AGC" "$T/big.graph" -o "$T/big.c"
grep -q "big.graph:2:9: error: number '1e39' is out of range for f32" "$T/stderr" && ok ||
  bad "f32 literal message: $(head -1 "$T/stderr")"
expect_rc 0 "the same literal in f64" "$AGC" "$T/big.graph" --dtype f64 -o "$T/big.c"

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
