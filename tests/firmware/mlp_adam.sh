#!/bin/sh
# mlp_adam.sh AGC SOURCE_ROOT — the Adam training step of examples/mlp.graph
# on a Cortex-M4F under QEMU (mps2-an386), against the host build of the
# same C and against PyTorch; with the hand-written step for comparison.
#
#   1. agc tests/firmware/mlp_adam.graph --target mcu -> step.c, step.h
#   2. step.c with the contract's flags (-Werror); no __aeabi_d* in step.o
#   3. firmware: startup.c, board.c, mlp_main.c, the data of examples/data
#      as const arrays (npy2c.py); 5 steps in QEMU; the same driver on the
#      host (board_host.c)
#   4. compare: QEMU vs host (float rounding), QEMU vs torch_mlp_adam.txt,
#      QEMU vs agc run --steps 5 (the last step's loss and the params)
#   5. the hand-written step (mlp_hand.c), built, run and compared the same;
#      mlp_grad + mlp_update in QEMU equal to the fused step, bit for bit
#   6. report: text/data/bss, instructions per step, stack, RAM
# Exit 77 (skip) without arm-none-eabi-gcc, qemu-system-arm or NumPy.
# FW_KEEP=DIR keeps the build in DIR.
set -eu
AGC=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$2" && pwd)
F=$ROOT/tests/firmware
D=$ROOT/examples/data
. "$F/fw.sh"
fw_skip_unless_tools

if [ -n "${FW_KEEP:-}" ]; then
  W=$FW_KEEP; mkdir -p "$W"
else
  W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
