/* SPDX-License-Identifier: BSD-3-Clause */
/* UTF-8 validation (RFC 3629): rejects overlong forms, surrogates, code points
 * above U+10FFFF and truncated sequences. Incremental, so a validator can be fed
 * a message in pieces (websocket fragments) and keeps its state between calls. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct utf8_state {
	uint32_t need;	/* continuation bytes still expected */
	uint32_t min;	/* smallest code point the sequence may encode */
	uint32_t point; /* code point accumulated so far */
};

#define UTF8_STATE_INIT                                                                            \
	{                                                                                          \
		0, 0, 0                                                                            \
	}

/* Feeds len bytes. Returns false at the first invalid byte; the state is then
 * undefined. */
bool utf8_feed(struct utf8_state *st, const void *data, size_t len);

/* True when the input fed so far ends on a whole code point. */
static inline bool utf8_complete(const struct utf8_state *st)
{
	return st->need == 0;
}

/* Whole-buffer check. */
bool utf8_valid(const void *data, size_t len);
