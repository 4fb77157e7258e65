/* digits_data.h — scikit-learn's 8x8 digits (README.md), const: in flash. */
#ifndef DIGITS_DATA_H
#define DIGITS_DATA_H

#include <stdint.h>

#define DIGITS_COUNT 1797

extern const uint8_t digits_pixels[DIGITS_COUNT][64];  /* 0..16, row by row */
extern const uint8_t digits_labels[DIGITS_COUNT];      /* 0..9 */

#endif
