# fw.sh — shared by the firmware tests (sourced): tools, flags, QEMU.
#
# CONTRACT: the flags the generated code must build with (docs/firmware.md).
# The harness (start-up, board, drivers) builds with the same flags.

CROSS=${CROSS:-arm-none-eabi-}
QEMU=${QEMU:-qemu-system-arm}
PY=${PY:-/usr/bin/python3}
HOSTCC=${HOSTCC:-gcc}
CPU_FLAGS="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
CONTRACT="$CPU_FLAGS -std=c99 -Wall -Wextra -pedantic -Wdouble-promotion -Wcast-align -Wmissing-prototypes -Werror -Os -ffunction-sections -fdata-sections"
LDFLAGS_FW="--specs=nano.specs -nostartfiles -Wl,--gc-sections"

fw_skip_unless_tools() {
  for tool in "${CROSS}gcc" "${CROSS}size" "${CROSS}nm" "$QEMU" "$HOSTCC"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not found"; exit 77; }
  done
  "$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy"; exit 77; }
}

# fw_run ELF OUT [SECONDS]: run under QEMU (one instruction per virtual ns,
# so SysTick counts instructions); semihosting output into OUT.
fw_run() {
  timeout "${3:-120}" "$QEMU" -M mps2-an386 -nographic -monitor none -serial none \
    -icount shift=0 \
    -semihosting-config enable=on,target=native,chardev=sh0 \
    -chardev file,id=sh0,path="$2" -kernel "$1"
}

# fw_val FILE KEY: the value of the line 'KEY VALUE'
fw_val() {
  awk -v k="$2" '$1 == k { print $2; exit }' "$1"
}

# fw_size FILE: "text data bss" of an object or ELF
fw_size() {
  "${CROSS}size" "$1" | awk 'NR == 2 { print $1, $2, $3 }'
}
