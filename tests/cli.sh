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
# a .npy writer for vectors, in sh (no Python in CI)
npy_f64() { npy_vec '<f8' 'd<' "$@"; }
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
    for v in "$@"; do printf "$(perl -e 'print join "", map { sprintf "\\%03o", $_ } unpack "C*", pack $ARGV[1], $ARGV[0]' "$v" "$pk")"; done
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
expect_line() { # DESCRIPTION EXPECTED: the first line of stderr
  [ "$(head -1 "$T/stderr")" = "$2" ] && ok || bad "$1: got '$(head -1 "$T/stderr")', wanted '$2'"
}
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

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
