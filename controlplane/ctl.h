/* SPDX-License-Identifier: BSD-3-Clause */
/* fanoutctl's shared pieces: its exit codes and output formats, so each
 * command file (ctl_*.c) reads the same. */
#pragma once

#include <stdbool.h>

/* Exit codes (docs/operations.md, "fanoutctl"). */
enum ctl_exit {
	CTL_OK = 0,
	CTL_FAILED = 1,	     /* the command ran and failed */
	CTL_USAGE = 2,	     /* bad arguments or configuration */
	CTL_UNREACHABLE = 3, /* etcd or a node could not be reached */
	CTL_NOT_FOUND = 4,   /* the node or channel named does not exist */
};

enum ctl_output { CTL_TABLE, CTL_JSON };

/* etcd's endpoints unless --endpoints says: FANOUT_ETCD_ENDPOINTS, or
 * http://127.0.0.1:2379. */
const char *ctl_default_endpoints(void);

/* Parses -o's argument. 0 or -1. */
int ctl_output_parse(const char *s, enum ctl_output *out);

int ctl_ring(int argc, char **argv);
/* node, ring show, channel, cluster: argv[0] the noun, argv[1] the verb. */
int ctl_cluster(int argc, char **argv);
/* status, connections list|kill, channel info: one node's operator API
 * (ctl_node.c). argv[0] the noun. */
int ctl_node(int argc, char **argv);
struct config;
/* The configuration fanoutctl acts by: path, else FANOUT_CONFIG, else the
 * package's /etc/fanout/fanout.ini when readable, else the defaults; then
 * the environment, then the package's secrets file for a secret still
 * missing. CTL_OK or CTL_USAGE (said why). */
int ctl_find_config(const char *path, struct config *cfg);
/* db status: argv[0] "db". */
int ctl_db(int argc, char **argv);
