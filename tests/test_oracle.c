/* test_oracle.c — agc against PyTorch.
 *
 * For every case of tests/pytorch/MANIFEST of the tiers asked for, runs the
 * case's model.graph with both backends in f32 and f64 and compares every
 * output and gradient with the values PyTorch computed (tests/pytorch/
 * gen_fixtures.py wrote them; no Python is needed here). An element passes
 * when |agc - torch| <= tol * (|torch| + 1): tol 1e-5 in f32, 1e-10 in f64.
 * In f32 an element may instead match torch's f64 value (the exact answer)
 * within the f32 tolerance: where torch's own f32 arithmetic loses digits
 * (the logsumexp gradient at magnitude 1e4 computes exp(x - lse) with lse
 * rounded at 1e4), agc is allowed to be the more accurate of the two.
 *
 * The optimized code is also compared with the unoptimized path (-O0)
 * directly, output by output, in f64.
 *
 * usage: test_oracle FIXTURE_DIR TIER[,TIER]
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc_api.h"

static const char *fixdir, *tiers;

static int tier_wanted(const char *t) {
  char buf[512];
  snprintf(buf, sizeof buf, ",%.500s,", tiers);
  char key[80];
  snprintf(key, sizeof key, ",%s,", t);
  return strstr(buf, key) != NULL;
}

static int eq(double a, double e, double tol) {
  if (isnan(e))
    return isnan(a);
  if (isinf(e))
    return a == e;
  return fabs(a - e) <= tol * (fabs(e) + 1);
}

/* Reads case name's inputs for graph g (floats converted to its type);
 * 1, with a message, if one is missing or of the wrong size. */
static int read_inputs(const char *name, agc_graph *g, int f64,
                       agc_array *ins, const void **inp) {
  char path[1024], err[8192];
  for (int i = 0; i < agc_graph_num_inputs(g); i++) {
    snprintf(path, sizeof path, "%s/cases/%s/in/%s.npy", fixdir, name,
             agc_graph_name(g, 0, i));
    if (agc_npy_read(path, &ins[i], err, sizeof err) != 0) {
      printf("FAIL %s: %s\n", name, err);
      return 1;
    }
    if (ins[i].dtype != AGC_I32)
      agc_array_convert(&ins[i], f64 ? AGC_F64 : AGC_F32, err, sizeof err);
    inp[i] = ins[i].data;
    if (ins[i].count != agc_graph_count(g, 0, i)) {
      printf("FAIL %s: input %s has %lld elements, graph wants %lld\n", name,
             agc_graph_name(g, 0, i), (long long)ins[i].count,
             (long long)agc_graph_count(g, 0, i));
      return 1;
    }
  }
  return 0;
}

