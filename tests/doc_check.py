#!/usr/bin/env python3
"""Runs the commands the docs show and compares the output they quote.

    doc_check.py BUILD_DIR SOURCE_DIR DOC.md ...

A fenced block is checked when an HTML comment (invisible on the rendered
page) stands on the line before it:

  <!-- doc-check -->          the block is a terminal session: every line
                              starting with "$ " is a command, the lines
                              after it are its output (stdout and stderr);
  <!-- doc-check: CMD -->     CMD is run and the block is an excerpt of its
                              output;
  <!-- doc-file -->           the block is a file named by its first line
                              ("# NAME ..."), written for later commands;
  <!-- doc-prelude -->        the block is shell code run before every
                              command (helper functions).

A command must succeed, unless its quoted output holds an error message (a
line starting "FILE:LINE:COL: error: ", or "agc: " but not "agc: note:"):
then it must fail.

In quoted output a line "..." stands for any number of lines. A session's
output must match from its first line to its last; an excerpt may start and
end anywhere. The commands of one page run in order, in one scratch
directory holding `build` (the build directory), `examples`, `python`, and a PATH on
which `agc` is this build's and `python3` is Debian's (with NumPy).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

MARK = re.compile(r"^<!-- doc-(check|file|prelude)(?::\s*(.*?))?\s*-->\s*$")


def blocks(path):
    """(line number, kind, arg, lines of the fenced block) per marked block."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        if m and i + 1 < len(lines) and lines[i + 1].startswith("```"):
            j = i + 2
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            yield i + 2, m.group(1), m.group(2), lines[i + 2:j]
            i = j
        elif m:
            raise SystemExit("%s:%d: doc marker not followed by a ``` block"
                             % (path, i + 1))
        i += 1


def matches(want, got, anchored):
    """Does output `got` (lines) fit quote `want` (lines, "..." = any)?"""
    if anchored:
        pat = []
        for w in want:
            pat.append("(?:.*\n)*?" if w == "..." else re.escape(w + "\n"))
        return re.fullmatch("".join(pat), "".join(g + "\n" for g in got)) \
            is not None
    # excerpt: each run between "..." lines appears, in order
    pos = 0
    chunk = []
    for w in want + ["..."]:
        if w != "...":
            chunk.append(w)
            continue
        if chunk:
            for k in range(pos, len(got) - len(chunk) + 1):
                if got[k:k + len(chunk)] == chunk:
                    pos = k + len(chunk)
                    break
            else:
                return False
        chunk = []
    return True


def clean(text):
    return [l.rstrip() for l in text.rstrip("\n").split("\n")] if text else []


def main():
    build, src, docs = sys.argv[1], sys.argv[2], sys.argv[3:]
    if subprocess.run(["/usr/bin/python3", "-c", "import numpy"],
                      stderr=subprocess.DEVNULL).returncode != 0:
        print("SKIP: the docs' commands need Debian's python3 with NumPy "
              "(apt-get install python3-numpy)")
        return 77
    build, src = os.path.abspath(build), os.path.abspath(src)
    tools = tempfile.mkdtemp(prefix="doc-check-bin-")
    os.symlink(os.path.join(build, "agc"), os.path.join(tools, "agc"))
    os.symlink("/usr/bin/python3", os.path.join(tools, "python3"))
    env = dict(os.environ, PATH=tools + ":" + os.environ["PATH"])
    failed = checked = 0
    for doc in docs:
        work = tempfile.mkdtemp(prefix="doc-check-")
        os.symlink(build, os.path.join(work, "build"))
        for d in ("examples", "python"):
            os.symlink(os.path.join(src, d), os.path.join(work, d))
        prelude = ""
        name = os.path.relpath(doc, src)

        def run(cmd):
            r = subprocess.run(["sh", "-c", prelude + "\n" + cmd], cwd=work,
                               env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=300)
            return clean(r.stdout.decode(errors="replace")), r.returncode

        def report(line, cmd, want, got, rc):
            print("FAIL %s:%d: $ %s\n  exit status %d\n  quoted:\n%s\n  got:\n%s"
                  % (name, line, cmd, rc, "\n".join("    " + w for w in want),
                     "\n".join("    " + g for g in got)))

        for line, kind, arg, body in blocks(doc):
            if kind == "prelude":
                prelude = "\n".join(body)
            elif kind == "file":
                m = re.match(r"#\s*(\S+)", body[0] if body else "")
                if not m:
                    raise SystemExit("%s:%d: doc-file block does not start "
                                     "with '# NAME'" % (name, line))
                with open(os.path.join(work, m.group(1)), "w") as f:
                    f.write("\n".join(body) + "\n")
            elif arg:  # an excerpt of CMD's output
                got, rc = run(arg)
                checked += 1
                if rc != 0 or not matches(body, got, anchored=False):
                    failed += 1
                    report(line, arg, body, got, rc)
            else:  # a session
                k = 0
                while k < len(body):
                    if not body[k].startswith("$ "):
                        raise SystemExit("%s:%d: expected a '$ ' command"
                                         % (name, line + k))
                    cmd, want = body[k][2:], []
                    k += 1
                    while k < len(body) and not body[k].startswith("$ "):
                        want.append(body[k].rstrip())
                        k += 1
                    got, rc = run(cmd)
                    checked += 1
                    # a quoted error message: the command is meant to fail
                    fails = any(re.match(r"\S+:\d+:\d+: error: ", w) or
                                (w.startswith("agc: ") and
                                 not w.startswith("agc: note:"))
                                for w in want)
                    if (rc != 0) != fails or not matches(want, got,
                                                         anchored=True):
                        failed += 1
                        report(line, cmd, want, got, rc)
        shutil.rmtree(work)
    shutil.rmtree(tools)
    print("doc-check: %d commands, %d failed" % (checked, failed))
    return 1 if failed or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
