/* bench/passthrough.c - the sampler's baseline: a bare consume->produce loop on librdkafka
 *
 * What tracesift-sampler's selector is with validation, classification,
 * the sampling decision and item building taken out: one consumer in a group
 * and one producer, the same librdkafka properties as sampler/eos.c, and every
 * consumed message copied (key, value) to the output topic.  With
 * transactions (the default) it is librdkafka's transactions example:
 * enable.auto.commit=false, read_committed, a transaction opened at the first
 * message, and every --commit-ms the consumer's positions sent with
 * send_offsets_to_transaction() and the transaction committed (also after
 * 50000 messages, as the sampler does).  With --no-txn it is a plain
 * idempotent producer and auto commit every --commit-ms, at least once: a
 * record's offset is stored for the commit when its copy is delivered
 * (enable.auto.offset.store=false), so committed offsets, here as with
 * transactions, never run ahead of what reached the output topic.
 *
 * It is not a benchmark itself (bench/run.sh does not run it): bench/sampler.c
 * runs it.  It exits by itself, 0, once every input partition is committed up
 * to the high watermark it saw when it was assigned the partitions (fixed
 * input: nothing is produced to it while it runs), or on SIGTERM/SIGINT after
 * committing.  Its last stderr line says what it did:
 *   % passthrough: consumed N produced N transactions T aborted A
 *
 * usage: passthrough -b BROKERS -i INPUT -o OUTPUT -g GROUP
 *                    [-t TRANSACTIONAL_ID | --no-txn] [--commit-ms MS] [-X prop=value]...
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define TXN_TIMEOUT_MS 30000
#define MAX_TXN_MESSAGES 50000
#define MAX_PARTITIONS 256  /* of the input, without transactions */

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
	(void)sig;
	run = 0;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%% ERROR: passthrough: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conf_set(rd_kafka_conf_t *c, const char *name, const char *value)
{
	char err[512];
	if (rd_kafka_conf_set(c, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		die("property '%s': %s", name, err);
}

struct pt {
	rd_kafka_t *consumer, *producer;
	const char *output;
	int txn;              /* transactions on */
	int txn_open;
	int64_t txn_started;
	int txn_messages;
	uint64_t consumed, produced, committed, aborted;
	rd_kafka_topic_partition_list_t *ends; /* high watermarks at assignment */
	const char *input;
	int64_t delivered[MAX_PARTITIONS];    /* without transactions: next offset to store */
	int stored_dirty;
};

static void fatal_error(const char *what, rd_kafka_error_t *error)
{
	die("%s: %s", what, rd_kafka_error_string(error));
}

/* Rewinds the consumer to the committed offsets (after an abort). */
static void rewind_consumer(struct pt *p)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(p->consumer, &parts) || !parts)
		die("rewind: no assignment");
	if (parts->cnt && !rd_kafka_committed(p->consumer, parts, 30000)) {
		for (int i = 0; i < parts->cnt; i++)
			if (parts->elems[i].offset < 0)
				parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
		rd_kafka_error_t *error = rd_kafka_seek_partitions(p->consumer, parts, 30000);
		if (error)
			fatal_error("rewind", error);
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

static void txn_abort(struct pt *p, const char *why)
{
	fprintf(stderr, "%% passthrough: aborting transaction: %s\n", why);
	rd_kafka_error_t *error = rd_kafka_abort_transaction(p->producer, -1);
	if (error)
		fatal_error("abort transaction", error);
	p->txn_open = 0;
	p->aborted++;
	rewind_consumer(p);
}

/* The error of a transactional call: 0 retry, 1 aborted; fatal ones exit. */
static int txn_error(struct pt *p, const char *what, rd_kafka_error_t *error)
{
	int rc = 0;
	if (rd_kafka_error_txn_requires_abort(error)) {
		txn_abort(p, rd_kafka_error_string(error));
		rc = 1;
	} else if (!rd_kafka_error_is_retriable(error)) {
		fatal_error(what, error);
	}
	rd_kafka_error_destroy(error);
	return rc;
}

static void txn_commit(struct pt *p)
{
	if (!p->txn_open)
		return;
	rd_kafka_topic_partition_list_t *pos = NULL;
	if (rd_kafka_assignment(p->consumer, &pos))
		die("assignment failed");
	rd_kafka_position(p->consumer, pos);
	rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(pos->cnt);
	for (int i = 0; i < pos->cnt; i++)
		if (pos->elems[i].offset >= 0)
			rd_kafka_topic_partition_list_add(offsets, pos->elems[i].topic,
			                                  pos->elems[i].partition)->offset = pos->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(pos);
	while (offsets->cnt > 0) {
		rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(p->consumer);
		rd_kafka_error_t *error = rd_kafka_send_offsets_to_transaction(p->producer, offsets, md, -1);
		rd_kafka_consumer_group_metadata_destroy(md);
		if (!error)
			break;
		if (txn_error(p, "send offsets to transaction", error)) {
			rd_kafka_topic_partition_list_destroy(offsets);
			return;
		}
	}
	rd_kafka_topic_partition_list_destroy(offsets);
	for (;;) {
		rd_kafka_error_t *error = rd_kafka_commit_transaction(p->producer, -1);
		if (!error)
			break;
		if (txn_error(p, "commit transaction", error))
			return;
	}
	p->txn_open = 0;
	p->committed++;
}

static void txn_begin(struct pt *p)
{
	if (!p->txn || p->txn_open)
		return;
	rd_kafka_error_t *error = rd_kafka_begin_transaction(p->producer);
	if (error)
		fatal_error("begin transaction", error);
	p->txn_open = 1;
	p->txn_started = now_ms();
	p->txn_messages = 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct pt *p = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		/* Where the fixed input ends: the high watermark of each partition. */
		if (p->ends)
			rd_kafka_topic_partition_list_destroy(p->ends);
		p->ends = rd_kafka_topic_partition_list_copy(parts);
		for (int i = 0; i < p->ends->cnt; i++) {
			int64_t lo, hi;
			rd_kafka_topic_partition_t *e = &p->ends->elems[i];
			if (rd_kafka_query_watermark_offsets(rk, e->topic, e->partition, &lo, &hi, 10000))
				die("cannot read the input's high watermarks");
			e->offset = hi;
		}
		rd_kafka_assign(rk, parts);
		return;
	}
	if (p->txn_open) {
		if (rd_kafka_assignment_lost(rk))
			txn_abort(p, "assignment lost");
		else
			txn_commit(p);
	}
	rd_kafka_assign(rk, NULL);
}

/* Whether every assigned partition is committed up to its end (fixed input). */
static int all_committed(struct pt *p)
{
	if (!p->ends || p->ends->cnt == 0)
		return 0;
	rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(p->ends);
	int done = !rd_kafka_committed(p->consumer, c, 10000);
	for (int i = 0; done && i < c->cnt; i++)
		done = c->elems[i].offset >= p->ends->elems[i].offset ||
		       (p->ends->elems[i].offset == 0 && c->elems[i].offset < 0);
	rd_kafka_topic_partition_list_destroy(c);
	return done;
}

/* Whether the consumer's position reached the end of every partition. */
static int all_consumed(struct pt *p)
{
	if (!p->ends || p->ends->cnt == 0)
		return 0;
	rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(p->ends);
	rd_kafka_position(p->consumer, c);
	int done = 1;
	for (int i = 0; done && i < c->cnt; i++)
		done = p->ends->elems[i].offset == 0 || c->elems[i].offset >= p->ends->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(c);
	return done;
}

static void produce(struct pt *p, const rd_kafka_message_t *m)
{
	txn_begin(p);
	/* Without transactions the delivery report needs the input position:
	 * (offset << 8) | partition. */
	void *where = (void *)(uintptr_t)((uint64_t)m->offset << 8 | (uint64_t)(m->partition & 0xff));
	if (!p->txn && (m->partition < 0 || m->partition >= MAX_PARTITIONS))
		die("input partition %d: at most %d partitions without transactions", (int)m->partition,
		    MAX_PARTITIONS);
	for (;;) {
		rd_kafka_resp_err_t err = rd_kafka_producev(
			p->producer, RD_KAFKA_V_TOPIC(p->output), RD_KAFKA_V_KEY(m->key, m->key_len),
			RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_OPAQUE(where), RD_KAFKA_V_END);
		if (!err)
			break;
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			die("produce: %s", rd_kafka_err2str(err));
		rd_kafka_poll(p->producer, 50);
	}
	p->produced++;
	p->txn_messages++;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct pt *p = opaque;
	/* With transactions a failed delivery fails the commit; without, say it. */
	if (m->err) {
		fprintf(stderr, "%% passthrough: delivery failed: %s\n", rd_kafka_err2str(m->err));
		return;
	}
	if (!p->txn) {
		uint64_t where = (uint64_t)(uintptr_t)m->_private;
		int part = (int)(where & 0xff);
		int64_t next = (int64_t)(where >> 8) + 1;
		if (next > p->delivered[part]) {
			p->delivered[part] = next;
			p->stored_dirty = 1;
		}
	}
}

/* Without transactions: stores the delivered positions for the next auto commit. */
static void store_delivered(struct pt *p)
{
	if (!p->stored_dirty)
		return;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	for (int i = 0; i < MAX_PARTITIONS; i++)
		if (p->delivered[i] > 0)
			rd_kafka_topic_partition_list_add(l, p->input, i)->offset = p->delivered[i];
	rd_kafka_resp_err_t err = rd_kafka_offsets_store(p->consumer, l);
	if (err)
		fprintf(stderr, "%% passthrough: storing offsets: %s\n", rd_kafka_err2str(err));
	rd_kafka_topic_partition_list_destroy(l);
	p->stored_dirty = 0;
}

int main(int argc, char **argv)
{
	const char *brokers = "127.0.0.1:9092", *input = NULL, *group = NULL, *txn_id = NULL;
	const char *commit_ms = "100";
	struct pt p = { .txn = 1 };
	rd_kafka_conf_t *pc = rd_kafka_conf_new(), *cc = rd_kafka_conf_new();
	const char **xprops = calloc((size_t)argc, sizeof(*xprops));
	int nx = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--no-txn")) {
			p.txn = 0;
		} else if (i + 1 < argc && a[0] == '-') {
			const char *v = argv[++i];
			if (!strcmp(a, "-b"))
				brokers = v;
			else if (!strcmp(a, "-i"))
				input = v;
			else if (!strcmp(a, "-o"))
				p.output = v;
			else if (!strcmp(a, "-g"))
				group = v;
			else if (!strcmp(a, "-t"))
				txn_id = v;
			else if (!strcmp(a, "--commit-ms"))
				commit_ms = v;
			else if (!strcmp(a, "-X"))
				xprops[nx++] = v;
			else
				die("unknown option '%s'", a);
		} else {
			die("unknown option or missing value '%s'", a);
		}
	}
	p.input = input;
	if (!input || !p.output || !group || (p.txn && !txn_id)) {
		fprintf(stderr, "usage: passthrough -b BROKERS -i INPUT -o OUTPUT -g GROUP\n"
		                "                   [-t TRANSACTIONAL_ID | --no-txn] [--commit-ms MS] [-X prop=value]...\n");
		return 2;
	}
	int interval = atoi(commit_ms);
	char txn_timeout[16];
	snprintf(txn_timeout, sizeof(txn_timeout), "%d", TXN_TIMEOUT_MS);

	/* The producer: sampler/eos.c's properties. */
	conf_set(pc, "bootstrap.servers", brokers);
	conf_set(pc, "compression.codec", "zstd");
	conf_set(pc, "linger.ms", "10");
	conf_set(pc, "message.max.bytes", "4194304");
	if (p.txn) {
		conf_set(pc, "transaction.timeout.ms", txn_timeout);
		conf_set(pc, "transactional.id", txn_id);
	}
	conf_set(pc, "enable.idempotence", "true");
	conf_set(pc, "acks", "all");
	/* The consumer: sampler/eos.c's, except the commits without transactions. */
	conf_set(cc, "bootstrap.servers", brokers);
	conf_set(cc, "auto.offset.reset", "earliest");
	conf_set(cc, "partition.assignment.strategy", "range,roundrobin");
	conf_set(cc, "session.timeout.ms", "10000");
	conf_set(cc, "group.id", group);
	conf_set(cc, "isolation.level", "read_committed");
	conf_set(cc, "enable.partition.eof", "false");
	conf_set(cc, "enable.auto.commit", p.txn ? "false" : "true");
	if (!p.txn) {
		conf_set(cc, "auto.commit.interval.ms", commit_ms);
		conf_set(cc, "enable.auto.offset.store", "false");
	}
	for (int i = 0; i < nx; i++) {
		char *kv = strdup(xprops[i]), *eq = strchr(kv, '=');
		if (!eq)
			die("-X: expected name=value, got '%s'", xprops[i]);
		*eq = '\0';
		conf_set(pc, kv, eq + 1);
		conf_set(cc, kv, eq + 1);
		free(kv);
	}
	rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
	rd_kafka_conf_set_opaque(pc, &p);
	rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
	rd_kafka_conf_set_opaque(cc, &p);
	char err[512];
	if (!(p.producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err))))
		die("producer: %s", err);
	if (!(p.consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err))))
		die("consumer: %s", err);
	rd_kafka_poll_set_consumer(p.consumer);
	if (p.txn) {
		rd_kafka_error_t *error = rd_kafka_init_transactions(p.producer, 60000);
		if (error)
			fatal_error("init transactions", error);
	}
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, input, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t rerr = rd_kafka_subscribe(p.consumer, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (rerr)
		die("subscribe to '%s': %s", input, rd_kafka_err2str(rerr));

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	int at_end = 0;
	while (run) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(p.consumer, 100);
		rd_kafka_poll(p.producer, 0);
		if (!p.txn)
			store_delivered(&p);
		if (m) {
			if (!m->err) {
				p.consumed++;
				produce(&p, m);
			} else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
				die("consumer: %s", rd_kafka_message_errstr(m));
			} else {
				fprintf(stderr, "%% passthrough: consumer: %s\n", rd_kafka_message_errstr(m));
			}
			rd_kafka_message_destroy(m);
		}
		if (p.txn) {
			if (p.txn_open && (now_ms() - p.txn_started >= interval ||
			                   p.txn_messages >= MAX_TXN_MESSAGES)) {
				txn_commit(&p);
				if (all_consumed(&p) && all_committed(&p))
					break;
			}
		} else if (!m && !at_end && all_consumed(&p)) {
			/* Without transactions: deliver everything, then commit. */
			rd_kafka_flush(p.producer, 30000);
			store_delivered(&p);
			rd_kafka_commit(p.consumer, NULL, 0);
			at_end = all_committed(&p);
			if (at_end)
				break;
		}
	}
	if (p.txn)
		txn_commit(&p);
	rd_kafka_flush(p.producer, 30000);
	if (!p.txn) {
		store_delivered(&p);
		rd_kafka_commit(p.consumer, NULL, 0);
	}
	int outq = rd_kafka_outq_len(p.producer);
	if (outq)
		fprintf(stderr, "%% passthrough: %d messages not delivered\n", outq);
	fprintf(stderr, "%% passthrough: consumed %llu produced %llu transactions %llu aborted %llu\n",
	        (unsigned long long)p.consumed, (unsigned long long)p.produced,
	        (unsigned long long)p.committed, (unsigned long long)p.aborted);
	rd_kafka_consumer_close(p.consumer);
	rd_kafka_destroy(p.consumer);
	rd_kafka_destroy(p.producer);
	if (p.ends)
		rd_kafka_topic_partition_list_destroy(p.ends);
	free(xprops);
	return outq ? 1 : 0;
}
