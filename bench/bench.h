/* bench/bench.h - what the benchmarks share: clock, statistics, topics, child processes, output
 *
 * Every benchmark is one program (bench/NAME.c) that compares tracesift against
 * a baseline in the same run and writes its section of bench/RESULTS.md to
 * $BENCH_OUT/NAME.md (default build/bench/NAME.md); bench/run.sh joins them.
 * Progress goes to stderr as "% NAME: ...".  The broker is $TS_BROKERS
 * (default 127.0.0.1:9092); topics are created with the Admin API under
 * unique names and deleted at the end.
 */
#ifndef TS_BENCH_H
#define TS_BENCH_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

extern char **environ;

/* libtracesift's defaults (kafka_defaults in producer/lib/client.c): the
 * benchmarks pass them explicitly to tracesift and to its baselines alike. */
#define BENCH_DEFAULT_LINGER "50"
#define BENCH_DEFAULT_BATCH  "1000000"

static const char *bench_name = "bench";

static inline void bench_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%% %s: ", bench_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static inline void bench_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%% ERROR: %s: ", bench_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static inline const char *bench_brokers(void)
{
	const char *b = getenv("TS_BROKERS");
	return b && *b ? b : "127.0.0.1:9092";
}

/* An integer from the environment, or def. */
static inline long bench_env_long(const char *name, long def)
{
	const char *s = getenv(name);
	return s && *s ? strtol(s, NULL, 10) : def;
}

static inline int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- statistics --------------------------------------------------------- */

static inline int bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static inline int bench_cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The p-th percentile (0..100, nearest rank) of v[n], which it sorts. */
static inline int64_t bench_pct_i64(int64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_i64);
	size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/* The median of v[n] (sorts a copy). */
static inline double bench_median(const double *v, size_t n)
{
	if (n == 0)
		return 0;
	double *c = malloc(n * sizeof(*c));
	if (!c)
		bench_die("out of memory");
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), bench_cmp_d);
	double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

static inline double bench_min(const double *v, size_t n)
{
	double m = n ? v[0] : 0;
	for (size_t i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static inline double bench_max(const double *v, size_t n)
{
	double m = n ? v[0] : 0;
	for (size_t i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/* ---- topics ------------------------------------------------------------- */

/* A topic name nobody else uses: "bench-PREFIX-PID-RANDOM". */
static inline void bench_topic_name(char *out, size_t size, const char *prefix)
{
	static unsigned seq;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, size, "bench-%s-%d-%lx%u", prefix, (int)getpid(),
	         (unsigned long)(ts.tv_nsec ^ ts.tv_sec), seq++);
}

static inline rd_kafka_t *bench_admin_new(void)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bench_brokers(), err, sizeof(err))) {
		rd_kafka_conf_destroy(conf);
		bench_log("admin conf: %s", err);
		return NULL;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		bench_log("rd_kafka_new: %s", err);
	}
	return rk;
}

/* Creates a topic with the Admin API; returns 0 or -1 (with a log line). */
static inline int bench_create_topic(const char *topic, int partitions)
{
	char err[512];
	rd_kafka_t *rk = bench_admin_new();
	if (!rk)
		return -1;
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	int rc = -1;
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	if (ev) {
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t n = 0;
		const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
		if (rd_kafka_event_error(ev))
			bench_log("create topic '%s': %s", topic, rd_kafka_event_error_string(ev));
		else if (n == 1 && (rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_NO_ERROR ||
		                    rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS))
			rc = 0;
		else if (n == 1)
			bench_log("create topic '%s': %s", topic, rd_kafka_topic_result_error_string(tr[0]));
		rd_kafka_event_destroy(ev);
	} else {
		bench_log("create topic '%s': timed out", topic);
	}
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_destroy(rk);
	return rc;
}

/* Deletes a topic (the benchmarks leave nothing behind); errors are logged only. */
static inline void bench_delete_topic(const char *topic)
{
	rd_kafka_t *rk = bench_admin_new();
	if (!rk)
		return;
	rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	if (!ev)
		bench_log("delete topic '%s': timed out", topic);
	else if (rd_kafka_event_error(ev))
		bench_log("delete topic '%s': %s", topic, rd_kafka_event_error_string(ev));
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_DeleteTopic_destroy(dt);
	rd_kafka_destroy(rk);
}

/* How many messages the topic holds: the sum over its partitions of the high
 * watermark (the topics are new, so their low watermarks are 0); -1 on error. */
static inline long bench_topic_count(const char *topic)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bench_brokers(), err, sizeof(err));
	rd_kafka_conf_set(conf, "group.id", "tracesift-bench", err, sizeof(err));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	long total = -1;
	if (!rd_kafka_metadata(rk, 0, rkt, &md, 10000) && md->topic_cnt == 1 && !md->topics[0].err) {
		total = 0;
		for (int i = 0; i < md->topics[0].partition_cnt && total >= 0; i++) {
			int64_t lo, hi;
			if (rd_kafka_query_watermark_offsets(rk, topic, md->topics[0].partitions[i].id,
			                                     &lo, &hi, 10000))
				total = -1;
			else
				total += (long)hi;
		}
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return total;
}

/* ---- child processes ---------------------------------------------------- */

/* Runs argv with stdin from in_path (NULL: /dev/null) and stdout, stderr to
 * out_path (NULL: /dev/null); waits for it.  Fills *elapsed_ns (spawn to
 * exit) and *ru (its resource use) when not NULL.  Returns its exit status,
 * or -1 if it did not run or exit normally. */
static inline int bench_spawn(char *const argv[], const char *in_path, const char *out_path,
                              int64_t *elapsed_ns, struct rusage *ru)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in_path ? in_path : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out_path ? out_path : "/dev/null",
	                                 O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid;
	int64_t t0 = bench_now_ns();
	int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err) {
		bench_log("cannot run '%s': %s", argv[0], strerror(err));
		return -1;
	}
	int st;
	struct rusage r;
	while (wait4(pid, &st, 0, &r) < 0)
		if (errno != EINTR)
			return -1;
	if (elapsed_ns)
		*elapsed_ns = bench_now_ns() - t0;
	if (ru)
		*ru = r;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- output ------------------------------------------------------------- */

/* Where the sections and logs go: $BENCH_OUT (default build/bench), created. */
static inline const char *bench_out_dir(void)
{
	const char *dir = getenv("BENCH_OUT");
	if (!dir || !*dir)
		dir = "build/bench";
	mkdir(dir, 0755);
	return dir;
}

/* Opens this benchmark's section of RESULTS.md: $BENCH_OUT/NAME.md. */
static inline FILE *bench_section_open(void)
{
	const char *dir = bench_out_dir();
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.md", dir, bench_name);
	FILE *f = fopen(path, "w");
	if (!f)
		bench_die("cannot write '%s': %s", path, strerror(errno));
	return f;
}

#endif
