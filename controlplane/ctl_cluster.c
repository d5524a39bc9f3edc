/* SPDX-License-Identifier: BSD-3-Clause */
/* fanoutctl's cluster commands, read from etcd (etcdctl's shape):
 *
 *   node list                  the members, their addresses and state
 *   node drain|undrain NAME    takes a node out of the ring, or back
 *   ring show                  the ring's epoch, members and their shares
 *   channel locate ID          the node that owns a channel now
 *   user locate NAME           the node that holds a user's presence
 *   cluster status             members, epoch, and each node's readiness
 *
 * Every command takes --endpoints (FANOUT_ETCD_ENDPOINTS, or
 * http://127.0.0.1:2379), --cluster (fanout), --vnodes (the nodes' [cluster]
 * vnodes, 8192) and -o table|json. Exit codes in ctl.h. */
#include "ctl.h"
#include "etcd.h"
#include "membership.h"
#include "ring.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_output_parse(const char *s, enum ctl_output *out)
{
	if (strcmp(s, "table") == 0)
		*out = CTL_TABLE;
	else if (strcmp(s, "json") == 0)
		*out = CTL_JSON;
	else
		return -1;
	return 0;
}

const char *ctl_default_endpoints(void)
{
	const char *env = getenv("FANOUT_ETCD_ENDPOINTS");

	return env && env[0] ? env : "http://127.0.0.1:2379";
}

struct ctl_opts {
	const char *endpoints, *cluster;
	int vnodes;
	enum ctl_output output;
};

struct members {
	struct member_info info[RING_MAX_MEMBERS];
	char drained[RING_MAX_MEMBERS][RING_ID_MAX + 1];
	int n, ndrained;
	int64_t revision;
};

static void on_member(void *arg, const struct etcd_kv *kv)
{
	struct members *ms = arg;
	const char *rest = strstr(kv->key, "/nodes/");
	const char *drain = strstr(kv->key, "/drain/");

	if (rest && ms->n < RING_MAX_MEMBERS && membership_parse(kv->value, &ms->info[ms->n]) == 0)
		ms->n++;
	else if (drain && ms->ndrained < RING_MAX_MEMBERS)
		snprintf(ms->drained[ms->ndrained++], RING_ID_MAX + 1, "%s", drain + 7);
}

static bool is_drained(const struct members *ms, const char *name)
{
	for (int i = 0; i < ms->ndrained; i++)
		if (strcmp(ms->drained[i], name) == 0)
			return true;
	return false;
}

/* Reads the members. CTL_OK or CTL_UNREACHABLE (said on stderr). */
static int read_members(const struct ctl_opts *o, struct members *ms)
{
	struct etcd *e = etcd_open(o->endpoints, 2000);
	char prefix[MEMBERSHIP_PREFIX_MAX];
	int rc;

	memset(ms, 0, sizeof(*ms));
	snprintf(prefix, sizeof(prefix), "/fanout/%s/", o->cluster);
	rc = e ? etcd_range(e, prefix, on_member, ms, &ms->revision) : -EINVAL;
	etcd_close(e);
	if (rc < 0) {
		fprintf(stderr, "fanoutctl: cannot read cluster '%s' from etcd at %s: %s\n",
			o->cluster, o->endpoints, strerror(-rc));
		return CTL_UNREACHABLE;
	}
	return CTL_OK;
}

/* The ring the nodes build from ms (the undrained members). NULL when none. */
static struct ring *ring_of(const struct ctl_opts *o, const struct members *ms)
{
	const char *ids[RING_MAX_MEMBERS];
	int n = 0;

	for (int i = 0; i < ms->n; i++)
		if (!is_drained(ms, ms->info[i].name))
			ids[n++] = ms->info[i].name;
	return n ? ring_build(ids, n, o->vnodes, ms->revision) : NULL;
}

