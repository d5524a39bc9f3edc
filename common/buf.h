/* SPDX-License-Identifier: BSD-3-Clause */
/* A growable byte buffer: appended to, reset and reused, freed once. The
 * persist tier builds binary parameters in it; the socket edge gathers a
 * fragmented websocket message in it. */
#pragma once

#include <stddef.h>

struct buf {
	char *data;
	size_t len, cap;
};

/* Empties b, keeping its memory for the next use. */
void buf_reset(struct buf *b);
/* Frees b's memory; b is empty and reusable afterwards. */
void buf_free(struct buf *b);
/* Appends n bytes, doubling the capacity as needed; returns 0 or -ENOMEM
 * (b unchanged). */
int buf_put(struct buf *b, const void *p, size_t n);
