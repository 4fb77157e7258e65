/* cli_files.c — the agc command's outputs: staged next to their targets,
 * then committed together (all or nothing), temporaries removed on a
 * fatal signal. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* ---- output files: staged, then committed together ----------------------
 *
 * Every output (the .c and .h of a compile, the .npy files of a run) is
 * first written in full to a temporary "<target>.agc-tmp-XXXXXX" next to
 * its target; only when all are written are they renamed over their
 * targets, each existing target kept as a hard link until all renames
 * succeed, so that a failure puts the old files back: all or nothing.
 * A target must be a regular file or not exist; a symbolic link is
 * followed to the file it names; a directory, device, FIFO or socket is
 * refused. The new file keeps the old file's permission bits, or gets
 * 0666 & ~umask when new. SIGINT, SIGTERM and SIGHUP remove the
 * temporaries before agc dies (SIGKILL cannot be caught: the names say
 * whose they are). */

/* the names the signal handler unlinks; changed with signals blocked */
static char **staged_tmp;
static int staged_cap;
static volatile sig_atomic_t nstaged_tmp;

static void on_fatal_signal(int sig) {
  for (int i = 0; i < nstaged_tmp; i++)
    if (staged_tmp[i])
      unlink(staged_tmp[i]);
  signal(sig, SIG_DFL);
  raise(sig);
}

void catch_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

static void track_tmp(char *path) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  int n = nstaged_tmp;
  while (n > 0 && !staged_tmp[n - 1]) /* slots of removed names are reused */
    n--;
  if (n == staged_cap) {
    int ncap = staged_cap ? 2 * staged_cap : 16;
    char **nt = realloc(staged_tmp, sizeof *nt * (size_t)ncap);
    if (!nt)
      abort();
    staged_tmp = nt;
    staged_cap = ncap;
  }
  staged_tmp[n] = path;
  nstaged_tmp = n + 1;
  sigprocmask(SIG_SETMASK, &old, NULL);
}

static void untrack_tmp(const char *path) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  for (int i = 0; i < nstaged_tmp; i++)
    if (staged_tmp[i] == path)
      staged_tmp[i] = NULL;
  sigprocmask(SIG_SETMASK, &old, NULL);
}


static const char *kind_of(mode_t m) {
  return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device"
       : S_ISBLK(m) ? "a block device" : S_ISFIFO(m) ? "a FIFO"
       : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

/* Follows symbolic links from s->path to the file they name. */
static int resolve_target(Staged *s) {
  char cur[4096], link[4096];
  if (strlen(s->path) >= sizeof cur) {
    fprintf(stderr, "agc: cannot write '%s': name too long\n", s->path);
    return -1;
  }
  strcpy(cur, s->path);
  struct stat st;
  for (int hops = 0;; hops++) {
    if (lstat(cur, &st) != 0) {
      if (errno != ENOENT) {
        fprintf(stderr, "agc: cannot write '%s': %s\n", s->path,
                strerror(errno));
        return -1;
      }
      s->existed = 0;
      mode_t um = umask(0);
      umask(um);
      s->mode = 0666 & ~um;
      break;
    }
    if (!S_ISLNK(st.st_mode)) {
      if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "agc: cannot write '%s': it is %s, not a regular "
                "file\n", s->path, kind_of(st.st_mode));
        return -1;
      }
      s->existed = 1;
      s->mode = st.st_mode & 07777;
      s->dev = st.st_dev;
      s->ino = st.st_ino;
      break;
    }
    ssize_t n = hops < 40 ? readlink(cur, link, sizeof link - 1) : -1;
    if (n < 0) {
      fprintf(stderr, "agc: cannot write '%s': %s\n", s->path,
              hops < 40 ? strerror(errno) : "too many levels of symbolic links");
      return -1;
    }
    link[n] = 0;
    if (link[0] != '/') { /* relative to the link's directory */
      char *slash = strrchr(cur, '/');
      size_t dl = slash ? (size_t)(slash - cur) + 1 : 0;
      if (dl + (size_t)n >= sizeof cur) {
        fprintf(stderr, "agc: cannot write '%s': name too long\n", s->path);
        return -1;
      }
      memmove(cur + dl, link, (size_t)n + 1);
    } else {
      memcpy(cur, link, (size_t)n + 1);
    }
  }
  s->target = strdup(cur);
  if (!s->target)
    abort();
  return 0;
}

/* Resolves every target (the same file twice is an error) and opens a
 * temporary for each. Returns 0, or -1 after a message (nothing created). */
