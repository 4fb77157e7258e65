#!/bin/sh
# harness.sh SOURCE_ROOT — the measuring board checked against known
# quantities, in QEMU (mps2-an386, -icount shift=0):
#   - spin(n) runs 2n instructions: the counter must say 2n within one tick
#     plus the few instructions of the calls, for 2n = 2e4 .. 2e7 and 6.8e8
#     (SysTick wraps every 2^24 ticks, 671 million instructions: the last
#     loop, from about 2.2e7 to 7e8, crosses one, counted by the handler);
#   - a function writing a 1,000-byte frame must measure 1,000..1,100 bytes
#     of stack;
#   - exit status: 0 from a passing firmware; QEMU must exit non-zero when a
#     float instruction runs with the FPU off (the fault handler).
# Exit 77 (skip) without arm-none-eabi-gcc or qemu-system-arm.
set -eu
ROOT=$(cd "$1" && pwd)
F=$ROOT/tests/firmware
. "$F/fw.sh"
fw_skip_unless_tools
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$W"
fail=0
HARNESS="$F/startup.c $F/board.c $F/board_common.c"
"${CROSS}gcc" $CONTRACT -I"$F" $LDFLAGS_FW -T "$F/fw.ld" $HARNESS "$F/harness.c" -o h.elf
"${CROSS}gcc" $CONTRACT -I"$F" -DFAULT $LDFLAGS_FW -T "$F/fw.ld" $HARNESS "$F/harness.c" -o fault.elf

if fw_run h.elf h.out 60; then echo "ok: exit status 0"; else echo "FAIL: exit status $?"; fail=1; fi
cat h.out
tick=$(fw_val h.out insn_per_tick)
[ "$tick" -gt 0 ] || { echo "FAIL: no SysTick"; fail=1; tick=1; }
awk -v tick="$tick" '$1 == "spin" {
    d = $3 - $2; if (d < 0) d = -d
    if (d > tick + 40) { print "FAIL: spin " $2 " measured " $3; bad = 1 }
    else print "ok: " $2 " instructions measured as " $3
  } END { exit bad }' h.out || fail=1
deep=$(fw_val h.out stack_deep)
if [ "$deep" -ge 1000 ] && [ "$deep" -le 1100 ]; then
  echo "ok: a 1,000-byte frame measured as $deep bytes of stack"
else
  echo "FAIL: a 1,000-byte frame measured as $deep bytes of stack"; fail=1
fi
if fw_run fault.elf fault.out 60; then
  echo "FAIL: QEMU exited 0 after a float instruction with the FPU off"; cat fault.out; fail=1
else
  if grep -q '^fault:' fault.out && ! grep -q 'no fault' fault.out; then
    echo "ok: the FPU switched off: fault handler, exit status non-zero"
  else
    echo "FAIL: the FPU switched off, but no fault reported:"; cat fault.out; fail=1
  fi
fi
exit $fail
