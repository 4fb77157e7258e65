/* board_host.c — board.h on the build machine: stdio, nothing measured. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "board.h"

void board_start(void) {}
void board_puts(const char *s) { fputs(s, stdout); }
void board_exit(int status) { fflush(stdout); exit(status); }
uint64_t board_instructions(void) { return 0; }
int board_measures(void) { return 0; }
uint32_t board_insn_per_tick(void) { return 0; }
void board_stack_paint(void) {}
uint32_t board_stack_used(uintptr_t sp) { (void)sp; return 0; }
uint32_t board_stack_peak(void) { return 0; }
uintptr_t board_sp(void) { return 0; }
