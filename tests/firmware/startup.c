/* startup.c — bare-metal start-up for a Cortex-M4F (ARMv7E-M, FPv4-SP).
 *
 * Reset_Handler: enable the FPU (CPACR, before any float instruction: the
 * generated code uses s-registers), copy .data from flash, zero .bss, paint
 * the stack, call main(), report its status over semihosting. The vector
 * table has the initial stack pointer, the reset vector, the faults (which
 * report and stop) and SysTick (board.c counts its wraps). */
#include <stdint.h>

#include "board.h"

int main(void);
void Reset_Handler(void);
void Fault_Handler(void);
void SysTick_Handler(void);

extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_top[], __stack_limit[];

#define CPACR (*(volatile uint32_t *)0xE000ED88u)
#define STACK_PAINT 0xA5C3A5C3u

/* The vector table is an array of addresses; the first entry is the initial
 * stack pointer. A union keeps it free of function-to-object pointer casts. */
typedef union {
  void (*fn)(void);
  uint32_t *sp;
} Vector;

__attribute__((section(".vectors"), used))
static const Vector vectors[16] = {
  {.sp = __stack_top},
  {Reset_Handler},
  {Fault_Handler},  /* NMI */
  {Fault_Handler},  /* HardFault */
  {Fault_Handler},  /* MemManage */
  {Fault_Handler},  /* BusFault */
  {Fault_Handler},  /* UsageFault */
  {0}, {0}, {0}, {0},
  {Fault_Handler},  /* SVCall */
  {Fault_Handler},  /* DebugMonitor */
  {0},
  {Fault_Handler},  /* PendSV */
  {SysTick_Handler},
};

void Fault_Handler(void)
{
  board_puts("fault: the program stopped on an exception\n");
  board_exit(3);
}

__attribute__((noreturn)) void Reset_Handler(void)
{
  uint32_t *p, *src, *sp;

  /* CP10 and CP11 full access, then let the write take effect. */
  CPACR |= 0xFu << 20;
  __asm__ volatile ("dsb\n\tisb" ::: "memory");

  for (p = __data_start, src = __data_load; p < __data_end; )
    *p++ = *src++;
  for (p = __bss_start; p < __bss_end; )
    *p++ = 0;

  /* Paint the stack up to 64 bytes below this frame. */
  __asm__ volatile ("mov %0, sp" : "=r"(sp));
  for (p = __stack_limit; p < sp - 16; )
    *p++ = STACK_PAINT;

  board_exit(main());
}
