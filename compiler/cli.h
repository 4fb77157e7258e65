/* cli.h — what the parts of the agc command share (main.c, cli_files.c,
 * cli_run.c). Only the command includes it; the library never does. */
#ifndef AGC_CLI_H
#define AGC_CLI_H

#include <stddef.h>
#include <sys/stat.h>

#include "agc.h"
#include "agc_api.h"

/* --repeat keeps one timing per call (8 bytes each) for the median */
#define MAX_REPEAT 1000000

typedef struct {
  const char *graph, *out, *header, *emit, *inputs, *outdir;
  const char *backend; /* as written (--backend) */
  /* --dtype, --accumulate, --no-grad, --name, -O0, --backend, --after,
     --target: the compiler's options, which run and check hand to the
     library (their .api) */
  Options opt;
  int repeat, steps;
  double tol;
  const char **pairs; /* NAME=FILE */
  int npairs;
} Cli;

/* main.c */
int die2(const char *fmt, const char *arg); /* a command-line error: 2 */
void print_diagnostics(const char *text);

/* cli_files.c: outputs staged, then committed all or nothing */
/* one output file being written */
typedef struct {
  const char *path;  /* as the user wrote it */
  char *target;      /* symbolic links followed */
  char *tmp;         /* the staged file */
  char *backup;      /* a hard link to the old target while committing */
  int existed;
  mode_t mode;
  dev_t dev;
  ino_t ino;
} Staged;
void catch_signals(void);
int write_files(int n, const char **paths, StrBuf **data);
/* resolves n targets and opens a temporary for each (-1 after a message) */
int stage_begin(int n, Staged *st, int *fds);
void stage_abort(int n, Staged *st);
int stage_commit(int n, Staged *st);

/* cli_run.c */
int cmd_run(Cli *o);
int cmd_check(Cli *o);

#endif
