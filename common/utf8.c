/* SPDX-License-Identifier: BSD-3-Clause */
/* Incremental UTF-8 validator; see utf8.h. */
#include "utf8.h"

bool utf8_feed(struct utf8_state *st, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		unsigned char b = p[i];

		if (st->need == 0) {
			if (b < 0x80)
				continue;
			if (b >= 0xc2 && b <= 0xdf) {
				st->need = 1;
				st->min = 0x80;
				st->point = b & 0x1f;
			} else if (b >= 0xe0 && b <= 0xef) {
				st->need = 2;
				st->min = 0x800;
				st->point = b & 0x0f;
			} else if (b >= 0xf0 && b <= 0xf4) {
				st->need = 3;
				st->min = 0x10000;
				st->point = b & 0x07;
			} else {
				return false;
			}
			continue;
		}
		if ((b & 0xc0) != 0x80)
			return false;
		st->point = (st->point << 6) | (b & 0x3f);
		st->need--;
		/* Reject as early as the prefix decides it, so a streaming
		 * validator fails on the first bad byte, not at the end. */
		if (st->need == 1 && st->min == 0x800 && st->point < 0x20)
			return false; /* overlong 3-byte form */
		if (st->need == 2 && st->min == 0x10000 && (st->point < 0x10 || st->point > 0x10f))
			return false; /* overlong 4-byte form, or above U+10FFFF */
		if (st->need == 1 && st->min == 0x800 && st->point >= 0x360 && st->point <= 0x37f)
			return false; /* U+D800..U+DFFF: surrogates */
		if (st->need == 0 && st->point < st->min)
			return false;
	}
	return true;
}

bool utf8_valid(const void *data, size_t len)
{
	struct utf8_state st = UTF8_STATE_INIT;

	return utf8_feed(&st, data, len) && utf8_complete(&st);
}
