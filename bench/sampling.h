/* bench/sampling.h - what the sampler benchmarks share: fixed-size records, input topics, timed runs
 *
 * bench/sampler.c and bench/sampler-rss.c run whole programs (tracesift-sampler,
 * bench/passthrough, bench/py_sampler.py) over a fixed input topic and time
 * them from outside, the same way for each:
 *
 * - The input: COUNT valid trace records v1 of exactly SIZE bytes each
 *   (sb_record(); every one checked with rec_validate(), so none is
 *   dead-lettered), keyed by trace_id, produced once to a new topic.  Each
 *   run reads it from the beginning with a consumer group of its own.
 * - A run: spawn the program, then every SB_POLL_MS ask the broker for the
 *   group's committed offsets on the input (OffsetFetch, from a client of our
 *   own that does not join the group).  Done is the first poll at which they
 *   add up to COUNT: everything consumed, and (with transactions) its output
 *   committed.  The time is spawn to done: process start, group join and
 *   init_transactions included, nothing subtracted.  Then SIGTERM (the
 *   passthrough usually exits by itself first) and wait for the exit.
 * - Along the way: the process's CPU time (/proc/PID/stat) at done, its RSS
 *   (/proc/PID/status) at every poll, and the time of the first commit, which
 *   gives a second, steady-state figure (first commit to done).
 */
#ifndef TS_BENCH_SAMPLING_H
#define TS_BENCH_SAMPLING_H

#include <libgen.h>
#include <limits.h>
#include <signal.h>

#include "bench.h"
#include "record.h"
#include "sample.h"
#include "tstime.h"

#define SB_POLL_MS 10
#define SB_PARTITIONS 6
#define SB_RATE 0.5
#define SB_SEED 42

/* ---- records ------------------------------------------------------------ */

