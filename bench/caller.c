/* bench/caller.c - time on the calling thread of ts_trace_end against a bare rd_kafka_producev
 *
 * Both send to the same topic of a live broker, with the same producer
 * settings (idempotence, acks=all, zstd, the same linger.ms and batch.size,
 * queues large enough never to fill), each with a thread that serves its
 * delivery reports.  The candidate times ts_trace_end() of a 5-span trace
 * built beforehand; the baseline builds the same kind of trace, renders it
 * (untimed) and times rd_kafka_producev() of those bytes with
 * RD_KAFKA_MSG_F_COPY and key = the 32-character trace id.  Rounds alternate
 * candidate and baseline; each round ends with an untimed flush.  The
 * figures are the medians over rounds of each round's percentiles.
 *
 * Environment: BENCH_CALLS (20000 a round), BENCH_ROUNDS (7),
 * BENCH_SWEEP_CALLS (10000), BENCH_SWEEP_ROUNDS (3; 0: no linger/batch
 * sweep), BENCH_CALLGRIND (1: also count instructions per call with valgrind
 * when it is installed; 0: not).
 *
 * "caller --ir end|whole|producev BYTES N TOPIC" is the child that valgrind
 * runs (whole: ts_trace_begin .. ts_trace_end, counted in whole_trace()).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "bench.h"
#include "record.h"
#include "traces.h"

#define DEFAULT_LINGER BENCH_DEFAULT_LINGER
#define DEFAULT_BATCH  BENCH_DEFAULT_BATCH
#define SMALL_BYTES 1024
#define LARGE_BYTES 8192
#define MAX_ROUNDS 32

/* ---- the two producers ---------------------------------------------------- */

struct bare {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	pthread_t poller;
	atomic_int stop;
	atomic_ulong delivered, failed;
};

static void props_of(const char *linger, const char *batch, const char *kv[][2], int *n)
{
	const char *p[][2] = {
		{ "bootstrap.servers", bench_brokers() },
		{ "enable.idempotence", "true" }, { "acks", "all" },
		{ "compression.codec", "zstd" }, { "linger.ms", linger }, { "batch.size", batch },
		{ "queue.buffering.max.messages", "1000000" },
		{ "queue.buffering.max.kbytes", "1048576" },
		{ "message.max.bytes", "1114112" },
	};
	*n = (int)(sizeof(p) / sizeof(p[0]));
	memcpy(kv, p, sizeof(p));
}

static ts_client_t *cand_new(const char *topic, const char *linger, const char *batch)
{
	char err[512];
	const char *kv[16][2];
	int n;
	props_of(linger, batch, kv, &n);
	ts_conf_t *conf = ts_conf_new();
	for (int i = 0; i < n; i++)
		if (ts_conf_set(conf, kv[i][0], kv[i][1], err, sizeof(err)))
			bench_die("property '%s': %s", kv[i][0], err);
	ts_conf_set(conf, "topic", topic, err, sizeof(err));
	ts_conf_set(conf, "project", "bench", err, sizeof(err));
	ts_client_t *c = ts_client_new(conf, err, sizeof(err));
	if (!c)
		bench_die("ts_client_new: %s", err);
	return c;
}

static void bare_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct bare *b = opaque;
	if (m->err)
		atomic_fetch_add(&b->failed, 1);
	else
		atomic_fetch_add(&b->delivered, 1);
}

static void *bare_poll(void *arg)
{
	struct bare *b = arg;
	while (!atomic_load(&b->stop))
		rd_kafka_poll(b->rk, 50);
	return NULL;
}

static struct bare *bare_new(const char *topic, const char *linger, const char *batch)
{
	char err[512];
	const char *kv[16][2];
	int n;
	struct bare *b = calloc(1, sizeof(*b));
	props_of(linger, batch, kv, &n);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	for (int i = 0; i < n; i++)
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof(err)))
			bench_die("property '%s': %s", kv[i][0], err);
	rd_kafka_conf_set_opaque(conf, b);
	rd_kafka_conf_set_dr_msg_cb(conf, bare_dr);
	if (!(b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))))
		bench_die("rd_kafka_new: %s", err);
	b->rkt = rd_kafka_topic_new(b->rk, topic, NULL);
	pthread_create(&b->poller, NULL, bare_poll, b);
	return b;
}