static int node_list(const struct ctl_opts *o)
{
	struct members *ms = malloc(sizeof(*ms));
	json_t *all = json_array();
	int rc = ms ? read_members(o, ms) : CTL_FAILED;

	if (rc == CTL_OK && o->output == CTL_TABLE)
		printf("%-20s %-8s %-22s %-22s\n", "NAME", "STATE", "PEER", "ADMIN");
	for (int i = 0; rc == CTL_OK && i < ms->n; i++) {
		const struct member_info *m = &ms->info[i];
		const char *state = is_drained(ms, m->name) ? "draining" : "active";

		if (o->output == CTL_TABLE)
			printf("%-20s %-8s %-22s %-22s\n", m->name, state, m->peer, m->admin);
		else
			json_array_append_new(all, json_pack("{s:s, s:s, s:s, s:s}", "name",
							     m->name, "state", state, "peer",
							     m->peer, "admin", m->admin));
	}
	if (rc == CTL_OK && o->output == CTL_JSON) {
		json_dumpf(all, stdout, JSON_INDENT(2));
		printf("\n");
	}
	json_decref(all);
	free(ms);
	return rc;
}

static int node_drain(const struct ctl_opts *o, const char *name, bool drain)
{
	struct members *ms = malloc(sizeof(*ms));
	struct etcd *e;
	char key[MEMBERSHIP_PREFIX_MAX + 80];
	int rc = ms ? read_members(o, ms) : CTL_FAILED, found = 0;

	for (int i = 0; rc == CTL_OK && i < ms->n; i++)
		found |= strcmp(ms->info[i].name, name) == 0;
	free(ms);
	if (rc != CTL_OK)
		return rc;
	if (!found && drain) {
		fprintf(stderr, "fanoutctl: no node '%s' in cluster '%s'\n", name, o->cluster);
		return CTL_NOT_FOUND;
	}
	membership_drain_key(o->cluster, name, key, sizeof(key));
	e = etcd_open(o->endpoints, 2000);
	rc = e == NULL ? -EINVAL : drain ? etcd_put(e, key, "", 0, NULL) : etcd_delete(e, key);
	etcd_close(e);
	if (rc < 0) {
		fprintf(stderr, "fanoutctl: cannot %s '%s': %s\n", drain ? "drain" : "undrain",
			name, strerror(-rc));
		return CTL_UNREACHABLE;
	}
	printf("%s %s\n", name,
	       drain ? "draining: its channels move to the others"
		     : "undrained: it takes channels again");
	return CTL_OK;
}

static int ring_show(const struct ctl_opts *o)
{
	struct members *ms = malloc(sizeof(*ms));
	int rc = ms ? read_members(o, ms) : CTL_FAILED;
	struct ring *r = rc == CTL_OK ? ring_of(o, ms) : NULL;
	double share[RING_MAX_MEMBERS];
	json_t *out;

	if (rc == CTL_OK && r == NULL) {
		fprintf(stderr, "fanoutctl: cluster '%s' has no active member\n", o->cluster);
		rc = CTL_NOT_FOUND;
	}
	if (r) {
		ring_shares(r, share);
		out = json_pack("{s:I, s:i, s:[]}", "revision", (json_int_t)ring_epoch(r), "vnodes",
				ring_vnodes(r), "members");
		if (o->output == CTL_TABLE)
			printf("etcd revision %lld, %d members, %d vnodes each\n%-20s %s\n",
			       (long long)ring_epoch(r), ring_members(r), ring_vnodes(r), "NAME",
			       "SHARE");
		for (int i = 0; i < ring_members(r); i++) {
			if (o->output == CTL_TABLE)
				printf("%-20s %6.2f%%\n", ring_member_id(r, i), share[i] * 100);
			json_array_append_new(json_object_get(out, "members"),
					      json_pack("{s:s, s:f}", "name", ring_member_id(r, i),
							"share", share[i]));
		}
		if (o->output == CTL_JSON) {
			json_dumpf(out, stdout, JSON_INDENT(2));
			printf("\n");
		}
		json_decref(out);
	}
	ring_free(r);
	free(ms);
	return rc;
}

/* The node that holds key on the ring of the live members, printed by
 * print; CTL_* */
