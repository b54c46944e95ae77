/* bench/eval_judge.c - the judge client's request rate against the limit its concurrency sets
 *
 * tests/fakes/openai_server.py answers every chat completion after a fixed
 * delay (200 ms); N requests (1600) go through judge.h at inflight 32, so no
 * client can do better than inflight / delay = 160 requests/s: the ratio of
 * the achieved rate to that limit says how much the client loses (waiting
 * between transfers, connection set-up, its own CPU).  Each repetition uses a
 * new judge handle (connections are made inside the timed part), timed from
 * the first judge_submit to the last answer.  Before each repetition the
 * same N requests go to a second fake with no delay: what the fake and the
 * client manage together on this machine when nothing waits, which must be
 * far above the limit for the ratio to measure the client.
 *
 * Environment: BENCH_JUDGE_N (1600), BENCH_JUDGE_INFLIGHT (32),
 * BENCH_JUDGE_DELAY_MS (200), BENCH_REPS (3), BENCH_JUDGE_FAKE (default
 * tests/fakes/openai_server.py, from the top of the tree), BENCH_PYTHON3
 * (python3).  Needs no broker.
 */
#include <signal.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "bench.h"
#include "judge.h"

struct fake {
	pid_t pid;
	int port;
	char url[64];
};

struct run {
	double secs, rate, p50_ms, p99_ms, cpu_us;
	long ok, failed, attempts, connections, max_concurrent;
};

struct ctx {
	double *lat;
	long n, ok, failed;
};

static const char *python(void)
{
	const char *p = getenv("BENCH_PYTHON3");
	return p && *p ? p : "python3";
}

static void fake_start(struct fake *f, int delay_ms)
{
	const char *path = getenv("BENCH_JUDGE_FAKE");
	char delay[32], log[4200];
	int fds[2];
	if (!path || !*path)
		path = "tests/fakes/openai_server.py";
	snprintf(delay, sizeof(delay), "%d", delay_ms);
	snprintf(log, sizeof(log), "%s/eval_judge-fake.log", bench_out_dir());
	char *argv[] = { (char *)python(), (char *)path, "--port", "0", "--delay-ms", delay, "--quiet", NULL };
	if (pipe(fds))
		bench_die("pipe: %s", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	int err = posix_spawnp(&f->pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (err)
		bench_die("cannot run '%s %s': %s", argv[0], path, strerror(err));
	FILE *in = fdopen(fds[0], "r");
	char line[256] = "";
	if (!in || !fgets(line, sizeof(line), in) || sscanf(line, "listening on 127.0.0.1:%d", &f->port) != 1)
		bench_die("the fake server did not start (it said '%s'; see %s)", line, log);
	fclose(in);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/v1", f->port);
}

static void fake_stop(struct fake *f)
{
	int st;
	kill(f->pid, SIGTERM);
	waitpid(f->pid, &st, 0);
}

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
	FILE *f = userdata;
	return fwrite(p, size, n, f);
}

/* A control call to the fake; returns the parsed answer (caller frees) or NULL. */
static cJSON *fake_call(const struct fake *f, const char *method, const char *path)
{
	char url[128], *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	CURL *h = curl_easy_init();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", f->port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "POST"))
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	fclose(out);
	cJSON *v = rc == CURLE_OK ? cJSON_Parse(buf) : NULL;
	free(buf);
	return v;
}

static void on_done(void *p, const struct judge_answer *a)
{
	struct ctx *c = p;
	long i = (long)(intptr_t)a->tag;
	if (i >= 0 && i < c->n)
		c->lat[i] = a->latency_ms;
	if (a->ok)
		c->ok++;
	else if (c->failed++ < 5)
		bench_log("request %ld failed: %s", i, a->error);
}

static double cpu_secs(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double pct(double *v, long n, double p)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_d);
	long rank = (long)(p / 100.0 * (double)n + 0.999999);
	rank = rank < 1 ? 1 : rank > n ? n : rank;
	return v[rank - 1];
}

static struct run run_once(const struct fake *f, long n, int inflight)
{
	struct run r;
	struct judge_conf conf;
	char err[512];
	memset(&r, 0, sizeof(r));
	cJSON_Delete(fake_call(f, "POST", "/_control/reset"));

	judge_conf_default(&conf);
	conf.url = f->url;
	conf.model = "bench-judge";
	conf.api_key = "bench-key";
	conf.inflight = inflight;
	conf.timeout_ms = 30000;
	struct judge *j = judge_new(&conf, err, sizeof(err));
	if (!j)
		bench_die("judge_new: %s", err);
	char **prompts = calloc((size_t)n, sizeof(*prompts));
	struct ctx c = { .lat = calloc((size_t)n, sizeof(double)), .n = n };
	if (!prompts || !c.lat)
		bench_die("out of memory");
	for (long i = 0; i < n; i++) {
		char buf[512];
		snprintf(buf, sizeof(buf),
		         "[{\"role\":\"system\",\"content\":\"You grade answers. Reply with JSON: score and reason.\"},"
		         "{\"role\":\"user\",\"content\":\"Question %ld: what is the capital of France? "
		         "Answer: Paris is the capital of France.\"}]", i);
		if (!(prompts[i] = strdup(buf)))
			bench_die("out of memory");
	}

