/* SPDX-License-Identifier: BSD-3-Clause */
/* The ring's simulation: how evenly a ring of N members spreads C channels,
 * and how many move when one member leaves or joins. What `fanoutctl ring
 * simulate` prints and what chose RING_DEFAULT_VNODES (docs/cluster.md). */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct ring_sim {
	int nodes, vnodes;
	size_t channels;
	/* Channels of the fullest and emptiest member over the mean. */
	double max_over_mean, min_over_mean;
	/* The same for the key space (arc share), without the channel sample. */
	double arc_max_over_mean;
	/* One member leaving: channels moved over the ideal C/N, worst of the
	 * members tried (the fullest among them), and channels that moved
	 * between two members that both stayed (0 on a consistent ring). */
	double moved_over_ideal;
	size_t moved_between_stayers;
	/* A new member joining: moved over the ideal C/(N+1). */
	double joined_over_ideal;
	double build_ms; /* building the ring of N members */
	size_t ring_bytes;
};

/* The channels' keys 1..channels, sorted: computed once, shared by every
 * simulation of a run. NULL with errno. */
uint64_t *ring_sim_keys(size_t channels);

/* Simulates nodes members (named node-000, node-001, ...) with vnodes each
 * over the sorted keys. 0 or -errno (-EINVAL, -ENOMEM). */
int ring_simulate(int nodes, int vnodes, const uint64_t *keys, size_t channels,
		  struct ring_sim *out);
