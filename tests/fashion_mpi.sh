#!/bin/sh
# examples/mpi/fashion_mpi on the real Fashion-MNIST (Debian's
# dataset-fashion-mnist): on the first 1,024 training images, 2 epochs of 16
# steps of a global batch of 64, one process (batch 64) and two processes
# (32 each, gradients averaged with MPI_Allreduce) must take the same steps
# to float rounding, and the loss must fall. Then bad data and bad command
# lines must each give one line "fashion_mpi: ..." and no crash.
# usage: fashion_mpi.sh FASHION_MPI [DATA_DIR]
set -u
EXE=${1:-}
DATA=${2:-/usr/share/datasets/fashion-mnist}
command -v mpirun > /dev/null || { echo "SKIP: mpirun is not installed (apt-get install openmpi-bin)"; exit 77; }
[ -n "$EXE" ] && [ -x "$EXE" ] || { echo "SKIP: fashion_mpi was not built (it needs libopenmpi-dev and zlib1g-dev at meson setup)"; exit 77; }
[ -e "$DATA/train-images-idx3-ubyte.gz" ] || [ -e "$DATA/train-images-idx3-ubyte" ] ||
  { echo "SKIP: no Fashion-MNIST in $DATA (apt-get install dataset-fashion-mnist)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

ARGS="--data $DATA --limit 1024 --test-limit 1000 --epochs 2 --step-loss"
for np in 1 2; do
  mpirun -np $np --oversubscribe --allow-run-as-root "$EXE" $ARGS --dump "$T/p$np.bin" \
    > "$T/run$np.txt" 2> "$T/run$np.err" || { cat "$T/run$np.err"; fail "mpirun -np $np fashion_mpi"; }
  grep -v '^step' "$T/run$np.txt"
  # progress goes to a terminal only: nothing on stderr into a file
  [ -s "$T/run$np.err" ] && fail "np $np wrote to stderr (not a terminal): $(head -c 300 "$T/run$np.err")"
done
# on a terminal: a progress line with the step, the loss and the time
if command -v script > /dev/null; then
  script -qec "'$EXE' --data '$DATA' --limit 1024 --test-limit 100 --epochs 1" /dev/null > "$T/tty.txt" 2>&1
  grep -q "fashion_mpi: epoch 1 step [0-9]*/16 loss [0-9.]* [0-9.]* s" "$T/tty.txt" ||
    fail "no progress line on a terminal: $(head -c 300 "$T/tty.txt")"
fi

# The params, 203,530 floats each. The two runs add the same 64 per-image
# gradients in a different order (64 at once, or 32 + 32 then the
# allreduce), so they differ by float rounding: 5e-8 after 16 steps when
# this test was written (params up to 0.25 in size, float epsilon 6e-8).
# The tolerance 1e-5 leaves room for 32 steps of that, and is still 100
# times smaller than one SGD step of a bug such as a shard counted twice or
# the gradients not divided by the number of processes (lr * |g| >= 1e-3).
for np in 1 2; do
  od -An -v -f -w4 "$T/p$np.bin" > "$T/p$np.txt"
  [ "$(wc -l < "$T/p$np.txt")" -eq 203530 ] || fail "expected 203530 params from the $np-process run"
done
paste "$T/p1.txt" "$T/p2.txt" | awk '
  { d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; if ($1 != 0) nz++ }
  END { printf "largest difference between the params of 1 and 2 processes: %.3g\n", m
        exit !(m <= 1e-5 && nz > 200000) }' ||
  fail "the params of 1 and 2 processes differ by more than float rounding (or are zero)"

# The step losses agree too (relative 1e-5), and they fell: the first is
# near ln 10 = 2.30 (ten classes, small random weights), and the last 8 steps
# average under 0.7 times the first 8 (1.84 -> 1.05 when this was written).
sed -n 's/^step \([0-9]*\) loss //p' "$T/run1.txt" > "$T/l1"
sed -n 's/^step \([0-9]*\) loss //p' "$T/run2.txt" > "$T/l2"
[ "$(wc -l < "$T/l1")" -eq 32 ] && [ "$(wc -l < "$T/l2")" -eq 32 ] || fail "expected 32 step losses from each run"
paste "$T/l1" "$T/l2" | awk '
  { d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > m) m = d
    if (NR == 1) f = $1; if (NR <= 8) a += $1; if (NR > 24) b += $1 }
  END { printf "step losses: largest relative difference %.3g; first %.4f; first 8 average %.4f, last 8 %.4f\n", m, f, a / 8, b / 8
        exit !(m <= 1e-5 && f > 2.0 && f < 2.6 && b < 0.7 * a) }' ||
  fail "the step losses of 1 and 2 processes differ, or the loss did not fall"

