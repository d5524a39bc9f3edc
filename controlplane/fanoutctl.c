/* SPDX-License-Identifier: BSD-3-Clause */
/* fanoutctl: the operator's command line. Depends on common/ only and talks to
 * a running fanoutd over its APIs; commands that need nothing but the
 * configuration (minting a token) work offline.
 *
 *   fanoutctl token --user NAME [--ttl SECONDS] [-c FILE]
 *   fanoutctl ring simulate [--nodes N] [--channels C] [--vnodes V] [-o json]
 *   fanoutctl node list | node drain NAME | node undrain NAME | ring show |
 *             channel locate ID | user locate NAME | cluster status
 *             (ctl_cluster.c: read etcd)
 *   fanoutctl db status (ctl_db.c: Patroni's keys in etcd)
 *   fanoutctl status | connections list|kill | channel info
 *             (ctl_node.c: one node's operator API)
 *
 * Exit codes (ctl.h): 0 success, 1 failure, 2 usage or configuration error,
 * 3 etcd or a node unreachable, 4 no such node or channel. */
#include "fanout-build.h"
#include "config.h"
#include "ctl.h"
#include "jwt.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fanoutctl token --user NAME [--ttl SECONDS] [-c FILE]\n"
		"       fanoutctl ring simulate [--nodes N] [--channels C] [--vnodes V]"
		" [-o table|json]\n"
		"       fanoutctl node list | node drain NAME | node undrain NAME |\n"
		"                 ring show | channel locate ID | user locate NAME |\n"
		"                 cluster status\n"
		"                 [--endpoints URLS] [--cluster NAME] [-o table|json]\n"
		"       fanoutctl db status [--endpoints URLS] [--scope NAME] [-o table|json]\n"
		"       fanoutctl status | connections list|kill ID | channel info ID\n"
		"                 [--node HOST:PORT] [-c FILE] [--as ADMIN] [-o table|json]\n"
		"  Mints an HS256 token for NAME from [auth] jwt_secret (or\n"
		"  FANOUT_JWT_SECRET), valid for --ttl seconds ([auth] token_ttl_s by\n"
		"  default). NAME is [A-Za-z0-9_.-]{1,64}.\n");
}

static int cmd_token(int argc, char **argv)
{
	static const struct option options[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"ttl", required_argument, NULL, 't'},
	    {"config", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = NULL, *config_path = NULL;
	long ttl = 0;
	struct config cfg;
	char token[512], *end;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "u:t:c:", options, NULL)) != -1) {
		switch (opt) {
		case 'u':
			user = optarg;
			break;
		case 't':
			ttl = strtol(optarg, &end, 10);
			if (*end || ttl <= 0) {
				fprintf(stderr,
					"fanoutctl: --ttl needs a positive number of seconds\n");
				return 2;
			}
			break;
		case 'c':
			config_path = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (user == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (ctl_find_config(config_path, &cfg) != CTL_OK)
		return 2;
	if (!cfg.auth.jwt_secret[0]) {
		fprintf(stderr,
			"fanoutctl: no secret: set [auth] jwt_secret or FANOUT_JWT_SECRET\n");
		return 2;
	}
	if (!jwt_subject_valid(user)) {
		fprintf(stderr,
			"fanoutctl: user name '%s' is not [A-Za-z0-9_.-]{1,64} or is reserved "
			"(channel, everyone, here)\n",
			user);
		return 2;
	}
	rc = jwt_sign(cfg.auth.jwt_secret, user, (int64_t)time(NULL),
		      ttl ? ttl : cfg.auth.token_ttl_s, token, sizeof(token));
	if (rc < 0) {
		fprintf(stderr, "fanoutctl: cannot sign: %s\n", strerror(-rc));
		return 1;
	}
	printf("%s\n", token);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "token") == 0)
		return cmd_token(argc - 1, argv + 1);
	if (strcmp(argv[1], "ring") == 0 && argc > 2 && strcmp(argv[2], "show") == 0)
		return ctl_cluster(argc - 1, argv + 1);
	if (strcmp(argv[1], "ring") == 0)
		return ctl_ring(argc - 1, argv + 1);
	if (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "connections") == 0 ||
	    (strcmp(argv[1], "channel") == 0 && argc > 2 && strcmp(argv[2], "info") == 0))
		return ctl_node(argc - 1, argv + 1);
	if (strcmp(argv[1], "node") == 0 || strcmp(argv[1], "channel") == 0 ||
	    strcmp(argv[1], "user") == 0 || strcmp(argv[1], "cluster") == 0)
		return ctl_cluster(argc - 1, argv + 1);
	if (strcmp(argv[1], "db") == 0)
		return ctl_db(argc - 1, argv + 1);
	if (strcmp(argv[1], "--version") == 0) {
		printf("fanoutctl %s\n", FANOUT_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "fanoutctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