static void bare_destroy(struct bare *b)
{
	rd_kafka_flush(b->rk, 60000);
	atomic_store(&b->stop, 1);
	pthread_join(b->poller, NULL);
	rd_kafka_topic_destroy(b->rkt);
	rd_kafka_destroy(b->rk);
	free(b);
}

/* ---- rounds ------------------------------------------------------------- */

struct pcts {
	double p50, p99, p999, max, mean; /* ns */
};

static struct pcts pcts_of(int64_t *v, int n)
{
	struct pcts p;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += (double)v[i];
	p.mean = sum / n;
	p.p50 = (double)bench_pct_i64(v, (size_t)n, 50);
	p.p99 = (double)bench_pct_i64(v, (size_t)n, 99);
	p.p999 = (double)bench_pct_i64(v, (size_t)n, 99.9);
	p.max = (double)v[n - 1];
	return p;
}

static uint64_t seq_next;

/* n calls of ts_trace_end; end[] gets its times, full[] those of the whole
 * trace: begin, spans, setters and end (the text is made beforehand). */
static int round_cand(ts_client_t *c, size_t pad, int n, int64_t *end, int64_t *full)
{
	struct traces_buf tb;
	int fails = 0;
	traces_buf_init(&tb, pad);
	for (int i = 0; i < n; i++) {
		traces_prepare(&tb, pad, seq_next++);
		int64_t b0 = bench_now_ns();
		ts_trace_t *t = traces_build_prepared(c, &tb, pad);
		int64_t t0 = bench_now_ns();
		int rc = ts_trace_end(t);
		int64_t t1 = bench_now_ns();
		end[i] = t1 - t0;
		full[i] = t1 - b0;
		fails += rc != TS_OK;
	}
	traces_buf_release(&tb);
	if (ts_client_flush(c, 120000))
		bench_log("candidate flush timed out");
	return fails;
}

/* n calls of rd_kafka_producev of the same kind of record. */
static int round_bare(struct bare *b, ts_client_t *c, size_t pad, int n, int64_t *ns)
{
	struct traces_buf tb;
	int fails = 0;
	traces_buf_init(&tb, pad);
	for (int i = 0; i < n; i++) {
		ts_trace_t *t = traces_build(c, &tb, pad, seq_next++);
		size_t len;
		char *rec = trace_render(t, &len), key[REC_TRACE_ID_LEN];
		memcpy(key, ts_trace_id(t), sizeof(key));
		ts_trace_abandon(t);
		int64_t t0 = bench_now_ns();
		rd_kafka_resp_err_t err = rd_kafka_producev(b->rk, RD_KAFKA_V_RKT(b->rkt),
		                                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                                            RD_KAFKA_V_KEY(key, sizeof(key)),
		                                            RD_KAFKA_V_VALUE(rec, len), RD_KAFKA_V_END);
		int64_t t1 = bench_now_ns();
		ns[i] = t1 - t0;
		fails += err != RD_KAFKA_RESP_ERR_NO_ERROR;
		free(rec);
	}
	traces_buf_release(&tb);
	if (rd_kafka_flush(b->rk, 120000))
		bench_log("baseline flush timed out");
	return fails;
}

struct result {
	struct pcts end[MAX_ROUNDS], full[MAX_ROUNDS], bare[MAX_ROUNDS];
	int rounds, fails;
	size_t bytes;
};

static double med(const struct pcts *p, int n, size_t off)
{
	double v[MAX_ROUNDS];
	for (int i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&p[i] + off);
	return bench_median(v, (size_t)n);
}

#define MED(arr, n, field) med(arr, n, offsetof(struct pcts, field))

/* One configuration: record size and producer settings, with its own topic
 * and producers. */
struct cfg {
	const char *linger, *batch;
	size_t want;
	char topic[128];
	ts_client_t *c;
	struct bare *b;
	size_t pad;
	struct result r;
};

/* Rounds of candidate and baseline for every configuration: the
 * configurations take turns round by round (in alternating order), and
 * within each turn candidate and baseline alternate which goes first, so
 * that the machine's changing load falls on all of them alike. */
