/* SPDX-License-Identifier: BSD-3-Clause */
/* A hashed timer wheel for one lcore: one intrusive node per timer, armed
 * and cancelled in O(1), expired by walking only the slots whose ticks have
 * passed. Timers further out than one turn wait in their slot for their
 * turn. No allocation: the caller gives the slot array. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct wheel_node {
	struct wheel_node *next, *prev; /* NULL prev: not armed */
	uint64_t expiry_tick;
};

struct wheel {
	struct wheel_node *slots; /* nslots list heads */
	uint32_t mask;		  /* nslots - 1, nslots a power of two */
	uint64_t tick_us;
	uint64_t now_tick; /* every tick up to this one has been expired */
};

/* nslots must be a power of two; slots holds nslots heads. */
void wheel_init(struct wheel *w, struct wheel_node *slots, uint32_t nslots, uint64_t tick_us,
		uint64_t now_us);

/* Arms (or re-arms) n to expire at expiry_us; at the next tick if that has
 * passed already. */
void wheel_arm(struct wheel *w, struct wheel_node *n, uint64_t expiry_us);
void wheel_cancel(struct wheel_node *n);
static inline bool wheel_armed(const struct wheel_node *n)
{
	return n->prev != 0;
}

/* Calls fn for every node whose tick is at or before now_us, each disarmed
 * before its call (fn may re-arm it). */
void wheel_advance(struct wheel *w, uint64_t now_us, void (*fn)(void *arg, struct wheel_node *n),
		   void *arg);
