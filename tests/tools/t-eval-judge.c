/* tests/tools/t-eval-judge.c - send chat prompts through the judge client (evaluator/judge.h), for tests
 *
 * usage: t-eval-judge -u URL [-m MODEL] [-i INFLIGHT] [-t TIMEOUT_MS] [-T CONNECT_TIMEOUT_MS]
 *                     [-r RETRIES] [--backoff-ms MS] [--backoff-max-ms MS]
 *                     [--budget-requests N] [--budget-tokens N] [--temperature X]
 *                     [--max-tokens N] [--json-mode] [--debug] [--rerun] [FILE]
 *
 * Reads prompts from FILE (default stdin), one JSON array of chat messages a
 * line (blank lines skipped; a line is passed as it is, so an invalid one
 * tests the client's check), submits them all, then polls until every one is
 * done.  The API key is the environment variable TS_JUDGE_KEY (unset or empty:
 * none).  Prints one JSON line per answer, in the order they finish:
 *   {"index":I,"ok":true|false,"content":"...","error":"...","attempts":N,
 *    "latency_ms":X,"budget":0|1,"prompt_tokens":N,"completion_tokens":N}
 * ("submitted":false and no attempt when judge_submit refused the prompt),
 * then one stats line {"stats":{...},"elapsed_ms":X,"spent":0|1,
 * "submit_when_spent":0|-1}; submit_when_spent is what one more judge_submit
 * returned once everything was done, when the budget was spent (else 0).
 * --rerun: after that, judge_budget_reset and the first prompt again (its
 * answer has index = the number of prompts), then a second stats line.
 * Exit status 0 when every prompt got its one answer, 1 otherwise, 2 on usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "judge.h"

struct run {
	int n;
	int *answered;
	int dup;
};

static void usage(void)
{
	fprintf(stderr, "usage: t-eval-judge -u URL [-m MODEL] [-i INFLIGHT] [-t TIMEOUT_MS] [-T CONNECT_TIMEOUT_MS]\n"
	                "                    [-r RETRIES] [--backoff-ms MS] [--backoff-max-ms MS]\n"
	                "                    [--budget-requests N] [--budget-tokens N] [--temperature X]\n"
	                "                    [--max-tokens N] [--json-mode] [--debug] [--rerun] [FILE]\n"
	                "the API key is the environment variable TS_JUDGE_KEY\n");
}

static int num(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || v < lo || v > hi) {
		fprintf(stderr, "%% ERROR: expected a number from %lld to %lld, got '%s'\n", lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void print_answer(int index, const struct judge_answer *a, int submitted)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "index", index);
	cJSON_AddBoolToObject(o, "ok", a->ok);
	if (!submitted)
		cJSON_AddBoolToObject(o, "submitted", 0);
	char *content = malloc(a->len + 1);
	if (content) {
		memcpy(content, a->content ? a->content : "", a->len);
		content[a->len] = '\0';
	}
	cJSON_AddStringToObject(o, "content", content ? content : "");
	free(content);
	cJSON_AddStringToObject(o, "error", a->ok ? "" : a->error);
	cJSON_AddNumberToObject(o, "attempts", a->attempts);
	cJSON_AddNumberToObject(o, "latency_ms", a->latency_ms);
	cJSON_AddNumberToObject(o, "budget", a->budget);
	cJSON_AddNumberToObject(o, "prompt_tokens", (double)a->prompt_tokens);
	cJSON_AddNumberToObject(o, "completion_tokens", (double)a->completion_tokens);
	char *s = cJSON_PrintUnformatted(o);
	if (s)
		printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
	fflush(stdout);
}

static void on_done(void *ctx, const struct judge_answer *a)
{
	struct run *r = ctx;
	int i = (int)(intptr_t)a->tag;
	if (i >= 0 && i < r->n) {
		if (r->answered[i]++)
			r->dup = 1;
	}
	print_answer(i, a, 1);
}

static void print_stats(struct judge *j, double elapsed_ms, int submit_when_spent)
{
	struct judge_stats s;
	judge_stats(j, &s);
	printf("{\"stats\":{\"requests\":%lld,\"attempts\":%lld,\"retries\":%lld,\"failures\":%lld,"
	       "\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"run_attempts\":%lld,\"run_tokens\":%lld},"
	       "\"elapsed_ms\":%.1f,\"spent\":%d,\"submit_when_spent\":%d}\n",
	       (long long)s.requests, (long long)s.attempts, (long long)s.retries, (long long)s.failures,
	       (long long)s.prompt_tokens, (long long)s.completion_tokens, (long long)s.run_attempts,
	       (long long)s.run_tokens, elapsed_ms, judge_budget_spent(j), submit_when_spent);
	fflush(stdout);
}

/* Submits prompt i; prints a refused answer when judge_submit refuses. */
static void submit(struct judge *j, struct run *r, const char *prompt, int i)
{
	if (judge_submit(j, prompt, (void *)(intptr_t)i)) {
		struct judge_answer a;
		memset(&a, 0, sizeof(a));
		a.tag = (void *)(intptr_t)i;
		a.budget = judge_budget_spent(j);
		snprintf(a.error, sizeof(a.error), "judge_submit refused: %s",
		         a.budget ? "budget spent" : "out of memory");
		if (i < r->n)
			r->answered[i]++;
		print_answer(i, &a, 0);
	}
}

