#!/bin/sh
# bench/run.sh — build what the benchmark needs, run it, print the tables.
#
#   bench/run.sh [--keep] [bench.py options, e.g. --min-time 1 --jit-timeout 30]
#
# Builds agc (ninja -C build, only the targets needed) and the two small API
# programs into a temporary directory, then runs bench/bench.py with
# /usr/bin/python3, which compiles the baseline once per MLP shape (gcc -O3
# -march=native, sizes as -D constants), writes the graphs and random inputs
# (numpy needed; PyTorch rows are skipped if torch is not importable).
# The report (Markdown) goes to standard output, progress to standard error.
# --keep leaves the temporary directory (graphs, .npy inputs and outputs).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

keep=0
if [ "${1:-}" = "--keep" ]; then keep=1; shift; fi

# What the bench needs beyond the build: Debian's numpy (PyTorch is used
# when python3-torch is installed, and skipped otherwise).
.ci/deps >&2
PYTHON=${PYTHON:-/usr/bin/python3}
if ! [ -x "$PYTHON" ] || ! "$PYTHON" -c 'import numpy' 2>/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get install -y -q --no-install-recommends python3 python3-numpy >&2
  PYTHON=/usr/bin/python3
fi
CC_BENCH=${CC_BENCH:-gcc}

# 1. agc and the bench's two programs on the tool API (bench/meson.build)
if [ ! -f build/build.ninja ]; then
  meson setup build >&2
fi
ninja -C build agc bench/workspace bench/jit_latency >&2

# 2. a temporary directory: graphs, inputs, outputs, the programs
work=$(mktemp -d "${TMPDIR:-/tmp}/agc-bench.XXXXXX")
if [ "$keep" = 1 ]; then
  echo "bench: keeping $work" >&2
else
  trap 'rm -rf "$work"' EXIT INT TERM
fi
mkdir -p "$work/bin" "$work/tmp"
cp build/bench/workspace build/bench/jit_latency "$work/bin/"

# 3. run; agc --backend cc writes its temporary files under $TMPDIR
export TMPDIR="$work/tmp"
"$PYTHON" "$here/bench.py" --repo "$repo" --work "$work" --bin "$work/bin" \
  --python "$PYTHON" --cc "$CC_BENCH" "$@"