fi
cd "$W"
fail=0
check() {   # check CONDITION-TEXT COMMAND...: run, count a failure
  what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

# 1. generate
if ! "$AGC" "$F/mlp_adam.graph" -o step.c --header step.h --target mcu 2>agc.err; then
  echo "FAIL: agc --target mcu on mlp_adam.graph:"; cat agc.err; exit 1
fi
"$AGC" "$F/mlp_adam.graph" --emit mem --target mcu > mem.txt

# 2. the generated step alone, with the contract's flags
check "step.c builds with the contract flags (-Werror)" \
  "${CROSS}gcc" $CONTRACT -c step.c -o step.o
[ $fail -eq 0 ] || exit 1
"${CROSS}nm" step.o > step.nm
if grep -q '__aeabi_d' step.nm; then
  echo "FAIL: double arithmetic in step.o:" $(grep -o '__aeabi_d[a-z0-9]*' step.nm); fail=1
else
  echo "ok: no __aeabi_d* (double arithmetic) in step.o"
fi
echo "step.o calls: $(awk '$1 == "U" { printf "%s ", $2 }' step.nm)"

# 3. data, firmware, host build
"$PY" "$F/npy2c.py" mlp_data x="$D/x.npy" t="$D/t.npy" W1_init="$D/W1.npy" \
  b1_init="$D/b1.npy" W2_init="$D/W2.npy" b2_init="$D/b2.npy"
HARNESS="$F/startup.c $F/board.c $F/board_common.c"
"${CROSS}gcc" $CONTRACT -I. -I"$F" -DSTEP_TRAIN $LDFLAGS_FW -T "$F/fw.ld" \
  $HARNESS "$F/mlp_main.c" "$F/mlp_hand.c" mlp_data.c step.o -lm -o fw_gen.elf
"${CROSS}gcc" $CONTRACT -I. -I"$F" -DSTEP_HAND $LDFLAGS_FW -T "$F/fw.ld" \
  $HARNESS "$F/mlp_main.c" "$F/mlp_hand.c" mlp_data.c -lm -o fw_hand.elf
"${CROSS}gcc" $CONTRACT -c "$F/mlp_hand.c" -o hand.o
HOSTFLAGS="-std=c99 -Wall -Wextra -pedantic -Werror -O2"
$HOSTCC $HOSTFLAGS -I. -I"$F" -DSTEP_TRAIN "$F/board_host.c" "$F/board_common.c" \
  "$F/mlp_main.c" "$F/mlp_hand.c" mlp_data.c step.c -lm -o host_gen
"${CROSS}gcc" $CONTRACT -I. -I"$F" -DSTEP_SPLIT $LDFLAGS_FW -T "$F/fw.ld" \
  $HARNESS "$F/mlp_main.c" "$F/mlp_hand.c" mlp_data.c step.o -lm -o fw_split.elf
$HOSTCC $HOSTFLAGS -I. -I"$F" -DSTEP_HAND "$F/board_host.c" "$F/board_common.c" \
  "$F/mlp_main.c" "$F/mlp_hand.c" mlp_data.c -lm -o host_hand

check "generated step runs in QEMU" fw_run fw_gen.elf gen_qemu.txt
check "hand-written step runs in QEMU" fw_run fw_hand.elf hand_qemu.txt
check "mlp_grad + mlp_update run in QEMU" fw_run fw_split.elf split_qemu.txt
./host_gen > gen_host.txt
./host_hand > hand_host.txt
"$AGC" run "$F/mlp_adam.graph" --inputs "$D" --steps 5 --out agc_run > /dev/null

# 4, 5. compare
T=$F/torch_mlp_adam.txt
cmp() { "$PY" "$F/compare.py" "$@"; }
check "generated: QEMU = host build (float rounding)" \
  cmp gen_qemu.txt gen_host.txt --rtol 1e-6 --atol 1e-7 --name "generated, QEMU vs host"
check "generated: QEMU = agc run --steps 5 (JIT, host)" \
  cmp gen_qemu.txt agc_run:5 --rtol 1e-5 --atol 1e-6 --name "generated, QEMU vs agc run"
check "generated: QEMU = PyTorch" \
  cmp gen_qemu.txt "$T" --rtol 1e-5 --atol 1e-6 --name "generated, QEMU vs torch"
check "mlp_grad + mlp_update = mlp, bit for bit" \
  cmp split_qemu.txt gen_qemu.txt --rtol 0 --atol 0 --name "grad+update vs step, QEMU"
check "hand-written: QEMU = host build" \
  cmp hand_qemu.txt hand_host.txt --rtol 1e-6 --atol 1e-7 --name "hand-written, QEMU vs host"
check "hand-written: QEMU = PyTorch" \
  cmp hand_qemu.txt "$T" --rtol 1e-5 --atol 1e-6 --name "hand-written, QEMU vs torch"

# 6. measurements: every step counted, nothing absurd
report() {   # report NAME OUT ELF OBJ
  insn=$(awk '$1 == "insn" { print $2 }' "$2" | sort -n | sed -n 3p)   # median of 5
  params=$(fw_val "$2" params_bytes); state=$(fw_val "$2" state_bytes)
  work=$(fw_val "$2" work_bytes); stack=$(fw_val "$2" stack_step)
  extra=$(fw_val "$2" grad_bytes); extra=${extra:-0}
  ram=$((params + state + work + extra + stack))
  set -- "$1" "$2" "$(fw_size "$3")" "$(fw_size "$4")"
  printf '%-13s %9s %5s %5s %5s %6s %6s %6s %5s %6s   %s | %s\n' "$1" "$insn" \
    "$params" "$state" "$work" "$extra" "$stack" "$ram" \
    "$(fw_val "$2" stack_peak)" "$(fw_val "$2" insn_per_tick)" "$3" "$4"
  [ "$insn" -gt 1000 ] && [ "$insn" -lt 10000000 ] && [ "$stack" -gt 0 ] &&
    [ "$stack" -lt 65536 ]
}
echo
echo "Cortex-M4F (QEMU mps2-an386, -icount shift=0), one Adam step of mlp (batch 32, 4-16-1), -Os:"
printf '%-13s %9s %5s %5s %5s %6s %6s %6s %5s %6s   %s | %s\n' "" insn/step params \
  state work grads stack RAM peak insn/tick "elf text data bss" "step object text data bss"
check "generated: measured" report generated gen_qemu.txt fw_gen.elf step.o
check "grad + update: measured" report grad+update split_qemu.txt fw_split.elf step.o
check "hand-written: measured" report hand-written hand_qemu.txt fw_hand.elf hand.o
echo; echo "agc --emit mem --target mcu:"; cat mem.txt
exit $fail
