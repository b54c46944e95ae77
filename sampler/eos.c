/* sampler/eos.c - an exactly-once consume-transform-produce loop on Kafka transactions */
#include "eos.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TXN_TIMEOUT_MS 30000

struct eos {
	struct eos_conf conf;
	const struct eos_ops *ops;
	void *ctx;
	rd_kafka_t *consumer, *producer;
	int txn_open;
	int64_t txn_started_ms;
	int txn_messages;
	int fatal;
	char errstr[512];

	pthread_mutex_t stats_lock;
	struct eos_stats stats;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_fatal(struct eos *e, const char *what, const char *why)
{
	if (!e->fatal)
		snprintf(e->errstr, sizeof(e->errstr), "%s: %s: %s", e->conf.name, what, why);
	e->fatal = 1;
}

static void count(struct eos *e, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&e->stats_lock);
	*field += n;
	pthread_mutex_unlock(&e->stats_lock);
}

/* ---- the clients' properties ------------------------------------------- */

/* A stage's two clients (core/kclient.h): tunables first, then what the user
 * gives, then what exactly-once needs, which -X cannot change.  Filled in
 * place by eos_props_init(): the tables point into the struct. */
struct eos_props {
	char txn_timeout[16], consumer[64], producer[64];
	struct kclient_prop ctune[3], cmust[4], ptune[4], pmust[3];
	struct kclient_tables c, p;
};

#define NPROPS(a) (int)(sizeof(a) / sizeof((a)[0]))

static void eos_props_init(struct eos_props *k, const struct eos_conf *conf)
{
	snprintf(k->txn_timeout, sizeof(k->txn_timeout), "%d", TXN_TIMEOUT_MS);
	snprintf(k->consumer, sizeof(k->consumer), "the sampler's %s consumer", conf->name);
	snprintf(k->producer, sizeof(k->producer), "the sampler's %s producer", conf->name);
	const struct kclient_prop ctune[] = {
		{ "auto.offset.reset", "earliest", NULL },
		{ "partition.assignment.strategy", "range,roundrobin", NULL },
		/* a killed instance's partitions move after this long */
		{ "session.timeout.ms", "10000", NULL },
	};
	const struct kclient_prop cmust[] = {
		{ "group.id", conf->group, "the stage commits its offsets in its transactions, for this group; "
		  "set it with the 'group' setting" },
		{ "enable.auto.commit", "false", "offsets are committed with the outputs, in the stage's transactions" },
		{ "isolation.level", "read_committed", "records of aborted transactions must not be processed" },
		{ "enable.partition.eof", "false", "the stage consumes without end and takes no end-of-partition events" },
	};
	const struct kclient_prop ptune[] = {
		{ "compression.codec", "zstd", NULL },
		{ "linger.ms", "10", NULL },
		{ "message.max.bytes", "4194304", NULL },
		{ "transaction.timeout.ms", k->txn_timeout, NULL },
	};
	const struct kclient_prop pmust[] = {
		{ "transactional.id", conf->transactional_id, "a restarted instance fences its predecessor by this "
		  "id; set it with the 'transactional.id' setting and --instance" },
		{ "enable.idempotence", "true", "Kafka transactions need the idempotent producer" },
		{ "acks", "all", "Kafka transactions need acks=all" },
	};
	_Static_assert(sizeof(ctune) == sizeof(k->ctune) && sizeof(cmust) == sizeof(k->cmust) &&
	               sizeof(ptune) == sizeof(k->ptune) && sizeof(pmust) == sizeof(k->pmust),
	               "struct eos_props holds every property");
	memcpy(k->ctune, ctune, sizeof(ctune));
	memcpy(k->cmust, cmust, sizeof(cmust));
	memcpy(k->ptune, ptune, sizeof(ptune));
	memcpy(k->pmust, pmust, sizeof(pmust));
	k->c = (struct kclient_tables){ k->consumer, k->ctune, NPROPS(k->ctune), k->cmust, NPROPS(k->cmust) };
	k->p = (struct kclient_tables){ k->producer, k->ptune, NPROPS(k->ptune), k->pmust, NPROPS(k->pmust) };
}

int eos_check(const struct eos_conf *conf, char *errstr, size_t errstr_size)
{
	struct eos_props k;
	eos_props_init(&k, conf);
	return kclient_check(&k.c, conf->kafka_props, conf->nkafka_props, errstr, errstr_size) ||
	       kclient_check(&k.p, conf->kafka_props, conf->nkafka_props, errstr, errstr_size) ? -1 : 0;
}

/* ---- rewinding -------------------------------------------------------- */

