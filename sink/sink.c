/* sink/sink.c - tracesift-sink: insert monitoring items into the dataset store, exactly once
 *
 * The store, not Kafka, knows where to resume: every commit records the next
 * offset of each partition together with the data (core/store.h), and on
 * start the consumer is assigned every partition at the offsets the store
 * holds.  Kafka's group offsets are never read.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "item.h"
#include "kclient.h"
#include "kvfile.h"
#include "opik.h"
#include "record.h"
#include "store.h"
#include "tstime.h"

/* The consumer's fetch size: librdkafka 2.0.2 stops fetching a partition
 * whose local queue is over queued.max.messages.kbytes (64 MiB) and looks at
 * it again only about a second later; one 8 MiB fetch of zstd items is about
 * 90 MB once decompressed, so 8 MiB stalled the sink about 1 s per fetch.
 * Messages larger than this are still fetched whole (the broker returns at
 * least one batch).  See docs/store.md. */
#define SINK_FETCH_BYTES "1048576"
/* and the local queue large enough that 1 MiB fetches are not held back either:
 * bench/RESULTS.md "Sink" measured 2x the items/s with it (peak RSS +76 MB). */
#define SINK_QUEUE_KBYTES "262144"

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
	(void)sig;
	run = 0;
}

struct opts {
	const char *brokers, *topic, *dlq, *store_dir, *archive;
	const char *target, *opik_url, *opik_workspace, *opik_key_env, *opik_project;
	int commit_interval_ms, commit_items, stats_interval_ms, verbosity;
	struct store_limits lim;
	struct kclient_user x[128]; /* kafka.* lines of the config file, then -X */
	int nx;
};

struct counters {
	uint64_t consumed, items, duplicates, triggers, dead, commits, commit_failures;
};

