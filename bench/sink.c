/* bench/sink.c - tracesift-sink against consuming alone and zstd -b3; store size with and without a dictionary
 *
 * Input: BENCH_SINK_ITEMS (30000, a multiple of 50) records of
 * `tracesift-loadgen --seed 1`, each wrapped as the sampler's item
 * (docs/sampling.md "What goes out": {"type":"item","id":TRACE_ID,"batch":B,
 * "position":P,"dataset":"monitoring",...,"record":RECORD}) with batch.size
 * 50 as in deploy/sampler.conf, so every 50th item is followed by its batch
 * trigger.  They are produced once to a new topic of 6 partitions (like
 * llm.monitoring) keyed by dataset as the sampler keys them (so they all
 * land in one partition), with the sampler's producer settings (idempotent,
 * acks=all, zstd, linger.ms=20), and the item values are written one per line
 * to a JSONL file ($BENCH_OUT/sink-items.jsonl, removed at the end).
 *
 * Throughput.  Each round runs these once each, in an order that rotates
 * from round to round (BENCH_SINK_REPS rounds, default 5):
 *
 *   sink      bin/tracesift-sink -t TOPIC --store NEW_DIR with its defaults
 *             (read from its --help: commit every --commit-interval-ms when
 *             something was read or at --commit-items staged; zstd level 3),
 *             timed from spawn to the first moment its MANIFEST (polled every
 *             5 ms) records the end offset of every partition: everything
 *             consumed and committed.  Then SIGTERM.  Checked: the store holds
 *             every item and every batch complete, nothing dead-lettered.  Its
 *             stats lines (every 20 ms) say when it had consumed everything,
 *             so the time the last commit takes is seen apart.
 *   consume   this program as a bare librdkafka consumer (`sink --consume
 *             TOPIC`) with the sink's consumer properties (read_committed,
 *             fetch.message.max.bytes 1 MiB, no commits), every partition
 *             assigned from the beginning; it reads every message and writes
 *             nothing; spawn to the moment it has read the last message (it
 *             prints the time; closing the consumer can wait for a fetch in
 *             flight, and the sink's shutdown is not counted either).
 *   zstd      `zstd -q -b3 -i1 FILE` on the JSONL (one thread, the whole file
 *             as one input): its compression MB/s, turned into items/s with
 *             the mean line size.
 *   sink and consume with -X queued.max.messages.kbytes=262144: librdkafka
 *             2.0 stops fetching a partition whose queue is over that limit
 *             (64 MiB by default) and looks again about 1 s after its last
 *             fetch; one 8 MiB fetch of these items is ~90 MB decompressed, so
 *             the pair above was held back by that at the sink's old fetch size
 *             (8 MiB; 1 MiB now, held back less often); this pair is not.
 *   store     the store's write path alone in this process (store_add,
 *             store_add_trigger, store_commit as the sink commits; no Kafka).
 *
 * Items/s and MB/s count the items and their JSONL bytes (values plus a
 * newline; the triggers, 2% of the messages and 0.5% of the bytes, are read
 * by the sink and the consumer but not counted).  The ratio is taken within
 * each round, sink / min(consume, zstd), and its median quoted (and the
 * other sink row's against min(its consumer row, zstd)).
 *
 * Size.  The segments of the last sink run: compressed bytes per item against
 * the JSONL, and what zstd levels 1 to 3 give on the same frames.  Then the
 * sink on a new topic fed BENCH_SINK_SLOW_ITEMS (100) items at
 * BENCH_SINK_SLOW_RATE (20) a second: a commit writes a frame of what came
 * since the last, so it writes small frames; their size per item.  Then a
 * zstd dictionary (ZDICT_trainFromBuffer, what `zstd --train` runs, 112640
 * bytes as its default) trained on BENCH_SINK_DICT_SAMPLES (2000) items made
 * the same way from `tracesift-loadgen --seed 2` (traffic the measured items
 * are not part of), and one trained on every k-th measured item (in-sample,
 * the best case); each frame the sink wrote is decompressed and compressed
 * again at level 3 with checksums, without and with the dictionary; and the
 * same for frames of 50, 10 and 1 item.
 *
 * The sink that runs is a copy of BENCH_SINK taken at the start (bin/ holds
 * whichever variant was built last, and a `make test` elsewhere relinks it
 * as the sanitizer build); the benchmark refuses a sanitizer build.
 *
 * Environment: BENCH_SINK_ITEMS, BENCH_SINK_REPS, BENCH_SINK_DICT_SAMPLES,
 * BENCH_SINK_SLOW_ITEMS, BENCH_SINK_SLOW_RATE, BENCH_SINK (bin/tracesift-sink),
 * BENCH_LOADGEN (bin/tracesift-loadgen), TS_BROKERS.
 */
#include <ftw.h>
#include <limits.h>
#include <signal.h>

#include <cjson/cJSON.h>
#include <zdict.h>
#include <zstd.h>

#include "bench.h"

#include "afile.h"
#include "record.h"
#include "sample.h"
#include "store.h"
#include "tstime.h"

#define PARTITIONS   6
#define BATCH_SIZE   50
#define DATASET      "monitoring"
#define POLL_MS      5
#define STATS_MS     "20"
#define RUN_TIMEOUT_S 300
#define DICT_SIZE    112640
#define MAX_REPS     32
#define CHUNK_RAW    ((size_t)1 << 20) /* core/store.c cuts a frame at this many bytes */

/* The copy of tracesift-sink the runs use (see main); removed at exit. */
static char sink_bin[PATH_MAX];

static void sink_bin_remove(void)
{
	if (sink_bin[0])
		unlink(sink_bin);
}

/* The sink's commit policy (sink_defaults): the labels say it and the store
 * row follows it. */
static long commit_ms = 100, commit_items = 20000;

/* Formats a path into out[PATH_MAX]; dies when it does not fit. */
static void path_fmt(char *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		bench_die("path too long: '%s...'", out);
}

/* ---- items -------------------------------------------------------------- */

struct items {
	char *text;       /* JSONL: the items, each followed by '\n' */
	size_t len, cap;
	size_t *off;      /* item i is text[off[i] .. off[i + 1] - 1), newline excluded */
	long n;
	char **triggers;  /* the batch trigger after items 50k-50 .. 50k-1 */
	size_t *tlen;
	long ntrig;
};

static void text_put(struct items *it, const char *p, size_t n)
{
	if (it->len + n > it->cap) {
		size_t cap = it->cap ? it->cap : (size_t)1 << 24;
		while (cap < it->len + n)
			cap *= 2;
		if (!(it->text = realloc(it->text, cap)))
			bench_die("out of memory");
		it->cap = cap;
	}
	memcpy(it->text + it->len, p, n);
	it->len += n;
}

static void text_printf(struct items *it, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		bench_die("item field too long");
	text_put(it, buf, (size_t)n);
}

static const char *prog_path(const char *env, const char *def)
{
	const char *p = getenv(env);
	return p && *p ? p : def;
}

/* Items from `tracesift-loadgen -n count --seed seed`, wrapped as the
 * sampler wraps selected records (batch.size 50, one dataset); with
 * triggers when want_triggers. */