/* Moves the consumer back to the committed offsets of its assignment. */
static int rewind_consumer(struct eos *e)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_resp_err_t err = rd_kafka_assignment(e->consumer, &parts);
	if (err || !parts) {
		set_fatal(e, "rewind", rd_kafka_err2str(err));
		return -1;
	}
	if (parts->cnt == 0) {
		rd_kafka_topic_partition_list_destroy(parts);
		return 0;
	}
	err = rd_kafka_committed(e->consumer, parts, 30000);
	if (err) {
		set_fatal(e, "rewind: committed offsets", rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(parts);
		return -1;
	}
	for (int i = 0; i < parts->cnt; i++)
		if (parts->elems[i].offset < 0)
			parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_error_t *error = rd_kafka_seek_partitions(e->consumer, parts, 30000);
	int rc = 0;
	if (error) {
		set_fatal(e, "rewind: seek", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		rc = -1;
	}
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* ---- transactions ----------------------------------------------------- */

static int txn_begin(struct eos *e)
{
	if (e->txn_open)
		return 0;
	rd_kafka_error_t *error = rd_kafka_begin_transaction(e->producer);
	if (error) {
		set_fatal(e, "begin transaction", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		return -1;
	}
	e->txn_open = 1;
	e->txn_started_ms = now_ms();
	e->txn_messages = 0;
	return 0;
}

static int txn_abort(struct eos *e, const char *why)
{
	fprintf(stderr, "%% %s: aborting transaction: %s\n", e->conf.name, why);
	rd_kafka_error_t *error = rd_kafka_abort_transaction(e->producer, -1);
	e->txn_open = 0;
	if (error) {
		set_fatal(e, "abort transaction", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		return -1;
	}
	count(e, &e->stats.aborted, 1);
	if (rewind_consumer(e))
		return -1;
	if (e->ops->aborted)
		e->ops->aborted(e->ctx);
	return 0;
}

/* Handles the error of a transactional call: 0 to retry, 1 aborted, -1 fatal. */
static int txn_error(struct eos *e, const char *what, rd_kafka_error_t *error)
{
	int rc;
	if (rd_kafka_error_is_retriable(error)) {
		rc = 0;
	} else if (rd_kafka_error_txn_requires_abort(error)) {
		rc = txn_abort(e, rd_kafka_error_string(error)) ? -1 : 1;
	} else {
		set_fatal(e, what, rd_kafka_error_string(error));
		rc = -1;
	}
	rd_kafka_error_destroy(error);
	return rc;
}

/* Sends the consumer's positions to the open transaction and commits it.
 * Returns 0 (committed, or nothing to commit, or aborted and rewound) or -1. */
static int txn_commit(struct eos *e)
{
	if (!e->txn_open)
		return 0;
	int64_t t0 = now_ms();
	if (e->ops->before_commit && e->ops->before_commit(e->ctx, e)) {
		set_fatal(e, "commit", "the transform failed before commit");
		return -1;
	}
	rd_kafka_topic_partition_list_t *pos = NULL;
	rd_kafka_resp_err_t err = rd_kafka_assignment(e->consumer, &pos);
	if (err) {
		set_fatal(e, "assignment", rd_kafka_err2str(err));
		return -1;
	}
	rd_kafka_position(e->consumer, pos);
	rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(pos->cnt);
	for (int i = 0; i < pos->cnt; i++)
		if (pos->elems[i].offset >= 0)
			rd_kafka_topic_partition_list_add(offsets, pos->elems[i].topic,
			                                  pos->elems[i].partition)->offset = pos->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(pos);

	int rc = 0;
	for (int attempt = 0; offsets->cnt > 0; attempt++) {
		rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(e->consumer);
		rd_kafka_error_t *error = rd_kafka_send_offsets_to_transaction(e->producer, offsets, md, -1);
		rd_kafka_consumer_group_metadata_destroy(md);
		if (!error)
			break;
		int h = txn_error(e, "send offsets to transaction", error);
		if (h != 0 || attempt >= 10) {
			rc = h < 0 || attempt >= 10 ? -1 : 0;
			if (attempt >= 10)
				set_fatal(e, "send offsets to transaction", "retries exhausted");
			rd_kafka_topic_partition_list_destroy(offsets);
			return rc;
		}
	}
	rd_kafka_topic_partition_list_destroy(offsets);
	for (int attempt = 0;; attempt++) {
		rd_kafka_error_t *error = rd_kafka_commit_transaction(e->producer, -1);
		if (!error)
			break;
		int h = txn_error(e, "commit transaction", error);
		if (h != 0)
			return h < 0 ? -1 : 0;
		if (attempt >= 10) {
			set_fatal(e, "commit transaction", "retries exhausted");
			return -1;
		}
	}
	e->txn_open = 0;
	double ms = (double)(now_ms() - t0);
	pthread_mutex_lock(&e->stats_lock);
	e->stats.committed++;
	e->stats.commit_ms_last = ms;
	if (ms > e->stats.commit_ms_max)
		e->stats.commit_ms_max = ms;
	pthread_mutex_unlock(&e->stats_lock);
	if (e->ops->committed)
		e->ops->committed(e->ctx);
	return 0;
}

/* ---- rebalancing ------------------------------------------------------ */

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct eos *e = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (e->ops->assigned && e->ops->assigned(e->ctx, e, parts))
			set_fatal(e, "assign", "the transform refused its partitions");
		rd_kafka_assign(rk, parts);
		pthread_mutex_lock(&e->stats_lock);
		e->stats.partitions = parts->cnt;
		pthread_mutex_unlock(&e->stats_lock);
		return;
	}
	/* Revoked: what was processed is committed first; lost: it cannot be. */
	if (e->txn_open) {
		if (rd_kafka_assignment_lost(rk))
			txn_abort(e, "assignment lost");
		else
			txn_commit(e);
	}
	if (e->ops->revoked)
		e->ops->revoked(e->ctx, e, parts);
	rd_kafka_assign(rk, NULL);
	pthread_mutex_lock(&e->stats_lock);
	e->stats.partitions = 0;
	pthread_mutex_unlock(&e->stats_lock);
}

/* ---- life ------------------------------------------------------------- */

struct eos *eos_new(const struct eos_conf *conf, const struct eos_ops *ops, void *ctx,
                    char *errstr, size_t errstr_size)
{
	char err[512];
	struct eos *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	e->conf = *conf;
	e->ops = ops;
	e->ctx = ctx;
	e->stats.lag = -1;
	pthread_mutex_init(&e->stats_lock, NULL);
	struct eos_props k;
	eos_props_init(&k, conf);

	rd_kafka_conf_t *pc = kclient_conf_new(&k.p, conf->brokers, conf->kafka_props, conf->nkafka_props,
	                                       err, sizeof(err));
	if (!pc || !(e->producer = kclient_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err)))) {
		snprintf(errstr, errstr_size, "producer: %s", err);
		goto fail;
	}

	rd_kafka_conf_t *cc = kclient_conf_new(&k.c, conf->brokers, conf->kafka_props, conf->nkafka_props,
	                                       err, sizeof(err));
	if (!cc) {
		snprintf(errstr, errstr_size, "consumer: %s", err);
		goto fail;
	}
	/* Producer-only properties given for both make the consumer warn, which is harmless. */
	rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
	rd_kafka_conf_set_opaque(cc, e);
	if (!(e->consumer = kclient_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err)))) {
		snprintf(errstr, errstr_size, "consumer: %s", err);
		goto fail;
	}
	rd_kafka_poll_set_consumer(e->consumer);

	rd_kafka_error_t *error = rd_kafka_init_transactions(e->producer, 60000);
	if (error) {
		snprintf(errstr, errstr_size, "init transactions (transactional.id '%s'): %s",
		         conf->transactional_id, rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		goto fail;
	}
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, conf->input, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t rerr = rd_kafka_subscribe(e->consumer, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (rerr) {
		snprintf(errstr, errstr_size, "subscribe to '%s': %s", conf->input, rd_kafka_err2str(rerr));
		goto fail;
	}
	return e;
fail:
	eos_destroy(e);
	return NULL;
}

static void update_lag(struct eos *e)
{
	rd_kafka_topic_partition_list_t *pos = NULL;
	if (rd_kafka_assignment(e->consumer, &pos) || !pos)
		return;
	rd_kafka_position(e->consumer, pos);
	/* Until a partition's first message after an assignment the position is
	 * unknown: then the committed offset is where it stands. */
	int unknown = 0;
	for (int i = 0; i < pos->cnt; i++)
		unknown |= pos->elems[i].offset < 0;
	if (unknown) {
		rd_kafka_topic_partition_list_t *com = rd_kafka_topic_partition_list_copy(pos);
		if (rd_kafka_committed(e->consumer, com, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR)
			for (int i = 0; i < pos->cnt; i++)
				if (pos->elems[i].offset < 0)
					pos->elems[i].offset = com->elems[i].offset;
		rd_kafka_topic_partition_list_destroy(com);
	}
	int64_t lag = 0;
	for (int i = 0; i < pos->cnt; i++) {
		int64_t lo, hi;
		if (rd_kafka_get_watermark_offsets(e->consumer, pos->elems[i].topic, pos->elems[i].partition,
		                                   &lo, &hi) || hi < 0) {
			lag = -1;
			break;
		}
		int64_t at = pos->elems[i].offset >= 0 ? pos->elems[i].offset : lo;
		lag += hi > at ? hi - at : 0;
	}
	rd_kafka_topic_partition_list_destroy(pos);
	pthread_mutex_lock(&e->stats_lock);
	e->stats.lag = lag;
	pthread_mutex_unlock(&e->stats_lock);
}

int eos_run(struct eos *e, volatile sig_atomic_t *run)
{
	int64_t last_lag = 0;
	while (*run && !e->fatal) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(e->consumer, 100);
		rd_kafka_poll(e->producer, 0);
		if (e->fatal)
			break;
		if (m) {
			if (m->err) {
				if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
					fprintf(stderr, "%% %s: consumer: %s\n", e->conf.name,
					        rd_kafka_message_errstr(m));
				if (m->err == RD_KAFKA_RESP_ERR__FATAL)
					set_fatal(e, "consumer", rd_kafka_message_errstr(m));
			} else if (txn_begin(e) == 0) {
				count(e, &e->stats.consumed, 1);
				if (e->ops->process(e->ctx, e, m))
					set_fatal(e, "process", "the transform failed");
			}
			rd_kafka_message_destroy(m);
		}
		if (!e->fatal && e->ops->tick && e->ops->tick(e->ctx, e))
			set_fatal(e, "tick", "the transform failed");
		if (e->fatal)
			break;
		if (e->txn_open && (now_ms() - e->txn_started_ms >= e->conf.commit_interval_ms ||
		                    (e->conf.max_txn_messages > 0 && e->txn_messages >= e->conf.max_txn_messages)))
			txn_commit(e);
		if (now_ms() - last_lag >= 1000) {
			update_lag(e);
			last_lag = now_ms();
		}
	}
	if (!e->fatal)
		txn_commit(e);
	if (e->fatal && e->txn_open) {
		/* Nothing of a failed transaction may become visible. */
		rd_kafka_error_t *error = rd_kafka_abort_transaction(e->producer, 10000);
		if (error)
			rd_kafka_error_destroy(error);
		e->txn_open = 0;
	}
	return e->fatal ? -1 : 0;
}

static int produce(struct eos *e, const char *topic, int32_t partition, const void *key,
                   size_t key_len, void *value, size_t len, const rd_kafka_headers_t *headers,
                   int flags)
{
	if (txn_begin(e))
		return -1;
	for (;;) {
		rd_kafka_headers_t *hdrs = headers ? rd_kafka_headers_copy(headers) : NULL;
		rd_kafka_resp_err_t err;
		if (hdrs)
			err = rd_kafka_producev(e->producer, RD_KAFKA_V_TOPIC(topic),
			                        RD_KAFKA_V_PARTITION(partition),
			                        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(value, len),
			                        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(flags),
			                        RD_KAFKA_V_END);
		else
			err = rd_kafka_producev(e->producer, RD_KAFKA_V_TOPIC(topic),
			                        RD_KAFKA_V_PARTITION(partition),
			                        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(value, len),
			                        RD_KAFKA_V_MSGFLAGS(flags), RD_KAFKA_V_END);
		if (!err)
			break;
		/* librdkafka takes the headers only on success */
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			rd_kafka_poll(e->producer, 50);
			continue;
		}
		set_fatal(e, "produce", rd_kafka_err2str(err));
		return -1;
	}
	e->txn_messages++;
	count(e, &e->stats.produced, 1);
	return 0;
}

