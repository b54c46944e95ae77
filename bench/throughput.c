/* bench/throughput.c - tracesift-produce against kcat -P on the same JSONL file, and a linger/batch sweep
 *
 * Both tools read the same records on stdin (kcat gets "trace_id<TAB>record"
 * lines with -K so that both key by trace_id) and get the same -X properties;
 * each run goes to its own new topic and is timed from spawn to exit, which
 * includes the final flush (both wait for every delivery report before they
 * exit).  Runs alternate which tool goes first.  Every run's topic is checked
 * to hold exactly the file's records, then deleted.
 *
 * Environment: BENCH_RECORDS_FILE (required), BENCH_REPS (default 5),
 * BENCH_SWEEP_REPS (default 4; 0: no sweep), BENCH_PRODUCE (default
 * bin/tracesift-produce), BENCH_KCAT (default kcat), BENCH_PARTITIONS (6),
 * BENCH_LINGER / BENCH_BATCH (the settings of the main comparison: default
 * the library's defaults).
 */
#include "bench.h"
#include "record.h"

#define PARTITIONS_DEFAULT 6

#define DEFAULT_LINGER BENCH_DEFAULT_LINGER
#define DEFAULT_BATCH  BENCH_DEFAULT_BATCH

struct input {
	const char *path, *keyed_path;
	long records;
	double bytes; /* payload: the lines without their newlines */
	double key_bytes;
};

struct run {
	double secs, cpu_secs;
	int ok;
};

/* Writes "trace_id\trecord" lines next to the input for kcat -K. */
static void make_keyed(struct input *in)
{
	static char keyed[4200];
	snprintf(keyed, sizeof(keyed), "%s.keyed", in->path);
	FILE *f = fopen(in->path, "r"), *o = fopen(keyed, "w");
	if (!f || !o)
		bench_die("cannot open '%s' or '%s': %s", in->path, keyed, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		const char *id = strstr(line, "\"trace_id\":\"");
		if (!id)
			bench_die("'%s' line %ld: no trace_id", in->path, in->records + 1);
		id += 12;
		in->records++;
		in->bytes += (double)len;
		in->key_bytes += 32;
		fprintf(o, "%.32s\t%s\n", id, line);
	}
	free(line);
	fclose(f);
	if (fclose(o))
		bench_die("cannot write '%s'", keyed);
	in->keyed_path = keyed;
}

/* The -X properties both tools get. */
static int props(char **argv, int n, const char *linger, const char *batch)
{
	static char buf[8][64];
	const char *kv[][2] = {
		{ "enable.idempotence", "true" }, { "acks", "all" },
		{ "compression.codec", "zstd" }, { "linger.ms", linger },
		{ "batch.size", batch },
		{ "queue.buffering.max.messages", "100000" },
		{ "queue.buffering.max.kbytes", "65536" },
		{ "message.max.bytes", "1114112" },
	};
	for (int i = 0; i < 8; i++) {
		snprintf(buf[i], sizeof(buf[i]), "%s=%s", kv[i][0], kv[i][1]);
		argv[n++] = "-X";
		argv[n++] = buf[i];
	}
	return n;
}

static const char *props_text(const char *linger, const char *batch)
{
	static char t[512];
	snprintf(t, sizeof(t), "enable.idempotence=true acks=all compression.codec=zstd "
	         "linger.ms=%s batch.size=%s queue.buffering.max.messages=100000 "
	         "queue.buffering.max.kbytes=65536 message.max.bytes=1114112", linger, batch);
	return t;
}

/* What validating a record costs alone (rec_validate, which tracesift-produce
 * runs on every line before it enqueues it and kcat does not): the median
 * of 5 passes over up to 20000 records held in memory; *mbps gets MB/s. */
