/* SPDX-License-Identifier: BSD-3-Clause */
/* Error conventions: functions return 0 or -errno, constructors return NULL
 * and set errno, burst functions return counts. These helpers keep call sites
 * short and the conventions uniform. */
#pragma once

#include <errno.h>
#include <string.h>

/* The negative errno of the last failing libc call, never 0. */
static inline int err_neg_errno(void)
{
	return errno ? -errno : -EIO;
}

/* Sets errno from a -errno code and returns NULL, for constructors. */
static inline void *err_null(int negerr)
{
	errno = negerr < 0 ? -negerr : negerr;
	return NULL;
}

/* strerror() for a -errno code. */
static inline const char *err_str(int negerr)
{
	return strerror(negerr < 0 ? -negerr : negerr);
}