int eos_produce(struct eos *e, const char *topic, int32_t partition, const void *key,
                size_t key_len, const void *value, size_t len, const rd_kafka_headers_t *headers)
{
	return produce(e, topic, partition, key, key_len, (void *)value, len, headers,
	               RD_KAFKA_MSG_F_COPY);
}

int eos_produce_owned(struct eos *e, const char *topic, int32_t partition, const void *key,
                      size_t key_len, void *value, size_t len, const rd_kafka_headers_t *headers)
{
	int rc = produce(e, topic, partition, key, key_len, value, len, headers, RD_KAFKA_MSG_F_FREE);
	if (rc)
		free(value);
	return rc;
}

void eos_get_stats(struct eos *e, struct eos_stats *st)
{
	pthread_mutex_lock(&e->stats_lock);
	*st = e->stats;
	pthread_mutex_unlock(&e->stats_lock);
}

const char *eos_errstr(const struct eos *e)
{
	return e->errstr;
}

rd_kafka_t *eos_consumer(struct eos *e)
{
	return e->consumer;
}

void eos_destroy(struct eos *e)
{
	if (!e)
		return;
	if (e->consumer) {
		rd_kafka_consumer_close(e->consumer);
		rd_kafka_destroy(e->consumer);
	}
	if (e->producer) {
		rd_kafka_flush(e->producer, 10000);
		rd_kafka_destroy(e->producer);
	}
	pthread_mutex_destroy(&e->stats_lock);
	free(e);
}