static void usage(FILE *out)
{
	fprintf(out,
	"usage: tracesift-sink [-c FILE] [-b BROKERS] [-t TOPIC] [--store DIR] [--archive DATASET]\n"
	"                      [-X key=value]... [options]\n"
	"\n"
	"Consumes dataset items (what tracesift-sampler writes to llm.monitoring) and\n"
	"inserts each into the dataset store exactly once: the consumed offsets are\n"
	"committed atomically with the data, and on restart the sink resumes from what\n"
	"the store says.  Items are deduplicated by id.  Malformed messages go to the\n"
	"dead-letter topic with a 'ts-reason' header.  With --archive DATASET it stores\n"
	"every trace record of llm.traces (or -t) in DATASET instead, for audits beyond\n"
	"Kafka's retention.  See docs/store.md.\n"
	"\n"
	"  -c FILE                  config file: 'name = value' lines, name a long option\n"
	"                           without dashes (store, commit-interval-ms, ...), brokers,\n"
	"                           topic, or kafka.PROP for a librdkafka property\n"
	"  -b BROKERS               bootstrap servers (env TRACESIFT_BROKERS; default 127.0.0.1:9092)\n"
	"  -t TOPIC                 topic to consume (default llm.monitoring, or llm.traces with --archive)\n"
	"  --store DIR              the dataset store (env TRACESIFT_STORE; default ./tracesift-data)\n"
	"  --archive DATASET        archive raw trace records into DATASET\n"
	"  --dlq TOPIC              dead-letter topic (default llm.monitoring.dlq, or llm.traces.dlq\n"
	"                           with --archive)\n"
	"  --commit-interval-ms N   commit this often when something was read (default 100)\n"
	"  --commit-items N         and whenever this many items are staged (default 20000)\n"
	"  --segment-items N        rotate segments after N items (default 100000)\n"
	"  --segment-bytes N        ... after N compressed bytes (default 67108864)\n"
	"  --segment-age-s N        ... after N seconds (default 3600)\n"
	"  --zstd-level N           compression level (default 3)\n"
	"  --stats-interval-ms N    a JSON stats line on stderr this often (default 5000, 0 off)\n"
	"  -X key=value             a librdkafka property (TLS, SASL, fetch size, ...); see below\n"
	"  --target store|opik      where items go (default store).  opik: Opik's REST API\n"
	"                           (docs/opik.md); the store then keeps only the offsets\n"
	"  --opik-url URL           Opik's API root, e.g. http://localhost:5173/api\n"
	"  --opik-workspace NAME    sent as Comet-Workspace\n"
	"  --opik-api-key-env VAR   the environment variable holding the API key\n"
	"                           (default OPIK_API_KEY; the key is never printed)\n"
	"  --opik-project NAME      Opik project of the datasets\n"
	"  -q / -v                  quieter / more messages\n"
	"\n"
	"Precedence: flags, then environment (TRACESIFT_BROKERS, TRACESIFT_STORE), then\n"
	"the config file, then defaults.\n"
	"\n"
	"Kafka properties: the sink's defaults first, then kafka.* lines of the config\n"
	"file, then -X, so -X changes any of these defaults:\n"
	"  consumer  fetch.message.max.bytes=" SINK_FETCH_BYTES " queued.max.messages.kbytes=" SINK_QUEUE_KBYTES "\n"
	"            auto.offset.reset=earliest\n"
	"            group.id=tracesift-sink enable.partition.eof=false\n"
	"  producer  compression.codec=zstd message.max.bytes=8388608 (dead letters)\n"
	"Exactly-once needs these, set last; a -X or kafka.* that changes one is refused:\n"
	"  consumer  isolation.level=read_committed enable.auto.commit=false\n"
	"            enable.auto.offset.store=false\n"
	"  producer  enable.idempotence=true acks=all\n"
	"\n"
	"Exit status: 0 after SIGTERM/SIGINT (what was read is committed first), 1 on\n"
	"a fatal error, 2 on a usage error or a refused Kafka property.  When the store\n"
	"cannot be written (disk full, I/O error) the sink stops consuming, says why, and\n"
	"retries every second; it records no offset beyond durable data.\n");
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_num(const char *opt, const char *v, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max) {
		fprintf(stderr, "%% ERROR: %s: expected a number from %ld to %ld, got '%s'\n", opt, min, max, v);
		return -1;
	}
	*out = n;
	return 0;
}

/* While the config file is read, its path: its kafka.* lines come through -X. */
static const char *loading_file;

/* One option and its value, as a flag ("-b", "--store") names it.  v must
 * live as long as o (and is written to for -X). */
static int set_option(struct opts *o, const char *a, char *v)
{
	long n;
	if (!strcmp(a, "-b")) o->brokers = v;
	else if (!strcmp(a, "-t")) o->topic = v;
	else if (!strcmp(a, "--store")) o->store_dir = v;
	else if (!strcmp(a, "--archive")) o->archive = v;
	else if (!strcmp(a, "--dlq")) o->dlq = v;
	else if (!strcmp(a, "--target")) o->target = v;
	else if (!strcmp(a, "--opik-url")) o->opik_url = v;
	else if (!strcmp(a, "--opik-workspace")) o->opik_workspace = v;
	else if (!strcmp(a, "--opik-api-key-env")) o->opik_key_env = v;
	else if (!strcmp(a, "--opik-project")) o->opik_project = v;
	else if (!strcmp(a, "-X")) {
		char *eq = strchr(v, '=');
		if (!eq || eq == v || o->nx == 128) {
			fprintf(stderr, "%% ERROR: -X: expected key=value, got '%s'\n", v);
			return -1;
		}
		*eq = '\0';
		o->x[o->nx++] = (struct kclient_user){ .name = v, .value = eq + 1, .file = loading_file };
	} else if (!strcmp(a, "--commit-interval-ms")) {
		if (parse_num(a, v, 10, 600000, &n)) return -1;
		o->commit_interval_ms = (int)n;
	} else if (!strcmp(a, "--commit-items")) {
		if (parse_num(a, v, 1, 10000000, &n)) return -1;
		o->commit_items = (int)n;
	} else if (!strcmp(a, "--segment-items")) {
		if (parse_num(a, v, 1, 1000000000, &n)) return -1;
		o->lim.segment_items = n;
	} else if (!strcmp(a, "--segment-bytes")) {
		if (parse_num(a, v, 4096, 1L << 40, &n)) return -1;
		o->lim.segment_bytes = n;
	} else if (!strcmp(a, "--segment-age-s")) {
		if (parse_num(a, v, 1, 86400 * 365, &n)) return -1;
		o->lim.segment_age_s = (int)n;
	} else if (!strcmp(a, "--zstd-level")) {
		if (parse_num(a, v, 1, 19, &n)) return -1;
		o->lim.zstd_level = (int)n;
	} else if (!strcmp(a, "--stats-interval-ms")) {
		if (parse_num(a, v, 0, 3600000, &n)) return -1;
		o->stats_interval_ms = (int)n;
	} else {
		fprintf(stderr, "%% ERROR: unknown option '%s' (see --help)\n", a);
		return -1;
	}
	return 0;
}

