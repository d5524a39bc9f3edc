/* SPDX-License-Identifier: BSD-3-Clause */
/* Tests of frames in DPDK memory (dataplane/dpdk/framepool.c) with the real
 * EAL (no hugepages): once installed, frames come from the pools with an IO
 * address inside the pool's memory, go back to them when the last reference
 * goes, also from a thread that is not an lcore; a frame too large for every
 * class, or one whose classes are empty, comes from the heap and is counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fanout.h"
#include "frame.h"
#include "framepool.h"

#include <pthread.h>
#include <rte_mempool.h>
#include <stdlib.h>
#include <string.h>

#define POOL_BYTES (4u << 20)

static int setup(void **state)
{
	(void)state;
	if (fanout_eal_init(64, NULL) < 0)
		return -1;
	/* before anything is installed, frames are the heap's */
	struct frame *f = frame_new(FRAME_CONTROL, 0, 0, "x", 1);
	int heap = f && !f->pooled;

	frame_unref(f);
	if (!heap || framepool_install(POOL_BYTES, SOCKET_ID_ANY) < 0)
		return -1;
	return framepool_install(POOL_BYTES, SOCKET_ID_ANY); /* a second call: 0 */
}

static void test_frames_come_from_the_pools_and_go_back(void **state)
{
	struct framepool_usage before, during, after;
	static const size_t sizes[] = {1, 300, 400, 1900, 8000, 40000, 65000};
	struct frame *f[7];
	char payload[65000];

	(void)state;
	memset(payload, 'p', sizeof(payload));
	framepool_usage(&before);
	assert_true(before.capacity > 0);
	assert_true(before.bytes > 0 && before.bytes <= POOL_BYTES);
	for (int i = 0; i < 7; i++) {
		size_t n = sizes[i] < 65000 - 200 ? sizes[i] : 65000 - 200;

		f[i] = frame_new(FRAME_DURABLE, 1, i + 1, payload, n);
		assert_non_null(f[i]);
		assert_true(f[i]->pooled);
		assert_int_equal(f[i]->len, n);
		assert_memory_equal(frame_payload(f[i]), payload, n);
		/* one run of IO addresses: the payload's is the frame's plus its offset */
		rte_iova_t base = framepool_iova(f[i], f[i]);
		assert_true(base != RTE_BAD_IOVA);
		assert_true(framepool_iova(f[i], frame_payload(f[i]) + n - 1) ==
			    base +
				(rte_iova_t)(frame_payload(f[i]) + n - 1 - (unsigned char *)f[i]));
		/* and it is the mempool's object */
		assert_non_null(rte_mempool_from_obj(f[i]));
	}
	framepool_usage(&during);
	assert_int_equal(during.in_use, before.in_use + 7);
	frame_ref(f[0]);
	frame_unref(f[0]); /* not the last reference: stays */
	framepool_usage(&during);
	assert_int_equal(during.in_use, before.in_use + 7);
	for (int i = 0; i < 7; i++)
		frame_unref(f[i]);
	framepool_usage(&after);
	assert_int_equal(after.in_use, before.in_use);
}

static void test_too_large_for_every_class_is_the_heaps(void **state)
{
	size_t n = 70000;
	char *payload = calloc(1, n);
	uint64_t misses = frame_memory_misses();
	struct frame *f;

	(void)state;
	assert_non_null(payload);
	f = frame_new(FRAME_DURABLE, 1, 1, payload, n);
	assert_non_null(f);
	assert_false(f->pooled);
	assert_int_equal(frame_memory_misses(), misses + 1);
	frame_unref(f);
	free(payload);
}

static void test_an_empty_class_borrows_the_next_then_the_heap(void **state)
{
	enum { MAX = 1 << 16 };
	struct frame **held = calloc(MAX, sizeof(*held));
	struct framepool_usage before, after;
	uint64_t misses = frame_memory_misses();
	int n = 0, heap_at = -1;

	(void)state;
	assert_non_null(held);
	framepool_usage(&before);
	/* small frames until one comes from the heap: the 512-byte class and
	 * then the 2 KiB class are used up first */
	while (n < MAX) {
		held[n] = frame_new(FRAME_DURABLE, 1, n + 1, "{\"x\":1}", 7);
		assert_non_null(held[n]);
		if (!held[n++]->pooled) {
			heap_at = n - 1;
			break;
		}
	}
	assert_true(heap_at > 0);
	assert_int_equal(frame_memory_misses(), misses + 1);
	framepool_usage(&after);
	/* more than the small class holds: the next one lent some */
	assert_true(after.in_use - before.in_use == (uint64_t)heap_at);
	assert_true((size_t)heap_at * 512 > POOL_BYTES / 100 * 40);
	for (int i = 0; i < n; i++)
		frame_unref(held[i]);
	framepool_usage(&after);
	assert_int_equal(after.in_use, before.in_use);
	free(held);
}

static void *make_and_free(void *arg)
{
	int *pooled = arg;

	for (int i = 0; i < 1000; i++) {
		struct frame *f = frame_new(FRAME_EPHEMERAL, 2, 0, "typing", 6);

		if (f == NULL)
			return NULL;
		*pooled += f->pooled;
		frame_unref(f);
	}
	return NULL;
}

static void test_threads_that_are_not_lcores(void **state)
{
	struct framepool_usage before, after;
	pthread_t t[2];
	int pooled[2] = {0, 0};

	(void)state;
	framepool_usage(&before);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, make_and_free, &pooled[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(pooled[0] + pooled[1], 2000);
	framepool_usage(&after);
	assert_int_equal(after.in_use, before.in_use);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frames_come_from_the_pools_and_go_back),
	    cmocka_unit_test(test_too_large_for_every_class_is_the_heaps),
	    cmocka_unit_test(test_an_empty_class_borrows_the_next_then_the_heap),
	    cmocka_unit_test(test_threads_that_are_not_lcores),
	};
	return cmocka_run_group_tests_name("framepool", tests, setup, NULL);
}