static void items_make(struct items *it, long count, int seed, int want_triggers)
{
	char path[PATH_MAX], n[32], s[32];
	path_fmt(path, "%s/sink-records.%d.jsonl", bench_out_dir(), (int)getpid());
	snprintf(n, sizeof(n), "%ld", count);
	snprintf(s, sizeof(s), "%d", seed);
	char *argv[] = { (char *)prog_path("BENCH_LOADGEN", "bin/tracesift-loadgen"), "-q", "-n", n,
	                 "--seed", s, "--start", "2026-01-01T00:00:00Z", NULL };
	if (bench_spawn(argv, NULL, path, NULL, NULL) != 0)
		bench_die("'%s' failed", argv[0]);
	FILE *f = fopen(path, "r");
	if (!f)
		bench_die("cannot read '%s': %s", path, strerror(errno));
	memset(it, 0, sizeof(*it));
	if (!(it->off = malloc(sizeof(*it->off) * (size_t)(count + 1))))
		bench_die("out of memory");
	if (want_triggers && (!(it->triggers = calloc((size_t)(count / BATCH_SIZE + 1), sizeof(char *))) ||
	                      !(it->tlen = calloc((size_t)(count / BATCH_SIZE + 1), sizeof(size_t)))))
		bench_die("out of memory");
	char *line = NULL, ids[BATCH_SIZE][REC_TRACE_ID_LEN + 1];
	size_t lcap = 0;
	ssize_t len;
	int64_t t0 = 1767225600000000LL + 3600000000LL; /* 2026-01-01T01:00:00Z */
	while ((len = getline(&line, &lcap, f)) > 0 && it->n < count) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		struct rec_info info;
		char err[512], ts[TSTIME_LEN];
		if (rec_validate(line, (size_t)len, NULL, &info, err, sizeof(err)) != REC_OK)
			bench_die("loadgen record %ld is not valid: %s", it->n, err);
		long i = it->n;
		int64_t batch = i / BATCH_SIZE + 1;
		int pos = (int)(i % BATCH_SIZE);
		tstime_format(t0 + i * 20000, ts);
		it->off[i] = it->len;
		text_printf(it, "{\"type\":\"item\",\"id\":\"%s\",\"batch\":%lld,\"position\":%d,"
		            "\"dataset\":\"" DATASET "\",\"class\":\"default\",\"rate\":0.050000000000000003,"
		            "\"seed\":42,\"draw\":%.17g,\"source\":{\"topic\":\"llm.traces\",\"partition\":%d,"
		            "\"offset\":%ld},\"selected_at\":\"%s\",\"record\":",
		            info.trace_id, (long long)batch, pos, sample_draw(42, info.trace_id),
		            (int)(i % PARTITIONS), i / PARTITIONS * 20, ts);
		text_put(it, line, (size_t)len);
		text_put(it, "}\n", 2);
		memcpy(ids[pos], info.trace_id, sizeof(ids[pos]));
		it->n++;
		if (want_triggers && pos == BATCH_SIZE - 1) {
			char *t = malloc(256 + BATCH_SIZE * (REC_TRACE_ID_LEN + 3));
			if (!t)
				bench_die("out of memory");
			int k = sprintf(t, "{\"type\":\"batch\",\"dataset\":\"" DATASET "\",\"batch\":%lld,"
			                "\"size\":%d,\"batch_size\":%d,\"partial\":false,\"closed_at\":\"%s\","
			                "\"items\":[", (long long)batch, BATCH_SIZE, BATCH_SIZE, ts);
			for (int j = 0; j < BATCH_SIZE; j++)
				k += sprintf(t + k, "%s\"%s\"", j ? "," : "", ids[j]);
			k += sprintf(t + k, "]}");
			it->triggers[it->ntrig] = t;
			it->tlen[it->ntrig++] = (size_t)k;
		}
	}
	free(line);
	fclose(f);
	unlink(path);
	if (it->n != count)
		bench_die("loadgen gave %ld records, not %ld", it->n, count);
	it->off[it->n] = it->len;
}

static size_t item_len(const struct items *it, long i)
{
	return it->off[i + 1] - it->off[i] - 1;
}

static void items_free(struct items *it)
{
	for (long i = 0; i < it->ntrig; i++)
		free(it->triggers[i]);
	free(it->triggers);
	free(it->tlen);
	free(it->off);
	free(it->text);
}

static long delivery_failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err)
		delivery_failed++;
}

static void produce_one(rd_kafka_t *rk, const char *topic, const char *p, size_t n)
{
	rd_kafka_resp_err_t err;
	while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(DATASET, strlen(DATASET)),
	                                RD_KAFKA_V_VALUE((void *)p, n), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                                RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		rd_kafka_poll(rk, 10);
	if (err)
		bench_die("produce to '%s': %s", topic, rd_kafka_err2str(err));
	rd_kafka_poll(rk, 0);
}

/* The first count items and their triggers into topic, in the sampler's
 * order; at rate items a second (0: as fast as it goes). */
static void items_produce(const struct items *it, const char *topic, long count, double rate)
{
	char err[512];
	const char *const props[][2] = {
		{ "bootstrap.servers", bench_brokers() }, { "enable.idempotence", "true" }, { "acks", "all" },
		{ "compression.codec", "zstd" }, { "linger.ms", "20" }, { "message.max.bytes", "4194304" },
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err)))
			bench_die("producer: %s", err);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk)
		bench_die("producer: %s", err);
	int64_t t0 = bench_now_ns();
	for (long i = 0, t = 0; i < count; i++) {
		produce_one(rk, topic, it->text + it->off[i], item_len(it, i));
		if (i % BATCH_SIZE == BATCH_SIZE - 1)
			produce_one(rk, topic, it->triggers[t], it->tlen[t]), t++;
		while (rate > 0 && bench_now_ns() < t0 + (int64_t)((double)(i + 1) / rate * 1e9))
			rd_kafka_poll(rk, 1);
	}
	rd_kafka_flush(rk, 60000);
	if (delivery_failed || rd_kafka_outq_len(rk))
		bench_die("producing to '%s' failed (%ld not delivered)", topic,
		          delivery_failed + rd_kafka_outq_len(rk));
	rd_kafka_destroy(rk);
}

/* VmHWM of a live process in MB ("self" or a pid), 0 if unknown.  (The
 * rusage of a spawned child is no use here: its ru_maxrss starts from this
 * process's, whose memory it shared until exec.) */
static double hwm_mb(const char *pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	FILE *f = fopen(path, "r");
	double kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			kb = strtod(line + 6, NULL);
	if (f)
		fclose(f);
	return kb / 1024.0;
}

/* ---- the baseline consumer (this program with --consume TOPIC) ---------- */

static int consume_main(const char *topic, const char *qkb)
{
	char err[512];
	/* tracesift-sink's consumer properties (sink/sink.c) */
	const char *const props[][2] = {
		{ "bootstrap.servers", bench_brokers() }, { "auto.offset.reset", "earliest" },
		{ "group.id", "tracesift-bench-sink" }, { "enable.auto.commit", "false" },
		{ "enable.auto.offset.store", "false" }, { "isolation.level", "read_committed" },
		{ "enable.partition.eof", "false" }, { "fetch.message.max.bytes", "1048576" },
		{ "queued.max.messages.kbytes", "262144" },
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err)))
			bench_die("consumer: %s", err);
	if (qkb && rd_kafka_conf_set(conf, "queued.max.messages.kbytes", qkb, err, sizeof(err)))
		bench_die("consumer: %s", err);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk)
		bench_die("consumer: %s", err);
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	if (rd_kafka_metadata(rk, 0, rkt, &md, 15000) || md->topic_cnt != 1 || md->topics[0].err)
		bench_die("no metadata for '%s'", topic);
	rd_kafka_topic_destroy(rkt);
	int n = md->topics[0].partition_cnt, left = 0;
	int64_t *end = calloc((size_t)n, sizeof(*end));
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++) {
		int32_t p = md->topics[0].partitions[i].id;
		int64_t lo, hi;
		if (p < 0 || p >= n || rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 15000))
			bench_die("no offsets for '%s' [%d]", topic, (int)p);
		end[p] = hi;
		left += hi > lo;
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	}
	rd_kafka_metadata_destroy(md);
	if (rd_kafka_assign(rk, parts))
		bench_die("cannot assign '%s'", topic);
	rd_kafka_topic_partition_list_destroy(parts);
	long msgs = 0;
	long long bytes = 0;
	int64_t deadline = bench_now_ns() + (int64_t)RUN_TIMEOUT_S * 1000000000;
	while (left > 0) {
		if (bench_now_ns() > deadline)
			bench_die("timed out with %d partitions not read to the end", left);
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (m->err) {
			bench_log("consume: %s", rd_kafka_message_errstr(m));
		} else {
			msgs++;
			bytes += (long long)m->len;
			if (m->offset + 1 == end[m->partition])
				left--;
		}
		rd_kafka_message_destroy(m);
	}
	/* done: the time it read the last message (CLOCK_MONOTONIC, which the
	 * parent shares), so that closing the consumer is not counted, as the
	 * sink's shutdown is not */
	printf("%ld %lld %.1f %lld\n", msgs, bytes, hwm_mb("self"), (long long)bench_now_ns());
	fflush(stdout);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	free(end);
	return 0;
}