/* Config file values, kept for the life of the process. */
static struct kvfile_values file_values;
static const char *conf_path;

/* One "name = value" line of a config file as the option it names. */
static int set_from_file(void *ctx, const char *name, const char *value, char *errstr, size_t size)
{
	struct opts *o = ctx;
	char opt[128];
	char *keep = kvfile_option(&file_values, name, value, opt, sizeof(opt), errstr, size);
	if (!keep)
		return -1;
	loading_file = conf_path;
	int bad = set_option(o, opt, keep);
	loading_file = NULL;
	if (bad) {
		snprintf(errstr, size, "bad setting '%s'", name);
		return -1;
	}
	return 0;
}

/* A config file: "name = value" lines where name is a long option without
 * its dashes ("store", "commit-interval-ms"), or brokers, topic, and
 * kafka.PROP for a librdkafka property. */
static int load_file(struct opts *o, const char *path)
{
	char err[1024];
	conf_path = path;
	if (kvfile_read(path, set_from_file, o, err, sizeof(err))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		return -1;
	}
	return 0;
}

/* Precedence: flags, then environment (TRACESIFT_BROKERS, TRACESIFT_STORE),
 * then the config file (-c), then defaults. */
static int parse_args(struct opts *o, int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "-c") && load_file(o, argv[i + 1]))
			return -1;
	const char *env_b = getenv("TRACESIFT_BROKERS"), *env_s = getenv("TRACESIFT_STORE");
	if (env_b && *env_b)
		o->brokers = env_b;
	if (env_s && *env_s)
		o->store_dir = env_s;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "-q")) {
			o->verbosity = 0;
		} else if (!strcmp(a, "-v")) {
			o->verbosity = 2;
		} else if (i + 1 >= argc || a[0] != '-') {
			fprintf(stderr, "%% ERROR: unknown argument or missing value '%s' (see --help)\n", a);
			return -1;
		} else if (!strcmp(a, "-c")) {
			i++;
		} else if (set_option(o, a, argv[++i])) {
			return -1;
		}
	}
	return 0;
}

static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* Kafka properties (core/kclient.h): the sink's tunable defaults, then what
 * the user gives (kafka.* lines of the config file, then -X), then the few
 * that exactly-once depends on.  -X can change the first kind; the last kind
 * it cannot, and check_user_props() refuses a -X that tries. */
