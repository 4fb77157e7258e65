/* fuzz_run.c — `agc run` end to end (compiler/main.c, built with its main
 * renamed): a small graph with a backward pass, its input x read from the
 * fuzzed file, the outputs written to a directory. Whatever the file holds,
 * agc exits 0 (and then wrote both results) or 1 with one line naming the
 * input; never a crash. The graph is JIT-compiled by TinyCC each time. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* mkdtemp */
#endif
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int agc_main(int argc, char **argv);

static char dir[4096], graph[4200], input[4200], out[4200], arg_x[4300];

/* the directory and what agc wrote in it, at exit (libFuzzer and replay.c
   both return through exit); a crash leaves it for a look */
static void cleanup(void) {
  DIR *d = opendir(out);
  if (d) {
    struct dirent *e;
    char path[8400];
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
        snprintf(path, sizeof path, "%s/%s", out, e->d_name);
        unlink(path);
      }
    closedir(d);
    rmdir(out);
  }
  unlink(graph);
  unlink(input);
  rmdir(dir);
}

static void setup(void) {
  if (dir[0])
    return;
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/agc-fuzz-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir))
    abort();
  atexit(cleanup);
  snprintf(graph, sizeof graph, "%s/g.graph", dir);
  snprintf(input, sizeof input, "%s/x.npy", dir);
  snprintf(out, sizeof out, "%s/out", dir);
  snprintf(arg_x, sizeof arg_x, "x=%s", input);
  FILE *f = fopen(graph, "w");
  if (!f)
    abort();
  fputs("param x[3, 2]\ny = tanh(x) * 2\nl = sum(y * y)\noutput y, l\n"
        "backward l\n", f);
  fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  FILE *f = fopen(input, "wb");
  if (!f)
    abort();
  if (size && fwrite(data, 1, size, f) != size)
    abort();
  fclose(f);
  char *argv[] = {"agc", "run", graph, arg_x, "--dtype",
                  size % 2 ? "f64" : "f32", "--out", out, NULL};
  /* stderr carries agc's one-line errors: keep the fuzzer's log readable */
  fflush(stderr);
  int rc = agc_main(8, argv);
  if (rc != 0 && rc != 1)
    abort();
  return 0;
}
