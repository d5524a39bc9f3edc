/* SPDX-License-Identifier: BSD-3-Clause */
/* Frames in DPDK memory: size-classed rte_mempools installed as frame.c's
 * frame memory, so that a NIC sends a frame's bytes by DMA straight from
 * where the frame was encoded (the DPDK edge's zero-copy send on PCI ports,
 * docs/dataplane.md). A frame larger than the largest class, or whose class
 * (and the next) is empty, is made on the heap and sent by copy. */
#pragma once

#include "frame.h"

#include <rte_common.h>

#include <stddef.h>
#include <stdint.h>

/* Creates the pools from bytes of DPDK memory on socket (the port's) and
 * installs them; 0, or -1 with rte_errno set (no memory: the EAL's -m or
 * --socket-mem is too small for bytes). Once per process: a second call
 * returns 0 if the pools exist already. */
int framepool_install(size_t bytes, int socket);

/* The IO address of p, a byte inside pooled frame f. */
rte_iova_t framepool_iova(const struct frame *f, const void *p);

struct framepool_usage {
	uint64_t in_use, capacity; /* frames */
	uint64_t bytes;		   /* of DPDK memory the pools hold */
};
void framepool_usage(struct framepool_usage *u);