static const struct kclient_prop consumer_tune[] = {
	/* a stored offset that retention has deleted: the oldest still there */
	{ "auto.offset.reset", "earliest", NULL },
	{ "group.id", "tracesift-sink", NULL },
	{ "enable.partition.eof", "false", NULL },
	{ "fetch.message.max.bytes", SINK_FETCH_BYTES, NULL },
	{ "queued.max.messages.kbytes", SINK_QUEUE_KBYTES, NULL },
};
static const struct kclient_prop consumer_must[] = {
	{ "isolation.level", "read_committed", "items of aborted transactions must not be stored" },
	{ "enable.auto.commit", "false", "the store records where to resume, never Kafka's group offsets" },
	{ "enable.auto.offset.store", "false", "the store records where to resume, never Kafka's group offsets" },
};
static const struct kclient_prop producer_tune[] = {
	{ "compression.codec", "zstd", NULL },
	{ "message.max.bytes", "8388608", NULL },
};
static const struct kclient_prop producer_must[] = {
	{ "enable.idempotence", "true", "a dead letter must be written once and durably before its offset is stored" },
	{ "acks", "all", "a dead letter must be durable before its offset is stored" },
};
#define NPROPS(a) (int)(sizeof(a) / sizeof((a)[0]))
static const struct kclient_tables consumer_props = {
	"the sink's consumer", consumer_tune, NPROPS(consumer_tune), consumer_must, NPROPS(consumer_must)
};
static const struct kclient_tables producer_props = {
	"the sink's dead-letter producer", producer_tune, NPROPS(producer_tune), producer_must, NPROPS(producer_must)
};

/* Refuses, before anything starts, a user property librdkafka does not take
 * or one that would change what exactly-once depends on. */
static int check_user_props(const struct opts *o)
{
	char err[2048];
	if (kclient_check(&consumer_props, o->x, o->nx, err, sizeof(err)) ||
	    kclient_check(&producer_props, o->x, o->nx, err, sizeof(err))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		return -1;
	}
	return 0;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, const struct opts *o, char *errstr, size_t size)
{
	int consumer = type == RD_KAFKA_CONSUMER;
	rd_kafka_conf_t *conf = kclient_conf_new(consumer ? &consumer_props : &producer_props, o->brokers,
	                                         o->x, o->nx, errstr, size);
	if (!conf)
		return NULL;
	if (!consumer)
		rd_kafka_conf_set_dr_msg_cb(conf, on_dlq_delivery);
	return kclient_new(type, conf, errstr, size);
}

