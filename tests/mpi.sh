#!/bin/sh
# examples/mpi: two processes, each computing the gradient of its shard with
# the generated shard_grad(), averaged by MPI_Allreduce, then the same
# generated Adam step shard_update(), must end (after 10 steps) where one
# process ends with the fused step full() on the whole batch, to float
# rounding.
# usage: mpi.sh MPI_ADAM FULL_ADAM
set -u
MPI_ADAM=$1
FULL_ADAM=$2
command -v mpirun > /dev/null || { echo "SKIP: mpirun is not installed (apt-get install openmpi-bin)"; exit 77; }
[ -x "$MPI_ADAM" ] || { echo "SKIP: mpi_adam was not built (no MPI at setup: apt-get install libopenmpi-dev)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mpirun -np 2 --oversubscribe --allow-run-as-root "$MPI_ADAM" > "$T/mpi.txt" 2> "$T/mpi.err" ||
  { cat "$T/mpi.err"; echo "FAIL: mpirun -np 2 mpi_adam"; exit 1; }
"$FULL_ADAM" > "$T/full.txt" || { echo "FAIL: full_adam"; exit 1; }
cat "$T/mpi.txt"
# the 97 params after the header line, side by side
sed -n '/^params after 10 steps on 2 processes:$/,$p' "$T/mpi.txt" | tail -n +2 | tr ' ' '\n' > "$T/p_mpi"
sed -n '/^params after 10 steps on 1 process:$/,$p' "$T/full.txt" | tail -n +2 | tr ' ' '\n' > "$T/p_full"
[ "$(wc -l < "$T/p_mpi")" -eq 97 ] && [ "$(wc -l < "$T/p_full")" -eq 97 ] ||
  { echo "FAIL: expected 97 params from each run"; exit 1; }
paste "$T/p_mpi" "$T/p_full" | awk '
  { d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d }
  END { printf "largest difference between the runs: %.3g\n", m; exit !(m <= 1e-6) }' ||
  { echo "FAIL: the params of the two runs differ by more than float rounding"; exit 1; }
# and training did something: the loss fell
first=$(sed -n 's/^step 0 loss //p' "$T/mpi.txt"); last=$(sed -n 's/^step 9 loss //p' "$T/mpi.txt")
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.8 * a) }' ||
  { echo "FAIL: the loss did not fall ($first -> $last)"; exit 1; }
cmp -s "$T/p_mpi" "$T/p_full" && echo "(bit-identical)"
echo "mpi: ok"
