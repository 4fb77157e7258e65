/* digits_main.c — train the classifier of digits.graph from scratch on a
 * Cortex-M4F, then measure its accuracy on the images it never saw.
 *
 * The 1,797 images stay in flash as bytes (digits_data.c); each batch of 16
 * is converted to float in a 4 KiB buffer. Every fifth image (index % 5 == 0,
 * 360 images) is the test set, the other 1,437 train: 89 batches an epoch,
 * in a different order each epoch. Parameters start as PyTorch's nn.Linear
 * does (uniform in +-1/sqrt(fan_in)) from a fixed seed.
 *
 * Built with -DSTEP_TRAIN: digits() is agc's training step (forward,
 * backward and Adam in one call). -DSTEP_HAND: the hand-written step of
 * digits_hand.c, for comparison.
 * -DEPOCHS=N (default 2). Output: one line per epoch, then the memory used. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "digits_data.h"
#include "digits_step.h"
#include "digits_infer.h"
#include "digits_hand.h"

#ifndef EPOCHS
#define EPOCHS 2
#endif

#define BATCH DIGITS_x_DIM0            /* 16 */
#define EVAL_BATCH DIGITS_INFER_x_DIM0 /* 8 */
#define NTEST ((DIGITS_COUNT + 4) / 5) /* 360: index % 5 == 0 */
#define NTRAIN (DIGITS_COUNT - NTEST)  /* 1437 */
#define WORDS(bytes) ((bytes) / 8 + 1) /* 8-byte aligned, never empty */
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* RAM: parameters, optimizer state, one workspace for training and test */
static float W1[DIGITS_W1_SIZE], b1[DIGITS_b1_SIZE];
static float W2[DIGITS_W2_SIZE], b2[DIGITS_b2_SIZE];
#if defined(STEP_TRAIN)
#define STATE_BYTES DIGITS_STATE_BYTES
#elif defined(STEP_HAND)
#define STATE_BYTES DIGITS_HAND_STATE_BYTES
#define STEP_WORK_BYTES DIGITS_HAND_WORK_BYTES
#else
#error "build with -DSTEP_TRAIN or -DSTEP_HAND"
#endif
#ifndef STEP_WORK_BYTES
#define STEP_WORK_BYTES DIGITS_WORK_BYTES
#endif
static uint64_t state[WORDS(STATE_BYTES)];
#define WORK_BYTES MAX(STEP_WORK_BYTES, DIGITS_INFER_WORK_BYTES)
static uint64_t work[WORDS(WORK_BYTES)];
static float x[DIGITS_x_SIZE];         /* the batch, as float */
static int32_t y[DIGITS_y_SIZE];
static float logits[DIGITS_INFER_logits_SIZE];

static uint32_t rng = 12345;

static float uniform(float bound)      /* in [-bound, bound) */
{
  rng = rng * 1664525u + 1013904223u;
  return bound * ((float)(rng >> 8) * (2.0f / 16777216.0f) - 1.0f);
}

static void init(float *p, int n, int fan_in)
{
  float bound = 1.0f / sqrtf((float)fan_in);
  int i;
  for (i = 0; i < n; i++)
    p[i] = uniform(bound);
}

static void load(float *dst, int image)
{
  int i;
  for (i = 0; i < 64; i++)
    dst[i] = (float)digits_pixels[image][i] * (1.0f / 16.0f);
}

/* FNV-1a of the parameters' bytes: equal runs have equal weights */
static uint32_t params_hash(void)
{
  const float *const p[4] = {W1, b1, W2, b2};
  const int n[4] = {DIGITS_W1_SIZE, DIGITS_b1_SIZE, DIGITS_W2_SIZE, DIGITS_b2_SIZE};
  uint32_t h = 2166136261u;
  int i, j;
  for (i = 0; i < 4; i++)
    for (j = 0; j < n[i]; j++) {
      uint32_t bits;
      int k;
      memcpy(&bits, &p[i][j], sizeof bits);
      for (k = 0; k < 4; k++, bits >>= 8)
        h = (h ^ (bits & 0xFFu)) * 16777619u;
    }
  return h;
}

static unsigned gcd(unsigned a, unsigned b)
{
  while (b) {
    unsigned r = a % b;
    a = b;
    b = r;
  }
  return a;
}

static int step(float *loss)
{
#if defined(STEP_TRAIN)
  return digits(x, y, W1, b1, W2, b2, loss, state, work);
#elif defined(STEP_HAND)
  return digits_hand(x, y, W1, b1, W2, b2, loss, state, work);
#endif
}

