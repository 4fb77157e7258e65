/* board.c — board.h on a Cortex-M4F under qemu-system-arm -M mps2-an386
 * -semihosting -icount shift=0.
 *
 * Output and exit: ARM semihosting (bkpt 0xab; SYS_WRITE0, SYS_EXIT).
 * Instructions: SysTick on the processor clock, reload 0xFFFFFF, wraps
 * counted in its handler. Under -icount shift=0 QEMU's virtual clock moves
 * 1 ns per instruction and the mps2 processor clock is 25 MHz, so one tick
 * is a fixed number of instructions (40); board_start() measures that ratio
 * on a loop of known length instead of assuming it.
 * Stack: startup.c paints it; the lowest word no longer painted is the
 * high-water mark. */
#include <stdint.h>

#include "board.h"

void SysTick_Handler(void);

extern uint32_t __stack_top[], __stack_limit[];

#define STACK_PAINT 0xA5C3A5C3u
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define ADP_Stopped_ApplicationExit 0x20026
#define ADP_Stopped_RunTimeErrorUnknown 0x20023

static volatile uint32_t systick_wraps;
static uint32_t insn_per_tick;     /* 0 until board_start() calibrated */
static uint64_t tick_origin;

static int semihost(int op, const void *arg)
{
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile ("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void board_puts(const char *s)
{
  semihost(SYS_WRITE0, s);
}

void board_exit(int status)
{
  /* On AArch32 SYS_EXIT takes the reason itself: QEMU exits 0 for
   * ApplicationExit and 1 for anything else. */
  semihost(SYS_EXIT, (const void *)(uintptr_t)(status == 0
      ? ADP_Stopped_ApplicationExit : ADP_Stopped_RunTimeErrorUnknown));
  for (;;)
    ;
}

void SysTick_Handler(void)
{
  systick_wraps++;
}

static uint64_t ticks(void)
{
  uint32_t w, v;
  do {
    w = systick_wraps;
    v = SYST_CVR;
  } while (w != systick_wraps);
  return ((uint64_t)w << 24) + (0xFFFFFFu - v);
}

/* n iterations of two instructions, 'subs' and 'bne'. */
static void spin(uint32_t n)
{
  __asm__ volatile ("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}

void board_start(void)
{
  uint64_t t0, t1;
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 7;                  /* enable, interrupt, processor clock */
  while (SYST_CVR == 0)          /* the first reload, which is no wrap */
    ;
  systick_wraps = 0;
  t0 = ticks();
  spin(1000000);
  t1 = ticks();
  /* 2,000,000 instructions plus a few around the loop: round to nearest */
  insn_per_tick = (uint32_t)((2000000u + (t1 - t0) / 2) / (t1 - t0));
  tick_origin = ticks();
}

uint64_t board_instructions(void)
{
  return (ticks() - tick_origin) * insn_per_tick;
}

int board_measures(void)
{
  return 1;
}

uint32_t board_insn_per_tick(void)
{
  return insn_per_tick;
}

uintptr_t board_sp(void)
{
  uintptr_t sp;
  __asm__ volatile ("mov %0, sp" : "=r"(sp));
  return sp;
}

void board_stack_paint(void)
{
  uint32_t *p, *sp;
  __asm__ volatile ("mov %0, sp" : "=r"(sp));
  for (p = __stack_limit; p < sp - 16; )
    *p++ = STACK_PAINT;
}

static uintptr_t stack_low(void)
{
  const uint32_t *p = __stack_limit;
  while (p < __stack_top && *p == STACK_PAINT)
    p++;
  return (uintptr_t)p;
}

uint32_t board_stack_used(uintptr_t sp)
{
  uintptr_t low = stack_low();
  return low < sp ? (uint32_t)(sp - low) : 0;
}

uint32_t board_stack_peak(void)
{
  return (uint32_t)((uintptr_t)__stack_top - stack_low());
}
