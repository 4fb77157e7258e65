/* digits_hand.h — the training step of digits.graph written by hand in
 * plain float C (forward, backward, Adam), for comparison with agc's. */
#ifndef DIGITS_HAND_H
#define DIGITS_HAND_H

#include <stdint.h>

#define DH_N 16
#define DH_IN 64
#define DH_HID 16
#define DH_OUT 10
#define DH_NPARAM (DH_IN * DH_HID + DH_HID + DH_HID * DH_OUT + DH_OUT)
/* hidden activations, logits (then their gradient), gradients */
#define DIGITS_HAND_WORK_BYTES (4 * (DH_N * DH_HID + DH_N * DH_OUT + DH_NPARAM))
/* Adam moments, beta1^t, beta2^t, step */
#define DIGITS_HAND_STATE_BYTES (4 * (2 * DH_NPARAM + 3))

int digits_hand(const float *x, const int32_t *y, float *W1, float *b1,
                float *W2, float *b2, float *loss, void *state, void *work);

#endif