/* Assigns every partition of the topic at the offset the store recorded. */
static int assign_from_store(rd_kafka_t *c, struct store_writer *w, const char *topic,
                             int *nparts, char *errstr, size_t size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, topic, NULL);
	rd_kafka_resp_err_t err = rd_kafka_metadata(c, 0, rkt, &md, 15000);
	rd_kafka_topic_destroy(rkt);
	if (err || md->topic_cnt != 1 || md->topics[0].err) {
		snprintf(errstr, size, "topic '%s': %s", topic,
		         rd_kafka_err2str(err ? err : md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
		if (md)
			rd_kafka_metadata_destroy(md);
		return -1;
	}
	int n = md->topics[0].partition_cnt;
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++) {
		int32_t p = md->topics[0].partitions[i].id;
		int64_t off = store_offset(w, topic, p);
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset = off >= 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
	}
	rd_kafka_metadata_destroy(md);
	err = rd_kafka_assign(c, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (err) {
		snprintf(errstr, size, "assign '%s': %s", topic, rd_kafka_err2str(err));
		return -1;
	}
	*nparts = n;
	return 0;
}

static int dead_letter(rd_kafka_t *p, const char *dlq, const rd_kafka_message_t *m,
                       const char *reason, const char *detail)
{
	char part[16], off[24];
	snprintf(part, sizeof(part), "%d", (int)m->partition);
	snprintf(off, sizeof(off), "%lld", (long long)m->offset);
	rd_kafka_headers_t *h = rd_kafka_headers_new(5);
	rd_kafka_header_add(h, "ts-reason", -1, reason, -1);
	rd_kafka_header_add(h, "ts-error", -1, detail, -1);
	rd_kafka_header_add(h, "ts-source-topic", -1, rd_kafka_topic_name(m->rkt), -1);
	rd_kafka_header_add(h, "ts-source-partition", -1, part, -1);
	rd_kafka_header_add(h, "ts-source-offset", -1, off, -1);
	rd_kafka_resp_err_t err;
	while ((err = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(dlq), RD_KAFKA_V_KEY(m->key, m->key_len),
	                                RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_HEADERS(h),
	                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
	       RD_KAFKA_RESP_ERR__QUEUE_FULL)
		rd_kafka_poll(p, 50);
	if (err) {
		rd_kafka_headers_destroy(h);
		fprintf(stderr, "%% ERROR: dead-letter topic '%s': %s\n", dlq, rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

/* Items waiting for Opik, per dataset (the HTTP target). */
struct outbox {
	char *dataset;
	char **items;
	size_t *lens;
	int n, cap;
};

static struct outbox *outboxes;
static int noutboxes;
static struct opik *opik;

static int outbox_add(const char *dataset, const char *json, size_t len)
{
	struct outbox *b = NULL;
	for (int i = 0; i < noutboxes && !b; i++)
		if (!strcmp(outboxes[i].dataset, dataset))
			b = &outboxes[i];
	if (!b) {
		struct outbox *nv = realloc(outboxes, sizeof(*nv) * (size_t)(noutboxes + 1));
		if (!nv)
			return -1;
		outboxes = nv;
		b = &outboxes[noutboxes];
		memset(b, 0, sizeof(*b));
		if (!(b->dataset = strdup(dataset)))
			return -1;
		noutboxes++;
	}
	if (b->n == b->cap) {
		int cap = b->cap ? b->cap * 2 : 256;
		char **ni = realloc(b->items, sizeof(*ni) * (size_t)cap);
		if (ni)
			b->items = ni;
		size_t *nl = realloc(b->lens, sizeof(*nl) * (size_t)cap);
		if (nl)
			b->lens = nl;
		if (!ni || !nl)
			return -1;
		b->cap = cap;
	}
	if (!(b->items[b->n] = malloc(len)))
		return -1;
	memcpy(b->items[b->n], json, len);
	b->lens[b->n++] = len;
	return 0;
}

static void outbox_clear(struct outbox *b)
{
	for (int i = 0; i < b->n; i++)
		free(b->items[i]);
	b->n = 0;
}

static void outboxes_free(void)
{
	for (int i = 0; i < noutboxes; i++) {
		outbox_clear(&outboxes[i]);
		free(outboxes[i].items);
		free(outboxes[i].lens);
		free(outboxes[i].dataset);
	}
	free(outboxes);
}

/* Sends every waiting item to Opik.  0, -1 (retry later) or -2 (retrying
 * cannot help: a refused key, a malformed item). */
static int outbox_flush(void)
{
	char err[512];
	for (int i = 0; i < noutboxes; i++) {
		struct outbox *b = &outboxes[i];
		if (b->n == 0)
			continue;
		if (opik_insert(opik, b->dataset, (const char *const *)b->items, b->lens, b->n, err, sizeof(err))) {
			fprintf(stderr, "%% ERROR: opik: %s\n", err);
			return opik_retriable(opik) ? -1 : -2;
		}
		outbox_clear(b);
	}
	return 0;
}

static int dlq_failed;

static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		dlq_failed = 1;
		fprintf(stderr, "%% ERROR: dead letter not delivered: %s\n", rd_kafka_err2str(m->err));
	}
}

/* JSONL needs one line per item: in valid JSON a raw CR or LF can only be
 * whitespace between tokens, so it becomes a space.  Returns json itself
 * when there is none, else a copy in *tmp (caller frees). */
static const char *one_line(const char *json, size_t len, char **tmp)
{
	*tmp = NULL;
	if (!memchr(json, '\n', len) && !memchr(json, '\r', len))
		return json;
	if (!(*tmp = malloc(len)))
		return NULL;
	for (size_t i = 0; i < len; i++)
		(*tmp)[i] = json[i] == '\n' || json[i] == '\r' ? ' ' : json[i];
	return *tmp;
}

/* One consumed message into the store (or the dead-letter topic). */
static int handle(struct store_writer *w, rd_kafka_t *dlqp, const struct opts *o,
                  const rd_kafka_message_t *m, struct counters *n)
{
	char err[512];
	struct sink_msg msg;
	n->consumed++;
	if (!m->payload) {
		n->dead++;
		return dead_letter(dlqp, o->dlq, m, "empty", "message has no value");
	}
	if (o->archive) {
		struct rec_info info;
		enum rec_reason r = rec_validate(m->payload, m->len, NULL, &info, err, sizeof(err));
		if (r != REC_OK) {
			n->dead++;
			return dead_letter(dlqp, o->dlq, m, rec_reason_name(r), err);
		}
		char *tmp;
		const char *line = one_line(m->payload, m->len, &tmp);
		int rc = line ? store_add(w, o->archive, info.trace_id, -1, -1, line, m->len, err, sizeof(err)) : -1;
		free(tmp);
		if (!line) {
			fprintf(stderr, "%% ERROR: out of memory\n");
			return -1;
		}
		n->items += rc == 1;
		n->duplicates += rc == 0;
		if (rc < 0) {
			n->dead++;
			return dead_letter(dlqp, o->dlq, m, "store", err);
		}
		return 0;
	}
	if (sink_msg_parse(m->payload, m->len, &msg, err, sizeof(err))) {
		n->dead++;
		return dead_letter(dlqp, o->dlq, m, "malformed_item", err);
	}
	int rc;
	if (msg.trigger && opik) {
		rc = 0; /* Opik has no batches: the items went there, the trigger has nowhere to go */
		n->triggers++;
	} else if (msg.trigger) {
		rc = store_add_trigger(w, msg.dataset, msg.batch, msg.partial, (const char *const *)msg.ids,
		                       msg.nids, err, sizeof(err));
		n->triggers += rc >= 0;
	} else if (opik) {
		rc = outbox_add(msg.dataset, m->payload, m->len) ? -1 : 1;
		if (rc < 0)
			snprintf(err, sizeof(err), "out of memory");
		n->items += rc == 1;
	} else {
		char *tmp;
		const char *line = one_line(m->payload, m->len, &tmp);
		if (!line) {
			sink_msg_release(&msg);
			fprintf(stderr, "%% ERROR: out of memory\n");
			return -1;
		}
		rc = store_add(w, msg.dataset, msg.id, msg.batch, msg.position, line, m->len, err, sizeof(err));
		free(tmp);
		n->items += rc == 1;
		n->duplicates += rc == 0;
	}
	sink_msg_release(&msg);
	if (rc < 0) {
		n->dead++;
		return dead_letter(dlqp, o->dlq, m, "malformed_item", err);
	}
	return 0;
}

/* Dead letters first (they must not be lost once their offsets are
 * committed), then the store.  Returns 0, -1 (nothing advanced: retry), or
 * -2 (a dead letter was lost: stop without committing past it, so that a
 * restart reads it again from the store's offsets). */
static int commit(struct store_writer *w, rd_kafka_t *dlqp, const char *dlq, struct counters *n,
                  int verbosity)
{
	char err[512];
	if (rd_kafka_flush(dlqp, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR || dlq_failed) {
		fprintf(stderr, "%% ERROR: dead letters could not be delivered to '%s': stopping without "
		        "committing past them (a restart reads them again)\n", dlq);
		n->commit_failures++;
		return -2;
	}
	if (opik) {
		int r = outbox_flush();
		if (r == -2) {
			fprintf(stderr, "%% ERROR: opik refuses the items and retrying cannot help: stopping\n");
			run = 0;
		}
		if (r) {
			n->commit_failures++;
			return -1;
		}
	}
	if (store_commit(w, err, sizeof(err))) {
		fprintf(stderr, "%% ERROR: %s (not advancing; retrying)\n", err);
		n->commit_failures++;
		return -1;
	}
	n->commits++;
	if (verbosity > 1)
		fprintf(stderr, "%% committed\n");
	return 0;
}

static void pause_all(rd_kafka_t *c, int paused)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(c, &parts) || !parts)
		return;
	if (paused)
		rd_kafka_pause_partitions(c, parts);
	else
		rd_kafka_resume_partitions(c, parts);
	rd_kafka_topic_partition_list_destroy(parts);
}

static void print_stats(const struct counters *n, const struct opts *o, int failing)
{
	char ts[TSTIME_LEN];
	tstime_format(tstime_now_us(), ts);
	fprintf(stderr, "{\"ts\":\"%s\",\"store\":\"%s\",\"consumed\":%llu,\"items\":%llu,\"duplicates\":%llu,"
	        "\"triggers\":%llu,\"dead_lettered\":%llu,\"commits\":%llu,\"commit_failures\":%llu,"
	        "\"store_writable\":%s}\n",
	        ts, o->store_dir, (unsigned long long)n->consumed, (unsigned long long)n->items,
	        (unsigned long long)n->duplicates, (unsigned long long)n->triggers,
	        (unsigned long long)n->dead, (unsigned long long)n->commits,
	        (unsigned long long)n->commit_failures, failing ? "false" : "true");
}

int main(int argc, char **argv)
{
	struct opts o = { .commit_interval_ms = 100, .commit_items = 20000, .stats_interval_ms = 5000,
	                  .verbosity = 1 };
	struct counters n = { 0 };
	char err[512];
	int rc = 2, nparts = 0;
	rd_kafka_t *consumer = NULL, *dlqp = NULL;
	struct store_writer *w = NULL;

	store_limits_default(&o.lim);
	if (parse_args(&o, argc, argv)) {
		kvfile_values_release(&file_values);
		return 2;
	}
	if (!o.brokers || !*o.brokers)
		o.brokers = "127.0.0.1:9092";
	if (!o.store_dir || !*o.store_dir)
		o.store_dir = "./tracesift-data";
	if (!o.topic)
		o.topic = o.archive ? "llm.traces" : "llm.monitoring";
	if (!o.dlq)
		o.dlq = o.archive ? "llm.traces.dlq" : "llm.monitoring.dlq";
	if (check_user_props(&o)) {
		kvfile_values_release(&file_values);
		return 2;
	}
	if (o.target && strcmp(o.target, "store") && strcmp(o.target, "opik")) {
		fprintf(stderr, "%% ERROR: --target: expected store or opik, got '%s'\n", o.target);
		return 2;
	}
	if (o.target && !strcmp(o.target, "opik")) {
		if (o.archive) {
			fprintf(stderr, "%% ERROR: --archive writes to the store; it does not go with --target opik\n");
			return 2;
		}
		struct opik_conf oc;
		opik_conf_init(&oc);
		oc.base_url = o.opik_url;
		oc.workspace = o.opik_workspace;
		oc.api_key_env = o.opik_key_env ? o.opik_key_env : "OPIK_API_KEY";
		oc.project = o.opik_project;
		oc.run = &run;
		if (!o.opik_url) {
			fprintf(stderr, "%% ERROR: --target opik needs --opik-url\n");
			return 2;
		}
		if (!(opik = opik_new(&oc, err, sizeof(err)))) {
			fprintf(stderr, "%% ERROR: opik: %s\n", err);
			return 2;
		}
	}
	if (o.archive && !sink_name_valid(o.archive)) {
		fprintf(stderr, "%% ERROR: --archive: '%s' is not a dataset name ([A-Za-z0-9._-]{1,100})\n", o.archive);
		return 2;
	}

	rc = 1;
	if (!(w = store_writer_open(o.store_dir, &o.lim, err, sizeof(err)))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		goto out;
	}
	if (!(consumer = new_client(RD_KAFKA_CONSUMER, &o, err, sizeof(err))) ||
	    !(dlqp = new_client(RD_KAFKA_PRODUCER, &o, err, sizeof(err)))) {
		fprintf(stderr, "%% ERROR: kafka: %s\n", err);
		goto out;
	}
	if (assign_from_store(consumer, w, o.topic, &nparts, err, sizeof(err))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		goto out;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (o.verbosity > 0)
		fprintf(stderr, "%% sink: %s (%d partitions) -> store '%s'%s%s\n", o.topic, nparts, o.store_dir,
		        o.archive ? " dataset " : "", o.archive ? o.archive : "");

	int64_t last_commit = mono_ms(), last_stats = mono_ms(), retry_at = 0;
	uint64_t consumed_at_commit = 0;
	int failing = 0;
	rc = 0;
	while (run) {
		rd_kafka_poll(dlqp, 0);
		if (failing) {
			/* Stopped: nothing is consumed until the staged data is durable. */
			if (mono_ms() >= retry_at) {
				int c = commit(w, dlqp, o.dlq, &n, o.verbosity);
				if (c == -2) {
					rc = 1;
					break;
				}
				if (c == 0) {
					failing = 0;
					pause_all(consumer, 0);
					fprintf(stderr, "%% sink: store writable again: resumed\n");
					last_commit = mono_ms();
				} else {
					retry_at = mono_ms() + 1000;
				}
			}
			struct timespec ts = { 0, 50 * 1000000L };
			nanosleep(&ts, NULL);
		} else {
			rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 100);
			if (m) {
				if (m->err) {
					if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
						fprintf(stderr, "%% ERROR: consume: %s\n", rd_kafka_message_errstr(m));
				} else {
					if (handle(w, dlqp, &o, m, &n)) {
						rd_kafka_message_destroy(m);
						rc = 1;
						break;
					}
					store_set_offset(w, rd_kafka_topic_name(m->rkt), m->partition, m->offset + 1);
				}
				rd_kafka_message_destroy(m);
			}
			/* An idle sink has nothing to make durable: no commit, no fsync. */
			if ((n.consumed != consumed_at_commit && mono_ms() - last_commit >= o.commit_interval_ms) ||
			    store_staged(w) >= o.commit_items) {
				consumed_at_commit = n.consumed;
				int c = commit(w, dlqp, o.dlq, &n, o.verbosity);
				if (c == -2) {
					rc = 1;
					break;
				}
				if (c) {
					failing = 1;
					pause_all(consumer, 1);
					retry_at = mono_ms() + 1000;
				}
				last_commit = mono_ms();
			}
		}
		if (o.stats_interval_ms > 0 && mono_ms() - last_stats >= o.stats_interval_ms) {
			if (o.verbosity > 0)
				print_stats(&n, &o, failing);
			last_stats = mono_ms();
		}
	}
	/* Stopping: what was read is committed, unless the store refuses. */
	if (rc == 0 && commit(w, dlqp, o.dlq, &n, o.verbosity)) {
		fprintf(stderr, "%% ERROR: stopping with uncommitted items: they will be read again\n");
		rc = 1;
	}
	if (o.verbosity > 0)
		print_stats(&n, &o, failing);
out:
	if (consumer) {
		rd_kafka_consumer_close(consumer);
		rd_kafka_destroy(consumer);
	}
	if (dlqp) {
		rd_kafka_flush(dlqp, 10000);
		rd_kafka_destroy(dlqp);
	}
	store_writer_close(w);
	opik_destroy(opik);
	outboxes_free();
	kvfile_values_release(&file_values);
	if (rc == 0 && o.verbosity > 0)
		fprintf(stderr, "%% sink: stopped cleanly\n");
	return rc;
}
