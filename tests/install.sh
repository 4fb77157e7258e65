#!/bin/sh
# `meson install` into a temporary DESTDIR, then use what it installed the
# way a user would: build examples/run_graph.c against libagc with
# pkg-config (shared and static), run it on examples/mlp.graph (the TinyCC
# JIT inside the installed library), run the installed agc, and check that
# the man page describes every flag of `agc --help`.
# usage: install.sh BUILD_DIR SOURCE_DIR
set -u
# meson test points LD_LIBRARY_PATH at the build tree; a user has the install
unset LD_LIBRARY_PATH
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh"
D=$T

meson install -C "$BUILD" --no-rebuild --destdir "$D/root" --quiet > "$D/install.log" 2>&1 ||
  { cat "$D/install.log"; echo "FAIL: meson install"; exit 1; }
pc=$(find "$D/root" -name agc.pc)
[ -n "$pc" ] && ok || { echo "FAIL: no agc.pc installed"; exit 1; }
# The .pc file holds the real prefix; the sysroot makes its paths resolve
# inside DESTDIR.
export PKG_CONFIG_LIBDIR="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$D/root"
# (pkgconf puts the sysroot in front of variables too; strip it, to add it once)
libdir=$(pkg-config --variable=libdir agc); libdir=${libdir#"$D/root"}
incdir=$(pkg-config --variable=includedir agc); incdir=${incdir#"$D/root"}
echo "pkg-config --cflags --libs agc: $(pkg-config --cflags --libs agc)"
echo "pkg-config --static --libs agc: $(pkg-config --static --libs agc)"
for f in "$libdir/libagc.so" "$libdir/libagc.a" "$incdir/agc/agc_api.h" "$incdir/agc/agc_rt.h"; do
  [ -f "$D/root$f" ] && ok || bad "not installed: $f"
done

# The expected output: the build tree's run_graph on the same graph.
"$BUILD/examples/run_graph" "$SRC/examples/mlp.graph" > "$D/want.txt" 2>&1 || bad "build-tree run_graph failed"
head -1 "$D/want.txt" | grep -qx "loss = 42.4205" && ok || bad "build-tree run_graph: $(head -1 "$D/want.txt")"

# shared: only the installed headers (no compiler/agc.h) and libagc.so
cc -std=c11 -Wall -Wextra -Werror "$SRC/examples/run_graph.c" -o "$D/run_shared" \
  $(pkg-config --cflags --libs agc) -Wl,-rpath,"$D/root$libdir" 2> "$D/cc.log" &&
  ok || { cat "$D/cc.log"; bad "building run_graph against libagc.so"; }
if [ -x "$D/run_shared" ]; then
  ldd "$D/run_shared" | grep -q "$D/root$libdir/libagc.so.0" && ok || bad "run_shared does not use the installed libagc.so"
  "$D/run_shared" "$SRC/examples/mlp.graph" > "$D/shared.txt" 2>&1 && ok || bad "run_shared failed: $(head -3 "$D/shared.txt")"
  cmp -s "$D/want.txt" "$D/shared.txt" && ok || bad "shared output differs: $(diff "$D/want.txt" "$D/shared.txt" | head -5)"
  echo "run_graph (libagc.so) examples/mlp.graph:"; head -3 "$D/shared.txt"
fi

# static: libagc.a and its private libraries
# (the command of docs/tools.md; -ltcc -ldl -lm are agc.pc's Libs.private)
cc -std=c11 -Wall -Wextra -Werror "$SRC/examples/run_graph.c" -o "$D/run_static" \
  $(pkg-config --cflags agc) $(pkg-config --variable=libdir agc)/libagc.a -ltcc -ldl -lm 2> "$D/cc.log" &&
  ok || { cat "$D/cc.log"; bad "building run_graph against libagc.a"; }
if [ -x "$D/run_static" ]; then
  ldd "$D/run_static" | grep -q libagc && bad "run_static needs a shared libagc" || ok
  "$D/run_static" "$SRC/examples/mlp.graph" > "$D/static.txt" 2>&1 && ok || bad "run_static failed: $(head -3 "$D/static.txt")"
  cmp -s "$D/want.txt" "$D/static.txt" && ok || bad "static output differs"
fi

# the installed command
AGC=$(find "$D/root" -path '*/bin/agc')
"$AGC" --version | grep -qx "agc 0.1.0" && ok || bad "installed agc --version"
"$AGC" run "$SRC/examples/mlp.graph" --inputs "$SRC/examples/data" --out "$D/out" 2> "$D/run.log" &&
  [ -f "$D/out/grad_W1.npy" ] && ok || bad "installed agc run: $(cat "$D/run.log")"

# the Python binding, from the site directory it was installed in
init=$(find "$D/root" -path '*/agc/__init__.py')
if [ -z "$init" ]; then
  bad "python/agc not installed"
elif /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  site=$(dirname "$(dirname "$init")")
  # under the usual prefixes, Debian's python3 finds it without PYTHONPATH
  prefix=$(pkg-config --variable=prefix agc); prefix=${prefix#"$D/root"}
  if [ "$prefix" = /usr/local ] || [ "$prefix" = /usr ]; then
    /usr/bin/python3 -c 'import sys; sys.exit(sys.argv[1] not in sys.path)' "${site#"$D/root"}" && ok ||
      bad "the binding went to ${site#"$D/root"}, which Debian's python3 does not search"
  fi
  got=$(cd "$D" && PYTHONPATH="$site" AGC_LIBRARY="$D/root$libdir/libagc.so.0" /usr/bin/python3 -c '
import agc, agc._config, numpy as np
print(agc._config.LIBDIR)
g = agc.load("'"$SRC"'/examples/mlp.graph", dtype="float64")
d = "'"$SRC"'/examples/data/"
print("%.6f" % g(**{t.name: np.load(d + t.name + ".npy").astype(np.float64) for t in g.inputs})["loss"])
print(agc.__file__)' 2>&1)
  [ "$got" = "$libdir
0.804295
$init" ] && ok || bad "installed python binding: $got"
else
  echo "SKIP: the installed Python binding (no python3-numpy)"
fi

# the man page names every option of --help
man=$(find "$D/root" -name agc.1)
[ -n "$man" ] && ok || bad "agc.1 not installed"
flags=$("$AGC" --help | grep -oE '(^|[ [|])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[ [|]//' | sort -u)
[ "$(echo "$flags" | wc -l)" -ge 15 ] && ok || bad "found too few flags in --help: $flags"
text=$(sed 's/\\-/-/g' "$man")
for f in $flags; do
  echo "$text" | grep -q -e "^\.[BIT]*[A-Z]* *\"*$f\b" -e "^\.[A-Z]* .*$f\b" && ok || bad "agc.1 does not describe $f"
done

echo "install: $pass passed, $fail failed"
[ $fail -eq 0 ]
