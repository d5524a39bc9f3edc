/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness: the incremental UTF-8 validator fed byte by byte must
 * agree with the whole-buffer check, and both with a reference decoder
 * written here from RFC 3629 section 4's grammar. */
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 3629's UTF8-octets, as a direct reading of its ABNF. */
static bool reference(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t need;
		uint8_t lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c == 0xe0)
			need = 2, lo = 0xa0;
		else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
			need = 2;
		else if (c == 0xed)
			need = 2, hi = 0x9f;
		else if (c == 0xf0)
			need = 3, lo = 0x90;
		else if (c >= 0xf1 && c <= 0xf3)
			need = 3;
		else if (c == 0xf4)
			need = 3, hi = 0x8f;
		else
			return false;
		if (i + need >= n) /* truncated */
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= need; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return false;
		i += need + 1;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct utf8_state st = UTF8_STATE_INIT;
	bool ok = true, whole = utf8_valid(data, size), ref = reference(data, size);

	for (size_t i = 0; i < size && ok; i++)
		ok = utf8_feed(&st, data + i, 1);
	ok = ok && utf8_complete(&st);
	if (ok != whole || whole != ref)
		abort();
	return 0;
}
