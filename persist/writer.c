/* SPDX-License-Identifier: BSD-3-Clause */
/* The persist writer's public face: it checks a publish, copies it into a
 * request and routes it to its channel's lane (lane.c: a thread, a
 * connection, group commit and the fence).
 *
 * Design note
 * -----------
 * A lane commits one transaction at a time, and PostgreSQL runs each
 * connection's statements on one backend: one lane cannot use more than
 * one of the database's cores, and while it reads a batch's results, plans
 * the next and runs the callbacks, its backend waits. Several lanes over
 * disjoint sets of channels overlap those waits and use several cores. A
 * channel always goes to the same lane (a hash of its id), so everything of
 * DESIGN.md §2 steps 3-5 holds per channel as it did with one writer: one
 * sequencer, its fence, its dedup, its callbacks in seq order. Nothing is
 * ordered across channels, as before: the callbacks of two lanes run on
 * their own threads, and what they call (core/publish.c) is thread-safe. */
#include "writer-internal.h"

#include "clock.h"
#include "err.h"
#include "metrics.h"
#include "utf8.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The writer: its lanes, a channel in lanes[lane_of(channel)]. */
struct persist_writer {
	struct persist_writer_config cfg;
	struct search_indexer *indexer;
	int nlanes;
	struct writer_lane *lanes[];
};

/* Metrics: process-wide, registered once. */
struct metric_counter m_batches, m_committed, m_duplicates, m_failed, m_fence_failures,
    m_reconnects, m_resolves, m_copy_batches, m_loop_batches, m_loop_handbacks, m_heads_evicted;
struct metric_histogram m_commit_latency, m_publish_latency, m_queue_latency, m_callback_latency;
static pthread_once_t histograms_once = PTHREAD_ONCE_INIT;

/* Once per process, before the first writer observes anything. */
static void histograms_init(void)
{
	struct metric_histogram *all[] = {&m_commit_latency, &m_publish_latency, &m_queue_latency,
					  &m_callback_latency};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		metric_histogram_init(all[i], metric_latency_bounds_ns, metric_latency_nbounds);
}

/* Submission */

static bool kind_valid(const char *kind)
{
	size_t n = strlen(kind);

	if (n == 0 || n > PERSIST_KIND_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((kind[i] >= 'a' && kind[i] <= 'z') || kind[i] == '_'))
			return false;
	return true;
}

static int publish_check(const struct persist_publish *p, const char *kind)
{
	size_t idlen;

	if (p->channel_id <= 0 || p->author_id <= 0 || p->parent_seq < 0 || !kind_valid(kind) ||
	    p->client_msg_id == NULL || (p->body == NULL && p->body_len != 0))
		return -EINVAL;
	idlen = strlen(p->client_msg_id);
	if (idlen == 0 || idlen > PERSIST_CLIENT_MSG_ID_MAX)
		return -EINVAL;
	if (p->body_len > PERSIST_BODY_MAX)
		return -EMSGSIZE;
	/* PostgreSQL text holds neither NUL nor invalid UTF-8. */
	if (!utf8_valid(p->client_msg_id, idlen) ||
	    (p->body_len &&
	     (memchr(p->body, '\0', p->body_len) || !utf8_valid(p->body, p->body_len))))
		return -EILSEQ;
	return 0;
}

int persist_publish_validate(const struct persist_publish *p)
{
	int rc = publish_check(p, p->kind ? p->kind : "message");

	if (rc == 0 && p->author_name && strnlen(p->author_name, 65) > 64)
		rc = -EINVAL;
	return rc;
}

/* The lane of a channel: a multiplicative hash, so that ids made in a row
 * (a user's DMs, a team's channels) spread over the lanes. */
static struct writer_lane *lane_of(const struct persist_writer *w, int64_t channel)
{
	uint64_t h = (uint64_t)channel * 0x9e3779b97f4a7c15ull;

	return w->lanes[(h >> 32) % (uint64_t)w->nlanes];
}

struct writer_lane *const *writer_lanes(const struct persist_writer *w, int *n)
{
	*n = w->nlanes;
	return w->lanes;
}