/* Runs one case; returns the number of problems (printed). */
static int run_case(const char *name, int f64, agc_backend be, int O0,
                    double *worst) {
  char path[1024], err[8192];
  snprintf(path, sizeof path, "%s/cases/%s/model.graph", fixdir, name);
  agc_graph_options opt = {.f64 = f64, .backend = be, .O0 = O0};
  agc_graph *g = agc_graph_load(path, &opt, err, sizeof err);
  const char *tag = f64 ? "f64" : "f32";
  const char *bn = be == AGC_BACKEND_CC ? "cc" : "tcc";
  if (!g) {
    printf("FAIL %s [%s %s]: %s\n", name, tag, bn, err);
    return 1;
  }
  int nin = agc_graph_num_inputs(g), nout = agc_graph_num_outputs(g);
  agc_array *ins = calloc((size_t)nin + 1, sizeof *ins);
  const void **inp = calloc((size_t)nin + 1, sizeof *inp);
  void **outp = calloc((size_t)nout + 1, sizeof *outp);
  int bad = read_inputs(name, g, f64, ins, inp);
  for (int i = 0; i < nout; i++)
    outp[i] = calloc((size_t)agc_graph_count(g, 1, i) + 1, 8);
  void *work = malloc(agc_graph_work_bytes(g) + 1);
  if (!bad && agc_graph_call(g, inp, outp, work) != 0) {
    printf("FAIL %s [%s %s]: call returned an error status\n", name, tag, bn);
    bad = 1;
  }
  double tol = f64 ? 1e-10 : 1e-5;
  for (int i = 0; i < nout && !bad; i++) {
    agc_array e;
    snprintf(path, sizeof path, "%s/cases/%s/expect_%s/%s.npy", fixdir, name,
             tag, agc_graph_name(g, 1, i));
    if (agc_npy_read(path, &e, err, sizeof err) != 0) {
      printf("FAIL %s: %s\n", name, err);
      bad++;
      continue;
    }
    agc_array_convert(&e, AGC_F64, err, sizeof err);
    agc_array exact = {0};
    if (!f64) {
      snprintf(path, sizeof path, "%s/cases/%s/expect_f64/%s.npy", fixdir,
               name, agc_graph_name(g, 1, i));
      if (agc_npy_read(path, &exact, err, sizeof err) != 0 ||
          exact.count != e.count)
        agc_array_free(&exact);
    }
    if (e.count != agc_graph_count(g, 1, i)) {
      printf("FAIL %s [%s %s]: %s has %lld elements, expected %lld\n", name,
             tag, bn, agc_graph_name(g, 1, i),
             (long long)agc_graph_count(g, 1, i), (long long)e.count);
      bad++;
    } else {
      for (int64_t k = 0; k < e.count; k++) {
        double a = f64 ? ((double *)outp[i])[k] : ((float *)outp[i])[k];
        double x = ((double *)e.data)[k];
        if (isfinite(x)) {
          double r = fabs(a - x) / (fabs(x) + 1);
          if (r > *worst || isnan(r))
            *worst = isnan(r) ? INFINITY : r;
        }
        if (!eq(a, x, tol) &&
            !(exact.data && eq(a, ((double *)exact.data)[k], tol))) {
          printf("FAIL %s [%s %s]: %s[%lld] = %.17g, torch %.17g\n", name,
                 tag, bn, agc_graph_name(g, 1, i), (long long)k, a, x);
          bad++;
          break;
        }
      }
    }
    agc_array_free(&e);
    agc_array_free(&exact);
  }
  for (int i = 0; i < nin; i++)
    agc_array_free(&ins[i]);
  for (int i = 0; i < nout; i++)
    free(outp[i]);
  free(ins);
  free(inp);
  free(outp);
  free(work);
  agc_graph_free(g);
  return bad;
}

/* The optimized path against the unoptimized one (-O0: the graph as
 * parsed, no passes, no fusion, every value stored) on the same inputs, in
 * f64 on tcc: every output within 1e-12 * (|v| + 1). Returns problems. */
static int run_vs_O0(const char *name, double *worst) {
  char path[1024], err[8192];
  snprintf(path, sizeof path, "%s/cases/%s/model.graph", fixdir, name);
  agc_graph *g[2];
  for (int O0 = 0; O0 < 2; O0++) {
    agc_graph_options opt = {.f64 = 1, .backend = AGC_BACKEND_TCC, .O0 = O0};
    g[O0] = agc_graph_load(path, &opt, err, sizeof err);
    if (!g[O0]) {
      printf("FAIL %s [-O%d]: %s\n", name, O0 ? 0 : 1, err);
      if (O0)
        agc_graph_free(g[0]);
      return 1;
    }
  }
  int nin = agc_graph_num_inputs(g[0]), nout = agc_graph_num_outputs(g[0]);
  int bad = nin != agc_graph_num_inputs(g[1]) ||
            nout != agc_graph_num_outputs(g[1]);
  agc_array *ins = calloc((size_t)nin + 1, sizeof *ins);
  const void **inp = calloc((size_t)nin + 1, sizeof *inp);
  void **outp[2];
  bad = bad || read_inputs(name, g[0], 1, ins, inp);
  for (int v = 0; v < 2; v++) {
    outp[v] = calloc((size_t)nout + 1, sizeof *outp[v]);
    for (int i = 0; i < nout; i++)
      outp[v][i] = calloc((size_t)agc_graph_count(g[v], 1, i) + 1, 8);
    void *work = malloc(agc_graph_work_bytes(g[v]) + 1);
    if (!bad && agc_graph_call(g[v], inp, outp[v], work) != 0)
      bad = 1;
    free(work);
  }
  if (bad)
    printf("FAIL %s: -O1 and -O0 could not both run\n", name);
  for (int i = 0; i < nout && !bad; i++)
    for (int64_t k = 0; k < agc_graph_count(g[0], 1, i); k++) {
      double a = ((double *)outp[0][i])[k], b = ((double *)outp[1][i])[k];
      if (isfinite(b) && fabs(a - b) / (fabs(b) + 1) > *worst)
        *worst = fabs(a - b) / (fabs(b) + 1);
      if (!eq(a, b, 1e-12)) {
        printf("FAIL %s: %s[%lld] = %.17g at -O1, %.17g at -O0\n", name,
               agc_graph_name(g[0], 1, i), (long long)k, a, b);
        bad++;
        break;
      }
    }
  for (int v = 0; v < 2; v++) {
    for (int i = 0; i < nout; i++)
      free(outp[v][i]);
    free(outp[v]);
    agc_graph_free(g[v]);
  }
  for (int i = 0; i < nin; i++)
    agc_array_free(&ins[i]);
  free(ins);
  free(inp);
  return bad;
}

