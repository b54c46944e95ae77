/* bench/memory.c - peak RSS of a process tracing 1,000,000 records while the broker is down
 *
 * Each configuration runs in its own child process (forked before any Kafka
 * client exists): it builds and ends traces as fast as it can through a
 * client whose bootstrap.servers is a port where nothing listens, so every
 * enqueued trace stays queued and, once the queue is full, every further one
 * is dropped and counted.  The peak RSS (VmHWM, and the kernel's ru_maxrss
 * seen by the parent) must then be bounded by queue.buffering.max.kbytes /
 * .messages, not by the number of traces.  The client is destroyed with
 * close.timeout.ms=0.  A child that creates the client and traces nothing
 * gives the fixed cost.
 *
 * Environment: BENCH_MEM_TRACES (1000000), BENCH_MEM_LARGE_TRACES (250000).
 */
#include <pthread.h>

#include "bench.h"
#include "traces.h"

struct child_result {
	uint64_t enqueued, dropped, rejected, failed, undelivered;
	long hwm_kb, rss_kb;  /* VmHWM and VmRSS before destroy */
	long hwm_after_kb;    /* VmHWM after destroy */
	size_t bytes;         /* mean record size */
	double secs, destroy_secs;
	int ok;
};

static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = atol(line + n + 1);
	if (f)
		fclose(f);
	return v;
}

static void child(int fd, const char *kbytes, size_t want, long traces)
{
	char err[512];
	struct child_result r = { 0 };
	ts_conf_t *conf = ts_conf_new();
	ts_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err));
	ts_conf_set(conf, "close.timeout.ms", "0", err, sizeof(err));
	if (kbytes && ts_conf_set(conf, "queue.buffering.max.kbytes", kbytes, err, sizeof(err)))
		bench_die("queue.buffering.max.kbytes=%s: %s", kbytes, err);
	ts_client_t *c = ts_client_new(conf, err, sizeof(err));
	if (!c)
		bench_die("ts_client_new: %s", err);
	size_t pad = traces_calibrate(c, want);
	r.bytes = traces_size(c, pad);
	struct traces_buf tb;
	traces_buf_init(&tb, pad);
	int64_t t0 = bench_now_ns();
	for (long i = 0; i < traces; i++) {
		int rc = ts_trace_end(traces_build(c, &tb, pad, (uint64_t)i));
		if (rc != TS_OK && rc != TS_ERR_QUEUE_FULL)
			bench_die("ts_trace_end: %s", ts_err_str(rc));
	}
	r.secs = (double)(bench_now_ns() - t0) / 1e9;
	traces_buf_release(&tb);
	ts_stats_t st;
	ts_client_stats(c, &st);
	r.hwm_kb = status_kb("VmHWM");
	r.rss_kb = status_kb("VmRSS");
	t0 = bench_now_ns();
	r.undelivered = ts_client_destroy(c, &st);
	r.destroy_secs = (double)(bench_now_ns() - t0) / 1e9;
	r.hwm_after_kb = status_kb("VmHWM");
	r.enqueued = st.enqueued;
	r.dropped = st.dropped;
	r.rejected = st.rejected;
	r.failed = st.failed;
	r.ok = st.enqueued + st.dropped + st.rejected == (uint64_t)traces;
	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(1);
	_exit(0);
}

/* Runs one configuration in a child; *maxrss_kb gets the kernel's peak. */
static struct child_result run(const char *kbytes, size_t want, long traces, long *maxrss_kb)
{
	int p[2];
	struct child_result r = { 0 };
	if (pipe(p))
		bench_die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		child(p[1], kbytes, want, traces);
	}
	close(p[1]);
	ssize_t got = read(p[0], &r, sizeof(r));
	close(p[0]);
	int st;
	struct rusage ru;
	while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
		;
	*maxrss_kb = ru.ru_maxrss;
	if (got != (ssize_t)sizeof(r) || !WIFEXITED(st) || WEXITSTATUS(st)) {
		bench_log("child (queue.buffering.max.kbytes=%s) failed", kbytes ? kbytes : "default");
		r.ok = 0;
	}
	return r;
}