static inline uint64_t sb_rand(uint64_t *s)
{
	/* xorshift64*: deterministic for a seed, good enough for test data */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static const char *const sb_words[] = {
	"the", "cluster", "service", "request", "latency", "token", "model", "answer", "context",
	"document", "deploy", "region", "replica", "policy", "storage", "quota", "limit", "scale",
	"memory", "network", "secret", "volume", "rollout", "metric", "alert", "budget", "account",
	"project", "is", "are", "can", "must", "of", "to", "in", "for", "with", "a", "and", "not",
};

/* n bytes of words (exactly n, no quotes or backslashes) at p. */
static inline void sb_text(char *p, size_t n, uint64_t *rng)
{
	size_t at = 0;
	while (at < n) {
		const char *w = sb_words[sb_rand(rng) % (sizeof(sb_words) / sizeof(sb_words[0]))];
		size_t wl = strlen(w);
		if (at) {
			p[at++] = ' ';
			if (at == n)
				break;
		}
		for (size_t i = 0; i < wl && at < n; i++)
			p[at++] = w[i];
	}
}

/* Record number i: a valid trace record v1 of exactly size bytes (at least
 * 1024) in out (size + 1 bytes), its trace id in tid.  About 5% have an error,
 * 10% a total latency over 2 s, 15% metadata.user_tier = enterprise (the
 * benchmark's classes); records of 2 KB and more carry two retrieved passages
 * in output.context, a quarter of the record each; output.answer takes the
 * rest.  Returns 0, or -1 when size is too small for the fixed part. */
static inline int sb_record(char *out, size_t size, uint64_t *rng, long i, char tid[33])
{
	uint64_t hi = sb_rand(rng), lo = sb_rand(rng) | 1;
	snprintf(tid, 33, "%016llx%016llx", (unsigned long long)hi, (unsigned long long)lo);
	int err = sb_rand(rng) % 100 < 5;
	int slow = sb_rand(rng) % 100 < 10;
	int ent = sb_rand(rng) % 100 < 15;
	double lat = slow ? 2500 + (double)(sb_rand(rng) % 3000000) / 1000
	                  : 300 + (double)(sb_rand(rng) % 1500000) / 1000;
	int tin = 300 + (int)(sb_rand(rng) % 2000), tout = 50 + (int)(sb_rand(rng) % 400);
	int64_t t0 = INT64_C(1767225600000000) + (int64_t)i * 10000; /* 2026-01-01 + 10 ms a record */
	int64_t t1 = t0 + (int64_t)(lat * 1000);
	char ts0[TSTIME_LEN], ts1[TSTIME_LEN], ts2[TSTIME_LEN];
	tstime_format(t0, ts0);
	tstime_format(t1, ts1);
	tstime_format(t0 + 1000, ts2);
	size_t ctx = size >= 2048 ? size / 4 : 0;
	char *p = out, *end = out + size + 1;
	int n = snprintf(p, (size_t)(end - p),
		"{\"v\":1,\"trace_id\":\"%s\",\"name\":\"rag_query\",\"project\":\"bench\","
		"\"start_time\":\"%s\",\"end_time\":\"%s\",\"input\":{\"question\":\"question number %ld\"},"
		"\"tags\":[\"bench\",\"rag\"],\"metadata\":{\"user_tier\":\"%s\",\"i\":%ld},"
		"\"model\":\"gpt-4o-mini\",\"usage\":{\"input_tokens\":%d,\"output_tokens\":%d,\"total_tokens\":%d},"
		"\"latency_ms\":{\"total\":%.3f,\"time_to_first_token\":%.3f},\"error\":%s,"
		"\"spans\":[{\"span_id\":\"%016llx\",\"parent_span_id\":null,\"name\":\"generate_answer\","
		"\"type\":\"llm\",\"start_time\":\"%s\",\"end_time\":\"%s\",\"model\":\"gpt-4o-mini\","
		"\"latency_ms\":{\"total\":%.3f}}],\"output\":{",
		tid, ts0, ts1, i, ent ? "enterprise" : (i & 1) ? "pro" : "free", i, tin, tout, tin + tout,
		lat, lat / 4, err ? "{\"type\":\"Timeout\",\"message\":\"upstream timed out\"}" : "null",
		(unsigned long long)(sb_rand(rng) | 1), ts2, ts1, lat - 1);
	if (n < 0 || (size_t)n >= size)
		return -1;
	p += n;
	if (ctx) {
		p += snprintf(p, (size_t)(end - p), "\"context\":[\"");
		for (int k = 0; k < 2; k++) {
			if (p + ctx + 4 >= end)
				return -1;
			sb_text(p, ctx, rng);
			p += ctx;
			p += snprintf(p, (size_t)(end - p), k ? "\"]," : "\",\"");
		}
	}
	static const char tail[] = "\"}}";
	p += snprintf(p, (size_t)(end - p), "\"answer\":\"");
	if (p + sizeof(tail) - 1 > out + size)
		return -1;
	size_t fill = (size_t)(out + size - p) - (sizeof(tail) - 1);
	sb_text(p, fill, rng);
	memcpy(p + fill, tail, sizeof(tail));
	return 0;
}

struct sb_input {
	char topic[256];
	long count;
	size_t size;
	long expected;     /* records with draw(SB_SEED, trace_id) < SB_RATE */
	double produce_s;
};

static void sb_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	if (m->err)
		(*(long *)opaque)++;
}

/* Makes a new topic (SB_PARTITIONS) holding count records of size bytes,
 * each validated first; dies on failure. */
