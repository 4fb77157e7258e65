/* mlp_main.c — N Adam steps of the MLP of examples/mlp.graph from the
 * weights and data of examples/data (embedded by npy2c.py as mlp_data.c),
 * on the Cortex-M4F (board.c) or the build machine (board_host.c).
 *
 * Which step runs is chosen when building:
 *   -DSTEP_TRAIN  the training step agc generates from mlp_adam.graph:
 *                 mlp(x, t, W1, b1, W2, b2, &loss, state, work)
 *   -DSTEP_SPLIT  the same step as mlp_grad() then mlp_update() (the two
 *                 halves agc generates for data-parallel training)
 *   -DSTEP_HAND   the hand-written step of mlp_hand.c
 * Output, one value a line, floats as exact bit patterns:
 *   loss K 0xBITS        the loss computed by step K (1..N)
 *   W1 I 0xBITS ...      every parameter after the last step
 *   insn K COUNT         instructions of step K (measuring boards only)
 *   stack_step BYTES     deepest stack below the caller's frame in any step
 *   ... and the memory figures. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "mlp_data.h"
#include "mlp_hand.h"

#ifndef STEPS
#define STEPS 5
#endif

#if defined(STEP_TRAIN) || defined(STEP_SPLIT)
#include "step.h"
#endif

#if defined(STEP_TRAIN)
#define WORK_BYTES MLP_WORK_BYTES
#define STATE_BYTES MLP_STATE_BYTES
#define KIND "agc-train"
#elif defined(STEP_SPLIT)
#define WORK_BYTES MLP_GRAD_WORK_BYTES
#define STATE_BYTES MLP_STATE_BYTES
#define KIND "agc-grad+agc-update"
#define NGRAD (W1_SIZE + B1_SIZE + W2_SIZE + B2_SIZE)
#elif defined(STEP_HAND)
#define WORK_BYTES HAND_WORK_BYTES
#define STATE_BYTES HAND_STATE_BYTES
#define KIND "hand"
#else
#error "build with -DSTEP_TRAIN, -DSTEP_SPLIT or -DSTEP_HAND"
#endif

#define W1_SIZE W1_INIT_SIZE
#define B1_SIZE B1_INIT_SIZE
#define W2_SIZE W2_INIT_SIZE
#define B2_SIZE B2_INIT_SIZE

/* Parameters, state and workspace (aligned for 8 bytes) in RAM, each
 * followed by guard words that the step must leave alone: a write past the
 * end of any of its buffers fails the run. */
#define GUARD 0x5EA1ED00u
static struct {
  float W1[W1_SIZE];
  uint32_t g0[2];
  float b1[B1_SIZE];
  uint32_t g1[2];
  float W2[W2_SIZE];
  uint32_t g2[2];
  float b2[B2_SIZE];
  uint32_t g3[2];
  uint64_t state[(STATE_BYTES + 7) / 8];
  uint32_t g4[2];
  uint64_t work[(WORK_BYTES + 7) / 8];
  uint32_t g5[2];
} m;
#define W1 m.W1
#define b1 m.b1
#define W2 m.W2
#define b2 m.b2
#define state m.state
#define work m.work

static uint32_t *const guards[6] = {m.g0, m.g1, m.g2, m.g3, m.g4, m.g5};

static void guards_set(void)
{
  int i;
  for (i = 0; i < 6; i++)
    guards[i][0] = guards[i][1] = GUARD + (uint32_t)i;
}

static int guards_ok(void)
{
  int i;
  for (i = 0; i < 6; i++)
    if (guards[i][0] != GUARD + (uint32_t)i || guards[i][1] != GUARD + (uint32_t)i)
      return 0;
  return 1;
}
#if defined(STEP_SPLIT)
static float grads[NGRAD];
#endif

static int step(float *loss)
{
#if defined(STEP_TRAIN)
  return mlp(x, t, W1, b1, W2, b2, loss, state, work);
#elif defined(STEP_SPLIT)
  float *g1 = grads, *g2 = g1 + W1_SIZE, *g3 = g2 + B1_SIZE, *g4 = g3 + W2_SIZE;
  int rc = mlp_grad(x, t, W1, b1, W2, b2, loss, g1, g2, g3, g4, work);
  if (rc == 0)
    rc = mlp_update(W1, b1, W2, b2, g1, g2, g3, g4, state);
  return rc;
#else
  return hand_step(x, t, W1, b1, W2, b2, loss, state, work);
#endif
}

static void put_param(const char *name, const float *p, int n)
{
  int i;
  for (i = 0; i < n; i++)
    board_put_f32(name, i, p[i]);
}

int main(void)
{
  uint32_t stack_step = 0, params, k;
  board_start();
  board_puts("kind " KIND "\n");
  guards_set();
  memcpy(W1, W1_init, sizeof W1);
  memcpy(b1, b1_init, sizeof b1);
  memcpy(W2, W2_init, sizeof W2);
  memcpy(b2, b2_init, sizeof b2);

  for (k = 1; k <= STEPS; k++) {
    float loss = 0;
    uint64_t i0, i1;
    uintptr_t sp;
    int rc;
    board_stack_paint();
    sp = board_sp();
    i0 = board_instructions();
    rc = step(&loss);
    i1 = board_instructions();
    if (rc != 0) {
      board_puts("error: the step returned non-zero\n");
      return 1;
    }
    if (board_stack_used(sp) > stack_step)
      stack_step = board_stack_used(sp);
    board_put_f32("loss", (int)k, loss);
    if (board_measures())
      board_put_kv("insn", (uint32_t)(i1 - i0));
  }
  if (!guards_ok()) {
    board_puts("error: a step wrote past the end of a buffer\n");
    return 1;
  }
  board_puts("guards ok\n");
  put_param("W1", W1, W1_SIZE);
  put_param("b1", b1, B1_SIZE);
  put_param("W2", W2, W2_SIZE);
  put_param("b2", b2, B2_SIZE);

  params = (uint32_t)(sizeof W1 + sizeof b1 + sizeof W2 + sizeof b2);
  board_put_kv("params_bytes", params);
  board_put_kv("state_bytes", (uint32_t)(STATE_BYTES));
  board_put_kv("work_bytes", (uint32_t)(WORK_BYTES));
#if defined(STEP_SPLIT)
  board_put_kv("grad_bytes", (uint32_t)sizeof grads);
#endif
  if (board_measures()) {
    board_put_kv("insn_per_tick", board_insn_per_tick());
    board_put_kv("stack_step", stack_step);
    board_put_kv("stack_peak", board_stack_peak());
  }
  return 0;
}
