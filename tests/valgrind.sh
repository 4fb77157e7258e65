#!/bin/sh
# The JIT's code under valgrind's memcheck: what TinyCC compiles is not
# instrumented by ASan, so the bytes it reads and writes are checked here,
# in `agc run` (tcc, f32) on graphs whose loops take the paths the C
# generator writes for the JIT: row-kernel loops in parts on threads
# (along an outer dimension, tiles of short rows, chunks of long rows), a
# gradient's store as row-kernel calls in parts, a sum node, a tile summed
# into one element (a conv bias gradient), an Adam step (sqrt rows) and
# the narrow and threaded products. Any memcheck error fails the test.
# usage: valgrind.sh AGC SOURCE_DIR     (skipped, exit 77, without valgrind)
set -u
AGC=$1
SRC=$2
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not found: skipped"; exit 77; }
. "$(dirname "$0")/lib.sh"
# npy FILE DTYPE 'SHAPE' N K: N values sin(K i) (f4), or i mod 10 (i4)
npy() {
  perl -e '
    my ($f, $dt, $shape, $n, $k) = @ARGV;
    my $hdr = "{\x27descr\x27: \x27<$dt\x27, \x27fortran_order\x27: False, \x27shape\x27: $shape, }";
    my $pad = (64 - (10 + length($hdr) + 1) % 64) % 64;
    $hdr .= " " x $pad . "\n";
    open(my $o, ">", $f) or die; binmode $o;
    print $o "\x93NUMPY\x01\x00" . pack("v", length $hdr) . $hdr;
    print $o pack($dt eq "f4" ? "f<*" : "l<*",
                  map { $dt eq "f4" ? sin($k * $_) : $_ % 10 } 0 .. $n - 1);
  ' "$@"
}
vg() { # DESCRIPTION AGC-ARGS...: agc under memcheck, clean and exit 0
  what=$1; shift
  valgrind -q --error-exitcode=99 "$AGC" "$@" >"$T/out" 2>"$T/err"
  rc=$?
  [ $rc -eq 0 ] && ok || bad "$what: exit $rc: $(grep -m3 -E '==[0-9]+==|agc:' "$T/err")"
}

# row-kernel loops in parts: an outer dimension, tiles, chunks
cp "$SRC/tests/jit_parts.graph" "$T/thr32.graph"
mkdir -p "$T/in1"
npy "$T/in1/a.npy" f4 '(64,)' 64 0.37
npy "$T/in1/b.npy" f4 '(16384,)' 16384 0.91
npy "$T/in1/d.npy" f4 '(1024,)' 1024 0.23
npy "$T/in1/c.npy" f4 '(1024,)' 1024 0.71
npy "$T/in1/W.npy" f4 '(512,)' 512 0.05
"$AGC" "$T/thr32.graph" --emit loops --target jit --threads 3 | grep -q '(row kernels, 3 threads, parts along dimension 0 in units of 4)' &&
  ok || bad "thr32: the JIT's row loops are not in parts"
vg "row loops in parts" run "$T/thr32.graph" --inputs "$T/in1" --threads 3 --out "$T/o1"

# a gradient's store as row-kernel calls, in parts; the same added into
# the caller's buffer (the plain loop)
cat > "$T/rowst.graph" <<'EOF'
input x[1024, 1024]
param p[1024, 1024]
loss = sum(tanh(x * p) + exp(p))
output loss
backward loss
EOF
mkdir -p "$T/in2"
npy "$T/in2/x.npy" f4 '(1024, 1024)' 1048576 0.013
npy "$T/in2/p.npy" f4 '(1024, 1024)' 1048576 0.029
vg "a store in parts" run "$T/rowst.graph" --inputs "$T/in2" --threads 3 --out "$T/o2"
vg "an accumulated store" run "$T/rowst.graph" --inputs "$T/in2" --threads 3 --accumulate --out "$T/o2"

# a sum node of its own; the C library's functions as row kernels
printf 'input x[64, 512]\nparam w[512]\nloss = -mean(log(sigmoid(x * w)) + softplus(x) * erf(x) + sin(x) * cos(w))\noutput loss\nbackward loss\n' > "$T/rowsum.graph"
mkdir -p "$T/in5"
npy "$T/in5/x.npy" f4 '(64, 512)' 32768 0.011
npy "$T/in5/w.npy" f4 '(512,)' 512 0.7
"$AGC" "$T/rowsum.graph" --emit loops --target jit | grep -q '^node t[0-9]* sum over \[64, 512\] (row kernels)$' &&
  ok || bad "rowsum: the sum node is not in row kernels"
vg "a sum node" run "$T/rowsum.graph" --inputs "$T/in5" --out "$T/o5"

# a conv bias gradient summed tile by tile, pooling, the products
cat > "$T/cnn.graph" <<'EOF'
input x[8, 1, 28, 28]
input labels: i32[8]
param k[8, 1, 3, 3]
param kb[8]
param W[1568, 10]
param b[10]
h = relu(conv2d(x, k, padding=1) + reshape(kb, [1, 8, 1, 1]))
z = reshape(max_pool2d(h, 2), [8, 1568]) @ W + b
loss = cross_entropy(z, labels)
output loss
backward loss
EOF
mkdir -p "$T/in3"
npy "$T/in3/x.npy" f4 '(8, 1, 28, 28)' 6272 0.017
npy "$T/in3/labels.npy" i4 '(8,)' 8 0
npy "$T/in3/k.npy" f4 '(8, 1, 3, 3)' 72 0.7
npy "$T/in3/kb.npy" f4 '(8,)' 8 0.3
npy "$T/in3/W.npy" f4 '(1568, 10)' 15680 0.011
npy "$T/in3/b.npy" f4 '(10,)' 10 0.5
vg "cnn" run "$T/cnn.graph" --inputs "$T/in3" --threads 2 --out "$T/o3"

# an Adam step (sqrt rows), three steps
vg "adam steps" run "$SRC/examples/mlp_adam.graph" --inputs "$SRC/examples/data" --steps 3 --out "$T/o4"

echo "valgrind: $pass passed, $fail failed"
[ $fail -eq 0 ]
