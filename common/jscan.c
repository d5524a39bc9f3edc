/* SPDX-License-Identifier: BSD-3-Clause */
/* A JSON object's top-level members without allocating (jscan.h): one pass
 * over the text with a small stack of the open containers. */
#include "jscan.h"

#include <string.h>

struct scan {
	const char *p, *end;
};

static void skip_space(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* An escape after its backslash; s->p is past it on return. */
static int escape(struct scan *s)
{
	unsigned v = 0;

	if (s->p >= s->end)
		return -1;
	if (*s->p != 'u') {
		if (*s->p == 0 || strchr("\"\\/bfnrt", *s->p) == NULL)
			return -1;
		s->p++;
		return 0;
	}
	if (s->end - s->p < 5)
		return -1;
	for (int k = 1; k <= 4; k++) {
		int d = hex(s->p[k]);

		if (d < 0)
			return -1;
		v = v * 16 + (unsigned)d;
	}
	s->p += 5;
	return v == 0 ? -1 : 0; /* \u0000: a full parser decides */
}

/* A string at s->p (its opening quote); s->p is past the closing one. */
static int string(struct scan *s, struct jscan_value *v)
{
	if (s->p >= s->end || *s->p != '"')
		return -1;
	v->p = ++s->p;
	v->escaped = false;
	while (s->p < s->end) {
		unsigned char c = (unsigned char)*s->p;

		if (c == '"') {
			v->len = (size_t)(s->p - v->p);
			s->p++;
			v->kind = JSCAN_STRING;
			return 0;
		}
		if (c < 0x20)
			return -1;
		s->p++;
		if (c == '\\') {
			v->escaped = true;
			if (escape(s) < 0)
				return -1;
		}
	}
	return -1;
}

static bool digit(const struct scan *s)
{
	return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static int digits(struct scan *s)
{
	if (!digit(s))
		return -1;
	while (digit(s))
		s->p++;
	return 0;
}

/* An integer's value, or -1 when it does not fit int64_t. */
static int integer(const char *p, const char *end, int64_t *out)
{
	bool neg = *p == '-';
	uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

	for (p += neg; p < end; p++) {
		uint64_t d = (uint64_t)(*p - '0');

		if (v > (limit - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static int number(struct scan *s, struct jscan_value *v)
{
	const char *start = s->p;
	bool whole = true;

	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (digits(s) < 0)
		return -1;
	if (s->p < s->end && *s->p == '.') {
		whole = false;
		s->p++;
		if (digits(s) < 0)
			return -1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		whole = false;
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (digits(s) < 0)
			return -1;
	}
	v->kind = whole ? JSCAN_INT : JSCAN_OTHER;
	return whole ? integer(start, s->p, &v->i) : 0;
}

static int literal(struct scan *s, struct jscan_value *v)
{
	static const char *const words[] = {"true", "false", "null"};

	for (int k = 0; k < 3; k++) {
		size_t n = strlen(words[k]);

		if ((size_t)(s->end - s->p) >= n && memcmp(s->p, words[k], n) == 0) {
			s->p += n;
			v->kind = JSCAN_OTHER;
			return 0;
		}
	}
	return -1;
}

static int scalar(struct scan *s, struct jscan_value *v)
{
	if (*s->p == '"')
		return string(s, v);
	if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
		return number(s, v);
	return literal(s, v);
}

/* A member's key and colon; *slot: the value's place in vals, or NULL. */
static int key(struct scan *s, bool top, const char *const *keys, struct jscan_value *vals, int n,
	       struct jscan_value **slot)
{
	struct jscan_value k = {0};

	*slot = NULL;
	if (string(s, &k) < 0 || k.escaped)
		return -1;
	skip_space(s);
	if (s->p >= s->end || *s->p != ':')
		return -1;
	s->p++;
	skip_space(s);
	for (int i = 0; top && i < n; i++)
		if (strlen(keys[i]) == k.len && memcmp(keys[i], k.p, k.len) == 0) {
			if (vals[i].kind != JSCAN_ABSENT)
				return -1; /* twice: which one counts is the parser's call */
			*slot = &vals[i];
		}
	return s->p < s->end ? 0 : -1;
}

int jscan_object(const char *text, size_t len, const char *const *keys, struct jscan_value *vals,
		 int n)
{
	struct scan s = {text, text + len};
	char stack[JSCAN_DEPTH_MAX];
	int depth = 1;
	bool after_value = false;

	memset(vals, 0, sizeof(*vals) * (size_t)n);
	skip_space(&s);
	if (s.p >= s.end || *s.p != '{')
		return -1;
	s.p++;
	stack[0] = '}';
	for (;;) {
		struct jscan_value scratch = {0}, *slot = NULL;

		skip_space(&s);
		if (s.p >= s.end)
			return -1;
		if (*s.p == stack[depth - 1]) { /* the container closes */
			s.p++;
			if (--depth == 0)
				break;
			after_value = true;
			continue;
		}
		if (after_value) {
			if (*s.p != ',')
				return -1;
			s.p++;
			skip_space(&s);
			if (s.p >= s.end)
				return -1;
		}
		if (stack[depth - 1] == '}' && key(&s, depth == 1, keys, vals, n, &slot) < 0)
			return -1;
		if (slot == NULL)
			slot = &scratch;
		if (*s.p == '{' || *s.p == '[') {
			if (depth == JSCAN_DEPTH_MAX)
				return -1;
			slot->kind = JSCAN_OTHER;
			stack[depth++] = *s.p == '{' ? '}' : ']';
			s.p++;
			after_value = false;
			continue;
		}
		if (scalar(&s, slot) < 0)
			return -1;
		after_value = true;
	}
	skip_space(&s);
	return s.p == s.end ? 0 : -1;
}
