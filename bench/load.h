/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by fanout-bench's network scenarios: tokens, blocking calls
 * to the HTTP API, source addresses spread over 127.0.0.0/8, a cheap field
 * scan of server frames, per-stream seq checking, and the JSON result file. */
#pragma once

#include "cpu.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct load_target {
	const char *host;
	int port;
	const char *secret;   /* the server's token secret */
	int sources;	      /* source addresses to spread connections over */
	uint32_t source_base; /* --source-base: sources counted from it (else 127.0.x.y) */
	const char *api_host; /* the HTTP API, when not at host:port (the DPDK edge */
	int api_port;	      /* serves websockets only); NULL: host:port */
};

/* Mints a token for user into token (512 bytes); exits 2 on failure. */
void load_token(const struct load_target *t, const char *user, char *token, size_t size);

/* A blocking HTTP/1.1 call; returns the status (-1: no answer), the body in
 * out (NUL-terminated). */
int load_api(const struct load_target *t, const char *method, const char *path, const char *user,
	     const char *body, char *out, size_t out_size);

/* Creates a channel (kind "public" or "ephemeral"), returning its id or -1. */
int64_t load_create_channel(const struct load_target *t, const char *owner, const char *name,
			    const char *kind);
/* Joins user to channel; 0 or -1. */
int load_join(const struct load_target *t, const char *user, int64_t channel);
/* Opens the DM of a and b, returning its id or -1. */
int64_t load_dm(const struct load_target *t, const char *a, const char *b);

/* The source address for connection i: 127.0.<k/250>.<1+k%250>, or
 * --source-base plus k, k = i mod sources (NULL with one source: the kernel
 * picks). */
const char *load_source(const struct load_target *t, int i, char buf[20]);

/* Raises this process's descriptor limit to its hard limit and returns the
 * new soft limit: one descriptor per connection. */
unsigned long load_raise_fd_limit(void);

/* Whether a frame contains a string literal (its size taken by the compiler). */
#define load_has(data, len, literal) (memmem((data), (len), (literal), sizeof(literal) - 1) != NULL)

/* The integer after name in a frame, or -1: the hot path reads a million of
 * these a second, so no JSON parse. */
int64_t load_field(const char *data, size_t len, const char *name);

/* Per-(subscriber, channel) seq checks: a gap is a seq beyond the next, a
 * duplicate a seq already seen, a reorder an earlier seq not yet seen. */
struct seq_check {
	int64_t last;
	uint64_t received, gaps, dups, reorders;
	uint64_t seen[64]; /* the 4096 seqs below last, one bit each */
};
void seq_check(struct seq_check *c, int64_t seq);

/* The options every network scenario takes: --host, --port, --sources,
 * --api HOST:PORT, --source-base, --cpu NAME=PID,... (cpu.h), --json. Returns true when opt was one
 * of them (its value stored). */
#define LOAD_OPTIONS                                                                               \
	{"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'P'},            \
	    {"sources", required_argument, NULL, 'S'}, {"api", required_argument, NULL, 'A'},      \
	    {"source-base", required_argument, NULL, 'B'},                                         \
	    {"cpu", required_argument, NULL, CPU_OPTION},                                          \
	{                                                                                          \
		"json", required_argument, NULL, 'j'                                               \
	}
bool load_option(int opt, const char *arg, struct load_target *t, const char **json_path);

/* Prints "latency from due time: p50 .. max" and returns the same figures as
 * a JSON object (milliseconds). */
struct hist;
json_t *load_latency_report(const struct hist *h);

/* Writes result (taking it) to path, or does nothing without a path. 0 or
 * -errno (printed). The CPU of a window taken (cpu.h) is printed and goes
 * in as "cpu", per delivery of result's "deliveries". */
int load_write_json(const char *path, json_t *result);
