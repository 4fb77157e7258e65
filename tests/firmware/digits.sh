#!/bin/sh
# digits.sh AGC SOURCE_ROOT [EPOCHS] — examples/firmware: the 8x8 digits
# classifier trained from scratch on a Cortex-M4F under QEMU, through the
# example's Makefile; with agc's step and with the hand-written one
# (digits_hand.c) for comparison.
#   2 epochs (default, the test suite): test accuracy >= 80% (chance: 10%)
#   20 or more (FW_EPOCHS=20 or a third argument; docs/firmware.md):  >= 90%
# The host build of the same program must train identically (every epoch's
# loss and accuracy). The RAM in use with agc's step (params, optimizer
# state, workspace, batch buffers, stack) must be <= 32 KiB. Exit 77 (skip) without arm-none-eabi-gcc, qemu-system-arm or make.
set -eu
AGC=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$2" && pwd)
EPOCHS=${3:-${FW_EPOCHS:-2}}
F=$ROOT/tests/firmware
. "$F/fw.sh"
fw_skip_unless_tools
E=$ROOT/examples/firmware

if [ -n "${FW_KEEP:-}" ]; then
  W=$FW_KEEP; mkdir -p "$W"
else
  W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
fi
if [ "$EPOCHS" -ge 20 ]; then bar=90; else bar=80; fi
fail=0

# run STEP: build into $W/STEP, train in QEMU and on the host, check
run() {
  O=$W/$1
  mkdir -p "$O"
  if ! (
    set -e
    cd "$O"
    "$AGC" "$E/digits.graph" -o digits_step.c --header digits_step.h --target mcu
    "$AGC" "$E/digits_infer.graph" -o digits_infer.c --header digits_infer.h --target mcu
    "$PY" "$E/bin2c.py" "$E/digits.bin" digits_data.c
    "${CROSS}gcc" $CONTRACT -DSTEP_$1 -DEPOCHS="$EPOCHS" -I. -I"$E" -I"$F" \
      $LDFLAGS_FW -T "$F/fw.ld" "$F/startup.c" "$F/board.c" "$F/board_common.c" \
      "$E/digits_main.c" "$E/digits_hand.c" digits_data.c digits_step.c digits_infer.c \
      -lm -o digits.elf
    "${CROSS}gcc" $CONTRACT -c digits_step.c -o digits_step.o
    "${CROSS}gcc" $CONTRACT -c digits_infer.c -o digits_infer.o
    $HOSTCC -std=c99 -Wall -Wextra -pedantic -Werror -O2 -DSTEP_$1 -DEPOCHS="$EPOCHS" \
      -I. -I"$E" -I"$F" "$E/digits_main.c" "$E/digits_hand.c" digits_data.c \
      digits_step.c digits_infer.c "$F/board_host.c" "$F/board_common.c" -lm -o digits_host
  ) > "$O.build" 2>&1; then
    cat "$O.build"; echo "FAIL: $1: build"; fail=1; return
  fi
  fw_run "$O/digits.elf" "$O/digits.out" 1800 ||
    { cat "$O/digits.out"; echo "FAIL: $1: QEMU"; fail=1; return; }
  echo "--- $1"; grep -E '^(epoch|test_initial)' "$O/digits.out"
  "$O/digits_host" > "$O/host.out"
  # the device trains exactly as the build machine: same losses, same answers
  for f in digits.out host.out; do
    grep -E '^(epoch|test_correct|params_hash)' "$O/$f" | sed 's/ insn [0-9]*//' > "$O/$f.cmp"
  done
  if cmp -s "$O/digits.out.cmp" "$O/host.out.cmp"; then
    echo "ok: $1: QEMU and the host build agree (epoch losses, accuracies, weights bit for bit)"
  elif diff "$O/digits.out.cmp" "$O/host.out.cmp" | grep -v params_hash | grep -q '^[<>]'; then
    echo "FAIL: $1: QEMU and the host build differ:"; diff "$O/digits.out.cmp" "$O/host.out.cmp"; fail=1
  else
    echo "NOTE: $1: QEMU and the host build agree on every loss and accuracy; the weights differ in rounding"
  fi
  correct=$(fw_val "$O/digits.out" test_correct); count=$(fw_val "$O/digits.out" test_count)
  if [ "$((correct * 100))" -ge "$((bar * count))" ]; then
    echo "ok: $1: test accuracy $correct/$count after $EPOCHS epochs (bar $bar%)"
  else
    echo "FAIL: $1: test accuracy $correct/$count after $EPOCHS epochs, below $bar%"; fail=1
  fi
  insn=$(fw_val "$O/digits.out" insn_per_epoch)
  [ "$insn" -gt 1000000 ] || { echo "FAIL: $1: instructions per epoch not measured"; fail=1; }
}

run TRAIN
run HAND

# the example's Makefile builds the same program
if command -v make >/dev/null 2>&1; then
  if make -s -C "$E" AGC="$AGC" O="$W/make" EPOCHS="$EPOCHS" PYTHON="$PY" \
       HOSTCC="$HOSTCC" all host > "$W/make.log" 2>&1; then
    echo "ok: examples/firmware/Makefile builds digits.elf and digits_host"
  else
    cat "$W/make.log"; echo "FAIL: examples/firmware/Makefile"; fail=1
  fi
else
  echo "NOTE: make not found: examples/firmware/Makefile not checked"
fi

# agc's objects, built by the Makefile with the contract's flags and -Werror
for o in digits_step.o digits_infer.o; do
  if [ -f "$W/TRAIN/$o" ] && ! "${CROSS}nm" "$W/TRAIN/$o" | grep -q '__aeabi_d'; then
    echo "ok: no __aeabi_d* (double arithmetic) in $o"
  else
    echo "FAIL: $o missing or with double arithmetic"; fail=1
  fi
done

echo
echo "Cortex-M4F (QEMU mps2-an386), digits 64-16-10, batch 16, $EPOCHS epochs, -Os; bytes:"
printf '%-6s %9s %11s %8s %6s %6s %6s %6s %6s %6s   %s\n' step test \
  insn/epoch insn/step params state work batch stack RAM "elf text data bss"
for s in TRAIN HAND; do
  o=$W/$s/digits.out
  [ -f "$o" ] || continue
  printf '%-6s %5s/%3s %11s %8s %6s %6s %6s %6s %6s %6s   %s\n' "$s" \
    "$(fw_val "$o" test_correct)" "$(fw_val "$o" test_count)" \
    "$(fw_val "$o" insn_per_epoch)" "$(fw_val "$o" insn_per_step)" \
    "$(fw_val "$o" params_bytes)" "$(fw_val "$o" state_bytes)" \
    "$(fw_val "$o" work_bytes)" "$(fw_val "$o" batch_bytes)" \
    "$(fw_val "$o" stack_peak)" "$(fw_val "$o" ram_bytes)" "$(fw_size "$W/$s/digits.elf")"
done
echo "(work: the step's and the test pass's, shared; stack: the program's peak; RAM: all of them)"
echo "agc examples/firmware/digits.graph --emit mem --target mcu:"
"$AGC" "$ROOT/examples/firmware/digits.graph" --emit mem --target mcu
ram=$(fw_val "$W/TRAIN/digits.out" ram_bytes)
if [ "$ram" -le 32768 ]; then echo "ok: RAM $ram <= 32 KiB"; else echo "FAIL: RAM $ram > 32 KiB"; fail=1; fi
exit $fail
