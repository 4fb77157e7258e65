/* mlp_hand.c — see mlp_hand.h. */
#include <math.h>

#include "mlp_hand.h"

#define LR 0.01f
#define BETA1 0.9f
#define BETA2 0.999f
#define EPS 1e-8f

void hand_adam(float *p, const float *g, float *m, float *v, int n,
               float lr, float bc1, float bc2)
{
  float step_size = lr / bc1;
  float bc2_sqrt = sqrtf(bc2);
  int i;
  for (i = 0; i < n; i++) {
    m[i] = BETA1 * m[i] + (1.0f - BETA1) * g[i];
    v[i] = BETA2 * v[i] + (1.0f - BETA2) * g[i] * g[i];
    p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + EPS);
  }
}

int hand_step(const float *x, const float *t, float *W1, float *b1,
              float *W2, float *b2, float *loss, void *state, void *work)
{
  float *h = work;                         /* [N][HID], then dL/dz */
  float *e = h + HAND_N * HAND_HID;        /* [N][OUT]: y - t, then dL/dy */
  float *gW1 = e + HAND_N * HAND_OUT;      /* gradients, in parameter order */
  float *gb1 = gW1 + HAND_IN * HAND_HID;
  float *gW2 = gb1 + HAND_HID;
  float *gb2 = gW2 + HAND_HID * HAND_OUT;
  float *m = state;
  float *v = m + HAND_NPARAM;
  float *b1t = v + HAND_NPARAM, *b2t = b1t + 1, *steps = b2t + 1;
  float sum = 0;
  int n, i, j, k;

  /* forward */
  for (n = 0; n < HAND_N; n++) {
    for (j = 0; j < HAND_HID; j++) {
      float z = b1[j];
      for (k = 0; k < HAND_IN; k++)
        z += x[n * HAND_IN + k] * W1[k * HAND_HID + j];
      h[n * HAND_HID + j] = tanhf(z);
    }
    for (i = 0; i < HAND_OUT; i++) {
      float y = b2[i];
      for (j = 0; j < HAND_HID; j++)
        y += h[n * HAND_HID + j] * W2[j * HAND_OUT + i];
      e[n * HAND_OUT + i] = y - t[n * HAND_OUT + i];
      sum += e[n * HAND_OUT + i] * e[n * HAND_OUT + i];
    }
  }
  *loss = sum / (HAND_N * HAND_OUT);

  /* backward */
  for (i = 0; i < HAND_NPARAM; i++)
    gW1[i] = 0;
  for (n = 0; n < HAND_N; n++) {
    for (i = 0; i < HAND_OUT; i++) {
      float dy = 2.0f * e[n * HAND_OUT + i] / (HAND_N * HAND_OUT);
      gb2[i] += dy;
      for (j = 0; j < HAND_HID; j++)
        gW2[j * HAND_OUT + i] += h[n * HAND_HID + j] * dy;
      e[n * HAND_OUT + i] = dy;
    }
    for (j = 0; j < HAND_HID; j++) {
      float dh = 0, hv = h[n * HAND_HID + j], dz;
      for (i = 0; i < HAND_OUT; i++)
        dh += e[n * HAND_OUT + i] * W2[j * HAND_OUT + i];
      dz = dh * (1.0f - hv * hv);
      gb1[j] += dz;
      for (k = 0; k < HAND_IN; k++)
        gW1[k * HAND_HID + j] += x[n * HAND_IN + k] * dz;
    }
  }

  /* Adam; a zeroed state is a fresh optimizer */
  if (*steps == 0) {
    *b1t = 1;
    *b2t = 1;
  }
  *steps += 1;
  *b1t *= BETA1;
  *b2t *= BETA2;
  {
    const int o1 = HAND_IN * HAND_HID, o2 = o1 + HAND_HID,
              o3 = o2 + HAND_HID * HAND_OUT;
    float bc1 = 1 - *b1t, bc2 = 1 - *b2t;
    hand_adam(W1, gW1, m, v, o1, LR, bc1, bc2);
    hand_adam(b1, gb1, m + o1, v + o1, HAND_HID, LR, bc1, bc2);
    hand_adam(W2, gW2, m + o2, v + o2, HAND_HID * HAND_OUT, LR, bc1, bc2);
    hand_adam(b2, gb2, m + o3, v + o3, HAND_OUT, LR, bc1, bc2);
  }
  return 0;
}
