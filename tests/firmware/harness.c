/* harness.c — checks of the board itself (harness.sh): the instruction
 * counter against loops of known length, the stack measurement against a
 * frame of known size, semihosting output; with -DFAULT, that a float
 * instruction with the FPU switched off ends in the fault handler (so a
 * firmware that forgot the FPU fails its test instead of hanging). */
#include <stdint.h>

#include "board.h"

#define CPACR (*(volatile uint32_t *)0xE000ED88u)

/* n iterations of 'subs' and 'bne': 2n instructions */
__attribute__((noinline)) static void spin(uint32_t n)
{
  __asm__ volatile ("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}

/* writes every byte of a 1,000-byte frame */
__attribute__((noinline)) static uint32_t deep(uint32_t seed)
{
  volatile uint8_t buf[1000];
  uint32_t i, sum = 0;
  for (i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)(seed + i);
  for (i = 0; i < sizeof buf; i++)
    sum += buf[i];
  return sum;
}

int main(void)
{
  static const uint32_t loops[] = {10000, 100000, 1000000, 10000000, 340000000};
  uint32_t k;
  uintptr_t sp;
  board_start();
  board_put_kv("insn_per_tick", board_insn_per_tick());
  for (k = 0; k < sizeof loops / sizeof loops[0]; k++) {
    uint64_t i0 = board_instructions(), i1;
    spin(loops[k]);
    i1 = board_instructions();
    board_puts("spin ");
    board_put_u32(2 * loops[k]);
    board_puts(" ");
    board_put_u32((uint32_t)(i1 - i0));
    board_puts("\n");
  }
  board_stack_paint();
  sp = board_sp();
  board_put_kv("deep_sum", deep(7));
  board_put_kv("stack_deep", board_stack_used(sp));
#ifdef FAULT
  {
    volatile float a = 1.5f;
    CPACR &= ~(0xFu << 20);
    __asm__ volatile ("dsb\n\tisb" ::: "memory");
    a = a * a;
    board_puts("no fault\n");
  }
#endif
  return 0;
}