static int locate(const struct ctl_opts *o, uint64_t key,
		  void (*print)(const struct ctl_opts *o, const char *arg, const char *node,
				long long revision),
		  const char *arg)
{
	struct members *ms = malloc(sizeof(*ms));
	int rc = ms ? read_members(o, ms) : CTL_FAILED;
	struct ring *r = rc == CTL_OK ? ring_of(o, ms) : NULL;

	if (rc == CTL_OK && r == NULL) {
		fprintf(stderr, "fanoutctl: cluster '%s' has no active member\n", o->cluster);
		rc = CTL_NOT_FOUND;
	}
	if (r)
		print(o, arg, ring_owner_id(r, key), (long long)ring_epoch(r));
	ring_free(r);
	free(ms);
	return rc;
}

static void print_channel(const struct ctl_opts *o, const char *arg, const char *node,
			  long long revision)
{
	if (o->output == CTL_JSON)
		printf("{\"channel\": %s, \"owner\": \"%s\", \"revision\": %lld}\n", arg, node,
		       revision);
	else
		printf("channel %s: owner %s (ring at etcd revision %lld)\n", arg, node, revision);
}

static int channel_locate(const struct ctl_opts *o, const char *arg)
{
	char *end;
	long long channel = strtoll(arg, &end, 10);

	if (*end || channel <= 0) {
		fprintf(stderr, "fanoutctl: a channel id is a positive number, not '%s'\n", arg);
		return CTL_USAGE;
	}
	return locate(o, ring_channel_key(channel), print_channel, arg);
}

static void print_user(const struct ctl_opts *o, const char *arg, const char *node,
		       long long revision)
{
	json_t *j = json_pack("{s:s, s:s, s:I}", "user", arg, "home", node, "revision",
			      (json_int_t)revision);
	char *text = o->output == CTL_JSON && j ? json_dumps(j, 0) : NULL;

	if (text)
		printf("%s\n", text);
	else
		printf("user %s: presence home %s (ring at etcd revision %lld)\n", arg, node,
		       revision);
	free(text);
	json_decref(j);
}

/* The node that holds a user's presence (docs/cluster.md). */
static int user_locate(const struct ctl_opts *o, const char *arg)
{
	if (!*arg || strlen(arg) > 64) {
		fprintf(stderr, "fanoutctl: a user name is 1 to 64 characters\n");
		return CTL_USAGE;
	}
	return locate(o, ring_name_key(arg), print_user, arg);
}

/* Asks a node's /readyz; "ready", or why not. */
static void node_ready(const char *admin, char *out, size_t n)
{
	CURL *curl = curl_easy_init();
	char url[128];
	long status = 0;

	snprintf(url, sizeof(url), "http://%s/readyz", admin);
	snprintf(out, n, "unreachable");
	if (curl == NULL)
		return;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	if (curl_easy_perform(curl) == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		snprintf(out, n, status == 200 ? "ready" : "not ready (%ld)", status);
	}
	curl_easy_cleanup(curl);
}