# On the test images the model is far better than chance (0.1): above 0.6
# (0.70 when this test was written).
acc=$(sed -n 's/^test accuracy \([0-9.]*\) .*/\1/p' "$T/run2.txt")
awk -v a="$acc" 'BEGIN { exit !(a > 0.6) }' || fail "test accuracy $acc is not above 0.6"

# Bad input: one line "fashion_mpi: ...", exit 1 (data) or 2 (command
# line), no crash. One process, without mpirun (an MPI singleton), so that
# stderr holds only what fashion_mpi says.
B="$T/bad"
mkdir -p "$B"
bad() { # bad EXPECTED_STATUS WORDS_IN_MESSAGE ARGS...
  want=$1; words=$2; shift 2
  "$EXE" "$@" > "$T/out" 2> "$T/err"
  st=$?
  [ "$st" -eq "$want" ] || { cat "$T/err"; fail "$* exited $st, expected $want"; }
  [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q "^fashion_mpi: .*$words" "$T/err" ||
    { cat "$T/err"; fail "$*: expected one line 'fashion_mpi: ...$words...'"; }
  sed 's/^/  /' "$T/err"
}
header() { printf '\000\000\010\003\000\000\000\002\000\000\000\034\000\000\000\034'; } # 2 images 28x28
bad 1 "cannot open: No such file" --data "$B/none"
header > "$B/train-images-idx3-ubyte"; head -c 1000 /dev/zero >> "$B/train-images-idx3-ubyte"
bad 1 "train-images-idx3-ubyte: file is truncated: expected 1568 bytes of the data, found 1000" --data "$B"
header > "$B/train-images-idx3-ubyte"; head -c 1569 /dev/zero >> "$B/train-images-idx3-ubyte"
bad 1 "train-images-idx3-ubyte: trailing bytes" --data "$B"
printf '\000\000\010\001\000\000\000\002' > "$B/train-images-idx3-ubyte"
bad 1 "train-images-idx3-ubyte: not an IDX file of unsigned bytes with 3 dimensions (magic number 0x00000801" --data "$B"
printf '\000\000\010\003\000\000\000\000\000\000\000\034\000\000\000\034' > "$B/train-images-idx3-ubyte"
bad 1 "dimension 0 is 0" --data "$B"
printf '\000\000\010\003\377\377\377\377' > "$B/train-images-idx3-ubyte"
bad 1 "file is truncated: expected 12 bytes of the dimensions, found 4" --data "$B"
rm "$B/train-images-idx3-ubyte"
# a gzip file whose CRC does not match its data
{ header; head -c 1568 /dev/zero; } | gzip -c > "$T/good.gz"
n=$(wc -c < "$T/good.gz")
{ head -c $((n - 8)) "$T/good.gz"; printf '\001\002\003\004'; tail -c 4 "$T/good.gz"; } > "$B/train-images-idx3-ubyte.gz"
bad 1 "train-images-idx3-ubyte.gz: cannot read the magic number: incorrect data check" --data "$B"
{ header; head -c 1568 /dev/zero; } | gzip -c > "$B/train-images-idx3-ubyte.gz"
bad 1 "train-labels-idx1-ubyte.gz: cannot open" --data "$B"
printf '\000\000\010\001\000\000\000\002\003\012' > "$B/train-labels-idx1-ubyte"
bad 1 "train-labels-idx1-ubyte: label 1 is 10 (expected 0..9)" --data "$B"
printf '\000\000\010\001\000\000\000\003\003\004\005' > "$B/train-labels-idx1-ubyte"
bad 1 "3 labels for the 2 images" --data "$B"
bad 2 "fewer than one batch of 64" --data "$DATA" --limit 10
bad 2 "unknown option '--epoch'" --epoch 2
bad 2 "--epochs '0': expected an integer in 1..1000" --epochs 0
bad 2 "--limit needs a value" --limit
bad 2 "--lr 'fast'" --lr fast
echo "fashion_mpi: ok"
