/* board_common.c — number output shared by board.c and board_host.c. */
#include <stdint.h>
#include <string.h>

#include "board.h"

void board_put_u32(uint32_t v)
{
  char buf[11];
  int i = 10;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  board_puts(buf + i);
}

void board_put_hex(uint32_t v)
{
  static const char digits[] = "0123456789abcdef";
  char buf[9];
  int i;
  for (i = 7; i >= 0; i--, v >>= 4)
    buf[i] = digits[v & 15];
  buf[8] = 0;
  board_puts(buf);
}

void board_put_f32(const char *label, int index, float v)
{
  uint32_t bits;
  memcpy(&bits, &v, sizeof bits);
  board_puts(label);
  board_puts(" ");
  board_put_u32((uint32_t)index);
  board_puts(" 0x");
  board_put_hex(bits);
  board_puts("\n");
}

void board_put_kv(const char *key, uint32_t v)
{
  board_puts(key);
  board_puts(" ");
  board_put_u32(v);
  board_puts("\n");
}
