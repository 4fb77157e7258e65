/* asan_driver.c — calls a generated graph with buffers of exactly the sizes
 * its macros give, so AddressSanitizer flags any byte used past them.
 * Compiled by tests/generated_c.sh with the graph generated as `test_case`.
 * A training graph (TEST_CASE_STATE_BYTES): three steps, with a state of
 * exactly its size, params updated in place. Prints a hash of each
 * output's bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

int main(void) {
  const void *in[TEST_CASE_NUM_INPUTS + 1];
  void *out[TEST_CASE_NUM_OUTPUTS + 1];
  size_t el = sizeof(TEST_CASE_REAL);
  for (int i = 0; i < TEST_CASE_NUM_INPUTS; i++) {
    int64_t n = 1;
    for (int d = 0; d < test_case_input_ranks[i]; d++)
      n *= test_case_input_dims[i][d];
    int is_int = test_case_input_dtypes[i] == 2;
    void *p = malloc((size_t)n * (is_int ? 4 : el));
    for (int64_t k = 0; k < n; k++) {
      if (is_int)
        ((int32_t *)p)[k] = 0;
      else if (el == 4)
        ((float *)p)[k] = 0.25f + 0.5f * (float)(k % 3);
      else
        ((double *)p)[k] = 0.25 + 0.5 * (double)(k % 3);
    }
    in[i] = p;
  }
  for (int i = 0; i < TEST_CASE_NUM_OUTPUTS; i++) {
    int64_t n = 1;
    for (int d = 0; d < test_case_output_ranks[i]; d++)
      n *= test_case_output_dims[i][d];
    out[i] = calloc((size_t)n, el);
  }
  /* exactly the advertised workspace, poisoned so stale reads show */
  void *work = malloc(TEST_CASE_WORK_BYTES ? TEST_CASE_WORK_BYTES : 1);
  memset(work, 0xff, TEST_CASE_WORK_BYTES ? TEST_CASE_WORK_BYTES : 1);
#ifdef TEST_CASE_STATE_BYTES
  void *state = calloc(1, TEST_CASE_STATE_BYTES ? TEST_CASE_STATE_BYTES : 1);
  int rc = 0;
  for (int s = 0; s < 3 && !rc; s++)
    rc = test_case_generic((void *const *)in, out, state, work);
  free(state);
#else
  int rc = test_case_generic(in, out, work);
#endif
  /* each output's bytes, hashed (FNV-1a): runs that must agree bit for
     bit (--threads) compare these lines */
  for (int i = 0; i < TEST_CASE_NUM_OUTPUTS; i++) {
    int64_t n = 1;
    for (int d = 0; d < test_case_output_ranks[i]; d++)
      n *= test_case_output_dims[i][d];
    uint64_t h = 14695981039346656037u;
    const unsigned char *b = (const unsigned char *)out[i];
    for (int64_t k = 0; k < n * (int64_t)el; k++)
      h = (h ^ b[k]) * 1099511628211u;
    printf("%s %016llx\n", test_case_output_names[i], (unsigned long long)h);
  }
  for (int i = 0; i < TEST_CASE_NUM_INPUTS; i++)
    free((void *)in[i]);
  for (int i = 0; i < TEST_CASE_NUM_OUTPUTS; i++)
    free(out[i]);
  free(work);
  if (rc != 0) {
    fprintf(stderr, "call returned %d\n", rc);
    return 1;
  }
  return 0;
}
