/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * util.h: header-only helpers shared by the whole library: alignment,
 * min/max, overflow-checked arithmetic, byte order and scope cleanups.
 */
#ifndef BLOCK_UTIL_H
#define BLOCK_UTIL_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BDRV_SECTOR_BITS   9
#define BDRV_SECTOR_SIZE   (1ULL << BDRV_SECTOR_BITS)

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif
#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

#define HIDDEN __attribute__((visibility("hidden")))
#define WARN_UNUSED __attribute__((warn_unused_result))
#define PRINTF_FMT(a, b) __attribute__((format(printf, a, b)))

/* Alignment of unsigned values; @a must be a power of two for the _POW2 forms. */
#define ROUND_DOWN(n, a)      ((n) / (a) * (a))
#define ROUND_UP(n, a)        (((n) + (a) - 1) / (a) * (a))
#define DIV_ROUND_UP(n, d)    (((n) + (d) - 1) / (d))
#define IS_ALIGNED(n, a)      (((n) % (a)) == 0)
#define IS_POW2(n)            ((n) != 0 && (((n) & ((n) - 1)) == 0))

/* Overflow-checked arithmetic: true when the result overflowed. */
#define ADD_OVERFLOW(a, b, res) __builtin_add_overflow(a, b, res)
#define MUL_OVERFLOW(a, b, res) __builtin_mul_overflow(a, b, res)

/* Byte order of on-disk fields. */
static inline uint16_t be16_load(const void *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static inline uint32_t be32_load(const void *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static inline uint64_t be64_load(const void *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static inline uint16_t le16_load(const void *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static inline uint32_t le32_load(const void *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t le64_load(const void *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static inline void be16_store(void *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static inline void be32_store(void *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static inline void be64_store(void *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static inline void le16_store(void *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static inline void le32_store(void *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static inline void le64_store(void *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }

/* True when every byte of @buf is zero. */
static inline bool buffer_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len && ((uintptr_t)p & 7)) {
        if (*p) {
            return false;
        }
        p++;
        len--;
    }
    const uint64_t *q = (const uint64_t *)(const void *)p;
    for (; len >= 32; len -= 32, q += 4) {
        if (q[0] | q[1] | q[2] | q[3]) {
            return false;
        }
    }
    p = (const unsigned char *)q;
    while (len--) {
        if (*p++) {
            return false;
        }
    }
    return true;
}

/* Scope cleanups: the pointer is freed when the variable leaves scope. */
static inline void cleanup_free_ptr(void *p) { free(*(void **)p); }
#define CLEANUP_FREE __attribute__((cleanup(cleanup_free_ptr)))

#endif /* BLOCK_UTIL_H */