static void run_all(int f64, agc_backend be, int O0) {
  char path[1024], name[256], tier[64];
  snprintf(path, sizeof path, "%s/MANIFEST", fixdir);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  int ncases = 0, nbad = 0;
  double worst = 0;
  while (fscanf(f, "%255s %63s", name, tier) == 2) {
    if (!tier_wanted(tier))
      continue;
    ncases++;
    if (O0 == 2)
      nbad += run_vs_O0(name, &worst) != 0;
    else
      nbad += run_case(name, f64, be, O0, &worst) != 0;
  }
  fclose(f);
  printf("oracle %s %s%s: %d cases, %d failed, worst relative error %.3g\n",
         f64 ? "f64" : "f32", be == AGC_BACKEND_CC ? "cc" : "tcc",
         O0 == 2 ? " -O1 vs -O0" : O0 ? " -O0" : "", ncases, nbad, worst);
  ck_assert_int_gt(ncases, 0);
  ck_assert_int_eq(nbad, 0);
}

START_TEST(tcc_f32) { run_all(0, AGC_BACKEND_TCC, 0); }
END_TEST
START_TEST(tcc_f64) { run_all(1, AGC_BACKEND_TCC, 0); }
END_TEST
START_TEST(cc_f32) { run_all(0, AGC_BACKEND_CC, 0); }
END_TEST
START_TEST(cc_f64) { run_all(1, AGC_BACKEND_CC, 0); }
END_TEST
/* the unoptimized path (no passes, no fusion) gives the same answers */
START_TEST(tcc_f32_O0) { run_all(0, AGC_BACKEND_TCC, 1); }
END_TEST
START_TEST(tcc_f64_O0) { run_all(1, AGC_BACKEND_TCC, 1); }
END_TEST
/* and directly: optimized against unoptimized on the same inputs */
START_TEST(tcc_f64_O1_vs_O0) { run_all(1, AGC_BACKEND_TCC, 2); }
END_TEST

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_oracle FIXTURE_DIR TIER[,TIER]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IONBF, 0); /* forked tests print too */
  fixdir = argv[1];
  tiers = argv[2];
  Suite *s = suite_create("oracle");
  TCase *t = tcase_create("pytorch");
  tcase_set_timeout(t, 600);
  tcase_add_test(t, tcc_f32);
  tcase_add_test(t, tcc_f64);
  tcase_add_test(t, cc_f32);
  tcase_add_test(t, cc_f64);
  tcase_add_test(t, tcc_f32_O0);
  tcase_add_test(t, tcc_f64_O0);
  tcase_add_test(t, tcc_f64_O1_vs_O0);
  suite_add_tcase(s, t);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? 1 : 0;
}
