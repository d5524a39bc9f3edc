/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench wake: how late this host gives a CPU back to a thread that
 * sleeps. For --seconds, one thread asks to sleep --interval-us at a time
 * (clock_nanosleep on CLOCK_MONOTONIC to an absolute time, timer slack 1 ns)
 * and records how long after that time it ran again: printed as p50, p99,
 * p99.9 and the worst. Every hand-off between fanoutd's threads, and every
 * answer from PostgreSQL, is such a wake-up; a host that wakes a thread a
 * millisecond late at p99 with nothing running cannot show a path of
 * several hand-offs with a sub-millisecond p99. bench/run-all runs it first,
 * idle, and prints it with its figures (docs/benchmarks.md, "How late a
 * thread wakes"). */
#include "bench.h"
#include "clock.h"
#include "hist.h"
#include "load.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* Sleeps interval_ns at a time until end_ns, each lateness into h. */
static void sleep_and_measure(uint64_t interval_ns, uint64_t end_ns, struct hist *h)
{
	for (uint64_t due = time_mono_ns() + interval_ns; due < end_ns;) {
		struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
		uint64_t woke;

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		woke = time_mono_ns();
		hist_record(h, woke - due);
		/* The next sleep is asked from the wake-up, not the schedule: a
		 * late wake-up is counted once, not again for the ones it made
		 * due already. */
		due = woke + interval_ns;
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: fanout-bench wake [--seconds N] [--interval-us N] [--json FILE]\n");
	return 2;
}

int bench_wake(int argc, char **argv)
{
	static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
					     {"interval-us", required_argument, NULL, 'i'},
					     {"json", required_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	double seconds = 5;
	long interval_us = 1000;
	const char *json = NULL;
	struct hist *h;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			seconds = atof(optarg);
		else if (c == 'i')
			interval_us = atol(optarg);
		else if (c == 'j')
			json = optarg;
		else
			return usage();
	}
	if (optind != argc || seconds <= 0 || seconds > 3600 || interval_us < 1 ||
	    interval_us > 10000000) {
		fprintf(stderr, "fanout-bench wake: --seconds must be in (0, 3600] and "
				"--interval-us in [1, 10000000]\n");
		return 2;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return 1;
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	sleep_and_measure((uint64_t)interval_us * 1000, time_mono_ns() + (uint64_t)(seconds * 1e9),
			  h);
	printf("wake-ups %lu in %.1f s, each asked to sleep %ld us\n", (unsigned long)h->total,
	       seconds, interval_us);
	printf("late by: p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, worst %.3f ms\n",
	       ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.99)), ms(hist_quantile(h, 0.999)),
	       ms(h->max));
	if (load_write_json(
		json, json_pack("{s:s, s:f, s:I, s:I, s:{s:f, s:f, s:f, s:f}}", "scenario", "wake",
				"seconds", seconds, "interval_us", (json_int_t)interval_us,
				"wakeups", (json_int_t)h->total, "late_ms", "p50",
				ms(hist_quantile(h, 0.5)), "p99", ms(hist_quantile(h, 0.99)),
				"p999", ms(hist_quantile(h, 0.999)), "max", ms(h->max))) < 0) {
		free(h);
		return 1;
	}
	free(h);
	return 0;
}
