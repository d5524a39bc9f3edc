/* SPDX-License-Identifier: BSD-3-Clause */
/* A JSON object's top-level members, found without allocating and without a
 * JSON library: for a thread that must not call either per message (a DPDK
 * worker lcore deciding whether a request is a publish). It checks the
 * object's syntax (RFC 8259) but not its strings' UTF-8 (a websocket text
 * message is valid UTF-8 already), and it declines what it cannot be sure
 * of, so that its caller falls back to a full parser. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jscan_kind {
	JSCAN_ABSENT,
	JSCAN_STRING, /* p and len: the raw bytes between the quotes */
	JSCAN_INT,    /* i: an integer that fits int64_t */
	JSCAN_OTHER,  /* anything else: a fraction, an object, true, null... */
};

struct jscan_value {
	enum jscan_kind kind;
	const char *p;
	size_t len;
	bool escaped; /* a string with a backslash escape: p is not its value */
	int64_t i;
};

#define JSCAN_DEPTH_MAX 32

/* Scans text (len bytes) as one JSON object and fills vals[k] for keys[k]
 * (n of them, plain ASCII). 0, or -1 when text is not a JSON object the
 * scanner is sure of: bad syntax, nesting deeper than JSCAN_DEPTH_MAX, a key
 * with an escape, one of keys present twice, an integer out of range, or a
 * \u0000 escape. */
int jscan_object(const char *text, size_t len, const char *const *keys, struct jscan_value *vals,
		 int n);
