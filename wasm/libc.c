// The two libc functions the compiler may emit calls to on its own (struct
// copies, zeroing): bulk memory's memory.fill and memory.copy, which is what the
// builtins become with -mbulk-memory, rather than byte loops.
#include "kernels.h"
#undef memset
#undef memcpy

void *memset(void *dst, int value, size_t n) {
    return __builtin_memset(dst, value, n);
}

void *memcpy(void *dst, const void *src, size_t n) {
    return __builtin_memcpy(dst, src, n);
}