static void measure(struct cfg *cfg, int ncfg, int calls, int rounds)
{
	int64_t *end = malloc((size_t)calls * sizeof(*end)), *full = malloc((size_t)calls * sizeof(*full));
	int64_t *bare = malloc((size_t)calls * sizeof(*bare));
	if (!end || !full || !bare)
		bench_die("out of memory");
	rounds = rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;
	for (int k = 0; k < ncfg; k++) {
		struct cfg *x = &cfg[k];
		bench_topic_name(x->topic, sizeof(x->topic), "caller");
		if (bench_create_topic(x->topic, 6))
			bench_die("cannot create topic '%s'", x->topic);
		x->c = cand_new(x->topic, x->linger, x->batch);
		x->b = bare_new(x->topic, x->linger, x->batch);
		x->pad = traces_calibrate(x->c, x->want);
		x->r.bytes = traces_size(x->c, x->pad);
		x->r.rounds = rounds;
		/* Warm up: connections, metadata, producer ids. */
		round_cand(x->c, x->pad, calls / 10 + 1, end, full);
		round_bare(x->b, x->c, x->pad, calls / 10 + 1, bare);
	}
	for (int i = 0; i < rounds; i++)
		for (int j = 0; j < ncfg; j++) {
			int k = i % 2 ? ncfg - 1 - j : j;
			struct cfg *x = &cfg[k];
			if ((i + j) % 2 == 0) {
				x->r.fails += round_cand(x->c, x->pad, calls, end, full);
				x->r.fails += round_bare(x->b, x->c, x->pad, calls, bare);
			} else {
				x->r.fails += round_bare(x->b, x->c, x->pad, calls, bare);
				x->r.fails += round_cand(x->c, x->pad, calls, end, full);
			}
			x->r.end[i] = pcts_of(end, calls);
			x->r.full[i] = pcts_of(full, calls);
			x->r.bare[i] = pcts_of(bare, calls);
		}
	free(end);
	free(full);
	free(bare);
	for (int k = 0; k < ncfg; k++) {
		struct cfg *x = &cfg[k];
		ts_stats_t st;
		ts_client_destroy(x->c, &st);
		unsigned long bf = atomic_load(&x->b->failed);
		if (st.failed || st.dropped || bf)
			bench_log("linger.ms=%s: %llu failed, %llu dropped by tracesift, %lu failed by the baseline",
			          x->linger, (unsigned long long)st.failed, (unsigned long long)st.dropped, bf);
		x->r.fails += (int)(st.failed + st.dropped + bf);
		bare_destroy(x->b);
		bench_delete_topic(x->topic);
	}
}

/* ---- instruction counts under callgrind ----------------------------------- */

/* A whole trace, begin to end, from prepared text: a function of its own so
 * that callgrind can count it. */
static __attribute__((noinline)) int whole_trace(ts_client_t *c, const struct traces_buf *tb, size_t pad)
{
	return ts_trace_end(traces_build_prepared(c, tb, pad));
}

static int ir_child(int argc, char **argv)
{
	if (argc != 6)
		bench_die("usage: caller --ir end|whole|producev BYTES N TOPIC");
	const char *mode = argv[2];
	size_t want = (size_t)atol(argv[3]);
	int n = atoi(argv[4]);
	ts_client_t *c = cand_new(argv[5], DEFAULT_LINGER, DEFAULT_BATCH);
	struct bare *b = bare_new(argv[5], DEFAULT_LINGER, DEFAULT_BATCH);
	size_t pad = traces_calibrate(c, want);
	int64_t *x = malloc((size_t)n * sizeof(*x)), *y = malloc((size_t)n * sizeof(*y));
	int fails = 0;
	if (!strcmp(mode, "whole")) {
		struct traces_buf tb;
		traces_buf_init(&tb, pad);
		for (int i = 0; i < n; i++) {
			traces_prepare(&tb, pad, seq_next++);
			fails += whole_trace(c, &tb, pad) != TS_OK;
		}
		traces_buf_release(&tb);
		ts_client_flush(c, 120000);
	} else {
		fails = !strcmp(mode, "end") ? round_cand(c, pad, n, x, y) : round_bare(b, c, pad, n, x);
	}
	ts_client_destroy(c, NULL);
	bare_destroy(b);
	free(x);
	free(y);
	return fails ? 1 : 0;
}

