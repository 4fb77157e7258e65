/* mlp_hand.h — one Adam training step of the two-layer perceptron of
 * examples/mlp.graph, written by hand in plain float C, the way a firmware
 * engineer would: the comparison for the step agc generates. */
#ifndef MLP_HAND_H
#define MLP_HAND_H

#define HAND_N 32      /* batch */
#define HAND_IN 4
#define HAND_HID 16
#define HAND_OUT 1
#define HAND_NPARAM (HAND_IN * HAND_HID + HAND_HID + HAND_HID * HAND_OUT + HAND_OUT)

/* hidden activations, prediction errors, one gradient per parameter */
#define HAND_WORK_BYTES \
  (4 * (HAND_N * HAND_HID + HAND_N * HAND_OUT + HAND_NPARAM))
/* Adam: first and second moments per parameter, beta1^t, beta2^t, step */
#define HAND_STATE_BYTES (4 * (2 * HAND_NPARAM + 3))

/* Adam as torch.optim.Adam(lr=0.01) with the default betas and eps. */
int hand_step(const float *x, const float *t, float *W1, float *b1,
              float *W2, float *b2, float *loss, void *state, void *work);

/* The Adam update alone, over n parameters with gradients g. */
void hand_adam(float *p, const float *g, float *m, float *v, int n,
               float lr, float bc1, float bc2);

#endif
