/* idx.h — a small, strict reader of the IDX files of MNIST and
 * Fashion-MNIST (unsigned bytes: images idx3, labels idx1).
 *
 * Files are read through zlib's gzread, which reads gzip-compressed files
 * (Debian's dataset-fashion-mnist ships *.gz) and plain files alike. Every
 * check fails with a one-line message in err (no I/O here, no exit):
 * a missing file, a bad gzip stream, a wrong magic number, zero or absurd
 * dimensions, fewer or more data bytes than the header says, a label out of
 * range, or images and labels that do not match in count. */
#ifndef IDX_H
#define IDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  long n;         /* number of images (= labels) */
  int rows, cols; /* image size (28 x 28 for Fashion-MNIST) */
  uint8_t *pixels; /* n * rows * cols bytes, row-major, 0..255 */
  uint8_t *labels; /* n bytes, each < nclass */
} idx_set;

/* Reads DIR/PREFIX-images-idx3-ubyte and DIR/PREFIX-labels-idx1-ubyte, each
 * with ".gz" if the plain name does not exist (PREFIX is "train" or "t10k").
 * Labels must be < nclass. Returns 0, or -1 with a message naming the file in
 * err (errlen bytes) and nothing left allocated. */
int idx_load(const char *dir, const char *prefix, int nclass, idx_set *set,
             char *err, size_t errlen);

void idx_free(idx_set *set);

#endif