int main(void)
{
	bench_name = "memory";
	long n = bench_env_long("BENCH_MEM_TRACES", 1000000);
	long nl = bench_env_long("BENCH_MEM_LARGE_TRACES", 250000);
	struct {
		const char *kbytes; /* NULL: the default (65536) */
		size_t want;
		long traces;
		const char *label;
	} cfg[] = {
		{ NULL, 1024, 0, "idle client, no traces" },
		{ NULL, 1024, n, "default (65536)" },
		{ "16384", 1024, n, "16384" },
		{ "4096", 1024, n, "4096" },
		{ NULL, 8192, nl, "default (65536)" },
	};
	enum { NCFG = sizeof(cfg) / sizeof(cfg[0]) };
	struct child_result r[NCFG];
	long maxrss[NCFG];
	int fails = 0;
	for (int i = 0; i < NCFG; i++) {
		bench_log("%s, %ld traces of about %zu bytes", cfg[i].label, cfg[i].traces, cfg[i].want);
		r[i] = run(cfg[i].kbytes, cfg[i].want, cfg[i].traces, &maxrss[i]);
		fails += !r[i].ok;
	}

	FILE *f = bench_section_open();
	fprintf(f, "## Memory: peak RSS with the broker down\n\n"
	        "Each row is its own process that builds and ends traces (5 spans) as fast as it can "
	        "through one client whose broker cannot be reached (bootstrap.servers=127.0.0.1:1), "
	        "with the default settings (queue.buffering.max.messages=100000, "
	        "queue.buffering.max.kbytes=65536, enqueue.timeout.ms=0: drop when full) except "
	        "queue.buffering.max.kbytes where shown; destroyed with close.timeout.ms=0.  Peak RSS is "
	        "VmHWM before destroy (the kernel's ru_maxrss for the whole process in brackets).  "
	        "\"Queued payload\" is enqueued x record size, what librdkafka counts against "
	        "queue.buffering.max.kbytes.\n\n");
	fprintf(f, "| queue.buffering.max.kbytes | record bytes | traces | enqueued | dropped | "
	        "queued payload MB | peak RSS MB | RSS over idle MB | (RSS over idle) / payload | "
	        "traces/s | destroy s |\n"
	        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	double idle = (double)r[0].hwm_kb / 1024.0;
	for (int i = 0; i < NCFG; i++) {
		double payload = (double)r[i].enqueued * (double)r[i].bytes / 1048576.0;
		double hwm = (double)r[i].hwm_kb / 1024.0;
		char ratio[32] = "-";
		if (payload > 0)
			snprintf(ratio, sizeof(ratio), "%.2f", (hwm - idle) / payload);
		fprintf(f, "| %s | %zu | %ld | %llu | %llu | %.1f | %.1f (%.1f) | %.1f | %s | %.0f | %.2f |\n",
		        cfg[i].label, r[i].bytes, cfg[i].traces, (unsigned long long)r[i].enqueued,
		        (unsigned long long)r[i].dropped, payload, hwm, (double)maxrss[i] / 1024.0,
		        hwm - idle, ratio, r[i].secs > 0 ? (double)cfg[i].traces / r[i].secs : 0.0,
		        r[i].destroy_secs);
	}
	fprintf(f, "\n");
	for (int i = 1; i < NCFG; i++)
		if (r[i].undelivered != r[i].enqueued || r[i].failed != r[i].enqueued)
			fprintf(f, "Row %d: destroy reported %llu undelivered of %llu enqueued (%llu failed).\n\n",
			        i + 1, (unsigned long long)r[i].undelivered,
			        (unsigned long long)r[i].enqueued, (unsigned long long)r[i].failed);
	fclose(f);
	return fails ? 1 : 0;
}