int persist_writer_submit(struct persist_writer *w, const struct persist_publish *p, void *cookie)
{
	const char *kind = p->kind ? p->kind : "message";
	const char *author = p->author_name ? p->author_name : "";
	size_t kind_len, id_len, author_len = strnlen(author, 65);
	struct request *r;
	int rc = publish_check(p, kind);

	if (rc < 0)
		return rc;
	if (author_len > 64)
		return -EINVAL;
	kind_len = strlen(kind);
	id_len = strlen(p->client_msg_id);
	r = malloc(sizeof(*r) + kind_len + id_len + author_len + p->body_len + 4);
	if (r == NULL)
		return -ENOMEM;
	r->next = NULL;
	r->cookie = cookie;
	r->submitted_ns = time_mono_ns();
	r->epoch = p->epoch > 0 ? p->epoch : 0;
	r->msg = (struct persist_message){
	    .channel_id = p->channel_id,
	    .author_id = p->author_id,
	    .parent_seq = p->parent_seq,
	    .body_len = p->body_len,
	};
	memcpy(r->data, kind, kind_len + 1);
	memcpy(r->data + kind_len + 1, p->client_msg_id, id_len + 1);
	if (p->body_len)
		memcpy(r->data + kind_len + id_len + 2, p->body, p->body_len);
	r->data[kind_len + id_len + 2 + p->body_len] = '\0';
	r->msg.kind = r->data;
	r->msg.client_msg_id = r->data + kind_len + 1;
	r->msg.body = r->data + kind_len + id_len + 2;
	memcpy(r->data + kind_len + id_len + p->body_len + 3, author, author_len + 1);
	r->msg.author_name = r->data + kind_len + id_len + p->body_len + 3;

	rc = lane_enqueue(lane_of(w, p->channel_id), r);
	if (rc < 0)
		free(r);
	return rc;
}

static void writer_stop(struct persist_writer *w)
{
	uint64_t deadline = time_mono_ns() + (uint64_t)w->cfg.drain_timeout_ms * 1000000, left;
	struct timespec until = time_mono_deadline((uint64_t)w->cfg.drain_timeout_ms * 1000000);

	/* All lanes drain at once, within one deadline. */
	for (int i = 0; i < w->nlanes; i++)
		if (w->lanes[i])
			lane_stop(w->lanes[i]);
	for (int i = 0; i < w->nlanes; i++)
		if (w->lanes[i])
			lane_join(w->lanes[i], &until);
	/* Within the same deadline (what is not indexed by then, a sweep
	 * finds later). */
	left = time_mono_ns() < deadline ? (deadline - time_mono_ns()) / 1000000 : 0;
	search_indexer_destroy(w->indexer, (int)left);
	free(w);
}

struct persist_writer *persist_writer_create(const struct persist_writer_config *cfg,
					     persist_commit_fn fn, void *arg)
{
	struct persist_writer_config lane_cfg;
	struct persist_writer *w;
	int n = cfg->writers > 0 ? cfg->writers : 1;

	if (cfg->dsn == NULL || cfg->batch_max < 1 || cfg->queue_max < 1 || fn == NULL ||
	    cfg->writers < 0 || n > PERSIST_WRITERS_MAX)
		return err_null(-EINVAL);
	pthread_once(&histograms_once, histograms_init);
	w = calloc(1, sizeof(*w) + (size_t)n * sizeof(w->lanes[0]));
	if (w == NULL)
		return NULL;
	w->cfg = *cfg;
	w->cfg.writers = n;
	if (w->cfg.reconnect_max_ms <= 0)
		w->cfg.reconnect_max_ms = 5000;
	if (w->cfg.drain_timeout_ms <= 0)
		w->cfg.drain_timeout_ms = 5000;
	w->nlanes = n;
	/* The queue's bound and the remembered ids are shared out: a channel's
	 * publishes and ids live in its lane alone. */
	lane_cfg = w->cfg;
	lane_cfg.queue_max = (cfg->queue_max + n - 1) / n;
	lane_cfg.dedup_cache = cfg->dedup_cache / n;
	lane_cfg.channel_heads = cfg->channel_heads / n;
	w->indexer = search_indexer_create(cfg->dsn, cfg->allow_unsafe_commit,
					   w->cfg.reconnect_max_ms, cfg->search_sweep_ms);
	if (w->indexer == NULL) {
		writer_stop(w);
		return err_null(-ENOMEM);
	}
	for (int i = 0; i < n; i++) {
		if ((w->lanes[i] = lane_create(&lane_cfg, i, fn, arg, w->indexer)) == NULL) {
			writer_stop(w);
			return err_null(-ENOMEM);
		}
	}
	return w;
}

void persist_writer_destroy(struct persist_writer *w)
{
	if (w)
		writer_stop(w);
}

bool persist_writer_connected(struct persist_writer *w)
{
	for (int i = 0; i < w->nlanes; i++)
		if (!lane_connected(w->lanes[i]))
			return false;
	return true;
}

