// OpenBLAS's CBLAS interface (Debian: libopenblas-dev; found through pkg-config's openblas.pc).
#include <cblas.h>