static int cluster_status(const struct ctl_opts *o)
{
	struct members *ms = malloc(sizeof(*ms));
	int rc = ms ? read_members(o, ms) : CTL_FAILED, unready = 0;
	json_t *nodes = json_array();
	char ready[64];

	if (rc == CTL_OK && o->output == CTL_TABLE)
		printf("cluster %s at revision %lld: %d members\n%-20s %-8s %s\n", o->cluster,
		       (long long)ms->revision, ms->n, "NAME", "STATE", "READY");
	for (int i = 0; rc == CTL_OK && i < ms->n; i++) {
		const char *state = is_drained(ms, ms->info[i].name) ? "draining" : "active";

		node_ready(ms->info[i].admin, ready, sizeof(ready));
		unready += strcmp(ready, "ready") != 0;
		if (o->output == CTL_TABLE)
			printf("%-20s %-8s %s\n", ms->info[i].name, state, ready);
		json_array_append_new(nodes, json_pack("{s:s, s:s, s:s}", "name", ms->info[i].name,
						       "state", state, "ready", ready));
	}
	if (rc == CTL_OK && o->output == CTL_JSON) {
		json_t *out = json_pack("{s:s, s:I, s:o}", "cluster", o->cluster, "revision",
					(json_int_t)ms->revision, "nodes", json_incref(nodes));

		json_dumpf(out, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(out);
	}
	json_decref(nodes);
	free(ms);
	return rc != CTL_OK ? rc : unready ? CTL_FAILED : CTL_OK;
}

static void cluster_usage(FILE *out)
{
	fprintf(out,
		"usage: fanoutctl node list | node drain NAME | node undrain NAME | ring show |\n"
		"                 channel locate ID | user locate NAME | cluster status\n"
		"       [--endpoints URLS] [--cluster NAME] [--vnodes N] [-o table|json]\n"
		"  --endpoints: etcd, comma-separated (FANOUT_ETCD_ENDPOINTS, or\n"
		"  http://127.0.0.1:2379); --cluster: its name (fanout); --vnodes: the\n"
		"  nodes' [cluster] vnodes (8192). Exit: 0 ok, 1 failed (cluster status: a node\n"
		"  not ready), 2 usage, 3 etcd unreachable, 4 no such node or no active member.\n");
}

static int parse_opts(int argc, char **argv, struct ctl_opts *o)
{
	static const struct option options[] = {
	    {"endpoints", required_argument, NULL, 'e'},
	    {"cluster", required_argument, NULL, 'C'},
	    {"vnodes", required_argument, NULL, 'v'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	o->endpoints = ctl_default_endpoints();
	o->cluster = "fanout";
	o->vnodes = RING_DEFAULT_VNODES;
	o->output = CTL_TABLE;
	while ((opt = getopt_long(argc, argv, "e:C:v:o:", options, NULL)) != -1) {
		if (opt == 'e')
			o->endpoints = optarg;
		else if (opt == 'C')
			o->cluster = optarg;
		else if (opt == 'v' && atoi(optarg) >= 1 && atoi(optarg) <= RING_MAX_VNODES)
			o->vnodes = atoi(optarg);
		else if (opt != 'o' || ctl_output_parse(optarg, &o->output) < 0)
			return -1;
	}
	return 0;
}

int ctl_cluster(int argc, char **argv)
{
	const char *noun = argv[0], *verb = argc > 1 ? argv[1] : "";
	struct ctl_opts o;
	char **args;
	int nargs;

	if (argc < 2) {
		cluster_usage(stderr);
		return CTL_USAGE;
	}
	/* getopt sees the verb as its program name and moves the options
	 * ahead of the verb's own arguments. */
	optind = 1;
	if (parse_opts(argc - 1, argv + 1, &o) < 0) {
		cluster_usage(stderr);
		return CTL_USAGE;
	}
	args = argv + 1 + optind;
	nargs = argc - 1 - optind;
	if (strcmp(noun, "node") == 0 && strcmp(verb, "list") == 0 && nargs == 0)
		return node_list(&o);
	if (strcmp(noun, "node") == 0 && strcmp(verb, "drain") == 0 && nargs == 1)
		return node_drain(&o, args[0], true);
	if (strcmp(noun, "node") == 0 && strcmp(verb, "undrain") == 0 && nargs == 1)
		return node_drain(&o, args[0], false);
	if (strcmp(noun, "ring") == 0 && strcmp(verb, "show") == 0 && nargs == 0)
		return ring_show(&o);
	if (strcmp(noun, "channel") == 0 && strcmp(verb, "locate") == 0 && nargs == 1)
		return channel_locate(&o, args[0]);
	if (strcmp(noun, "user") == 0 && strcmp(verb, "locate") == 0 && nargs == 1)
		return user_locate(&o, args[0]);
	if (strcmp(noun, "cluster") == 0 && strcmp(verb, "status") == 0 && nargs == 0)
		return cluster_status(&o);
	cluster_usage(stderr);
	return CTL_USAGE;
}
