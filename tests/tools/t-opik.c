/* tests/tools/t-opik.c - feed sampler items (JSONL on stdin) to opik_insert(), for tests
 *
 * usage: t-opik -u BASE_URL [-w WORKSPACE] [-k KEY_ENV] [-p PROJECT] [-d DATASET]
 *               [-b BATCH_ITEMS] [-B BATCH_BYTES] [-t TIMEOUT_MS] [-r MAX_RETRIES]
 *               [--backoff-ms MS] [--backoff-max-ms MS] [--retry-after-max-ms MS]
 *               [--calls N] < items.jsonl
 *
 * All lines go to one opik_insert() call (or N calls of equal share with
 * --calls); the dataset is -d or the first item's "dataset".  Prints one JSON
 * line to stdout: {"ok":..,"retriable":..,"requests":..,"retries":..,
 * "batches":..,"items":..,"ms":..}; errors go to stderr as "% ERROR: ...".
 * Exit status 0 when every call succeeded, 1 when one failed, 2 on usage.
 * SIGTERM or SIGINT clears the handle's run flag (as the sink's handler does):
 * a wait between retries then ends the call.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "opik.h"
#include "tstime.h"

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
	(void)sig;
	run = 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: t-opik -u BASE_URL [-w WORKSPACE] [-k KEY_ENV] [-p PROJECT] [-d DATASET]\n"
	                "              [-b BATCH_ITEMS] [-B BATCH_BYTES] [-t TIMEOUT_MS] [-r MAX_RETRIES]\n"
	                "              [--backoff-ms MS] [--backoff-max-ms MS] [--retry-after-max-ms MS]\n"
	                "              [--calls N] < items.jsonl\n");
}

static int num(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < lo || v > hi) {
		fprintf(stderr, "%% ERROR: expected a number from %ld to %ld, got '%s'\n", lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "backoff-ms", required_argument, NULL, 1 },
		{ "backoff-max-ms", required_argument, NULL, 2 },
		{ "retry-after-max-ms", required_argument, NULL, 3 },
		{ "calls", required_argument, NULL, 4 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opik_conf conf;
	const char *dataset = NULL;
	long v, calls = 1;
	int opt;

	opik_conf_init(&conf);
	while ((opt = getopt_long(argc, argv, "u:w:k:p:d:b:B:t:r:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u': conf.base_url = optarg; break;
		case 'w': conf.workspace = optarg; break;
		case 'k': conf.api_key_env = optarg; break;
		case 'p': conf.project = optarg; break;
		case 'd': dataset = optarg; break;
		case 'b': if (num(optarg, 1, OPIK_BATCH_MAX, &v)) return 2; conf.batch_items = (int)v; break;
		case 'B': if (num(optarg, 1, 1L << 30, &v)) return 2; conf.batch_bytes = (size_t)v; break;
		case 't': if (num(optarg, 1, 3600000, &v)) return 2; conf.timeout_ms = (int)v; break;
		case 'r': if (num(optarg, 0, 1000, &v)) return 2; conf.max_retries = (int)v; break;
		case 1: if (num(optarg, 1, 3600000, &v)) return 2; conf.backoff_ms = (int)v; break;
		case 2: if (num(optarg, 1, 3600000, &v)) return 2; conf.backoff_max_ms = (int)v; break;
		case 3: if (num(optarg, 0, 3600000, &v)) return 2; conf.retry_after_max_ms = (int)v; break;
		case 4: if (num(optarg, 1, 1000000, &v)) return 2; calls = v; break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (optind != argc || !conf.base_url) {
		usage();
		return 2;
	}

	/* the items, one a line */
	char **items = NULL, *line = NULL;
	size_t *lens = NULL, cap = 0, lcap = 0;
	int n = 0;
	ssize_t got;
	while ((got = getline(&line, &lcap, stdin)) > 0) {
		while (got && (line[got - 1] == '\n' || line[got - 1] == '\r'))
			got--;
		if (!got)
			continue;
		if ((size_t)n == cap) {
			cap = cap ? 2 * cap : 256;
			items = realloc(items, cap * sizeof *items);
			lens = realloc(lens, cap * sizeof *lens);
			if (!items || !lens) {
				fprintf(stderr, "%% ERROR: out of memory\n");
				return 1;
			}
		}
		items[n] = malloc((size_t)got + 1);
		if (!items[n]) {
			fprintf(stderr, "%% ERROR: out of memory\n");
			return 1;
		}
		memcpy(items[n], line, (size_t)got);
		items[n][got] = '\0';
		lens[n] = (size_t)got;
		n++;
	}
	free(line);

	char dsbuf[1024];
	if (!dataset && n) {
		cJSON *j = cJSON_ParseWithLength(items[0], lens[0]);
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "dataset");
		if (cJSON_IsString(d) && strlen(d->valuestring) < sizeof dsbuf) {
			strcpy(dsbuf, d->valuestring);
			dataset = dsbuf;
		}
		cJSON_Delete(j);
	}
	if (!dataset)
		dataset = "monitoring";

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	conf.run = &run;

	char err[1024];
	struct opik *o = opik_new(&conf, err, sizeof err);
	if (!o) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		for (int i = 0; i < n; i++)
			free(items[i]);
		free(items);
		free(lens);
		return 1;
	}

	int64_t t0 = tstime_mono_us();
	int ok = 1;
	long per = calls > 1 ? (n + calls - 1) / calls : n;
	for (long at = 0; ok && (at < n || (n == 0 && at == 0)); at += per ? per : 1) {
		int cnt = (int)(n - at < per ? n - at : per);
		if (opik_insert(o, dataset, (const char *const *)items + at, lens + at, cnt, err, sizeof err)) {
			fprintf(stderr, "%% ERROR: %s\n", err);
			ok = 0;
		}
		if (!n)
			break;
	}
	struct opik_stats st;
	opik_stats_get(o, &st);
	printf("{\"ok\":%s,\"retriable\":%s,\"requests\":%llu,\"retries\":%llu,\"batches\":%llu,"
	       "\"items\":%llu,\"ms\":%lld}\n",
	       ok ? "true" : "false", !ok && opik_retriable(o) ? "true" : "false",
	       (unsigned long long)st.requests, (unsigned long long)st.retries,
	       (unsigned long long)st.batches, (unsigned long long)st.items,
	       (long long)((tstime_mono_us() - t0) / 1000));
	opik_destroy(o);
	for (int i = 0; i < n; i++)
		free(items[i]);
	free(items);
	free(lens);
	return ok ? 0 : 1;
}