int persist_writer_flush(struct persist_writer *w, int timeout_ms)
{
	uint64_t deadline = time_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	uint64_t target[PERSIST_WRITERS_MAX];

	for (int i = 0; i < w->nlanes; i++)
		lane_queued(w->lanes[i], &target[i]);
	for (int i = 0; i < w->nlanes; i++) {
		while (lane_answered(w->lanes[i]) < target[i]) {
			struct timespec ts = {0, 2000000};

			if (time_mono_ns() >= deadline)
				return -ETIMEDOUT;
			nanosleep(&ts, NULL);
		}
	}
	return 0;
}

int persist_writer_search_flush(struct persist_writer *w, int timeout_ms)
{
	return search_indexer_flush(w->indexer, timeout_ms);
}

int persist_writer_queue_depth(struct persist_writer *w)
{
	int depth = 0;

	for (int i = 0; i < w->nlanes; i++)
		depth += lane_queued(w->lanes[i], NULL);
	return depth;
}

static double queue_depth_gauge(void *arg)
{
	return persist_writer_queue_depth(arg);
}

static double connected_gauge(void *arg)
{
	return persist_writer_connected(arg) ? 1 : 0;
}

void persist_writer_stages(struct persist_writer_stages *out)
{
	pthread_once(&histograms_once, histograms_init);
	metric_histogram_copy(&out->queue, &m_queue_latency);
	metric_histogram_copy(&out->commit, &m_commit_latency);
	metric_histogram_copy(&out->durable, &m_publish_latency);
	metric_histogram_copy(&out->callback, &m_callback_latency);
}

int persist_writer_register_metrics(struct persist_writer *w)
{
	static const struct {
		const char *name, *help;
		struct metric_counter *counter;
	} counters[] = {
	    {"fanout_persist_batches_total", "Transactions committed or attempted by the writer.",
	     &m_batches},
	    {"fanout_persist_messages_committed_total", "Messages made durable.", &m_committed},
	    {"fanout_persist_duplicates_total",
	     "Publishes answered with the seq of an earlier one.", &m_duplicates},
	    {"fanout_persist_failed_total", "Publishes that failed; nothing was written for them.",
	     &m_failed},
	    {"fanout_persist_fence_failures_total", "Channel heads found moved by another writer.",
	     &m_fence_failures},
	    {"fanout_persist_reconnects_total", "Writer reconnections to PostgreSQL.",
	     &m_reconnects},
	    {"fanout_persist_resolves_total", "Batches whose outcome was re-read from PostgreSQL.",
	     &m_resolves},
	    {"fanout_persist_copy_batches_total",
	     "Transactions whose rows went by COPY (batches of copy_min_rows or more).",
	     &m_copy_batches},
	    {"fanout_persist_heads_evicted_total",
	     "Channel heads dropped from memory to stay within [persist] channel_heads (loaded "
	     "again from PostgreSQL when next needed).",
	     &m_heads_evicted},
	    {"fanout_persist_loop_batches_total",
	     "Transactions a service thread's loop sent and saw committed, not the lane's thread "
	     "([persist] on_service_threads).",
	     &m_loop_batches},
	    {"fanout_persist_loop_handbacks_total",
	     "Batches a service thread's loop handed to the lane's thread: heads to load, a COPY, "
	     "an error to resolve, a lost connection.",
	     &m_loop_handbacks},
	};
	static const struct {
		const char *name, *help;
		struct metric_histogram *histogram;
	} histograms[] = {
	    {"fanout_persist_commit_seconds", "Round trip of one batch transaction.",
	     &m_commit_latency},
	    {"fanout_persist_publish_seconds", "From submit to durable, per message.",
	     &m_publish_latency},
	    {"fanout_persist_queue_seconds", "From submit to taken into a batch, per message.",
	     &m_queue_latency},
	    {"fanout_persist_callback_seconds",
	     "From the batch settled to this message's callback done (callbacks run in batch "
	     "order), per message.",
	     &m_callback_latency},
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]) && rc == 0; i++)
		rc = metrics_register_counter(counters[i].name, counters[i].help,
					      counters[i].counter);
	pthread_once(&histograms_once, histograms_init);
	for (size_t i = 0; i < sizeof(histograms) / sizeof(histograms[0]) && rc == 0; i++)
		rc = metrics_register_histogram(histograms[i].name, histograms[i].help,
						histograms[i].histogram);
	rc = rc
		 ?: metrics_register_gauge("fanout_persist_queue_depth",
					   "Publishes waiting for the writer (all its lanes).",
					   queue_depth_gauge, w);
	rc = rc
		 ?: metrics_register_gauge(
			"fanout_persist_connected",
			"1 while every lane of the writer holds a PostgreSQL connection.",
			connected_gauge, w);
	return rc ?: search_indexer_register_metrics(w->indexer);
}

int persist_libpq_version(void)
{
	return PQlibVersion();
}