/* Instructions per call of fn (ts_trace_end, whole_trace or
 * rd_kafka_producev) over n calls, counted by callgrind; -1 when valgrind
 * cannot run. */
static double ir_per_call(const char *self, const char *mode, size_t bytes, int n, const char *topic)
{
	char out[4200], toggle[64], nbuf[32], bbuf[32], log[4200];
	const char *dir = bench_out_dir();
	snprintf(out, sizeof(out), "%s/callgrind.%s.%zu.out", dir, mode, bytes);
	snprintf(log, sizeof(log), "%s/callgrind.log", dir);
	snprintf(toggle, sizeof(toggle), "--toggle-collect=%s",
	         !strcmp(mode, "end") ? "ts_trace_end" :
	         !strcmp(mode, "whole") ? "whole_trace" : "rd_kafka_producev");
	snprintf(nbuf, sizeof(nbuf), "%d", n);
	snprintf(bbuf, sizeof(bbuf), "%zu", bytes);
	char outopt[4300];
	snprintf(outopt, sizeof(outopt), "--callgrind-out-file=%s", out);
	char *argv[] = { "valgrind", "--tool=callgrind", "--collect-atstart=no", toggle, outopt,
	                 (char *)self, "--ir", (char *)mode, bbuf, nbuf, (char *)topic, NULL };
	if (bench_spawn(argv, NULL, log, NULL, NULL) != 0)
		return -1;
	FILE *f = fopen(out, "r");
	if (!f)
		return -1;
	char line[512];
	double total = -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "summary:", 8) || !strncmp(line, "totals:", 7))
			total = atof(strchr(line, ':') + 1);
	fclose(f);
	unlink(out);
	return total < 0 ? -1 : total / n;
}

/* ---- main ----------------------------------------------------------------- */

static void print_size(FILE *f, const struct result *r)
{
	int n = r->rounds;
	fprintf(f, "| call | p50 µs | p99 µs | p99.9 µs | max µs | mean µs |\n"
	        "| --- | ---: | ---: | ---: | ---: | ---: |\n");
	fprintf(f, "| `ts_trace_end` | %.2f | %.2f | %.2f | %.0f | %.2f |\n",
	        MED(r->end, n, p50) / 1e3, MED(r->end, n, p99) / 1e3, MED(r->end, n, p999) / 1e3,
	        MED(r->end, n, max) / 1e3, MED(r->end, n, mean) / 1e3);
	fprintf(f, "| bare `rd_kafka_producev` (F_COPY) | %.2f | %.2f | %.2f | %.0f | %.2f |\n",
	        MED(r->bare, n, p50) / 1e3, MED(r->bare, n, p99) / 1e3, MED(r->bare, n, p999) / 1e3,
	        MED(r->bare, n, max) / 1e3, MED(r->bare, n, mean) / 1e3);
	fprintf(f, "| ratio | **%.2fx** | **%.2fx** | %.2fx | %.2fx | %.2fx |\n",
	        MED(r->end, n, p50) / MED(r->bare, n, p50), MED(r->end, n, p99) / MED(r->bare, n, p99),
	        MED(r->end, n, p999) / MED(r->bare, n, p999), MED(r->end, n, max) / MED(r->bare, n, max),
	        MED(r->end, n, mean) / MED(r->bare, n, mean));
	fprintf(f, "| whole trace: `ts_trace_begin` .. `ts_trace_end` | %.2f | %.2f | %.2f | %.0f | %.2f |\n\n",
	        MED(r->full, n, p50) / 1e3, MED(r->full, n, p99) / 1e3, MED(r->full, n, p999) / 1e3,
	        MED(r->full, n, max) / 1e3, MED(r->full, n, mean) / 1e3);
	double lo = 1e9, hi = 0;
	for (int i = 0; i < n; i++) {
		double q = r->end[i].p99 / r->bare[i].p99;
		lo = q < lo ? q : lo;
		hi = q > hi ? q : hi;
	}
	fprintf(f, "Per-round p99 ratio ranged %.2fx..%.2fx over %d rounds%s.\n\n", lo, hi, n,
	        r->fails ? "; SOME CALLS FAILED (see the log)" : "");
}

