/* SPDX-License-Identifier: BSD-3-Clause */
/* fanoutctl ring: the ring's commands. `ring simulate` builds rings of
 * --nodes members over --channels channels at several vnode counts (or the
 * one given) and prints balance and movement, the figures that chose
 * RING_DEFAULT_VNODES. */
#include "ctl.h"
#include "ring.h"
#include "ring_sim.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ring_usage(FILE *out)
{
	fprintf(out, "usage: fanoutctl ring simulate [--nodes N] [--channels C] [--vnodes V]"
		     " [-o table|json]\n"
		     "  Builds rings of N members (100) over C channels (10000000) with V\n"
		     "  vnodes each (several counts when V is not given) and prints how evenly\n"
		     "  they spread and how many channels move when a member leaves or joins.\n");
}

static json_t *sim_json(const struct ring_sim *s)
{
	return json_pack("{s:i, s:i, s:I, s:f, s:f, s:f, s:f, s:f, s:I, s:f, s:I}", "nodes",
			 s->nodes, "vnodes", s->vnodes, "channels", (json_int_t)s->channels,
			 "max_over_mean", s->max_over_mean, "min_over_mean", s->min_over_mean,
			 "arc_max_over_mean", s->arc_max_over_mean, "moved_over_ideal",
			 s->moved_over_ideal, "joined_over_ideal", s->joined_over_ideal,
			 "moved_between_stayers", (json_int_t)s->moved_between_stayers, "build_ms",
			 s->build_ms, "ring_bytes", (json_int_t)s->ring_bytes);
}

static void sim_row(const struct ring_sim *s, bool chosen)
{
	printf("%7d  %13.3f  %13.3f  %16.3f  %16.3f  %17.3f  %8.1f  %9.1f%s\n", s->vnodes,
	       s->max_over_mean, s->arc_max_over_mean, s->moved_over_ideal, s->joined_over_ideal,
	       (double)s->moved_between_stayers, s->build_ms, (double)s->ring_bytes / 1e6,
	       chosen ? "  <- default" : "");
}

static int sim_parse_long(const char *arg, const char *name, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(arg, &end, 10);
	if (errno || *end || *out < 1 || *out > max) {
		fprintf(stderr, "fanoutctl: %s needs a number in 1..%ld\n", name, max);
		return -1;
	}
	return 0;
}

/* Runs the simulations and prints them. */
static int sim_run(long nodes, long channels, long vnodes, enum ctl_output o)
{
	static const int candidates[] = {128, 512, 1024, 2048, 4096, 8192};
	int n = vnodes ? 1 : (int)(sizeof(candidates) / sizeof(candidates[0]));
	uint64_t *keys = ring_sim_keys((size_t)channels);
	struct ring_sim s, chosen = {0};
	json_t *all = json_array();

	if (keys == NULL) {
		fprintf(stderr, "fanoutctl: out of memory for %ld channels\n", channels);
		return CTL_FAILED;
	}
	if (o == CTL_TABLE)
		printf("%ld nodes, %ld channels\n%7s  %13s  %13s  %16s  %16s  %17s  %8s  %9s\n",
		       nodes, channels, "vnodes", "max/mean", "arc max/mean", "leave moved/ideal",
		       "join moved/ideal", "moved elsewhere", "build ms", "ring MB");
	for (int i = 0; i < n; i++) {
		int v = vnodes ? (int)vnodes : candidates[i];
		int rc = ring_simulate((int)nodes, v, keys, (size_t)channels, &s);

		if (rc < 0) {
			fprintf(stderr, "fanoutctl: simulation failed: %s\n", strerror(-rc));
			free(keys);
			json_decref(all);
			return CTL_FAILED;
		}
		if (vnodes || v == RING_DEFAULT_VNODES)
			chosen = s;
		if (o == CTL_TABLE)
			sim_row(&s, !vnodes && v == RING_DEFAULT_VNODES);
		else
			json_array_append_new(all, sim_json(&s));
	}
	if (o == CTL_JSON) {
		json_t *out = sim_json(&chosen);

		json_object_set_new(out, "candidates", all);
		json_dumpf(out, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(out);
	} else {
		json_decref(all);
	}
	free(keys);
	return CTL_OK;
}

static int ring_simulate_cmd(int argc, char **argv)
{
	static const struct option options[] = {
	    {"nodes", required_argument, NULL, 'n'},
	    {"channels", required_argument, NULL, 'c'},
	    {"vnodes", required_argument, NULL, 'v'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	long nodes = 100, channels = 10000000, vnodes = 0;
	enum ctl_output o = CTL_TABLE;
	int opt, rc = 0;

	while (rc == 0 && (opt = getopt_long(argc, argv, "n:c:v:o:", options, NULL)) != -1) {
		if (opt == 'n')
			rc = sim_parse_long(optarg, "--nodes", RING_MAX_MEMBERS - 1, &nodes);
		else if (opt == 'c')
			rc = sim_parse_long(optarg, "--channels", 200000000, &channels);
		else if (opt == 'v')
			rc = sim_parse_long(optarg, "--vnodes", RING_MAX_VNODES, &vnodes);
		else if (opt == 'o')
			rc = ctl_output_parse(optarg, &o);
		else
			rc = -1;
	}
	if (rc < 0 || optind != argc || nodes < 2) {
		if (rc == 0)
			fprintf(stderr, "fanoutctl: --nodes needs at least 2\n");
		ring_usage(stderr);
		return CTL_USAGE;
	}
	return sim_run(nodes, channels, vnodes, o);
}

int ctl_ring(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "simulate") == 0)
		return ring_simulate_cmd(argc - 1, argv + 1);
	ring_usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
	return argc >= 2 && strcmp(argv[1], "--help") == 0 ? CTL_OK : CTL_USAGE;
}