int stage_begin(int n, Staged *st, int *fds) {
  for (int i = 0; i < n; i++)
    fds[i] = -1;
  for (int i = 0; i < n; i++)
    if (resolve_target(&st[i]) != 0) {
      stage_abort(n, st);
      return -1;
    }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(st[i].target, st[j].target) == 0 ||
          (st[i].existed && st[j].existed && st[i].dev == st[j].dev &&
           st[i].ino == st[j].ino)) {
        fprintf(stderr, "agc: '%s' and '%s' are the same file: each output "
                "needs its own\n", st[j].path, st[i].path);
        stage_abort(n, st);
        return -1;
      }
  for (int i = 0; i < n; i++) {
    size_t len = strlen(st[i].target) + 24;
    st[i].tmp = malloc(len);
    if (!st[i].tmp)
      abort();
    snprintf(st[i].tmp, len, "%s.agc-tmp-XXXXXX", st[i].target);
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old); /* created and tracked together */
    fds[i] = mkstemp(st[i].tmp);
    int e = errno;
    if (fds[i] >= 0)
      track_tmp(st[i].tmp);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (fds[i] < 0 || fchmod(fds[i], st[i].mode) != 0) {
      if (fds[i] >= 0)
        e = errno;
      fprintf(stderr, "agc: cannot write '%s': %s\n", st[i].path, strerror(e));
      if (fds[i] < 0) {
        free(st[i].tmp);
        st[i].tmp = NULL;
      }
      for (int j = 0; j <= i; j++)
        if (fds[j] >= 0)
          close(fds[j]);
      stage_abort(n, st);
      return -1;
    }
  }
  return 0;
}

/* Removes the temporaries, frees everything. */
void stage_abort(int n, Staged *st) {
  for (int i = 0; i < n; i++) {
    if (st[i].tmp) {
      unlink(st[i].tmp);
      untrack_tmp(st[i].tmp);
      free(st[i].tmp);
    }
    free(st[i].target);
    st[i].tmp = st[i].target = NULL;
  }
}

/* Renames every staged file over its target, or none. */
int stage_commit(int n, Staged *st) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old); /* no signal between two renames */
  int done = 0, rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    if (!st[i].existed)
      continue;
    /* a hard link to the old file, to put it back should a later rename
       fail; where links are impossible the old file is simply replaced */
    size_t len = strlen(st[i].target) + 24;
    st[i].backup = malloc(len);
    if (!st[i].backup)
      abort();
    for (int k = 0; k < 100; k++) {
      snprintf(st[i].backup, len, "%s.agc-old-%ld-%d", st[i].target,
               (long)getpid(), k);
      if (link(st[i].target, st[i].backup) == 0) {
        track_tmp(st[i].backup);
        break;
      }
      if (errno != EEXIST) {
        free(st[i].backup);
        st[i].backup = NULL;
        break;
      }
    }
  }
  for (; done < n; done++)
    if (rename(st[done].tmp, st[done].target) != 0) {
      fprintf(stderr, "agc: cannot write '%s': %s\n", st[done].path,
              strerror(errno));
      rc = -1;
      break;
    }
  for (int i = 0; i < n; i++) {
    if (rc != 0 && i < done) { /* undo: the old file back, or none */
      if (st[i].backup)
        rename(st[i].backup, st[i].target);
      else if (!st[i].existed)
        unlink(st[i].target);
    }
    if (st[i].backup) {
      unlink(st[i].backup);
      untrack_tmp(st[i].backup);
      free(st[i].backup);
      st[i].backup = NULL;
    }
    if (i < done && rc == 0) {
      untrack_tmp(st[i].tmp);
      free(st[i].tmp);
      st[i].tmp = NULL;
    }
  }
  stage_abort(n, st); /* frees the names (and removes what is left) */
  sigprocmask(SIG_SETMASK, &old, NULL);
  return rc;
}

static int write_fd_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Writes all files or none; "-" is standard output, written last. */
int write_files(int n, const char **paths, StrBuf **data) {
  Staged st[8];
  int fds[8], idx[8], k = 0;
  memset(st, 0, sizeof st);
  for (int i = 0; i < n; i++)
    if (strcmp(paths[i], "-") != 0) {
      st[k].path = paths[i];
      idx[k++] = i;
    }
  if (stage_begin(k, st, fds) != 0)
    return -1;
  for (int j = 0; j < k; j++) {
    StrBuf *d = data[idx[j]];
    int bad = write_fd_all(fds[j], d->s ? d->s : "", d->len) != 0 ||
              fsync(fds[j]) != 0;
    int e = errno;
    if (close(fds[j]) != 0 && !bad)
      bad = 1, e = errno;
    fds[j] = -1;
    if (bad) {
      fprintf(stderr, "agc: cannot write '%s': %s\n", st[j].path, strerror(e));
      for (int m = j + 1; m < k; m++)
        close(fds[m]);
      stage_abort(k, st);
      return -1;
    }
  }
  if (stage_commit(k, st) != 0)
    return -1;
  for (int i = 0; i < n; i++)
    if (strcmp(paths[i], "-") == 0)
      fwrite(data[i]->s ? data[i]->s : "", 1, data[i]->len, stdout);
  return 0;
}