int main(int argc, char **argv)
{
	bench_name = "caller";
	if (argc > 1 && !strcmp(argv[1], "--ir"))
		return ir_child(argc, argv);
	int calls = (int)bench_env_long("BENCH_CALLS", 20000);
	int rounds = (int)bench_env_long("BENCH_ROUNDS", 7);
	int sweep_calls = (int)bench_env_long("BENCH_SWEEP_CALLS", 10000);
	int sweep_rounds = (int)bench_env_long("BENCH_SWEEP_ROUNDS", 3);
	int fails = 0;

	/* What one clock reading costs, to read the figures against. */
	int64_t clk[10000];
	for (int i = 0; i < 10000; i++) {
		int64_t a = bench_now_ns();
		clk[i] = bench_now_ns() - a;
	}
	double clock_ns = (double)bench_pct_i64(clk, 10000, 50);

	static struct cfg sizes[2] = {
		{ .linger = DEFAULT_LINGER, .batch = DEFAULT_BATCH, .want = SMALL_BYTES },
		{ .linger = DEFAULT_LINGER, .batch = DEFAULT_BATCH, .want = LARGE_BYTES },
	};
	bench_log("%d rounds of %d calls, %d-byte and %d-byte traces", rounds, calls, SMALL_BYTES, LARGE_BYTES);
	measure(sizes, 2, calls, rounds);
	struct result small = sizes[0].r, large = sizes[1].r;
	fails += small.fails + large.fails;

	FILE *f = bench_section_open();
	fprintf(f, "## Caller cost: `ts_trace_end` against a bare `rd_kafka_producev`\n\n"
	        "Time on the calling thread per call (CLOCK_MONOTONIC around the call alone; one "
	        "clock reading costs %.0f ns).  The trace (begin, 5 spans, setters) is built before "
	        "the timed region; the baseline builds and renders the same kind of trace untimed and "
	        "times `rd_kafka_producev(RD_KAFKA_V_RKT, F_COPY, key = 32-char trace id)` of those "
	        "bytes.  Same live broker and topic (6 partitions), same settings for both: "
	        "enable.idempotence=true acks=all compression.codec=zstd linger.ms=%s batch.size=%s "
	        "message.max.bytes=1114112, and queue.buffering.max.messages=1000000 "
	        "queue.buffering.max.kbytes=1048576 so that the queue never fills; each has a thread "
	        "serving its delivery reports.  %d rounds of %d calls each, candidate and baseline "
	        "alternating (and alternating which goes first), a flush after each round (untimed); "
	        "figures are medians over the rounds of each round's percentile.\n\n"
	        "What each row times:\n\n"
	        "- `ts_trace_end`: the call alone, on a trace whose spans have all ended: end "
	        "the root, serialize the whole record (every span: nothing is serialized "
	        "earlier), copy it into a buffer of its exact size, free the trace, and hand the "
	        "buffer to librdkafka (`rd_kafka_produce`, RD_KAFKA_MSG_F_FREE, no further copy).\n"
	        "- bare `rd_kafka_producev`: the call alone, given finished bytes (rendered "
	        "untimed); librdkafka copies them (F_COPY).\n"
	        "- whole trace: everything a service spends on tracing one request: "
	        "`ts_trace_begin`, 5 `ts_span_begin`/`ts_span_end`, every setter (copying, "
	        "validating and escaping the text), and `ts_trace_end`.  Only the text itself is "
	        "made beforehand.  It has no bare counterpart.\n\n",
	        clock_ns, DEFAULT_LINGER, DEFAULT_BATCH, small.rounds, calls);
	fprintf(f, "### Small trace: %zu bytes\n\n"
	        "The issue asks for 1 KB, but no 5-span record is that small: each span's ids, "
	        "name, type, two timestamps, latency and error take about 200 bytes, and the "
	        "top level about 400.  This is the benchmark's trace shape with the least text.\n\n", small.bytes);
	print_size(f, &small);
	fprintf(f, "### Larger trace: %zu bytes\n\n", large.bytes);
	print_size(f, &large);
	fprintf(f, "Goal: p99 of `ts_trace_end` under 2x the bare call.  `ts_trace_end` does more "
	        "than the bare call: it serializes the record (the bare call is handed finished "
	        "bytes) and frees the trace; both copy the record once.\n\n");
	fflush(f);

	if (bench_env_long("BENCH_CALLGRIND", 1) && access("/usr/bin/valgrind", X_OK) == 0) {
		char topic[128], self[4096];
		ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
		self[sl > 0 ? sl : 0] = '\0';
		int n = 2000;
		bench_topic_name(topic, sizeof(topic), "ir");
		bench_log("counting instructions with callgrind (%d calls each)", n);
		if (bench_create_topic(topic, 6) == 0) {
			double e1 = ir_per_call(self, "end", SMALL_BYTES, n, topic);
			double p1 = ir_per_call(self, "producev", SMALL_BYTES, n, topic);
			double w1 = ir_per_call(self, "whole", SMALL_BYTES, n, topic);
			double e8 = ir_per_call(self, "end", LARGE_BYTES, n, topic);
			double p8 = ir_per_call(self, "producev", LARGE_BYTES, n, topic);
			double w8 = ir_per_call(self, "whole", LARGE_BYTES, n, topic);
			bench_delete_topic(topic);
			if (e1 > 0 && p1 > 0 && w1 > 0 && e8 > 0 && p8 > 0 && w8 > 0) {
				fprintf(f, "### Instructions per call (callgrind, %d calls, the calling thread only)\n\n"
				        "Not noisy: what each call executes, including everything it calls.  "
				        "The whole trace is `ts_trace_begin` .. `ts_trace_end` as in the tables "
				        "above (the text made beforehand is not counted).\n\n"
				        "| record | `ts_trace_end` | `rd_kafka_producev` | ratio | whole trace |\n"
				        "| --- | ---: | ---: | ---: | ---: |\n"
				        "| %zu bytes | %.0f | %.0f | %.2fx | %.0f |\n"
				        "| %zu bytes | %.0f | %.0f | %.2fx | %.0f |\n\n",
				        n, small.bytes, e1, p1, e1 / p1, w1, large.bytes, e8, p8, e8 / p8, w8);
			} else {
				bench_log("callgrind did not run (see %s/callgrind.log)", bench_out_dir());
			}
		}
		fflush(f);
	}

	if (sweep_rounds > 0) {
		static const char *const lingers[] = { "5", "20", "50", "100" };
		static const char *const batches[] = { "262144", "1000000" };
		enum { NL = 4, NB = 2, NC = NL * NB };
		static struct cfg sw[NC];
		for (int k = 0; k < NC; k++)
			sw[k] = (struct cfg){ .linger = lingers[k / NB], .batch = batches[k % NB], .want = LARGE_BYTES };
		bench_log("linger.ms x batch.size sweep: %d rounds of %d calls", sweep_rounds, sweep_calls);
		measure(sw, NC, sweep_calls, sweep_rounds);
		fprintf(f, "### By linger.ms and batch.size (%zu-byte records)\n\n"
		        "%d rounds of %d calls per configuration, as above; the configurations (each with "
		        "its own producers and topic, all alive together) take turns round by round.\n\n"
		        "| linger.ms | batch.size | `ts_trace_end` p50 / p99 µs | producev p50 / p99 µs | "
		        "p50 ratio | p99 ratio |\n| ---: | ---: | --- | --- | ---: | ---: |\n",
		        sw[0].r.bytes, sweep_rounds, sweep_calls);
		for (int k = 0; k < NC; k++) {
			const struct result *r = &sw[k].r;
			int n = r->rounds;
			fails += r->fails;
			fprintf(f, "| %s | %s | %.2f / %.2f | %.2f / %.2f | %.2fx | %.2fx |\n",
			        sw[k].linger, sw[k].batch,
			        MED(r->end, n, p50) / 1e3, MED(r->end, n, p99) / 1e3,
			        MED(r->bare, n, p50) / 1e3, MED(r->bare, n, p99) / 1e3,
			        MED(r->end, n, p50) / MED(r->bare, n, p50),
			        MED(r->end, n, p99) / MED(r->bare, n, p99));
		}
		fprintf(f, "\n");
	}
	fclose(f);
	return fails ? 1 : 0;
}
