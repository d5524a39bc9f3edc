/* SPDX-License-Identifier: BSD-3-Clause */
/* The channel map (chanmap.h). */
#include "chanmap.h"

#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *next;
	int64_t channel;
	char value[CHANMAP_VALUE];
};

struct chanmap {
	struct entry **buckets;
	size_t mask, n;
};

static size_t slot(const struct chanmap *m, int64_t channel)
{
	uint64_t x = (uint64_t)channel * 0x9E3779B97F4A7C15ull;

	return (size_t)(x >> 32 ^ x) & m->mask;
}

struct chanmap *chanmap_create(void)
{
	struct chanmap *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->mask = 255;
	m->buckets = calloc(m->mask + 1, sizeof(*m->buckets));
	if (m->buckets == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void chanmap_destroy(struct chanmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i <= m->mask; i++)
		for (struct entry *e = m->buckets[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	free(m->buckets);
	free(m);
}

char *chanmap_get(struct chanmap *m, int64_t channel)
{
	for (struct entry *e = m->buckets[slot(m, channel)]; e; e = e->next)
		if (e->channel == channel)
			return e->value;
	return NULL;
}

static void grow(struct chanmap *m)
{
	size_t mask = m->mask * 2 + 1;
	struct entry **b = calloc(mask + 1, sizeof(*b));
	struct chanmap bigger = {b, mask, m->n};

	if (b == NULL)
		return; /* longer chains, still correct */
	for (size_t i = 0; i <= m->mask; i++)
		for (struct entry *e = m->buckets[i], *next; e; e = next) {
			size_t s = slot(&bigger, e->channel);

			next = e->next;
			e->next = b[s];
			b[s] = e;
		}
	free(m->buckets);
	m->buckets = b;
	m->mask = mask;
}

char *chanmap_put(struct chanmap *m, int64_t channel)
{
	char *v = chanmap_get(m, channel);
	struct entry *e;
	size_t s;

	if (v)
		return v;
	if (m->n > 2 * (m->mask + 1))
		grow(m);
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->channel = channel;
	s = slot(m, channel);
	e->next = m->buckets[s];
	m->buckets[s] = e;
	m->n++;
	return e->value;
}

bool chanmap_del(struct chanmap *m, int64_t channel)
{
	for (struct entry **pp = &m->buckets[slot(m, channel)]; *pp; pp = &(*pp)->next)
		if ((*pp)->channel == channel) {
			struct entry *e = *pp;

			*pp = e->next;
			free(e);
			m->n--;
			return true;
		}
	return false;
}

size_t chanmap_size(const struct chanmap *m)
{
	return m->n;
}

void chanmap_each(struct chanmap *m, void (*each)(void *arg, int64_t channel, char *value),
		  void *arg)
{
	for (size_t i = 0; i <= m->mask; i++)
		for (struct entry *e = m->buckets[i]; e; e = e->next)
			each(arg, e->channel, e->value);
}
