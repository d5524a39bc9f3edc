/* SPDX-License-Identifier: BSD-3-Clause */
/* The lcore timer wheel: see wheel.h. */
#include "wheel.h"

#include <stddef.h>

static void list_init(struct wheel_node *head)
{
	head->next = head->prev = head;
}

void wheel_init(struct wheel *w, struct wheel_node *slots, uint32_t nslots, uint64_t tick_us,
		uint64_t now_us)
{
	w->slots = slots;
	w->mask = nslots - 1;
	w->tick_us = tick_us;
	w->now_tick = now_us / tick_us;
	for (uint32_t i = 0; i < nslots; i++)
		list_init(&slots[i]);
}

void wheel_cancel(struct wheel_node *n)
{
	if (!wheel_armed(n))
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = NULL;
}

void wheel_arm(struct wheel *w, struct wheel_node *n, uint64_t expiry_us)
{
	uint64_t tick = (expiry_us + w->tick_us - 1) / w->tick_us;
	struct wheel_node *head;

	wheel_cancel(n);
	if (tick <= w->now_tick)
		tick = w->now_tick + 1;
	n->expiry_tick = tick;
	head = &w->slots[tick & w->mask];
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

void wheel_advance(struct wheel *w, uint64_t now_us, void (*fn)(void *arg, struct wheel_node *n),
		   void *arg)
{
	uint64_t target = now_us / w->tick_us, first = w->now_tick + 1;
	struct wheel_node due;

	if (target < first)
		return;
	/* A gap longer than a turn visits each slot once. */
	if (target - first > w->mask)
		first = target - w->mask;
	list_init(&due);
	for (uint64_t tick = first; tick <= target; tick++) {
		struct wheel_node *head = &w->slots[tick & w->mask], *n = head->next;

		while (n != head) {
			struct wheel_node *next = n->next;

			if (n->expiry_tick <= target) {
				n->prev->next = n->next;
				n->next->prev = n->prev;
				n->next = due.next;
				n->prev = &due;
				due.next->prev = n;
				due.next = n;
			}
			n = next;
		}
	}
	w->now_tick = target;
	/* Now the calls, so that fn may re-arm into any slot. */
	while (due.next != &due) {
		struct wheel_node *n = due.next;

		due.next = n->next;
		n->next->prev = &due;
		n->next = n->prev = NULL;
		fn(arg, n);
	}
}