static inline void sb_input_make(struct sb_input *in, const char *prefix, long count, size_t size,
                                 uint64_t seed)
{
	char err[512], name[64];
	snprintf(name, sizeof(name), "%s-%zu", prefix, size);
	bench_topic_name(in->topic, sizeof(in->topic), name);
	in->count = count;
	in->size = size;
	in->expected = 0;
	if (bench_create_topic(in->topic, SB_PARTITIONS))
		bench_die("cannot create topic '%s'", in->topic);
	long failed = 0;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *props[][2] = {
		{ "bootstrap.servers", bench_brokers() }, { "enable.idempotence", "true" },
		{ "acks", "all" }, { "compression.codec", "zstd" }, { "linger.ms", "50" },
		{ "batch.size", "1000000" }, { "queue.buffering.max.messages", "1000000" },
		{ "queue.buffering.max.kbytes", "1048576" },
	};
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err)))
			bench_die("%s: %s", props[i][0], err);
	rd_kafka_conf_set_dr_msg_cb(conf, sb_dr);
	rd_kafka_conf_set_opaque(conf, &failed);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk)
		bench_die("producer: %s", err);
	char *buf = malloc(size + 1), tid[33];
	struct rec_limits lim;
	rec_limits_default(&lim);
	uint64_t rng = seed * 0x9E3779B97F4A7C15ULL + size;
	int64_t t0 = bench_now_ns();
	for (long i = 0; i < count; i++) {
		if (sb_record(buf, size, &rng, i, tid))
			bench_die("records of %zu bytes are too small", size);
		if (rec_validate(buf, size, &lim, NULL, err, sizeof(err)) != REC_OK)
			bench_die("generated record %ld is not valid: %s", i, err);
		in->expected += sample_selected(sample_draw(SB_SEED, tid), SB_RATE);
		for (;;) {
			rd_kafka_resp_err_t e = rd_kafka_producev(
				rk, RD_KAFKA_V_TOPIC(in->topic), RD_KAFKA_V_KEY(tid, 32),
				RD_KAFKA_V_VALUE(buf, size), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
			if (!e)
				break;
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				bench_die("produce: %s", rd_kafka_err2str(e));
			rd_kafka_poll(rk, 10);
		}
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_flush(rk, 60000);
	in->produce_s = (double)(bench_now_ns() - t0) / 1e9;
	if (failed || rd_kafka_outq_len(rk))
		bench_die("producing the input to '%s' failed (%ld failed)", in->topic, failed);
	rd_kafka_destroy(rk);
	free(buf);
	if (bench_topic_count(in->topic) != count)
		bench_die("topic '%s' does not hold %ld records", in->topic, count);
}

/* ---- programs ----------------------------------------------------------- */

/* The directory of this program (build/rel/bench), for its sibling passthrough. */
static inline const char *sb_self_dir(void)
{
	static char dir[PATH_MAX];
	if (!dir[0]) {
		ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
		if (n <= 0)
			bench_die("cannot read /proc/self/exe");
		dir[n] = '\0';
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
	}
	return dir;
}

/* Whether the program at path links libasan (bin/ holds whichever variant
 * was built last, and `make test` builds the sanitizer one). */
static inline int sb_is_sanitized(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	static char buf[1 << 16];
	static const char needle[] = "libasan.so";
	size_t keep = 0, n;
	int found = 0;
	while (!found && (n = fread(buf + keep, 1, sizeof(buf) - keep, f)) > 0) {
		n += keep;
		found = memmem(buf, n, needle, sizeof(needle) - 1) != NULL;
		keep = n < sizeof(needle) - 1 ? n : sizeof(needle) - 1;
		memmove(buf, buf + n - keep, keep);
	}
	fclose(f);
	return found;
}

/* The venv's python with confluent-kafka ($BENCH_PYTHON), or NULL when
 * bench/run.sh could not set it up. */
static inline const char *sb_python(void)
{
	const char *py = getenv("BENCH_PYTHON");
	return py && *py && access(py, X_OK) == 0 ? py : NULL;
}

/* ---- timed runs --------------------------------------------------------- */

#define SB_MAX_SAMPLES 20000

struct sb_run {
	int ok;              /* done in time, exit status 0 */
	int status;          /* exit status, -1: killed or did not run */
	double secs;         /* spawn to done */
	double first_s;      /* spawn to the first commit */
	long first_offsets;  /* committed at the first commit */
	double cpu_s;        /* user + system of the process at done */
	long hwm_kb;         /* VmHWM at done */
	long rss_kb[SB_MAX_SAMPLES]; /* VmRSS at each poll */
	double rss_t[SB_MAX_SAMPLES];
	long rss_done[SB_MAX_SAMPLES]; /* committed offsets at each poll */
	int nrss;
	char log[4096];
};

static inline long sb_proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = atol(line + n + 1);
	if (f)
		fclose(f);
	return v;
}

static inline double sb_proc_cpu(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	/* after "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The sum of the group's committed offsets on topic (partitions 0..nparts-1),
 * -1 on error; a client of our own (read_uncommitted: no wait for stable
 * offsets) that never joins the group. */
static inline rd_kafka_t *sb_watcher_new(const char *group)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bench_brokers(), err, sizeof(err));
	rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
	rd_kafka_conf_set(conf, "isolation.level", "read_uncommitted", err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk)
		bench_die("watcher: %s", err);
	return rk;
}

static inline long sb_committed(rd_kafka_t *w, const char *topic, int nparts)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
	for (int i = 0; i < nparts; i++)
		rd_kafka_topic_partition_list_add(l, topic, i);
	long sum = -1;
	if (!rd_kafka_committed(w, l, 5000)) {
		sum = 0;
		for (int i = 0; i < l->cnt; i++)
			if (l->elems[i].offset > 0)
				sum += (long)l->elems[i].offset;
	}
	rd_kafka_topic_partition_list_destroy(l);
	return sum;
}

/* Runs argv (stderr to r->log) until group has committed count offsets of
 * topic or timeout_s passes, as the top of this file says; fills *r. */