/* ---- timed runs --------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static cJSON *manifest_load(const char *store)
{
	char path[PATH_MAX];
	path_fmt(path, "%s/MANIFEST", store);
	char *text = afile_read(path, NULL);
	if (!text)
		return NULL;
	cJSON *j = cJSON_Parse(text);
	free(text);
	return j;
}

/* The sum of the offsets the manifest records for topic, or -1. */
static long long manifest_offsets(const cJSON *mf, const char *topic)
{
	const cJSON *offs = cJSON_GetObjectItemCaseSensitive(mf, "offsets");
	if (!cJSON_IsObject(offs))
		return -1;
	size_t tl = strlen(topic);
	long long sum = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, offs)
		if (!strncmp(o->string, topic, tl) && o->string[tl] == '/' && cJSON_IsNumber(o))
			sum += (long long)o->valuedouble;
	return sum;
}

static double num_at(const cJSON *j, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);
	if (b)
		x = cJSON_GetObjectItemCaseSensitive(x, b);
	return cJSON_IsNumber(x) ? x->valuedouble : -1;
}

struct outcome {
	int ok;
	double secs, cpu_s, rss_mb;
	double consumed_s;  /* the sink: when its stats said everything was consumed */
	long long seg_bytes, ids_bytes, batch_bytes, manifest_bytes;
	int segments;
};

static pid_t spawn_logged(char *const argv[], const char *log)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid;
	int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err) {
		bench_log("cannot run '%s': %s", argv[0], strerror(err));
		return -1;
	}
	return pid;
}