	double cpu0 = cpu_secs();
	int64_t t0 = bench_now_ns();
	for (long i = 0; i < n; i++)
		if (judge_submit(j, prompts[i], (void *)(intptr_t)i))
			bench_die("judge_submit refused request %ld", i);
	while (judge_poll(j, 1000, on_done, &c) > 0)
		;
	r.secs = (double)(bench_now_ns() - t0) / 1e9;
	r.cpu_us = (cpu_secs() - cpu0) * 1e6 / (double)n;

	struct judge_stats st;
	judge_stats(j, &st);
	judge_destroy(j);
	r.ok = c.ok;
	r.failed = c.failed;
	r.attempts = (long)st.attempts;
	r.rate = (double)n / r.secs;
	r.p50_ms = pct(c.lat, n, 50);
	r.p99_ms = pct(c.lat, n, 99);
	cJSON *log = fake_call(f, "GET", "/_control/log");
	const cJSON *conns = cJSON_GetObjectItem(log, "connections");
	const cJSON *maxc = cJSON_GetObjectItem(log, "max_concurrent");
	r.connections = cJSON_IsNumber(conns) ? (long)conns->valuedouble : -1;
	r.max_concurrent = cJSON_IsNumber(maxc) ? (long)maxc->valuedouble : -1;
	cJSON_Delete(log);
	for (long i = 0; i < n; i++)
		free(prompts[i]);
	free(prompts);
	free(c.lat);
	return r;
}

static void version_of(const char *cmd, char *out, size_t size)
{
	FILE *p = popen(cmd, "r");
	out[0] = '\0';
	if (p) {
		if (!fgets(out, (int)size, p))
			out[0] = '\0';
		pclose(p);
	}
	out[strcspn(out, "\n")] = '\0';
	if (!out[0])
		snprintf(out, size, "?");
}