static inline void sb_run_program(char *const argv[], const char *group, const char *topic,
                                  long count, double timeout_s, struct sb_run *r)
{
	rd_kafka_t *w = sb_watcher_new(group);
	r->ok = 0;
	r->status = -1;
	r->secs = r->first_s = r->cpu_s = -1;
	r->first_offsets = 0;
	r->hwm_kb = -1;
	r->nrss = 0;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, r->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	pid_t pid;
	int64_t t0 = bench_now_ns();
	int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err) {
		bench_log("cannot run '%s': %s", argv[0], strerror(err));
		rd_kafka_destroy(w);
		return;
	}
	int exited = 0, st = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	for (;;) {
		long c = sb_committed(w, topic, SB_PARTITIONS);
		double t = (double)(bench_now_ns() - t0) / 1e9;
		long rss = sb_proc_kb(pid, "VmRSS");
		if (rss > 0 && r->nrss < SB_MAX_SAMPLES) {
			r->rss_kb[r->nrss] = rss;
			r->rss_t[r->nrss] = t;
			r->rss_done[r->nrss++] = c;
		}
		if (c > 0 && r->first_s < 0) {
			r->first_s = t;
			r->first_offsets = c;
		}
		if (c >= count) {
			r->secs = t;
			r->cpu_s = sb_proc_cpu(pid);
			r->hwm_kb = sb_proc_kb(pid, "VmHWM");
			break;
		}
		if (exited || t > timeout_s) {
			bench_log("'%s' %s before committing %ld records (%ld committed; log %s)", argv[0],
			          exited ? "exited" : "timed out", count, c, r->log);
			break;
		}
		/* It may exit by itself (the passthrough does): then one more look. */
		if (wait4(pid, &st, WNOHANG, &ru) == pid)
			exited = 1;
		else
			usleep(SB_POLL_MS * 1000);
	}
	if (!exited) {
		kill(pid, SIGTERM);
		int64_t deadline = bench_now_ns() + INT64_C(60) * 1000000000;
		while (wait4(pid, &st, WNOHANG, &ru) != pid) {
			if (bench_now_ns() > deadline) {
				bench_log("'%s' did not stop within 60 s of SIGTERM: killed", argv[0]);
				kill(pid, SIGKILL);
				wait4(pid, &st, 0, &ru);
				break;
			}
			usleep(20000);
		}
	}
	/* Gone before we could read VmHWM: its peak as the kernel saw it. */
	if (r->secs > 0 && r->hwm_kb <= 0)
		r->hwm_kb = ru.ru_maxrss;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	r->ok = r->secs > 0 && r->status == 0;
	if (r->secs > 0 && r->status != 0)
		bench_log("'%s' exited with status %d (log %s)", argv[0], r->status, r->log);
	rd_kafka_destroy(w);
}

/* The last value of "key":N in the file (the programs' last stats line), or -1. */
static inline long sb_log_number(const char *path, const char *key)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char pat[128], line[65536];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	long v = -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, pat);
		if (p)
			v = atol(p + strlen(pat));
	}
	fclose(f);
	return v;
}

/* The passthrough's "consumed N produced M" counts from its last line. */
static inline int sb_log_passthrough(const char *path, long *consumed, long *produced)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[4096];
	int found = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%% passthrough: consumed %ld produced %ld", consumed, produced) == 2)
			found = 1;
	fclose(f);
	return found ? 0 : -1;
}

/* The sampler's config for the benchmarks: four classes in the style of
 * deploy/sampler.conf, each at SB_RATE; bench/py_sampler.py has the same. */
static inline void sb_write_sampler_conf(const char *path, const char *input, const char *dlq)
{
	FILE *f = fopen(path, "w");
	if (!f)
		bench_die("cannot write '%s': %s", path, strerror(errno));
	fprintf(f, "# written by bench/sampler.c; bench/py_sampler.py has the same classes\n"
	           "[sampler]\ninput = %s\ndlq = %s\nseed = %d\nbatch.size = 0\nstats.interval.ms = 1000\n"
	           "[class errors]\nwhen = error\nrate = %g\ndataset = incidents\n"
	           "[class slow]\nwhen = latency_ms > 2000\nrate = %g\ndataset = latency\n"
	           "[class enterprise]\nwhen = metadata.user_tier = enterprise\nrate = %g\n"
	           "[class default]\nrate = %g\n",
	           input, dlq, SB_SEED, SB_RATE, SB_RATE, SB_RATE, SB_RATE);
	fclose(f);
}

#endif