static void rusage_into(const struct rusage *ru, struct outcome *o)
{
	o->cpu_s = (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
	           (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
}

/* The last line of the sink's log that is a stats object. */
static cJSON *last_stats(const char *log)
{
	char *text = afile_read(log, NULL);
	cJSON *j = NULL;
	for (char *p = text ? strtok(text, "\n") : NULL; p; p = strtok(NULL, "\n"))
		if (*p == '{') {
			cJSON_Delete(j);
			j = cJSON_Parse(p);
		}
	free(text);
	return j;
}

/* Follows the sink's log (its stats lines, every STATS_MS) for the first
 * line whose "consumed" reaches want; 1 when it has come. */
struct follow {
	int fd;
	size_t len;
	char buf[8192];
};

static int follow_consumed(struct follow *fl, const char *log, long long want)
{
	if (fl->fd < 0 && (fl->fd = open(log, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	for (;;) {
		ssize_t n = read(fl->fd, fl->buf + fl->len, sizeof(fl->buf) - 1 - fl->len);
		if (n <= 0)
			return 0;
		fl->len += (size_t)n;
		fl->buf[fl->len] = '\0';
		char *line = fl->buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			const char *c = strstr(line, "\"consumed\":");
			if (c && strtoll(c + 11, NULL, 10) >= want)
				return 1;
			line = nl + 1;
		}
		fl->len -= (size_t)(line - fl->buf);
		memmove(fl->buf, line, fl->len);
		if (fl->len == sizeof(fl->buf) - 1)
			fl->len = 0; /* a line longer than the buffer: not a stats line */
	}
}

struct trickle {
	const struct items *it;
	const char *topic;
	long count;
	double rate;
};

/* One run of tracesift-sink over topic into the new store dir; the store
 * is left for the caller to inspect and remove.  With tr, the sink is
 * started first and then tr's items are produced at its rate. */
static struct outcome run_sink(const char *topic, const char *dlq, const char *store,
                               const char *qkb, long items, long long msgs, const struct trickle *tr)
{
	struct outcome o = { 0 };
	char log[PATH_MAX];
	path_fmt(log, "%s/sink-run.log", bench_out_dir());
	char qprop[64];
	snprintf(qprop, sizeof(qprop), "queued.max.messages.kbytes=%s", qkb ? qkb : "");
	char *argv[16] = { (char *)sink_bin, "-b", (char *)bench_brokers(),
	                   "-t", (char *)topic, "--dlq", (char *)dlq, "--store", (char *)store,
	                   "--stats-interval-ms", STATS_MS };
	int ac = 11;
	if (qkb) {
		argv[ac++] = "-X";
		argv[ac++] = qprop;
	}
	argv[ac] = NULL;
	int64_t t0 = bench_now_ns();
	pid_t pid = spawn_logged(argv, log);
	if (pid < 0)
		return o;
	if (tr)
		items_produce(tr->it, tr->topic, tr->count, tr->rate);
	int64_t deadline = t0 + (int64_t)RUN_TIMEOUT_S * 1000000000, done = 0;
	int64_t consumed = 0;
	int st = 0, exited = 0;
	struct rusage ru = { 0 };
	struct follow fl = { .fd = -1 };
	while (!done) {
		if (!consumed && follow_consumed(&fl, log, msgs))
			consumed = bench_now_ns();
		pid_t r = wait4(pid, &st, WNOHANG, &ru);
		if (r == pid) {
			exited = 1;
			bench_log("tracesift-sink exited before it was done (see %s)", log);
			break;
		}
		cJSON *mf = manifest_load(store);
		if (mf && manifest_offsets(mf, topic) >= msgs)
			done = bench_now_ns();
		cJSON_Delete(mf);
		if (!done && bench_now_ns() > deadline) {
			bench_log("tracesift-sink not done after %d s", RUN_TIMEOUT_S);
			break;
		}
		struct timespec ts = { 0, POLL_MS * 1000000L };
		if (!done)
			nanosleep(&ts, NULL);
	}
	if (fl.fd >= 0)
		close(fl.fd);
	if (!exited) {
		char p[16];
		snprintf(p, sizeof(p), "%d", (int)pid);
		o.rss_mb = hwm_mb(p);
		kill(pid, SIGTERM);
		while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
			;
	}
	rusage_into(&ru, &o);
	if (!done)
		return o;
	o.secs = (double)(done - t0) / 1e9;
	o.consumed_s = consumed ? (double)(consumed - t0) / 1e9 : o.secs;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		bench_log("tracesift-sink exited with status %d (see %s)", WIFEXITED(st) ? WEXITSTATUS(st) : -1, log);
		return o;
	}
	cJSON *stats = last_stats(log);
	double dead = num_at(stats, "dead_lettered", NULL), got = num_at(stats, "items", NULL);
	cJSON_Delete(stats);
	cJSON *mf = manifest_load(store);
	const cJSON *ds = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(mf, "datasets"), DATASET);
	double stored = num_at(ds, "items", NULL), batches = num_at(ds, "batches", "count");
	const cJSON *segs = cJSON_GetObjectItemCaseSensitive(ds, "segments"), *s;
	cJSON_ArrayForEach(s, segs) {
		o.seg_bytes += (long long)num_at(s, "bytes", NULL);
		o.segments++;
	}
	o.ids_bytes = (long long)num_at(ds, "ids", "bytes");
	o.batch_bytes = (long long)num_at(ds, "batches", "bytes");
	char path[PATH_MAX];
	path_fmt(path, "%s/MANIFEST", store);
	struct stat sb;
	o.manifest_bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
	cJSON_Delete(mf);
	if (dead != 0 || got != items || stored != items || batches != items / BATCH_SIZE) {
		bench_log("tracesift-sink run wrong: %.0f items counted, %.0f stored, %.0f batches complete, "
		          "%.0f dead-lettered (expected %ld, %ld, %ld, 0)", got, stored, batches, dead,
		          items, items, items / BATCH_SIZE);
		return o;
	}
	o.ok = 1;
	return o;
}

static struct outcome run_consume(const char *self, const char *topic, const char *qkb, long long msgs)
{
	struct outcome o = { 0 };
	char out[PATH_MAX];
	path_fmt(out, "%s/sink-consume.out", bench_out_dir());
	char *argv[] = { (char *)self, "--consume", (char *)topic, (char *)qkb, NULL };
	struct rusage ru = { 0 };
	int64_t t0 = bench_now_ns();
	int rc = bench_spawn(argv, NULL, out, NULL, &ru);
	rusage_into(&ru, &o);
	char *text = afile_read(out, NULL);
	long got = -1;
	long long bytes, done = 0;
	/* its last line: messages, bytes, VmHWM MB, done (any log lines come first) */
	for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
		if (sscanf(line, "%ld %lld %lf %lld", &got, &bytes, &o.rss_mb, &done) == 4)
			o.secs = (double)(done - t0) / 1e9;
	if (rc != 0 || got != msgs || o.secs <= 0)
		bench_log("consumer run failed (status %d, %ld messages of %lld; see %s)", rc, got, msgs, out);
	else
		o.ok = 1;
	free(text);
	return o;
}

/* The store's write path alone, in this process: every item (id and batch
 * from the item) and every trigger as the sink stages them, committed as the
 * sink commits (commit_ms after the last commit, or at commit_items staged)
 * and at the end. */
static struct outcome run_store(const struct items *it, const char *dir)
{
	struct outcome o = { 0 };
	char err[512];
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	int64_t t0 = bench_now_ns();
	struct store_writer *w = store_writer_open(dir, NULL, err, sizeof(err));
	if (!w) {
		bench_log("store: %s", err);
		return o;
	}
	char ids[BATCH_SIZE][REC_TRACE_ID_LEN + 1];
	const char *idp[BATCH_SIZE];
	static const char prefix[] = "{\"type\":\"item\",\"id\":\"";
	int bad = 0;
	int64_t last = bench_now_ns();
	for (long i = 0; i < it->n && !bad; i++) {
		const char *json = it->text + it->off[i];
		int pos = (int)(i % BATCH_SIZE);
		memcpy(ids[pos], json + sizeof(prefix) - 1, REC_TRACE_ID_LEN);
		ids[pos][REC_TRACE_ID_LEN] = '\0';
		idp[pos] = ids[pos];
		bad = store_add(w, DATASET, ids[pos], i / BATCH_SIZE + 1, pos, json, item_len(it, i), err,
		                sizeof(err)) != 1;
		if (!bad && pos == BATCH_SIZE - 1)
			bad = store_add_trigger(w, DATASET, i / BATCH_SIZE + 1, 0, idp, BATCH_SIZE, err, sizeof(err)) != 0;
		if (!bad && (bench_now_ns() - last >= commit_ms * 1000000 || store_staged(w) >= commit_items)) {
			bad = store_commit(w, err, sizeof(err)) != 0;
			last = bench_now_ns();
		}
	}
	if (!bad)
		bad = store_commit(w, err, sizeof(err)) != 0;
	store_writer_close(w);
	o.secs = (double)(bench_now_ns() - t0) / 1e9;
	getrusage(RUSAGE_SELF, &r1);
	o.cpu_s = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
	          (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
	if (bad)
		bench_log("store: %s", err);
	o.ok = !bad;
	return o;
}

/* `zstd -q -b3 -i1 file`: its compression speed in MB/s (10^6 bytes), 0 on failure. */
static double run_zstd_bench(const char *file, struct outcome *o)
{
	char out[PATH_MAX];
	path_fmt(out, "%s/sink-zstd.out", bench_out_dir());
	char *argv[] = { "zstd", "-q", "-b3", "-i1", (char *)file, NULL };
	struct rusage ru = { 0 };
	int64_t ns;
	int rc = bench_spawn(argv, NULL, out, &ns, &ru);
	rusage_into(&ru, o);
	char *text = afile_read(out, NULL);
	double mbs = 0;
	/* "-3  24270001 (8.055) 412.43 MB/s 1480.2 MB/s  FILE": the first MB/s is compression */
	char *u = text ? strstr(text, " MB/s") : NULL;
	if (rc == 0 && u) {
		char *p = u;
		while (p > text && (p[-1] == '.' || (p[-1] >= '0' && p[-1] <= '9')))
			p--;
		mbs = strtod(p, NULL);
	}
	if (mbs <= 0)
		bench_log("zstd -b3 failed or printed no MB/s (status %d; see %s)", rc, out);
	o->ok = mbs > 0;
	free(text);
	return mbs;
}

/* Copies the program at from to to (0700); dies on failure. */
static void copy_program(const char *from, const char *to)
{
	size_t n;
	char *bin = afile_read(from, &n);
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	if (!bin || fd < 0 || write(fd, bin, n) != (ssize_t)n || close(fd))
		bench_die("cannot copy '%s' to '%s'", from, to);
	free(bin);
}

/* Whether the program at path links libasan (bin/ holds whichever variant
 * was built last; `make test` builds the sanitizer one). */
static int is_sanitized(const char *path)
{
	size_t n;
	char *bin = afile_read(path, &n);
	int found = bin && memmem(bin, n, "libasan.so", 10) != NULL;
	free(bin);
	return found;
}

/* ---- frames and the dictionary ------------------------------------------ */

struct frames {
	const char **p;   /* raw (decompressed) frame contents */
	size_t *len;
	size_t n, raw;
	char *owned;      /* when the frames were decompressed here */
};

/* Every frame of the dataset's segments in the store, decompressed. */
static void frames_from_store(const char *store, struct frames *fr)
{
	memset(fr, 0, sizeof(*fr));
	cJSON *mf = manifest_load(store);
	const cJSON *ds = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(mf, "datasets"), DATASET);
	const cJSON *segs = cJSON_GetObjectItemCaseSensitive(ds, "segments"), *s;
	size_t cap = 0, ocap = 0, olen = 0;
	size_t *offs = NULL;
	cJSON_ArrayForEach(s, segs) {
		char path[PATH_MAX];
		const cJSON *file = cJSON_GetObjectItemCaseSensitive(s, "file");
		path_fmt(path, "%s/datasets/%s/%s", store, DATASET, file ? file->valuestring : "?");
		size_t len;
		char *z = afile_read(path, &len);
		size_t bytes = (size_t)num_at(s, "bytes", NULL);
		if (!z || len < bytes)
			bench_die("cannot read segment '%s'", path);
		for (size_t at = 0; at < bytes;) {
			size_t fz = ZSTD_findFrameCompressedSize(z + at, bytes - at);
			unsigned long long rs = ZSTD_getFrameContentSize(z + at, bytes - at);
			if (ZSTD_isError(fz) || rs == ZSTD_CONTENTSIZE_UNKNOWN || rs == ZSTD_CONTENTSIZE_ERROR)
				bench_die("segment '%s': not a frame with its size at byte %zu", path, at);
			if (olen + rs > ocap) {
				ocap = (olen + rs) * 2;
				if (!(fr->owned = realloc(fr->owned, ocap)))
					bench_die("out of memory");
			}
			size_t d = ZSTD_decompress(fr->owned + olen, (size_t)rs, z + at, fz);
			if (ZSTD_isError(d) || d != rs)
				bench_die("segment '%s': frame at byte %zu does not decode", path, at);
			if (fr->n == cap) {
				cap = cap ? cap * 2 : 256;
				if (!(offs = realloc(offs, cap * sizeof(*offs))) ||
				    !(fr->len = realloc(fr->len, cap * sizeof(*fr->len))))
					bench_die("out of memory");
			}
			offs[fr->n] = olen;
			fr->len[fr->n++] = d;
			olen += d;
			at += fz;
		}
		free(z);
	}
	cJSON_Delete(mf);
	if (!(fr->p = malloc((fr->n + 1) * sizeof(*fr->p))))
		bench_die("out of memory");
	for (size_t i = 0; i < fr->n; i++)
		fr->p[i] = fr->owned + offs[i];
	fr->raw = olen;
	free(offs);
}

/* Frames of k items each (k 0: cut after the line that reaches CHUNK_RAW,
 * as the store cuts them when a commit does not come first). */
static void frames_of(const struct items *it, long k, struct frames *fr)
{
	memset(fr, 0, sizeof(*fr));
	if (!(fr->p = malloc(((size_t)it->n + 1) * sizeof(*fr->p))) ||
	    !(fr->len = malloc(((size_t)it->n + 1) * sizeof(*fr->len))))
		bench_die("out of memory");
	for (long i = 0; i < it->n;) {
		long j = i;
		if (k > 0)
			j = i + k < it->n ? i + k : it->n;
		else
			while (j < it->n && it->off[j] - it->off[i] < CHUNK_RAW)
				j++;
		fr->p[fr->n] = it->text + it->off[i];
		fr->len[fr->n++] = it->off[j] - it->off[i];
		i = j;
	}
	fr->raw = it->len;
}

static void frames_free(struct frames *fr)
{
	free(fr->p);
	free(fr->len);
	free(fr->owned);
}

struct zresult {
	long long bytes;     /* all frames compressed */
	double c_mbs, d_mbs; /* compression and decompression speed (10^6 bytes/s), best of 3 passes */
};

/* Compresses every frame as core/store.c does (level, checksum), with cdict
 * when not NULL (its level then); times it, and decompression. */
static struct zresult zrun(const struct frames *fr, int level, const ZSTD_CDict *cdict, const ZSTD_DDict *ddict)
{
	struct zresult r = { 0 };
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	size_t maxraw = 0;
	for (size_t i = 0; i < fr->n; i++)
		maxraw = fr->len[i] > maxraw ? fr->len[i] : maxraw;
	size_t zcap = ZSTD_compressBound(maxraw);
	char *z = malloc(zcap), *back = malloc(maxraw + 1);
	if (!cc || !dc || !z || !back)
		bench_die("out of memory");
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	if (cdict)
		ZSTD_CCtx_refCDict(cc, cdict);
	double best_c = 1e30, best_d = 1e30;
	for (int pass = 0; pass < 3; pass++) {
		long long total = 0;
		int64_t tc = 0, td = 0;
		for (size_t i = 0; i < fr->n; i++) {
			int64_t t0 = bench_now_ns();
			size_t n = ZSTD_compress2(cc, z, zcap, fr->p[i], fr->len[i]);
			int64_t t1 = bench_now_ns();
			if (ZSTD_isError(n))
				bench_die("compress: %s", ZSTD_getErrorName(n));
			size_t d = ddict ? ZSTD_decompress_usingDDict(dc, back, maxraw + 1, z, n, ddict)
			                 : ZSTD_decompressDCtx(dc, back, maxraw + 1, z, n);
			int64_t t2 = bench_now_ns();
			if (ZSTD_isError(d) || d != fr->len[i] || memcmp(back, fr->p[i], d))
				bench_die("frame %zu does not come back", i);
			tc += t1 - t0;
			td += t2 - t1;
			total += (long long)n;
		}
		r.bytes = total;
		best_c = (double)tc < best_c ? (double)tc : best_c;
		best_d = (double)td < best_d ? (double)td : best_d;
	}
	r.c_mbs = (double)fr->raw / (best_c / 1e9) / 1e6;
	r.d_mbs = (double)fr->raw / (best_d / 1e9) / 1e6;
	free(z);
	free(back);
	ZSTD_freeCCtx(cc);
	ZSTD_freeDCtx(dc);
	return r;
}

struct dict {
	char *buf;
	size_t len;
	double train_s;
	ZSTD_CDict *c;
	ZSTD_DDict *d;
};

/* Trains on items[0..n) of it taken every `step`, n of them. */
static void dict_train(struct dict *dt, const struct items *it, long step, long n)
{
	size_t total = 0;
	size_t *sizes = malloc((size_t)n * sizeof(*sizes));
	for (long i = 0; i < n; i++)
		total += item_len(it, i * step);
	char *samples = malloc(total);
	if (!sizes || !samples || !(dt->buf = malloc(DICT_SIZE)))
		bench_die("out of memory");
	size_t at = 0;
	for (long i = 0; i < n; i++) {
		sizes[i] = item_len(it, i * step);
		memcpy(samples + at, it->text + it->off[i * step], sizes[i]);
		at += sizes[i];
	}
	int64_t t0 = bench_now_ns();
	size_t r = ZDICT_trainFromBuffer(dt->buf, DICT_SIZE, samples, sizes, (unsigned)n);
	dt->train_s = (double)(bench_now_ns() - t0) / 1e9;
	if (ZDICT_isError(r))
		bench_die("training a dictionary: %s", ZDICT_getErrorName(r));
	dt->len = r;
	if (!(dt->c = ZSTD_createCDict(dt->buf, dt->len, 3)) || !(dt->d = ZSTD_createDDict(dt->buf, dt->len)))
		bench_die("out of memory");
	free(samples);
	free(sizes);
}

static void dict_free(struct dict *dt)
{
	ZSTD_freeCDict(dt->c);
	ZSTD_freeDDict(dt->d);
	free(dt->buf);
}

/* ---- main --------------------------------------------------------------- */

/* The rows of the throughput table.  The ratios: each sink row against the
 * smaller of its consumer row and zstd. */
enum kind { K_SINK, K_CONSUME, K_ZSTD, K_STORE };
struct row {
	const char *label;
	enum kind kind;
	const char *qkb;        /* queued.max.messages.kbytes for the consumer, NULL: default */
	int against;            /* sink rows: the consumer row to compare with */
};
#define QKB "65536"
enum { R_SINK, R_CONSUME, R_ZSTD, R_SINKQ, R_CONSUMEQ, R_STORE, NR };
static struct row rows[NR] = {
	[R_SINK] = { NULL /* main: with its defaults */, K_SINK, NULL, R_CONSUME },
	[R_CONSUME] = { "consume only (the sink's consumer settings)", K_CONSUME, NULL, 0 },
	[R_ZSTD] = { "`zstd -q -b3 -i1` on the JSONL (compression, one thread)", K_ZSTD, NULL, 0 },
	[R_SINKQ] = { "tracesift-sink -X queued.max.messages.kbytes=" QKB, K_SINK, QKB, R_CONSUMEQ },
	[R_CONSUMEQ] = { "consume only, queued.max.messages.kbytes=" QKB, K_CONSUME, QKB, 0 },
	[R_STORE] = { "the store alone: store_add of every item and trigger, store_commit as the sink commits, "
	              "in this process (no Kafka)", K_STORE, NULL, 0 },
};

/* Reads the sink's commit policy from its --help ("(default N)" on the lines
 * of --commit-interval-ms and --commit-items). */
static void sink_defaults(const char *sink)
{
	char out[PATH_MAX];
	path_fmt(out, "%s/sink-help.out", bench_out_dir());
	char *argv[] = { (char *)sink, "--help", NULL };
	if (bench_spawn(argv, NULL, out, NULL, NULL) != 0)
		bench_die("'%s --help' failed", sink);
	char *text = afile_read(out, NULL);
	const char *opt[2] = { "--commit-interval-ms", "--commit-items" };
	long *val[2] = { &commit_ms, &commit_items };
	for (int i = 0; i < 2; i++) {
		const char *l = text ? strstr(text, opt[i]) : NULL;
		const char *eol = l ? strchr(l, '\n') : NULL, *d = l ? strstr(l, "(default ") : NULL;
		if (!d || (eol && d > eol))
			bench_die("'%s --help' gives no default for %s", sink, opt[i]);
		*val[i] = strtol(d + 9, NULL, 10);
	}
	free(text);
	unlink(out);
}

struct series {
	double ips[MAX_REPS], mbs[MAX_REPS], cpu_us[MAX_REPS], rss[MAX_REPS], secs[MAX_REPS], consumed[MAX_REPS];
	double by_round[MAX_REPS]; /* items/s in round r, 0 if it failed */
	int n, failed;
};

static void series_add(struct series *s, int round, double secs_or_0, const struct outcome *o,
                       long items, double bytes)
{
	if (!o->ok || secs_or_0 <= 0) {
		s->failed++;
		s->by_round[round] = 0;
		return;
	}
	s->ips[s->n] = (double)items / secs_or_0;
	s->mbs[s->n] = bytes / secs_or_0 / 1e6;
	s->cpu_us[s->n] = o->cpu_s / (double)items * 1e6;
	s->rss[s->n] = o->rss_mb;
	s->secs[s->n] = secs_or_0;
	s->consumed[s->n] = o->consumed_s;
	s->by_round[round] = s->ips[s->n];
	s->n++;
}

int main(int argc, char **argv)
{
	bench_name = "sink";
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "--consume"))
		return consume_main(argv[2], argc == 4 ? argv[3] : NULL);
	if (argc != 1)
		bench_die("usage: %s  (or --consume TOPIC [QUEUED_MAX_KBYTES], the baseline consumer)", argv[0]);

	long nitems = bench_env_long("BENCH_SINK_ITEMS", 30000);
	int reps = (int)bench_env_long("BENCH_SINK_REPS", 5);
	long dict_samples = bench_env_long("BENCH_SINK_DICT_SAMPLES", 2000);
	long slow_items = bench_env_long("BENCH_SINK_SLOW_ITEMS", 100);
	long slow_rate = bench_env_long("BENCH_SINK_SLOW_RATE", 20);
	if (nitems < BATCH_SIZE || nitems % BATCH_SIZE)
		bench_die("BENCH_SINK_ITEMS must be a positive multiple of %d", BATCH_SIZE);
	if (reps < 1 || reps > MAX_REPS)
		bench_die("BENCH_SINK_REPS must be 1 to %d", MAX_REPS);
	if (dict_samples < 100 || dict_samples > nitems)
		bench_die("BENCH_SINK_DICT_SAMPLES must be 100 to BENCH_SINK_ITEMS");
	if (slow_items < BATCH_SIZE || slow_items % BATCH_SIZE || slow_items > nitems || slow_rate < 1)
		bench_die("BENCH_SINK_SLOW_ITEMS must be a multiple of %d up to BENCH_SINK_ITEMS, "
		          "BENCH_SINK_SLOW_RATE at least 1", BATCH_SIZE);
	const char *sink = prog_path("BENCH_SINK", "bin/tracesift-sink");
	if (access(sink, X_OK))
		bench_die("no '%s' (make bench builds it)", sink);
	if (is_sanitized(sink))
		bench_die("'%s' is the sanitizer build (make test built it last): run make bench", sink);
	/* bin/ holds whichever variant was built last, and a `make test` elsewhere
	 * relinks it: the runs use a copy taken now */
	path_fmt(sink_bin, "%s/sink-tracesift-sink.%d", bench_out_dir(), (int)getpid());
	atexit(sink_bin_remove);
	copy_program(sink, sink_bin);
	sink_defaults(sink_bin);
	char sink_label[160];
	snprintf(sink_label, sizeof(sink_label), "tracesift-sink (its defaults: --commit-interval-ms %ld, "
	         "--commit-items %ld)", commit_ms, commit_items);
	rows[R_SINK].label = sink_label;
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0)
		bench_die("cannot read /proc/self/exe");
	self[sl] = '\0';

	/* the input */
	int64_t t_start = bench_now_ns();
	struct items it;
	items_make(&it, nitems, 1, 1);
	long long msgs = it.n + it.ntrig;
	double jsonl = (double)it.len;
	char file[PATH_MAX], topic[256], dlq[256];
	path_fmt(file, "%s/sink-items.jsonl", bench_out_dir());
	FILE *f = fopen(file, "w");
	if (!f || fwrite(it.text, 1, it.len, f) != it.len || fclose(f))
		bench_die("cannot write '%s'", file);
	bench_topic_name(topic, sizeof(topic), "sink");
	bench_topic_name(dlq, sizeof(dlq), "sink-dlq");
	if (bench_create_topic(topic, PARTITIONS))
		bench_die("cannot create topic '%s'", topic);
	int64_t t0 = bench_now_ns();
	items_produce(&it, topic, it.n, 0);
	double produce_s = (double)(bench_now_ns() - t0) / 1e9;
	if (bench_topic_count(topic) != msgs)
		bench_die("topic '%s' does not hold %lld messages", topic, msgs);
	bench_log("%ld items (%.1f MB of JSONL) and %ld triggers in '%s' (%.1f s to produce)", it.n,
	          jsonl / 1e6, it.ntrig, topic, produce_s);

	/* throughput rounds */
	struct series se[NR];
	memset(se, 0, sizeof(se));
	struct outcome last_sink = { 0 };
	char keep[PATH_MAX] = "";
	for (int round = 0; round < reps; round++) {
		for (int k = 0; k < NR; k++) {
			int what = (k + round) % NR;
			const struct row *rw = &rows[what];
			struct outcome o = { 0 };
			double secs = 0;
			if (rw->kind == K_SINK) {
				char store[PATH_MAX];
				path_fmt(store, "%s/sink-store.%d.%d.%d", bench_out_dir(), (int)getpid(),
				         round, what);
				rm_tree(store);
				o = run_sink(topic, dlq, store, rw->qkb, it.n, msgs, NULL);
				secs = o.secs;
				if (o.ok && what == R_SINK) {
					if (keep[0])
						rm_tree(keep);
					path_fmt(keep, "%s", store);
					last_sink = o;
				} else {
					rm_tree(store);
				}
			} else if (rw->kind == K_CONSUME) {
				o = run_consume(self, topic, rw->qkb, msgs);
				secs = o.secs;
			} else if (rw->kind == K_ZSTD) {
				double mbs = run_zstd_bench(file, &o);
				secs = mbs > 0 ? jsonl / (mbs * 1e6) : 0;
				o.cpu_s = secs; /* one thread compressing: CPU time is the time */
			} else {
				char store[PATH_MAX];
				path_fmt(store, "%s/sink-store.%d.%d.%d", bench_out_dir(), (int)getpid(),
				         round, what);
				rm_tree(store);
				o = run_store(&it, store);
				secs = o.secs;
				rm_tree(store);
			}
			series_add(&se[what], round, secs, &o, it.n, jsonl);
			bench_log("round %d: %s: %s%.0f items/s", round + 1, rw->label, o.ok ? "" : "FAILED ",
			          secs > 0 ? (double)it.n / secs : 0);
		}
	}
	bench_delete_topic(topic);

	/* ratios within rounds: each sink row against min(its consumer, zstd) */
	double ratio[NR][MAX_REPS], vs_c[MAX_REPS], vs_z[MAX_REPS];
	int nratio[NR] = { 0 }, nvs = 0, lim_consume = 0, lim_zstd = 0;
	for (int r = 0; r < reps; r++) {
		double z = se[R_ZSTD].by_round[r];
		for (int k = 0; k < NR; k++) {
			if (rows[k].kind != K_SINK)
				continue;
			double c = se[rows[k].against].by_round[r], v = se[k].by_round[r];
			if (c <= 0 || z <= 0 || v <= 0)
				continue;
			ratio[k][nratio[k]++] = v / (c < z ? c : z);
			if (k == R_SINK) {
				lim_consume += c < z;
				lim_zstd += c >= z;
				vs_c[nvs] = v / c;
				vs_z[nvs++] = v / z;
			}
		}
	}

	/* the store at a low rate: a commit writes a frame of what came since the last */
	char ttopic[256], tstore[PATH_MAX];
	bench_topic_name(ttopic, sizeof(ttopic), "sink-slow");
	path_fmt(tstore, "%s/sink-store.%d.slow", bench_out_dir(), (int)getpid());
	struct outcome slow = { 0 };
	struct frames slowfr = { 0 };
	if (bench_create_topic(ttopic, PARTITIONS) == 0) {
		struct trickle tr = { &it, ttopic, slow_items, (double)slow_rate };
		bench_log("%ld items at %ld a second", slow_items, slow_rate);
		slow = run_sink(ttopic, dlq, tstore, NULL, slow_items, slow_items + slow_items / BATCH_SIZE, &tr);
		if (slow.ok)
			frames_from_store(tstore, &slowfr);
		rm_tree(tstore);
		bench_delete_topic(ttopic);
	}

	/* size and dictionary */
	struct frames sunk = { 0 };
	struct zresult as_written = { 0 }, held = { 0 }, insample = { 0 };
	enum { NLEVELS = 3 };
	static const int levels[NLEVELS] = { 1, 2, 3 };
	struct zresult lv[NLEVELS];
	struct dict dh = { 0 }, di = { 0 };
	struct items train;
	long kk[] = { 0, BATCH_SIZE, 10, 1 };
	struct zresult sw[4][2];
	struct frames sizes[4];
	int have_store = keep[0] != '\0';
	if (have_store) {
		frames_from_store(keep, &sunk);
		if (sunk.raw != it.len)
			bench_die("the store's frames hold %zu bytes, the JSONL %zu", sunk.raw, it.len);
	}
	bench_log("training dictionaries on %ld items", dict_samples);
	items_make(&train, dict_samples, 2, 0);
	dict_train(&dh, &train, 1, dict_samples);
	items_free(&train);
	dict_train(&di, &it, it.n / dict_samples, dict_samples);
	if (have_store) {
		as_written = zrun(&sunk, 3, NULL, NULL);
		held = zrun(&sunk, 3, dh.c, dh.d);
		insample = zrun(&sunk, 3, di.c, di.d);
		for (int l = 0; l < NLEVELS; l++)
			lv[l] = zrun(&sunk, levels[l], NULL, NULL);
	}
	struct zresult zslow[3] = { { 0 } };
	double slow_jsonl = (double)it.off[slow_items];
	if (slow.ok) {
		struct frames one = { 0 };
		const char *p0 = it.text;
		size_t l0 = it.off[slow_items];
		one.p = &p0;
		one.len = &l0;
		one.n = 1;
		one.raw = l0;
		zslow[0] = zrun(&slowfr, 3, NULL, NULL);
		zslow[1] = zrun(&slowfr, 3, dh.c, dh.d);
		zslow[2] = zrun(&one, 3, NULL, NULL);
	}
	for (int k = 0; k < 4; k++) {
		frames_of(&it, kk[k], &sizes[k]);
		sw[k][0] = zrun(&sizes[k], 3, NULL, NULL);
		sw[k][1] = zrun(&sizes[k], 3, dh.c, dh.d);
	}
	if (keep[0])
		rm_tree(keep);
	unlink(file);

	/* the section */
	FILE *out = bench_section_open();
	fprintf(out, "## Sink: tracesift-sink against consuming alone and `zstd -b3`\n\n");
	fprintf(out, "Input: %ld records of `tracesift-loadgen --seed 1`, each wrapped as the sampler's item "
	        "(docs/sampling.md \"What goes out\": `{\"type\":\"item\",\"id\":…,\"batch\":…,\"position\":…,"
	        "\"dataset\":\"monitoring\",…,\"record\":{…}}`) with batch.size %d as in deploy/sampler.conf, "
	        "so every %dth item is followed by its batch trigger: %lld messages, %.1f MB of items as JSONL "
	        "(mean %.0f bytes a line), produced once (%.1f s) to a new topic of %d partitions keyed by "
	        "dataset as the sampler keys them (so all in one partition), with the sampler's producer "
	        "settings (idempotent, acks=all, zstd, linger.ms=20).\n\n",
	        it.n, BATCH_SIZE, BATCH_SIZE, msgs, jsonl / 1e6, jsonl / (double)it.n, produce_s, PARTITIONS);
	fprintf(out, "Each round runs every row once, in an order that rotates from round to round; %d rounds; "
	        "medians.  The sink writes into a new store in build/bench (same disk as the broker) and is "
	        "timed from spawn to the first poll (every %d ms) at which its MANIFEST records the end "
	        "offset of every partition, i.e. everything consumed, written, fsynced and committed; every "
	        "run is checked (all items stored, all %ld batches complete, nothing dead-lettered).  The "
	        "consumer is this program (`build/rel/bench/sink --consume TOPIC`): the sink's consumer "
	        "properties (read_committed, fetch.message.max.bytes=1048576, no offset commits), every "
	        "partition assigned from the beginning, every message read, nothing written; spawn to the "
	        "moment it has read the last message (closing the consumer is not counted, as the sink's "
	        "shutdown is not).  zstd's figure is its own compression speed (`-b3 -i1`, the whole file "
	        "as one input, one thread), turned into items/s with the mean line size; CPU for zstd is "
	        "its compression time.  Items/s and MB/s count the items and their JSONL bytes (the "
	        "triggers, %.1f%% of the messages, are read but not counted).\n\n",
	        reps, POLL_MS, it.ntrig, 100.0 * (double)it.ntrig / (double)msgs);
	fprintf(out, "The two rows with queued.max.messages.kbytes=%s (librdkafka's default; the sink's "
	        "is 262144): librdkafka %s stops fetching a "
	        "partition whose local queue holds more than queued.max.messages.kbytes and "
	        "looks at it again only about a second "
	        "later; one fetch of 8 MiB of these zstd batches (the sink's fetch.message.max.bytes until "
	        "it became 1 MiB) is about 90 MB once decompressed, so the consumer waited about 1 s after "
	        "every such fetch (`-X debug=fetch` shows \"not fetchable: queued.max.messages.kbytes "
	        "exceeded\"), and 1 MiB fetches still hit the default limit now and then: that pair shows "
	        "what the sink's larger queue is for.  The store row is the store's write path alone "
	        "(core/store.h: store_add with the item's id and batch, store_add_trigger, store_commit as "
	        "the sink calls them; no parsing, no Kafka).\n\n", QKB, rd_kafka_version_str());
	fprintf(out, "| | items/s (median) | MB/s (median) | min..max items/s | s (median) | CPU µs/item | peak RSS MB | failed runs |\n");
	fprintf(out, "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
	for (int k = 0; k < NR; k++) {
		struct series *s = &se[k];
		if (!s->n) {
			fprintf(out, "| %s | - | - | - | - | - | - | %d |\n", rows[k].label, s->failed);
			continue;
		}
		char rss[32] = "-";
		if (rows[k].kind == K_SINK || rows[k].kind == K_CONSUME)
			snprintf(rss, sizeof(rss), "%.0f", bench_median(s->rss, (size_t)s->n));
		fprintf(out, "| %s | %.0f | %.1f | %.0f..%.0f | %.2f | %.1f | %s | %d |\n", rows[k].label,
		        bench_median(s->ips, (size_t)s->n), bench_median(s->mbs, (size_t)s->n),
		        bench_min(s->ips, (size_t)s->n), bench_max(s->ips, (size_t)s->n),
		        bench_median(s->secs, (size_t)s->n), bench_median(s->cpu_us, (size_t)s->n), rss, s->failed);
	}
	fprintf(out, "\nWhen the sink had consumed everything (from its stats lines every %s ms, so up to 0.1 s "
	        "late) and when it had committed it, medians:", STATS_MS);
	for (int k = 0; k < NR; k++)
		if (rows[k].kind == K_SINK && se[k].n)
			fprintf(out, "%s %s: %.2f s and %.2f s", k ? ";" : "", rows[k].label,
			        bench_median(se[k].consumed, (size_t)se[k].n), bench_median(se[k].secs, (size_t)se[k].n));
	fprintf(out, ".\n\n");
	if (nratio[R_SINK]) {
		size_t n = (size_t)nratio[R_SINK];
		fprintf(out, "**Ratio sink / min(consume only, zstd -b3) (items/s, median of the per-round ratios): "
		        "%.2fx** (goal: at least 0.7x; min %.2fx, max %.2fx over %zu rounds).  The smaller of the two "
		        "was consume only in %d rounds and zstd in %d.  Against each alone: %.2fx of consume only, "
		        "%.2fx of zstd.\n\n",
		        bench_median(ratio[R_SINK], n), bench_min(ratio[R_SINK], n), bench_max(ratio[R_SINK], n), n,
		        lim_consume, lim_zstd, bench_median(vs_c, (size_t)nvs), bench_median(vs_z, (size_t)nvs));
	} else {
		fprintf(out, "**No ratio: no round where the sink and both baselines succeeded.**\n\n");
	}
	for (int k = 0; k < NR; k++)
		if (k != R_SINK && rows[k].kind == K_SINK && nratio[k])
			fprintf(out, "- %s against min(%s, zstd): %.2fx (min %.2fx, max %.2fx)\n", rows[k].label,
			        rows[rows[k].against].label, bench_median(ratio[k], (size_t)nratio[k]),
			        bench_min(ratio[k], (size_t)nratio[k]), bench_max(ratio[k], (size_t)nratio[k]));
	fprintf(out, "\n");

	fprintf(out, "### Store size per item\n\n");
	if (have_store) {
		double n = (double)it.n;
		fprintf(out, "From the MANIFEST of the last default sink run: %d segment(s), %zu zstd frames (mean "
		        "%.0f KiB of JSONL a frame: frames are cut at 1 MiB and at every commit).\n\n",
		        last_sink.segments, sunk.n, (double)sunk.raw / (double)sunk.n / 1024.0);
		fprintf(out, "| | bytes | bytes/item | JSONL / this |\n| --- | ---: | ---: | ---: |\n");
		fprintf(out, "| JSONL (the items, one a line) | %.0f | %.0f | 1.00x |\n", jsonl, jsonl / n);
		fprintf(out, "| segments (zstd level 3) | %lld | %.0f | **%.2fx** |\n", last_sink.seg_bytes,
		        (double)last_sink.seg_bytes / n, jsonl / (double)last_sink.seg_bytes);
		long long all = last_sink.seg_bytes + last_sink.ids_bytes + last_sink.batch_bytes +
		                last_sink.manifest_bytes;
		fprintf(out, "| whole store (segments, ids %lld, batches %lld, MANIFEST %lld) | %lld | %.0f | %.2fx |\n\n",
		        last_sink.ids_bytes, last_sink.batch_bytes, last_sink.manifest_bytes, all,
		        (double)all / n, jsonl / (double)all);
		fprintf(out, "By zstd level (the sink's --zstd-level; default 3): the frames the sink wrote, compressed "
		        "again (checksum on, one thread, best of 3 passes):\n\n");
		fprintf(out, "| level | bytes/item | JSONL / this | compression MB/s | decompression MB/s |\n");
		fprintf(out, "| ---: | ---: | ---: | ---: | ---: |\n");
		for (int l = 0; l < NLEVELS; l++)
			fprintf(out, "| %d | %.0f | %.2fx | %.0f | %.0f |\n", levels[l], (double)lv[l].bytes / n,
			        jsonl / (double)lv[l].bytes, lv[l].c_mbs, lv[l].d_mbs);
		fprintf(out, "\n");
	} else {
		fprintf(out, "No sink run succeeded: no store to measure.\n\n");
	}

	fprintf(out, "### At a low rate\n\n");
	if (slow.ok) {
		double n = (double)slow_items;
		fprintf(out, "A commit writes one frame per dataset of what arrived since the last one.  The sink "
		        "with its defaults on a new topic fed the first %ld items (and their %ld triggers) at %ld "
		        "items a second, one produce request each (the sampler's linger.ms=20): it wrote %zu "
		        "frames, %.1f items a frame.\n\n", slow_items, slow_items / BATCH_SIZE, slow_rate, slowfr.n,
		        n / (double)slowfr.n);
		fprintf(out, "| | frames | bytes/item | JSONL / this |\n| --- | ---: | ---: | ---: |\n");
		fprintf(out, "| JSONL | | %.0f | 1.00x |\n", slow_jsonl / n);
		fprintf(out, "| segments as the sink wrote them | %zu | %.0f | **%.2fx** |\n", slowfr.n,
		        (double)slow.seg_bytes / n, slow_jsonl / (double)slow.seg_bytes);
		fprintf(out, "| the same frames with the held-out dictionary (below) | %zu | %.0f | %.2fx |\n", slowfr.n,
		        (double)zslow[1].bytes / n, slow_jsonl / (double)zslow[1].bytes);
		fprintf(out, "| the same items as one frame, no dictionary | 1 | %.0f | %.2fx |\n\n",
		        (double)zslow[2].bytes / n, slow_jsonl / (double)zslow[2].bytes);
	} else {
		fprintf(out, "The low-rate run failed (see build/bench/sink.log).\n\n");
	}

	fprintf(out, "### A zstd dictionary\n\n");
	fprintf(out, "Dictionaries of %d bytes or less (ZDICT_trainFromBuffer, which is what `zstd --train` "
	        "runs, with its default size): *held out*, trained on %ld items made the same way from "
	        "`tracesift-loadgen --seed 2` (%zu bytes, %.1f s), i.e. on traffic the measured items are not "
	        "part of, as a dictionary shipped ahead of the data would be; *in-sample*, trained on every "
	        "%ldth measured item (%zu bytes, %.1f s), the best case.  Every frame is compressed again as "
	        "the store does it (level 3, checksum) with and without; sizes include the frame headers "
	        "(4 bytes more with a dictionary, its id) and not the dictionary itself.  Speeds: one "
	        "thread, best of 3 passes.\n\n",
	        DICT_SIZE, dict_samples, dh.len, dh.train_s, it.n / dict_samples, di.len, di.train_s);
	if (have_store) {
		double n = (double)it.n;
		fprintf(out, "The frames the sink wrote (%zu frames, mean %.0f items):\n\n", sunk.n, n / (double)sunk.n);
		fprintf(out, "| | bytes/item | JSONL / this | against no dictionary | compression MB/s | decompression MB/s |\n");
		fprintf(out, "| --- | ---: | ---: | ---: | ---: | ---: |\n");
		const struct zresult *zr[3] = { &as_written, &held, &insample };
		const char *zl[3] = { "no dictionary (what the store does)", "held-out dictionary",
		                      "in-sample dictionary" };
		for (int k = 0; k < 3; k++)
			fprintf(out, "| %s | %.0f | %.2fx | %+.1f%% | %.0f | %.0f |\n", zl[k], (double)zr[k]->bytes / n,
			        jsonl / (double)zr[k]->bytes,
			        100.0 * ((double)zr[k]->bytes - (double)as_written.bytes) / (double)as_written.bytes,
			        zr[k]->c_mbs, zr[k]->d_mbs);
		fprintf(out, "\n(Compressed again without a dictionary the frames take %lld bytes; the segments hold "
		        "%lld.)\n\n", as_written.bytes, last_sink.seg_bytes);
	}
	fprintf(out, "By frame size, held-out dictionary (a commit writes one frame per dataset of what "
	        "arrived since the last commit, so a sink that is not busy writes frames of a few items: "
	        "see \"At a low rate\"):\n\n");
	fprintf(out, "| frame | frames | no dictionary bytes/item | JSONL / it | dictionary bytes/item | JSONL / it | "
	        "dictionary against none | compression MB/s none / dictionary |\n");
	fprintf(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
	for (int k = 0; k < 4; k++) {
		char label[64];
		if (kk[k])
			snprintf(label, sizeof(label), "%ld item%s", kk[k], kk[k] > 1 ? "s" : "");
		else
			snprintf(label, sizeof(label), "1 MiB of JSONL");
		double n = (double)it.n;
		fprintf(out, "| %s | %zu | %.0f | %.2fx | %.0f | %.2fx | **%+.1f%%** | %.0f / %.0f |\n", label,
		        sizes[k].n, (double)sw[k][0].bytes / n, jsonl / (double)sw[k][0].bytes,
		        (double)sw[k][1].bytes / n, jsonl / (double)sw[k][1].bytes,
		        100.0 * ((double)sw[k][1].bytes - (double)sw[k][0].bytes) / (double)sw[k][0].bytes,
		        sw[k][0].c_mbs, sw[k][1].c_mbs);
	}
	fprintf(out, "\nThe store uses no dictionary: segments stay readable with `zstdcat seg | jq` "
	        "(docs/store.md).  With one, every reader needs the dictionary (`zstd -D dict -dc`), so it "
	        "would have to be stored and versioned with the data.\n\n");
	fprintf(out, "Total time of this benchmark: %.0f s.\n\n", (double)(bench_now_ns() - t_start) / 1e9);
	fclose(out);

	for (int k = 0; k < 4; k++)
		frames_free(&sizes[k]);
	frames_free(&slowfr);
	frames_free(&sunk);
	dict_free(&dh);
	dict_free(&di);
	items_free(&it);
	int failed = !slow.ok;
	for (int k = 0; k < NR; k++)
		failed += se[k].failed;
	return failed ? 1 : 0;
}