/* correct answers on the test set */
static uint32_t test(void)
{
  uint32_t correct = 0;
  int first, i, c;
  for (first = 0; first < NTEST; first += EVAL_BATCH) {
    for (i = 0; i < EVAL_BATCH; i++)
      load(x + 64 * i, 5 * (first + i));
    if (digits_infer(x, W1, b1, W2, b2, logits, work) != 0)
      return 0;
    for (i = 0; i < EVAL_BATCH; i++) {
      int best = 0;
      for (c = 1; c < 10; c++)
        if (logits[10 * i + c] > logits[10 * i + best])
          best = c;
      correct += best == digits_labels[5 * (first + i)];
    }
  }
  return correct;
}

int main(void)
{
  uint32_t epoch, stack_step = 0, ram;
  uint64_t train_insn = 0, step_insn = 0;
  board_start();
  init(W1, DIGITS_W1_SIZE, 64);
  init(b1, DIGITS_b1_SIZE, 64);
  init(W2, DIGITS_W2_SIZE, 16);
  init(b2, DIGITS_b2_SIZE, 16);
  board_put_kv("epochs", EPOCHS);
  board_put_kv("test_initial", test());

  for (epoch = 1; epoch <= EPOCHS; epoch++) {
    /* this epoch's order: slot k -> (a k + b) mod NTRAIN, a coprime */
    unsigned a = 1 + (epoch * 7919u) % (NTRAIN - 1), b = epoch * 104729u % NTRAIN;
    unsigned k = 0;
    uint32_t steps = 0, correct;
    float sum = 0;
    uint64_t i0, i1;
    uintptr_t sp = board_sp();
    while (gcd(a, NTRAIN) != 1)
      a++;
    board_stack_paint();
    i0 = board_instructions();
    for (k = 0; k + BATCH <= NTRAIN; k += BATCH) {
      float loss;
      uint64_t s0;
      int i;
      for (i = 0; i < BATCH; i++) {
        unsigned slot = (a * (k + i) + b) % NTRAIN;  /* train slot */
        unsigned image = slot + slot / 4 + 1;        /* skip every fifth */
        load(x + 64 * i, (int)image);
        y[i] = digits_labels[image];
      }
      s0 = board_instructions();
      if (step(&loss) != 0) {
        board_puts("error: the step returned non-zero\n");
        return 1;
      }
      step_insn += board_instructions() - s0;
      sum += loss;
      steps++;
    }
    i1 = board_instructions();
    train_insn += i1 - i0;
    /* deepest stack below main's frame in this epoch: the step's */
    if (board_stack_used(sp) > stack_step)
      stack_step = board_stack_used(sp);
    correct = test();
    board_puts("epoch ");
    board_put_u32(epoch);
    board_puts(" loss_x10000 ");
    board_put_u32((uint32_t)(sum / (float)steps * 10000.0f + 0.5f));
    board_puts(" steps ");
    board_put_u32(steps);
    board_puts(" insn ");
    board_put_u32((uint32_t)(i1 - i0));
    board_puts(" test_correct ");
    board_put_u32(correct);
    board_puts("/");
    board_put_u32(NTEST);
    board_puts("\n");
  }

  board_put_kv("test_correct", test());
  board_puts("params_hash 0x");
  board_put_hex(params_hash());
  board_puts("\n");
  board_put_kv("test_count", NTEST);
  board_put_kv("params_bytes", (uint32_t)(sizeof W1 + sizeof b1 + sizeof W2 + sizeof b2));
  board_put_kv("state_bytes", (uint32_t)STATE_BYTES);
  board_put_kv("work_bytes", (uint32_t)WORK_BYTES);
  board_put_kv("batch_bytes", (uint32_t)(sizeof x + sizeof y + sizeof logits));
  if (board_measures()) {
    board_put_kv("insn_per_epoch", (uint32_t)(train_insn / EPOCHS));
    board_put_kv("insn_per_step", (uint32_t)(step_insn / EPOCHS / (NTRAIN / BATCH)));
    board_put_kv("stack_step", stack_step);
    board_put_kv("stack_peak", board_stack_peak());
  }
  ram = (uint32_t)(sizeof W1 + sizeof b1 + sizeof W2 + sizeof b2 + STATE_BYTES
                   + WORK_BYTES + sizeof x + sizeof y + sizeof logits);
  board_put_kv("ram_bytes", ram + board_stack_peak());
  return 0;
}