int main(void)
{
	bench_name = "eval_judge";
	long n = bench_env_long("BENCH_JUDGE_N", 1600);
	int inflight = (int)bench_env_long("BENCH_JUDGE_INFLIGHT", 32);
	int delay = (int)bench_env_long("BENCH_JUDGE_DELAY_MS", 200);
	int reps = (int)bench_env_long("BENCH_REPS", 3);
	if (n < 1 || inflight < 1 || inflight > 1024 || delay < 1 || reps < 1)
		bench_die("BENCH_JUDGE_N, BENCH_JUDGE_INFLIGHT (1..1024), BENCH_JUDGE_DELAY_MS, BENCH_REPS must be positive");
	double limit = (double)inflight * 1000.0 / (double)delay;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct fake slow, fast;
	fake_start(&slow, delay);
	fake_start(&fast, 0);
	bench_log("fakes on ports %d (delay %d ms) and %d (no delay)", slow.port, delay, fast.port);

	struct run *rs = calloc((size_t)reps, sizeof(*rs)), *cap = calloc((size_t)reps, sizeof(*cap));
	double *ratio = calloc((size_t)reps, sizeof(double)), *rate = calloc((size_t)reps, sizeof(double));
	double *caprate = calloc((size_t)reps, sizeof(double));
	if (!rs || !cap || !ratio || !rate || !caprate)
		bench_die("out of memory");
	int failed = 0;
	int64_t t_all = bench_now_ns();
	for (int i = 0; i < reps; i++) {
		cap[i] = run_once(&fast, n, inflight);
		caprate[i] = cap[i].rate;
		bench_log("rep %d: no delay: %.0f requests/s, %ld failed", i + 1, cap[i].rate, cap[i].failed);
		rs[i] = run_once(&slow, n, inflight);
		rate[i] = rs[i].rate;
		ratio[i] = rs[i].rate / limit;
		bench_log("rep %d: delay %d ms: %.1f requests/s (%.3fx the limit), %ld failed, %ld connections, "
		          "at most %ld at once", i + 1, delay, rs[i].rate, ratio[i], rs[i].failed, rs[i].connections,
		          rs[i].max_concurrent);
		failed |= rs[i].failed || cap[i].failed || rs[i].ok != n || cap[i].ok != n;
	}
	double total = (double)(bench_now_ns() - t_all) / 1e9;
	fake_stop(&slow);
	fake_stop(&fast);

	char py[128], cpu[256] = "?", rev[64];
	version_of("git rev-parse --short HEAD 2>/dev/null", rev, sizeof(rev));
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "%s --version 2>&1", python());
	version_of(cmd, py, sizeof(py));
	version_of("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1", cpu, sizeof(cpu));
	time_t now = time(NULL);
	char date[64];
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));

	FILE *o = bench_section_open();
	fprintf(o, "## Judge client: requests/s against the limit of its concurrency\n\n");
	fprintf(o, "evaluator/judge.c (libcurl %s, one multi handle, inflight %d) sends %ld chat completions to "
	           "tests/fakes/openai_server.py (%s, ThreadingHTTPServer, HTTP/1.1 keep-alive) on loopback, which "
	           "answers each after %d ms: no client can pass inflight / delay = **%.0f requests/s**.  Each of %d "
	           "repetitions uses a new judge handle (its connections are made in the timed part) and is timed "
	           "from the first judge_submit to the last answer; before each, the same requests go to a second "
	           "fake with no delay, to show what the fake and the client manage together on this machine when "
	           "nothing waits.  Run %s, source %s, on %ld cores (%s); no broker involved.\n\n",
	        curl_version_info(CURLVERSION_NOW)->version, inflight, n, py, delay, limit, reps, date, rev,
	        sysconf(_SC_NPROCESSORS_ONLN), cpu);
	fprintf(o, "| | requests/s (median) | min..max | latency p50 / p99 ms (median) | connections | at once at the server | client CPU µs/request | failed |\n");
	fprintf(o, "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |\n");
	double *p50 = calloc((size_t)reps * 6, sizeof(double));
	if (!p50)
		bench_die("out of memory");
	double *p99 = p50 + reps, *cpu_us = p99 + reps, *cp50 = cpu_us + reps, *cp99 = cp50 + reps, *ccpu = cp99 + reps;
	long conns = 0, maxc = 0, cconns = 0, nfail = 0, cfail = 0;
	for (int i = 0; i < reps; i++) {
		p50[i] = rs[i].p50_ms, p99[i] = rs[i].p99_ms, cpu_us[i] = rs[i].cpu_us;
		cp50[i] = cap[i].p50_ms, cp99[i] = cap[i].p99_ms, ccpu[i] = cap[i].cpu_us;
		conns = rs[i].connections > conns ? rs[i].connections : conns;
		cconns = cap[i].connections > cconns ? cap[i].connections : cconns;
		maxc = rs[i].max_concurrent > maxc ? rs[i].max_concurrent : maxc;
		nfail += rs[i].failed;
		cfail += cap[i].failed;
	}
	size_t m = (size_t)reps;
	fprintf(o, "| fake answering after %d ms | %.1f | %.1f..%.1f | %.1f / %.1f | %ld | %ld | %.0f | %ld |\n",
	        delay, bench_median(rate, (size_t)reps), bench_min(rate, (size_t)reps), bench_max(rate, (size_t)reps),
	        bench_median(p50, m), bench_median(p99, m), conns, maxc,
	        bench_median(cpu_us, m), nfail);
	fprintf(o, "| fake answering at once (capacity) | %.0f | %.0f..%.0f | %.1f / %.1f | %ld | | %.0f | %ld |\n\n",
	        bench_median(caprate, (size_t)reps), bench_min(caprate, (size_t)reps), bench_max(caprate, (size_t)reps),
	        bench_median(cp50, m), bench_median(cp99, m), cconns, bench_median(ccpu, m), cfail);
	fprintf(o, "**Ratio achieved / limit (requests/s, median of %d): %.3fx** (goal: at least 0.9x; min %.3fx, "
	           "max %.3fx).  ", reps, bench_median(ratio, (size_t)reps), bench_min(ratio, (size_t)reps),
	        bench_max(ratio, (size_t)reps));
	double ideal = (double)((n + inflight - 1) / inflight) * delay / 1000.0;
	fprintf(o, "What keeps it under 1x: %ld requests at %d at once are %ld rounds of %d ms (%.2f s), and the "
	           "median run took %.2f s; the rest is each request's time around the delay (p50 latency above "
	           "less %d ms: the fake's Python handling, the loopback round trip and the client's turn-around "
	           "between one answer and the next request on a slot), and the connections made at the start.  "
	           "The fake, with no delay, serves about %.0fx the limit, so it is not what holds the rate.\n\n",
	        n, inflight, (n + inflight - 1) / inflight, delay, ideal,
	        (double)n / bench_median(rate, (size_t)reps), delay,
	        bench_median(caprate, (size_t)reps) / limit);
	fprintf(o, "Total time of this benchmark: %.0f s.\n\n", total);
	fclose(o);
	free(p50);
	free(rs);
	free(cap);
	free(ratio);
	free(rate);
	free(caprate);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
