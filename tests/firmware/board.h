/* board.h — what a test program needs from the board: text output, exit,
 * an instruction counter and a stack high-water mark. board.c implements it
 * for the Cortex-M4F under QEMU (semihosting, SysTick, a painted stack),
 * board_host.c for the build machine (stdio; no counters). */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

void board_start(void);                    /* first thing in main() */
void board_puts(const char *s);            /* no newline added */
#ifdef __GNUC__
__attribute__((noreturn))
#endif
void board_exit(int status);               /* 0 success; never returns */
void board_put_u32(uint32_t v);            /* decimal */
void board_put_hex(uint32_t v);            /* 8 hex digits */
void board_put_f32(const char *label, int index, float v); /* "label index 0xBITS\n" */
void board_put_kv(const char *key, uint32_t v);             /* "key v\n" */

/* Instructions executed since board start-up (0 where not measured). */
uint64_t board_instructions(void);
/* Whether board_instructions() and the stack figures mean anything. */
int board_measures(void);
/* Instructions per SysTick tick, measured by board_start(): the counter's
 * resolution. */
uint32_t board_insn_per_tick(void);

/* Paint the free stack below the caller's frame; board_stack_used(sp)
 * returns how many bytes below the address sp have been written since. */
void board_stack_paint(void);
uint32_t board_stack_used(uintptr_t sp);
uint32_t board_stack_peak(void);           /* bytes below the top of RAM */
uintptr_t board_sp(void);                  /* the caller's stack pointer */

#endif
