/* main.c — fits y = 2x + 1 with plain gradient descent, the loss and its
 * gradient computed by the C that agc generated from line.graph at build
 * time (line.c, line.h). */
#include <stdio.h>

#include "line.h"

int main(void) {
  float x[LINE_x_SIZE], y[LINE_y_SIZE];
  for (int i = 0; i < LINE_x_SIZE; i++) {
    x[i] = (float)i / 4;
    y[i] = 2 * x[i] + 1;
  }
  static unsigned char work[LINE_WORK_BYTES + 1]; /* +1: never size 0 */
  float w = 0, b = 0, loss = 0, gw, gb;
  for (int step = 0; step < 1000; step++) {
    line(x, y, &w, &b, &loss, &gw, &gb, work);
    w -= 0.1f * gw;
    b -= 0.1f * gb;
  }
  printf("w = %.3f  b = %.3f  loss = %.1e\n", w, b, loss);
  return 0;
}
