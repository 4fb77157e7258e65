/* digits_hand.c — see digits_hand.h. torch.optim.Adam(lr=0.01). */
#include <math.h>
#include <string.h>

#include "digits_hand.h"

static void adam(float *p, const float *g, float *m, float *v, int n,
                 float bc1, float bc2)
{
  float step_size = 0.01f / bc1, bc2_sqrt = sqrtf(bc2);
  int i;
  for (i = 0; i < n; i++) {
    m[i] = 0.9f * m[i] + 0.1f * g[i];
    v[i] = 0.999f * v[i] + 0.001f * g[i] * g[i];
    p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + 1e-8f);
  }
}

int digits_hand(const float *x, const int32_t *y, float *W1, float *b1,
                float *W2, float *b2, float *loss, void *state, void *work)
{
  float *h = work;                     /* [N][HID] */
  float *z = h + DH_N * DH_HID;        /* [N][OUT] logits, then dL/dlogits */
  float *gW1 = z + DH_N * DH_OUT;
  float *gb1 = gW1 + DH_IN * DH_HID;
  float *gW2 = gb1 + DH_HID;
  float *gb2 = gW2 + DH_HID * DH_OUT;
  float *m = state, *v = m + DH_NPARAM, *bt = v + DH_NPARAM;
  float sum = 0;
  int n, i, j, k;

  for (n = 0; n < DH_N; n++)
    if (y[n] < 0 || y[n] >= DH_OUT)
      return 1;
  memset(gW1, 0, sizeof(float) * DH_NPARAM);
  for (n = 0; n < DH_N; n++) {
    const float *xn = x + n * DH_IN;
    float *hn = h + n * DH_HID, *zn = z + n * DH_OUT, mx, ly, s = 0;
    /* forward */
    for (j = 0; j < DH_HID; j++) {
      float a = b1[j];
      for (k = 0; k < DH_IN; k++)
        a += xn[k] * W1[k * DH_HID + j];
      hn[j] = a > 0 ? a : 0;
    }
    for (i = 0; i < DH_OUT; i++) {
      float a = b2[i];
      for (j = 0; j < DH_HID; j++)
        a += hn[j] * W2[j * DH_OUT + i];
      zn[i] = a;
    }
    /* cross-entropy and its gradient: (softmax - onehot) / N */
    mx = zn[0];
    for (i = 1; i < DH_OUT; i++)
      if (zn[i] > mx)
        mx = zn[i];
    ly = zn[y[n]] - mx;
    for (i = 0; i < DH_OUT; i++) {
      zn[i] = expf(zn[i] - mx);
      s += zn[i];
    }
    sum += logf(s) - ly;
    for (i = 0; i < DH_OUT; i++)
      zn[i] = (zn[i] / s - (i == y[n])) / DH_N;
    /* backward */
    for (i = 0; i < DH_OUT; i++)
      gb2[i] += zn[i];
    for (j = 0; j < DH_HID; j++) {
      float dh = 0;
      for (i = 0; i < DH_OUT; i++) {
        gW2[j * DH_OUT + i] += hn[j] * zn[i];
        dh += zn[i] * W2[j * DH_OUT + i];
      }
      if (hn[j] > 0) {
        gb1[j] += dh;
        for (k = 0; k < DH_IN; k++)
          gW1[k * DH_HID + j] += xn[k] * dh;
      }
    }
  }
  *loss = sum / DH_N;

  if (bt[2] == 0)
    bt[0] = bt[1] = 1;
  bt[2] += 1;
  bt[0] *= 0.9f;
  bt[1] *= 0.999f;
  {
    const int o1 = DH_IN * DH_HID, o2 = o1 + DH_HID, o3 = o2 + DH_HID * DH_OUT;
    adam(W1, gW1, m, v, o1, 1 - bt[0], 1 - bt[1]);
    adam(b1, gb1, m + o1, v + o1, DH_HID, 1 - bt[0], 1 - bt[1]);
    adam(W2, gW2, m + o2, v + o2, DH_HID * DH_OUT, 1 - bt[0], 1 - bt[1]);
    adam(b2, gb2, m + o3, v + o3, DH_OUT, 1 - bt[0], 1 - bt[1]);
  }
  return 0;
}
