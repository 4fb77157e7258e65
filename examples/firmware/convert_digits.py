#!/usr/bin/python3
"""convert_digits.py [CSV_GZ] [OUT] -- scikit-learn's 8x8 digits as digits.bin.

Reads scikit-learn's copy of the data set (default:
/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz, Debian's
python3-sklearn; 1,797 lines of 64 pixel values 0..16 and the label 0..9)
and writes OUT (default digits.bin next to this script): 1,797 records of
65 bytes, in the order of the file: the 64 pixels of the 8x8 image, row by
row, each 0..16, then the label. Standard library only."""
import gzip
import os
import sys

SRC = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else SRC
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "digits.bin")
    data = bytearray()
    n = 0
    with gzip.open(src, "rt") as f:
        for line in f:
            v = [int(float(s)) for s in line.strip().split(",")]
            if len(v) != 65 or not all(0 <= p <= 16 for p in v[:64]) or not 0 <= v[64] <= 9:
                sys.exit("%s:%d: expected 64 pixels 0..16 and a label 0..9" % (src, n + 1))
            data += bytes(v)
            n += 1
    if n != 1797:
        sys.exit("%s: %d images, expected 1797" % (src, n))
    with open(out, "wb") as f:
        f.write(data)
    print("%s: %d images, %d bytes" % (out, n, len(data)))


if __name__ == "__main__":
    main()