static double validate_us(const struct input *in, double *mbps)
{
	FILE *f = fopen(in->path, "r");
	if (!f)
		bench_die("cannot open '%s': %s", in->path, strerror(errno));
	enum { MAXREC = 20000 };
	static char *recs[MAXREC];
	static size_t lens[MAXREC];
	size_t n = 0, cap = 0;
	double bytes = 0;
	ssize_t len;
	char *line = NULL;
	while (n < MAXREC && (len = getline(&line, &cap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 0)
			continue;
		recs[n] = malloc((size_t)len);
		memcpy(recs[n], line, (size_t)len);
		lens[n++] = (size_t)len;
		bytes += (double)len;
	}
	free(line);
	fclose(f);
	double pass[5];
	int bad = 0;
	for (int p = 0; p < 5; p++) {
		int64_t t0 = bench_now_ns();
		for (size_t i = 0; i < n; i++) {
			struct rec_info info;
			char err[256];
			bad += rec_validate(recs[i], lens[i], NULL, &info, err, sizeof(err)) != REC_OK;
		}
		pass[p] = (double)(bench_now_ns() - t0);
	}
	for (size_t i = 0; i < n; i++)
		free(recs[i]);
	if (bad)
		bench_log("%d records failed validation", bad / 5);
	double ns = bench_median(pass, 5);
	*mbps = bytes / 1e6 / (ns / 1e9);
	return ns / 1e3 / (double)n;
}

enum tool { PRODUCE, KCAT };

static struct run run_once(const struct input *in, enum tool tool, const char *linger,
                           const char *batch)
{
	struct run r = { 0 };
	char topic[128], log[4200];
	bench_topic_name(topic, sizeof(topic), tool == PRODUCE ? "tp" : "kc");
	if (bench_create_topic(topic, (int)bench_env_long("BENCH_PARTITIONS", PARTITIONS_DEFAULT)))
		bench_die("cannot create topic '%s'", topic);
	snprintf(log, sizeof(log), "%s/throughput-%s.log", bench_out_dir(),
	         tool == PRODUCE ? "produce" : "kcat");
	char *argv[40];
	int n = 0;
	if (tool == PRODUCE) {
		const char *p = getenv("BENCH_PRODUCE");
		argv[n++] = (char *)(p && *p ? p : "bin/tracesift-produce");
		argv[n++] = "-q";
	} else {
		const char *k = getenv("BENCH_KCAT");
		argv[n++] = (char *)(k && *k ? k : "kcat");
		argv[n++] = "-P";
		argv[n++] = "-K";
		argv[n++] = "\t";
	}
	argv[n++] = "-b";
	argv[n++] = (char *)bench_brokers();
	argv[n++] = "-t";
	argv[n++] = topic;
	n = props(argv, n, linger, batch);
	argv[n] = NULL;
	int64_t ns = 1;
	struct rusage ru = { 0 };
	int st = bench_spawn(argv, tool == PRODUCE ? in->path : in->keyed_path, log, &ns, &ru);
	long got = bench_topic_count(topic);
	r.secs = (double)ns / 1e9;
	r.cpu_secs = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	             (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	r.ok = st == 0 && got == in->records;
	if (!r.ok)
		bench_log("%s run failed: exit status %d, topic holds %ld of %ld records (log %s)",
		          argv[0], st, got, in->records, log);
	bench_delete_topic(topic);
	return r;
}

struct series {
	double rps[64], mbps[64], cpu_us[64];
	int n, failed;
};

static void add(struct series *s, const struct input *in, struct run r)
{
	if (!r.ok) {
		s->failed++;
		return;
	}
	if (s->n == 64)
		return;
	s->rps[s->n] = (double)in->records / r.secs;
	s->mbps[s->n] = in->bytes / 1e6 / r.secs;
	s->cpu_us[s->n] = r.cpu_secs * 1e6 / (double)in->records;
	s->n++;
}

int main(void)
{
	bench_name = "throughput";
	struct input in = { .path = getenv("BENCH_RECORDS_FILE") };
	if (!in.path || !*in.path)
		bench_die("BENCH_RECORDS_FILE is not set");
	make_keyed(&in);
	int reps = (int)bench_env_long("BENCH_REPS", 5);
	int sweep_reps = (int)bench_env_long("BENCH_SWEEP_REPS", 4);
	const char *linger = getenv("BENCH_LINGER"), *batch = getenv("BENCH_BATCH");
	linger = linger && *linger ? linger : DEFAULT_LINGER;
	batch = batch && *batch ? batch : DEFAULT_BATCH;
	bench_log("%ld records, %.1f MB, %d repetitions", in.records, in.bytes / 1e6, reps);

	struct series ts = { 0 }, kc = { 0 };
	double ratio[64];
	int nratio = 0;
	for (int rep = 0; rep < reps; rep++) {
		struct run a, b;
		if (rep % 2 == 0) {
			a = run_once(&in, PRODUCE, linger, batch);
			b = run_once(&in, KCAT, linger, batch);
		} else {
			b = run_once(&in, KCAT, linger, batch);
			a = run_once(&in, PRODUCE, linger, batch);
		}
		add(&ts, &in, a);
		add(&kc, &in, b);
		if (a.ok && b.ok && nratio < 64)
			ratio[nratio++] = b.secs / a.secs;
		bench_log("rep %d: tracesift-produce %.2f s, kcat %.2f s", rep + 1, a.secs, b.secs);
	}

	FILE *f = bench_section_open();
	fprintf(f, "## Throughput: tracesift-produce against kcat -P\n\n");
	fprintf(f, "Input: %ld records, %.1f MB of JSON (mean %.0f bytes a record; \"throughput "
	        "input\" above).  Each run produces the whole file to its own new "
	        "topic (%ld partitions), timed from spawn to exit, which includes the final flush "
	        "(both tools wait for every delivery report).  kcat reads `trace_id<TAB>record` "
	        "lines with `-K` so that both key by trace_id.  Runs alternate which tool "
	        "goes first; %d repetitions; every run checked to leave exactly %ld records "
	        "in its topic.  Same `-X` for both: `%s`.\n\n",
	        in.records, in.bytes / 1e6, in.bytes / (double)in.records,
	        bench_env_long("BENCH_PARTITIONS", PARTITIONS_DEFAULT), reps, in.records,
	        props_text(linger, batch));
	fprintf(f, "| tool | records/s (median) | MB/s (median) | min..max records/s | "
	        "CPU µs/record (median, user+sys) | failed runs |\n| --- | ---: | ---: | --- | ---: | ---: |\n");
	fprintf(f, "| tracesift-produce | %.0f | %.1f | %.0f..%.0f | %.1f | %d |\n",
	        bench_median(ts.rps, ts.n), bench_median(ts.mbps, ts.n), bench_min(ts.rps, ts.n),
	        bench_max(ts.rps, ts.n), bench_median(ts.cpu_us, ts.n), ts.failed);
	fprintf(f, "| kcat -P | %.0f | %.1f | %.0f..%.0f | %.1f | %d |\n\n",
	        bench_median(kc.rps, kc.n), bench_median(kc.mbps, kc.n), bench_min(kc.rps, kc.n),
	        bench_max(kc.rps, kc.n), bench_median(kc.cpu_us, kc.n), kc.failed);
	fprintf(f, "**Ratio tracesift-produce / kcat (records/s, median of the per-repetition "
	        "ratios): %.2fx** (goal: at least 1.0x; min %.2fx, max %.2fx).\n\n",
	        bench_median(ratio, (size_t)nratio), bench_min(ratio, (size_t)nratio),
	        bench_max(ratio, (size_t)nratio));
	double vmbps, vus = validate_us(&in, &vmbps);
	fprintf(f, "Where tracesift-produce's extra CPU goes: it validates every line as trace "
	        "record v1 before enqueueing it (kcat sends bytes unchecked).  `rec_validate` alone, "
	        "on these records held in memory: **%.1f µs a record (%.0f MB/s)**, to compare with "
	        "the difference in CPU µs/record above.  The broker thread's zstd compression and "
	        "the broker itself share the same 2 cores.\n\n", vus, vmbps);
	fflush(f);

	if (sweep_reps > 0) {
		static const char *const lingers[] = { "5", "20", "50", "100" };
		static const char *const batches[] = { "262144", "1000000" };
		enum { NL = 4, NB = 2, NC = NL * NB };
		static struct series sw[NC];
		bench_log("linger.ms x batch.size sweep, %d repetitions", sweep_reps);
		for (int rep = 0; rep < sweep_reps; rep++)
			for (int k = 0; k < NC; k++) {
				/* Reverse the order every other repetition. */
				int c = rep % 2 ? NC - 1 - k : k;
				struct run r = run_once(&in, PRODUCE, lingers[c / NB], batches[c % NB]);
				add(&sw[c], &in, r);
				bench_log("sweep rep %d linger.ms=%s batch.size=%s: %.2f s", rep + 1,
				          lingers[c / NB], batches[c % NB], r.secs);
			}
		fprintf(f, "### tracesift-produce by linger.ms and batch.size\n\n"
		        "Same file and properties as above except these two; %d repetitions, "
		        "configurations in round-robin order.\n\n"
		        "| linger.ms | batch.size | records/s (median) | MB/s (median) | min..max records/s "
		        "| CPU µs/record |\n| ---: | ---: | ---: | ---: | --- | ---: |\n", sweep_reps);
		for (int c = 0; c < NC; c++)
			fprintf(f, "| %s | %s | %.0f | %.1f | %.0f..%.0f | %.1f |\n", lingers[c / NB],
			        batches[c % NB], bench_median(sw[c].rps, sw[c].n),
			        bench_median(sw[c].mbps, sw[c].n), bench_min(sw[c].rps, sw[c].n),
			        bench_max(sw[c].rps, sw[c].n), bench_median(sw[c].cpu_us, sw[c].n));
		fprintf(f, "\n");
	}
	fclose(f);
	unlink(in.keyed_path);
	return ts.failed || kc.failed ? 1 : 0;
}
