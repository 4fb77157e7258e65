#!/bin/sh
# The agc command line, as outside tests drive it (shared/cli-and-c-api.md):
# exit statuses, atomic output files, run/check/emit, accumulation.
# usage: cli.sh AGC SOURCE_DIR
set -u
AGC=$1
SRC=$2
. "$(dirname "$0")/lib.sh"
expect_rc() { # WANT DESCRIPTION CMD...
  want=$1; what=$2; shift 2
  "$@" >"$T/stdout" 2>"$T/stderr"
  rc=$?
  [ $rc -eq "$want" ] && ok || bad "$what: exit $rc, wanted $want ($(head -1 "$T/stderr"))"
}
# a .npy writer for vectors, in sh (no Python in CI)
npy_f64() { npy_vec '<f8' 'd<' "$@"; }
npy_f32() { npy_vec '<f4' 'f<' "$@"; }
npy_vec() { # DESCR PERL_PACK FILE V1 V2 ...
  descr=$1 pk=$2; shift 2
  f=$1; shift
  n=$#
  hdr="{'descr': '$descr', 'fortran_order': False, 'shape': ($n,), }"
  len=$((10 + ${#hdr} + 1))
  pad=$(( (64 - len % 64) % 64 ))
  { printf '\223NUMPY\001\000'
    printf "$(printf '\\%03o\\%03o' $(( (${#hdr} + pad + 1) % 256 )) $(( (${#hdr} + pad + 1) / 256 )))"
    printf '%s' "$hdr"; printf "%${pad}s" ''; printf '\n'
    perl -e '$p = shift; binmode STDOUT; print pack "$p*", @ARGV' "$pk" "$@"
  } > "$f"
}

expect_line() { # DESCRIPTION EXPECTED: the first line of stderr
  [ "$(head -1 "$T/stderr")" = "$2" ] && ok || bad "$1: got '$(head -1 "$T/stderr")', wanted '$2'"
}
expect_rc 0 "--help" "$AGC" --help
grep -q -- "--accumulate" "$T/stdout" && ok || bad "--help lacks --accumulate"
expect_rc 0 "--version" "$AGC" --version
grep -Eqx "JIT kernels: (generic|avx2|avx512)" "$T/stdout" && ok || bad "--version: no 'JIT kernels' line"
# AGC_KERNELS: the plain copy runs anywhere; another name is one error line
expect_rc 0 "AGC_KERNELS=generic" env AGC_KERNELS=generic "$AGC" run "$SRC/examples/mlp.graph" \
  --inputs "$SRC/examples/data" --out "$T/kout"
expect_rc 1 "AGC_KERNELS=sse9" env AGC_KERNELS=sse9 "$AGC" run "$SRC/examples/mlp.graph" \
  --inputs "$SRC/examples/data" --out "$T/kout2"
expect_line "AGC_KERNELS=sse9 message" \
  "agc: $SRC/examples/mlp.graph: AGC_KERNELS=sse9: not a kernel copy (generic, avx2 or avx512)"
[ -e "$T/kout2" ] && bad "AGC_KERNELS=sse9 wrote outputs" || ok
expect_rc 2 "no arguments" "$AGC"
expect_rc 2 "unknown option" "$AGC" "$SRC/examples/mlp.graph" --bogus
expect_rc 2 "bad --dtype" "$AGC" "$SRC/examples/mlp.graph" --dtype f16 -o "$T/x.c"
expect_rc 2 "bad --repeat" "$AGC" run "$SRC/examples/mlp.graph" --repeat 0
expect_rc 1 "missing graph file" "$AGC" "$T/nope.graph" -o "$T/x.c"
expect_line "missing graph file message" "agc: $T/nope.graph: cannot open: No such file or directory"

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
# --emit plan shows the same layout: tanh a local of the loop, the loss's
# partial sums in its own buffer, grad_w's [1, 8] sums after it
expect_rc 0 "--emit plan" "$AGC" "$T/fuse.graph" --emit plan
head -1 "$T/stdout" | grep -q "^# plan of fuse: workspace 128 bytes" && ok || bad "plan header: $(head -1 "$T/stdout")"
grep -q "^t3 .*tanh .*local of loop t3" "$T/stdout" && ok || bad "plan: tanh should be a local of its loop"
grep -q "^t4 .*sum .*work+0 (64 bytes), in loop t3, partial sums at work+0" "$T/stdout" && ok || bad "plan: loss partial sums"
grep -q "^t10 .*sum .*\[1, 8\] .*work+64 (64 bytes)" "$T/stdout" && ok || bad "plan: grad_w sums"
# --emit loops: one loop with the three, the loss's partial sums in the
# plan's scratch (host) or a Kahan local (mcu), grad_w's sums in its buffer
expect_rc 0 "--emit loops" "$AGC" "$T/fuse.graph" --emit loops
grep -q "^loop tanh over \[4, 8\]: t3(local) t4 t10$" "$T/stdout" && ok || bad "loops: $(sed -n 3p "$T/stdout")"
grep -q "^  acc   t4: partial sums at work+0 (64 bytes)$" "$T/stdout" && ok || bad "loops: the loss's partial sums"
grep -q "^  acc   t10: its own buffer$" "$T/stdout" && ok || bad "loops: grad_w's sums"
grep -q "^  write t10 work+64 (64 bytes) to byte 31$" "$T/stdout" && ok || bad "loops: grad_w's last byte"
expect_rc 0 "--emit loops --target mcu" "$AGC" "$T/fuse.graph" --emit loops --target mcu
grep -q "^  acc   t4: a local (4-byte)$" "$T/stdout" && ok || bad "mcu loops: a float (Kahan) local"
# how each statement runs, as lowering decided: the packed kernel on the
# host, plain loops on the mcu; a loop over equal shapes is one flat index
expect_rc 0 "--emit loops mlp" "$AGC" "$SRC/examples/mlp.graph" --emit loops
grep -q "^kernel t6 matmul over \[32, 16\] (gemm)$" "$T/stdout" && ok || bad "loops: the host's matmul through gemm"
expect_rc 0 "--emit loops mlp mcu" "$AGC" "$SRC/examples/mlp.graph" --emit loops --target mcu
grep -q "^kernel t6 matmul over \[32, 16\]$" "$T/stdout" && ok || bad "loops: the mcu's matmul as loops"
# a bias gradient [1, 3, 1, 1] in a loop over [4, 3, 5, 6]: held in a local
# over the inner loops, on the host and the mcu
G2="$SRC/tests/random/repro/split-sums-bias-grad.graph"
expect_rc 0 "--emit loops held sums" "$AGC" "$G2" --emit loops
[ "$(grep -c "^  acc   t[0-9]*: its own buffer, held in a local over dimensions 2-3$" "$T/stdout")" = 2 ] &&
  grep -q "^  acc   t17: its own buffer$" "$T/stdout" && ok || bad "loops: held sums: $(grep acc "$T/stdout" | tr '\n' ' ')"
expect_rc 0 "held sums in the C" "$AGC" "$G2" --emit c
grep -q "^          float s18 = out_grad_b\[i1\];$" "$T/stdout" &&
  grep -q "^          out_grad_b\[i1\] = s18;$" "$T/stdout" && ok || bad "C: grad_b not held in s18"
expect_rc 0 "--emit loops held sums mcu" "$AGC" "$G2" --emit loops --target mcu
grep -q "held in a local" "$T/stdout" && ok || bad "mcu loops: the held sums are missing"
printf 'input x: f32[4, 8]\nparam w: f32[4, 8]\ny = tanh(x * w)\noutput y\n' > "$T/flat.graph"
expect_rc 0 "--emit loops flat" "$AGC" "$T/flat.graph" --emit loops
grep -q "^store y over \[4, 8\] (flat): t3$" "$T/stdout" && ok || bad "loops: a flat store: $(sed -n 3p "$T/stdout")"
# --threads: bad counts and the mcu are command-line errors; a product
# big enough runs on the threads asked for, and agc run gives the same
# bytes for 1 and 3 threads (and 3 lowered to 2 by AGC_NUM_THREADS), on
# both backends
expect_rc 2 "--threads 0" "$AGC" "$SRC/examples/mlp.graph" --threads 0 -o "$T/x.c"
expect_rc 2 "--threads 65" "$AGC" "$SRC/examples/mlp.graph" --threads 65 -o "$T/x.c"
expect_rc 2 "--threads x" "$AGC" "$SRC/examples/mlp.graph" --threads 2x -o "$T/x.c"
expect_rc 2 "--threads mcu" "$AGC" "$SRC/examples/mlp.graph" --threads 2 --target mcu -o "$T/x.c"
grep -q "^agc: --threads needs the host target: the mcu C runs on one core " "$T/stderr" && ok || bad "--threads mcu: $(cat "$T/stderr")"
cat > "$T/thr.graph" <<'EOF2'
input a[256]
input b[4096]
param s[256]
x = sin(reshape(b, [4096, 1]) * reshape(a, [1, 256]))
W = cos(reshape(s, [256, 1]) * reshape(a, [1, 256]))
h = tanh(x @ W)
loss = sum(h * h)
output loss
backward loss
EOF2
expect_rc 0 "--emit loops --threads 3" "$AGC" "$T/thr.graph" --emit loops --threads 3
[ "$(grep -c '(gemm, 3 threads)$' "$T/stdout")" = 2 ] && ok || bad "threads: the forward and dW products on 3 threads: $(grep '^kernel' "$T/stdout")"
# the element-wise loops of 4096x256 = 2^20 elements: x's sin in parts
# along its rows; h's tanh, whose loop also sums h * h into the loss
# (partial sums per column), along the columns
grep -q '^node t[0-9]* sin over \[4096, 256\] (3 threads, parts along dimension 0)$' "$T/stdout" &&
  grep -q '^loop tanh over \[4096, 256\] (3 threads, parts along dimension 1):' "$T/stdout" && ok ||
  bad "threads: element-wise loops in parts: $(grep -E '^(loop|node)' "$T/stdout")"
expect_rc 0 "--emit loops one thread" "$AGC" "$T/thr.graph" --emit loops
grep -q "threads" "$T/stdout" && bad "threads: the default is one thread" || ok
vals() { awk -v n=$1 -v k=$2 'BEGIN { for (i = 0; i < n; i++) printf "%.6f ", sin(i * k) }'; }
npy_f64 "$T/thr_a.npy" $(vals 256 0.37)
npy_f64 "$T/thr_b.npy" $(vals 4096 0.91)
npy_f64 "$T/thr_s.npy" $(vals 256 1.3)
for be in tcc cc; do
  for run in 1:0 3:0 3:2; do
    n=${run%:*} env=${run#*:}
    expect_rc 0 "run --threads $n, AGC_NUM_THREADS=$env ($be)" env AGC_NUM_THREADS=$env "$AGC" run \
      "$T/thr.graph" --dtype f64 --backend $be --threads $n a="$T/thr_a.npy" b="$T/thr_b.npy" \
      s="$T/thr_s.npy" --out "$T/thr_$be$n${env#0}"
  done
  for d in "${be}3" "${be}32"; do
    cmp -s "$T/thr_${be}1/grad_s.npy" "$T/thr_$d/grad_s.npy" && cmp -s "$T/thr_${be}1/loss.npy" "$T/thr_$d/loss.npy" &&
      ok || bad "threads: $d differs from one thread"
  done
done
# --target jit shows the JIT's loops: its f32 row kernels run in parts of
# whole calls, along an outer dimension (units of 1 index), along the tiles
# of short rows (units of 4 rows of 64) and along the chunks of long rows
# (units of 256 elements, where the loop's partial sums per column allow
# no other dimension)
cp "$SRC/tests/jit_parts.graph" "$T/thr32.graph"
expect_rc 0 "--emit loops --target jit --threads 3" "$AGC" "$T/thr32.graph" --emit loops --target jit --threads 3
grep -q '^node t[0-9]* tanh over \[16384, 64\] (row kernels, 3 threads, parts along dimension 0 in units of 4)$' "$T/stdout" &&
  grep -q '^node t[0-9]* exp over \[4, 4096, 64\] (row kernels, 3 threads, parts along dimension 0 in units of 1)$' "$T/stdout" &&
  grep -q '^loop tanh over \[1024, 1024\] (row kernels, 3 threads, parts along dimension 1 in units of 256):' "$T/stdout" && ok ||
  bad "threads: the JIT's row-kernel loops in parts: $(grep -E '^(loop|node)' "$T/stdout")"
# the store of a gradient computed as an expression of stored values: row
# kernels into the output, in parts on threads; added into the caller's
# buffer (--accumulate), the plain loop
cat > "$T/rowst.graph" <<'EOF2'
input x[1024, 1024]
param p[1024, 1024]
loss = sum(tanh(x * p) + exp(p))
output loss
backward loss
EOF2
expect_rc 0 "--emit loops --target jit, store" "$AGC" "$T/rowst.graph" --emit loops --target jit --threads 3
grep -q '^store grad_p over \[1024, 1024\] (row kernels, flat, 3 threads, parts along dimension 0 in units of 256): ' "$T/stdout" && ok ||
  bad "row kernels: the store of grad_p: $(grep '^store grad_p' "$T/stdout")"
# a sum node of its own, and the C library's functions, as row kernels
printf 'input x[64, 512]\nparam w[512]\nloss = -mean(log(sigmoid(x * w)) + softplus(x) * erf(x) + sin(x) * cos(w))\noutput loss\nbackward loss\n' > "$T/rowsum.graph"
expect_rc 0 "--emit loops --target jit, a sum node" "$AGC" "$T/rowsum.graph" --emit loops --target jit
grep -q '^node t[0-9]* sum over \[64, 512\] (row kernels)$' "$T/stdout" &&
  grep -q '^loop sigmoid over \[64, 512\] (row kernels):' "$T/stdout" && ok ||
  bad "row kernels: the sum node and the loop: $(grep -E '^(loop|node)' "$T/stdout" | tr '\n' ';')"
expect_rc 0 "--emit loops --target jit --accumulate" "$AGC" "$T/rowst.graph" --emit loops --target jit --accumulate
grep -q '^store grad_p over \[1024, 1024\] (flat): ' "$T/stdout" && ok ||
  bad "row kernels: the accumulated store of grad_p: $(grep '^store grad_p' "$T/stdout")"
expect_rc 0 "--emit loops --target jit" "$AGC" "$T/thr32.graph" --emit loops --target jit
grep -q "threads" "$T/stdout" && bad "threads: the JIT's default is one thread" || ok
expect_rc 2 "--target jit -o" "$AGC" "$T/thr32.graph" --target jit -o "$T/x.c"
expect_line "--target jit needs --emit" "agc: --target jit goes with --emit: it shows what the JIT compiles (its C calls libagc's kernels) (agc --help shows the usage)"
expect_rc 2 "run --target jit" "$AGC" run "$T/thr32.graph" --target jit
expect_line "run --target jit message" "agc: --target takes host or mcu, not 'jit' (agc --help shows the usage)"
expect_rc 2 "--target gpu" "$AGC" "$T/thr32.graph" --target gpu --emit loops
expect_line "--target gpu message" "agc: --target takes host, mcu or jit (with --emit), not 'gpu' (agc --help shows the usage)"
npy_f32 "$T/thr_d.npy" $(vals 1024 0.23)
npy_f32 "$T/thr_c.npy" $(vals 1024 0.71)
npy_f32 "$T/thr_W.npy" $(vals 512 0.05)
npy_f32 "$T/thr_a64.npy" $(vals 64 0.37)
npy_f32 "$T/thr_b16k.npy" $(vals 16384 0.91)
for run in 1:0 3:0 3:2; do
  n=${run%:*} env=${run#*:}
  expect_rc 0 "run f32 --threads $n, AGC_NUM_THREADS=$env (tcc)" env AGC_NUM_THREADS=$env "$AGC" run \
    "$T/thr32.graph" --threads $n a="$T/thr_a64.npy" b="$T/thr_b16k.npy" d="$T/thr_d.npy" \
    c="$T/thr_c.npy" W="$T/thr_W.npy" --out "$T/thr32_$n${env#0}"
done
for d in 3 32; do
  cmp -s "$T/thr32_1/loss.npy" "$T/thr32_$d/loss.npy" && cmp -s "$T/thr32_1/grad_c.npy" "$T/thr32_$d/grad_c.npy" &&
    cmp -s "$T/thr32_1/grad_W.npy" "$T/thr32_$d/grad_W.npy" && ok || bad "threads: f32 JIT $d differs from one thread"
done
expect_rc 2 "--emit nope" "$AGC" "$T/fuse.graph" --emit nope
grep -q "c, h, ir, plan, loops, mem or dot" "$T/stderr" && ok || bad "--emit kinds: $(cat "$T/stderr")"
o0=$("$AGC" "$T/fuse.graph" -O0 --emit h 2>/dev/null | sed -n 's/^#define FUSE_WORK_BYTES \([0-9]*\) .*/\1/p')
[ -n "$o0" ] && [ "$o0" -ge 256 ] && ok || bad "-O0 stores tanh and x*w ([4, 8] each, 128 bytes): workspace $o0 < 256"
expect_rc 0 "check the fused graph" "$AGC" check "$T/fuse.graph"
expect_rc 2 "--after unknown pass" "$AGC" "$SRC/examples/mlp.graph" --emit ir --after nope
expect_rc 2 "--after without --emit ir" "$AGC" "$SRC/examples/mlp.graph" -o "$T/x.c" --after parse
expect_rc 0 "-O0 compiles" "$AGC" "$SRC/examples/mlp.graph" -O0 -o "$T/o0.c"
expect_rc 1 "--name keyword" "$AGC" "$SRC/examples/mlp.graph" --name float --emit c
expect_line "a message without a place starts with agc:" "agc: $SRC/examples/mlp.graph: error: 'float' cannot name the generated function: it is a C keyword or library name (use 'graph NAME' or --name)"
expect_rc 1 "--name keyword (run)" "$AGC" run "$SRC/examples/mlp.graph" --name float
expect_line "run: a message without a place starts with agc:" "agc: $SRC/examples/mlp.graph: error: 'float' cannot name the generated function: it is a C keyword or library name (use 'graph NAME' or --name)"

# a product and its transpose are one value (passes.c, untwin): one
# product over [4, 4], in the gradient function and in the training step,
# whose schedule rebuilds the graph after dce
cat > "$T/twin.graph" <<'EOF2'
param p6[4, 57]
param p7[57, 4]
v10 = p6 @ p7
v13 = (v10.T != v10)
loss = sum((v13 * v10) ** 2)
output loss, v13
backward loss
optimizer sgd(lr=0.01)
EOF2
expect_rc 0 "--emit loops, twin" "$AGC" "$T/twin.graph" --emit loops
[ "$(grep -c '^kernel t[0-9]* matmul over \[4, 4\]' "$T/stdout")" = 2 ] && ok ||
  bad "twin: one [4, 4] product in each function: $(grep -E '^(#|kernel)' "$T/stdout" | tr '\n' ';')"

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
printf 'garbage' > "$T/junk.npy"
expect_rc 1 "malformed npy" "$AGC" run "$T/ex3.graph" --dtype f64 x="$T/junk.npy" grad_z="$T/grad_z.npy" --out "$T/o"
expect_rc 1 "unknown input name" "$AGC" run "$T/ex3.graph" --dtype f64 q="$T/x.npy" --out "$T/o"
expect_line "unknown input name message" "agc: 'q' is not an input of the graph (inputs: x grad_z)"
expect_rc 1 "misspelt input name" "$AGC" run "$SRC/examples/mlp.graph" --inputs "$SRC/examples/data" w1="$T/x.npy" --out "$T/o"
expect_line "misspelt input name message" "agc: 'w1' is not an input of the graph; did you mean 'W1'? (inputs: x t W1 b1 W2 b2)"
# errors that teach (exact messages)
expect_rc 1 "f64 file for an f32 input" "$AGC" run "$T/ex3.graph" x="$T/x.npy" grad_z="$T/grad_z.npy" --out "$T/o"
expect_line "dtype message" "agc: input 'x' ($T/x.npy): dtype float64 ('<f8'); 'x' must be float32 ('<f4') (or run with --dtype f64); in NumPy: a.astype(np.float32)"
printf 'input labels: i32[2]\ninput x[2, 3]\nparam W[3, 4]\nloss = cross_entropy(x @ W, labels)\nbackward loss\n' > "$T/ce.graph"
npy_vec '<i8' 'q<' "$T/lab64.npy" 1 2
expect_rc 1 "int64 labels (NumPy's default)" "$AGC" run "$T/ce.graph" labels="$T/lab64.npy" --out "$T/o"
expect_line "int64 labels message" "agc: input 'labels' ($T/lab64.npy): dtype int64 ('<i8'); 'labels' must be int32 ('<i4'); in NumPy: a.astype(np.int32)"
# check fills the float inputs it is not given, so only labels are needed
npy_vec '<i4' 'l<' "$T/lab_bad.npy" 1 4
expect_rc 1 "label out of range (check)" "$AGC" check "$T/ce.graph" labels="$T/lab_bad.npy"
grep -v "^agc: note:" "$T/stderr" > "$T/stderr2"; mv "$T/stderr2" "$T/stderr"
expect_line "label range message" "agc: $T/ce.graph: input 'labels': labels[1] = 4 is out of range: cross_entropy has 4 classes, so labels must be in 0..3"
npy_vec '<i4' 'l<' "$T/lab_ok.npy" 1 3
expect_rc 0 "labels in range (check)" "$AGC" check "$T/ce.graph" labels="$T/lab_ok.npy"
for cmd in run check; do
  expect_rc 1 "missing graph file ($cmd)" "$AGC" $cmd "$T/nope.graph"
  expect_line "missing graph file message ($cmd)" "agc: $T/nope.graph: cannot open: No such file or directory"
done
expect_rc 2 "misspelt option" "$AGC" "$SRC/examples/mlp.graph" --dtyp f64
expect_line "misspelt option message" "agc: unknown option '--dtyp'; did you mean '--dtype'? (agc --help shows the usage)"
expect_rc 2 "--opt=value" "$AGC" "$SRC/examples/mlp.graph" --dtype=f64
expect_line "--opt=value message" "agc: unknown option '--dtype=f64'; write '--dtype f64' (agc --help shows the usage)"
printf 'input x[2, 3]\np = softmax(x)\ns = p.sum()\noutput s\n' > "$T/method.graph"
expect_rc 1 "method syntax" "$AGC" "$T/method.graph" --emit c
expect_line "method syntax message" "$T/method.graph:3:7: error: 'p.sum()' is method syntax, which the language does not have; write sum(p)"
expect_rc 0 "--repeat" "$AGC" run "$T/ex3.graph" --dtype f64 x="$T/x.npy" grad_z="$T/grad_z.npy" --out "$T/o" --repeat 5
grep -Eq "^median_us=[0-9.]+ calls=5$" "$T/stderr" && ok || bad "--repeat line: $(cat "$T/stderr")"
# progress: drawn on a terminal only, never into a pipe or a file
[ "$(cat "$T/stderr")" = "$(grep -E '^median_us=' "$T/stderr")" ] && ok || bad "--repeat wrote more than its line to a file: $(cat "$T/stderr")"
expect_rc 0 "check, stderr a file" "$AGC" check "$T/ex3.graph" x="$T/x.npy" grad_z="$T/grad_z.npy"
grep -q "checking" "$T/stderr" && bad "check drew progress into a file" || ok
if command -v script > /dev/null; then
  script -qec "'$AGC' run '$T/ex3.graph' --dtype f64 x='$T/x.npy' grad_z='$T/grad_z.npy' --out '$T/o' --repeat 3" /dev/null > "$T/tty.txt" 2>&1 &&
    grep -q "agc: calls 0/3" "$T/tty.txt" && ok || bad "no progress for --repeat on a terminal: $(cat "$T/tty.txt")"
  grep -q "median_us=[0-9.]* calls=3" "$T/tty.txt" && ok || bad "median line missing on a terminal"
  script -qec "'$AGC' check '$T/ex3.graph' x='$T/x.npy' grad_z='$T/grad_z.npy'" /dev/null > "$T/tty.txt" 2>&1 &&
    grep -q "agc: checking grad_x, element 0/2" "$T/tty.txt" && ok || bad "no progress for check on a terminal: $(cat "$T/tty.txt")"
else
  echo "SKIP: no 'script' (util-linux): progress on a terminal not tested"
fi

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
awk 'BEGIN { print "param x[4]\nv0 = x"; for (i = 1; i <= 20000; i++) printf "v%d = sin(v%d) * 0.5 + x\n", i, i - 1;
             print "l = sum(v20000)\noutput l\nbackward l" }' > "$T/slow.graph"
mkdir "$T/tmpdir"
TMPDIR="$T/tmpdir" "$AGC" run "$T/slow.graph" --backend cc --out "$T/so" 2>/dev/null &
pid=$!
# the signal comes once the compile has begun (its directory is there),
# not after a fixed time: on a fast machine the whole run took 1.1 s
i=0
while [ $i -lt 300 ] && [ -z "$(ls -A "$T/tmpdir")" ]; do sleep 0.05; i=$((i + 1)); done
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
# a graph file named after a math function of the op table (atan.graph)
printf 'param p[2]\nl = sum(atan(p))\noutput l\nbackward l\n' > "$T/atan.graph"
expect_rc 1 "a graph file named atan.graph" "$AGC" "$T/atan.graph" --emit c
grep -q "'atan' cannot name the generated function: it is a C keyword or library name" "$T/stderr" && ok || bad "atan.graph: $(head -1 "$T/stderr")"
expect_rc 0 "atan.graph with --name" "$AGC" "$T/atan.graph" --emit c --name arctan
expect_rc 1 "--name expm1f" "$AGC" "$T/atan.graph" --emit c --name expm1f
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

# Every line a failing agc prints on stderr is a message that starts with
# "agc: " or FILE:LINE:COL:, or the source line and caret under one.
printf 'input x[2]\ny = x +\n' > "$T/syntax.graph"
printf '\223NUMPY\001\000' > "$T/short.npy"
sweep() { # DESCRIPTION CMD...
  what=$1; shift
  "$@" > /dev/null 2> "$T/sweep.err" && { bad "$what: did not fail"; return; }
  [ -s "$T/sweep.err" ] || { bad "$what: failed without a message"; return; }
  grep -Ev '^(agc: |[^ :]+:[0-9]+:[0-9]+: |  )' "$T/sweep.err" > "$T/sweep.bad" &&
    bad "$what: lines without agc: or FILE:LINE:COL: $(cat "$T/sweep.bad")" || ok
}
sweep "no arguments" "$AGC"
sweep "unknown option" "$AGC" "$SRC/examples/mlp.graph" --frobnicate
sweep "missing value" "$AGC" "$SRC/examples/mlp.graph" -o
sweep "no output" "$AGC" "$SRC/examples/mlp.graph"
sweep "missing graph" "$AGC" "$T/none.graph" -o "$T/x.c"
sweep "missing graph (run)" "$AGC" run "$T/none.graph"
sweep "missing graph (check)" "$AGC" check "$T/none.graph"
sweep "syntax error" "$AGC" "$T/syntax.graph" --emit c
sweep "syntax error (run)" "$AGC" run "$T/syntax.graph"
sweep "bad --name" "$AGC" "$SRC/examples/mlp.graph" --name int --emit c
sweep "missing input" "$AGC" run "$SRC/examples/mlp.graph" --out "$T/o"
sweep "truncated npy" "$AGC" run "$T/ex3.graph" --dtype f64 x="$T/short.npy" grad_z="$T/grad_z.npy" --out "$T/o"
npy_f64 "$T/three.npy" 1 2 3
sweep "wrong shape" "$AGC" run "$T/ex3.graph" --dtype f64 x="$T/three.npy" grad_z="$T/grad_z.npy" --out "$T/o"
sweep "int64 labels" "$AGC" run "$T/ce.graph" labels="$T/lab64.npy" --out "$T/o"
sweep "label out of range" "$AGC" check "$T/ce.graph" labels="$T/lab_bad.npy"
sweep "unknown input" "$AGC" run "$T/ex3.graph" q="$T/x.npy"
printf 'input x[2]\ny = x * 2\noutput y\n' > "$T/fwd.graph"
sweep "check without backward" "$AGC" check "$T/fwd.graph"
sweep "--after unknown" "$AGC" "$SRC/examples/mlp.graph" --emit ir --after nope
sweep "--out is a file" "$AGC" run "$T/ex3.graph" --dtype f64 x="$T/x.npy" grad_z="$T/grad_z.npy" --out "$T/x.npy"
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
