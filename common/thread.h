/* SPDX-License-Identifier: BSD-3-Clause */
/* Names a thread for ps, top -H, perf and /proc/PID/task/TID/comm
 * (docs/operations.md lists the names fanoutd gives its threads). */
#pragma once

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

/* The kernel keeps 15 characters of a name; a longer one is cut there. */
static inline void name_thread(pthread_t thread, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void name_thread(pthread_t thread, const char *fmt, ...)
{
	char name[16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	pthread_setname_np(thread, name);
}