static void drain(struct judge *j, struct run *r)
{
	while (judge_poll(j, 1000, on_done, r) > 0)
		;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "backoff-ms", required_argument, NULL, 1 },
		{ "backoff-max-ms", required_argument, NULL, 2 },
		{ "budget-requests", required_argument, NULL, 3 },
		{ "budget-tokens", required_argument, NULL, 4 },
		{ "temperature", required_argument, NULL, 5 },
		{ "max-tokens", required_argument, NULL, 6 },
		{ "json-mode", no_argument, NULL, 7 },
		{ "debug", no_argument, NULL, 8 },
		{ "rerun", no_argument, NULL, 9 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct judge_conf conf;
	long long v;
	int opt, rerun = 0;
	char err[512];

	judge_conf_default(&conf);
	conf.model = "judge-model";
	while ((opt = getopt_long(argc, argv, "u:m:i:t:T:r:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u': conf.url = optarg; break;
		case 'm': conf.model = optarg; break;
		case 'i': if (num(optarg, -100, 100000, &v)) return 2; conf.inflight = (int)v; break;
		case 't': if (num(optarg, -1, 100000000, &v)) return 2; conf.timeout_ms = (int)v; break;
		case 'T': if (num(optarg, -1, 100000000, &v)) return 2; conf.connect_timeout_ms = (int)v; break;
		case 'r': if (num(optarg, -1, 1000, &v)) return 2; conf.retries = (int)v; break;
		case 1: if (num(optarg, -1, 100000000, &v)) return 2; conf.backoff_ms = (int)v; break;
		case 2: if (num(optarg, -1, 100000000, &v)) return 2; conf.backoff_max_ms = (int)v; break;
		case 3: if (num(optarg, -1, 1LL << 50, &v)) return 2; conf.budget_requests = v; break;
		case 4: if (num(optarg, -1, 1LL << 50, &v)) return 2; conf.budget_tokens = v; break;
		case 5: conf.temperature = strtod(optarg, NULL); break;
		case 6: if (num(optarg, -1, 100000000, &v)) return 2; conf.max_tokens = (int)v; break;
		case 7: conf.json_mode = 1; break;
		case 8: conf.debug = 1; break;
		case 9: rerun = 1; break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (optind < argc - 1) {
		usage();
		return 2;
	}
	const char *key = getenv("TS_JUDGE_KEY");
	conf.api_key = key && *key ? key : NULL;

	FILE *in = stdin;
	if (optind < argc && strcmp(argv[optind], "-") && !(in = fopen(argv[optind], "r"))) {
		fprintf(stderr, "%% ERROR: cannot open '%s'\n", argv[optind]);
		return 1;
	}
	char **prompts = NULL, *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int n = 0;
	while ((len = getline(&line, &cap, in)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (!len)
			continue;
		char **np = realloc(prompts, sizeof(*prompts) * (size_t)(n + 1));
		if (!np || !(np[n] = strdup(line))) {
			fprintf(stderr, "%% ERROR: out of memory\n");
			return 1;
		}
		prompts = np;
		n++;
	}
	free(line);
	if (in != stdin)
		fclose(in);

	struct judge *j = judge_new(&conf, err, sizeof(err));
	if (!j) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		for (int i = 0; i < n; i++)
			free(prompts[i]);
		free(prompts);
		return 1;
	}
	struct run r = { .n = n + 1, .answered = calloc((size_t)n + 1, sizeof(int)) };
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++)
		submit(j, &r, prompts[i], i);
	drain(j, &r);
	int refused = 0;
	if (judge_budget_spent(j)) {
		refused = judge_submit(j, "[{\"role\":\"user\",\"content\":\"one more\"}]", (void *)(intptr_t)-1);
		if (!refused) { /* it was queued after all: let it finish */
			drain(j, &r);
		}
	}
	print_stats(j, ms_since(&t0), refused);
	if (rerun && n > 0) {
		judge_budget_reset(j);
		submit(j, &r, prompts[0], n);
		drain(j, &r);
		print_stats(j, ms_since(&t0), 0);
	}

	int rc = 0;
	for (int i = 0; i < n + (rerun && n > 0); i++)
		if (r.answered[i] != 1) {
			fprintf(stderr, "%% ERROR: prompt %d got %d answers\n", i, r.answered[i]);
			rc = 1;
		}
	if (judge_pending(j)) {
		fprintf(stderr, "%% ERROR: %d requests still pending\n", judge_pending(j));
		rc = 1;
	}
	judge_destroy(j);
	for (int i = 0; i < n; i++)
		free(prompts[i]);
	free(prompts);
	free(r.answered);
	return rc;
}
