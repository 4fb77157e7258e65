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
command -v make >/dev/null 2>&1 || { echo "SKIP: make not found"; exit 77; }

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
  make -s -C "$ROOT/examples/firmware" AGC="$AGC" O="$O" EPOCHS="$EPOCHS" \
    STEP="$1" PYTHON="$PY" HOSTCC="$HOSTCC" all host > "$O.build" 2>&1 ||
    { cat "$O.build"; echo "FAIL: $1: build"; fail=1; return; }
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
