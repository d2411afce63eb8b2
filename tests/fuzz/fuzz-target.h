/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-target.h: the fuzz workload (fuzz-target.c) as the replay driver calls it. */
#ifndef FUZZ_TARGET_H
#define FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

/* The format the workload opens: a driver name, "vmdk-desc", or "" to probe. */
extern const char *fuzz_format;

/* What the workload's first, read-only open of the last input returned (0 or -errno). */
extern int fuzz_last_open_error;

/* Run the whole workload over one input; always returns 0 (libFuzzer's contract). */
int fuzz_one(const uint8_t *data, size_t size);

#endif /* FUZZ_TARGET_H */
