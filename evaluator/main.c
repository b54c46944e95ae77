/* evaluator/main.c - tracesift-evaluator: score every new batch of a dataset, store the runs, raise alerts */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "econf.h"
#include "eval.h"
#include "runs.h"
#include "store.h"

static volatile sig_atomic_t run = 1;
/* How long a run stays paused when the judge is unavailable before it is tried again. */
#define JUDGE_PAUSE_MS 30000
static struct eval_conf conf;   /* file scope, so that every way out can release it */

static void on_signal(int sig)
{
	(void)sig;
	run = 0;
}

static void usage(FILE *out)
{
	fprintf(out,
	"usage: tracesift-evaluator [watch|once|runs|show RUN|alerts] [-c FILE] [--store DIR]\n"
	"                           [-s name=value]... [-X key=value]... [options]\n"
	"\n"
	"Scores dataset items with LLM-judge metrics (hallucination, moderation,\n"
	"answer relevance, a style rubric, custom rubrics) and heuristic metrics\n"
	"(length, empty, refusal, regex, valid JSON, tokens, latency, time to first\n"
	"token, grounding), one run per complete batch the sink stored, stores every\n"
	"score in the store (STORE/evaluations), prints each run's metric table and\n"
	"fires alert rules (webhook, the llm.alerts topic, stderr), once per run and\n"
	"rule.  Without a judge (judge.url) only the heuristic metrics run.  A run cut\n"
	"short (crash, kill, SIGTERM) resumes where it stopped: no item is scored twice\n"
	"and no batch evaluated twice.  See docs/evaluator.md.\n"
	"\n"
	"commands:\n"
	"  watch (default)          evaluate every complete batch as it arrives (and, with\n"
	"                           schedule, what arrived every period) until SIGTERM\n"
	"  once                     evaluate what is pending now and exit; with --dataset D\n"
	"                           and --batch N, --from-seq A --to-seq B or --all, that run\n"
	"  runs                     list the runs (--dataset D, --json)\n"
	"  show RUN                 a run's summary, metric table, alerts and worst items\n"
	"  alerts                   the alerts fired (--json)\n"
	"  check                    read the configuration, say what would run, and exit\n"
	"\n"
	"options:\n"
	"  -c, --config FILE        config file ([evaluator], [judge], [fields], [metric NAME],\n"
	"                           [alert NAME]; see deploy/evaluator.conf)\n"
	"      --store DIR          the dataset store (env TRACESIFT_STORE; default ./tracesift-data)\n"
	"  -b, --brokers BROKERS    Kafka brokers for alert records (env TRACESIFT_BROKERS)\n"
	"      --judge-url URL      OpenAI-compatible base URL (env TRACESIFT_JUDGE_URL)\n"
	"      --judge-model M      the judge's model (env TRACESIFT_JUDGE_MODEL); the API key\n"
	"                           comes from TRACESIFT_JUDGE_API_KEY (or judge.api.key.env /\n"
	"                           judge.api.key.file), never from the command line\n"
	"      --webhook URL        alert webhook (env TRACESIFT_WEBHOOK_URL)\n"
	"  -s name=value            any setting below\n"
	"  -X key=value             a librdkafka property for the alert producer (TLS, SASL...),\n"
	"                           after kafka.* lines; one that would change\n"
	"                           enable.idempotence=true is refused (exit 2)\n"
	"      --dataset D          once/runs: only this dataset\n"
	"      --batch N            once: evaluate batch N of --dataset\n"
	"      --from-seq A --to-seq B   once: evaluate items A to B-1 of --dataset\n"
	"      --all                once: evaluate every item of --dataset\n"
	"      --json               runs/show/alerts: JSON instead of text\n"
	"  -q, --quiet              no metric tables on stdout\n"
	"  -v, --verbose            more on stderr (--verbose twice: each judge request)\n"
	"  -h, --help               this help\n"
	"\n"
	"Order: defaults, the config file, TRACESIFT_* variables, flags.\n"
	"Exit status: 0 done, 1 runtime error, 2 usage or configuration error.\n\n");
	econf_help(out);
}

static int die_usage(const char *fmt, const char *arg)
{
	econf_release(&conf);
	fprintf(stderr, "%% ERROR: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see --help)\n");
	return 2;
}

static int split_kv(char *arg, char **k, char **v)
{
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return -1;
	*eq = '\0';
	*k = arg;
	*v = eq + 1;
	return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < 0)
		return -1;
	*out = v;
	return 0;
}

/* ---- runs / show / alerts ------------------------------------------------------ */

static int cmd_runs(const char *store, const char *dataset, int json)
{
	char err[512], **ids;
	struct runs *rs = runs_open(store, 0, err, sizeof(err));
	if (!rs) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		return 1;
	}
	int n = runs_list(rs, &ids, err, sizeof(err));
	if (n < 0) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		runs_close(rs);
		return 1;
	}
	if (!json)
		printf("%-32s %-8s %6s %6s %-20s %-24s %s\n", "run", "status", "items", "errors",
		       "judge", "ended", "alerts fired");
	for (int i = 0; i < n; i++) {
		cJSON *j = runs_read_json(rs, ids[i], "summary.json", err, sizeof(err));
		int finished = j != NULL;
		if (!j)
			j = runs_read_json(rs, ids[i], "run.json", err, sizeof(err));
		const char *ds = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "dataset"));
		if (j && (!dataset || (ds && !strcmp(ds, dataset)))) {
			if (json) {
				cJSON_DeleteItemFromObjectCaseSensitive(j, "aggregates");
				if (!finished)
					cJSON_AddStringToObject(j, "status", "unfinished");
				char *t = cJSON_PrintUnformatted(j);
				printf("%s\n", t ? t : "{}");
				free(t);
			} else {
				const cJSON *a;
				int fired = 0;
				cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(j, "alerts"))
					fired += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "fired"));
				const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "judge_model"));
				printf("%-32s %-8s %6.0f %6.0f %-20s %-24s %d\n", ids[i],
				       finished ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "status")) :
				       "running",
				       finished ? cJSON_GetObjectItemCaseSensitive(j, "items")->valuedouble : 0,
				       finished ? cJSON_GetObjectItemCaseSensitive(j, "errors")->valuedouble : 0,
				       model ? model : "none", finished ?
				       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "ended_at")) : "-",
				       fired);
			}
		}
		cJSON_Delete(j);
		free(ids[i]);
	}
	free(ids);
	runs_close(rs);
	return 0;
}

static int cmd_show(const char *store, const char *id, int worst, int json)
{
	char err[512];
	struct runs *rs = runs_open(store, 0, err, sizeof(err));
	int rc = 0;
	if (!rs) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		return 1;
	}
	if (json) {
		cJSON *j = runs_read_json(rs, id, "summary.json", err, sizeof(err));
		if (!j)
			j = runs_read_json(rs, id, "run.json", err, sizeof(err));
		char *t = j ? cJSON_PrintUnformatted(j) : NULL;
		if (t)
			printf("%s\n", t);
		else
			rc = 1;
		free(t);
		cJSON_Delete(j);
	} else {
		rc = eval_show(rs, id, worst, stdout, err, sizeof(err)) ? 1 : 0;
	}
	if (rc)
		fprintf(stderr, "%% ERROR: %s\n", err);
	runs_close(rs);
	return rc;
}

static int cmd_alerts(const char *store, int json)
{
	char err[512];
	struct runs *rs = runs_open(store, 0, err, sizeof(err));
	cJSON *arr = rs ? runs_alerts(rs, err, sizeof(err)) : NULL;
	const cJSON *a;
	if (!arr) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		runs_close(rs);
		return 1;
	}
	cJSON_ArrayForEach(a, arr) {
		if (json) {
			char *t = cJSON_PrintUnformatted(a);
			printf("%s\n", t ? t : "{}");
			free(t);
		} else {
			printf("%s  %s  (webhook %s, kafka %s)\n",
			       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "fired_at")),
			       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "text")),
			       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "webhook")),
			       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "kafka")));
		}
	}
	cJSON_Delete(arr);
	runs_close(rs);
	return 0;
}

/* ---- watch / once --------------------------------------------------------------- */

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void print_stats(struct evaluator *ev)
{
	struct eval_stats s;
	evaluator_stats(ev, &s);
	fprintf(stderr, "%% evaluator: %" PRId64 " runs, %" PRId64 " items, %" PRId64 " scores, %" PRId64
	        " errors, %" PRId64 " alerts fired (%" PRId64 " not delivered), %" PRId64 " runs paused "
	        "(judge unavailable)\n", s.runs, s.items, s.scores, s.errors, s.alerts, s.alert_failures,
	        s.paused);
}

static int cmd_eval(struct eval_conf *c, int once, const char *dataset, int64_t batch,
                    int64_t from, int64_t to, int all, int quiet)
{
	char err[1024], manifest[4096];
	struct stat st;
	/* a service may start before the sink made the store: wait for it, saying so once */
	snprintf(manifest, sizeof(manifest), "%s/MANIFEST", c->store);
	if (!once && stat(manifest, &st) < 0) {
		fprintf(stderr, "%% evaluator: waiting for the store '%s' (tracesift-sink creates it)\n", c->store);
		while (run && stat(manifest, &st) < 0)
			usleep(200000);
		if (!run)
			return 0;
	}
	struct evaluator *ev = evaluator_new(c, &run, quiet ? NULL : stdout, err, sizeof(err));
	int rc = 0, done;
	if (!ev) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		return 1;
	}
	fprintf(stderr, "%% evaluator: store '%s', %d metrics (%s), %d alert rules\n", c->store,
	        c->nmetrics, econf_has_judge(c) ? "LLM judge and heuristics" :
	        "heuristic metrics only: no judge configured", c->nalerts);
	rc = eval_resume(ev, err, sizeof(err));
	if (rc < 0 || (rc == 2 && once))
		goto bad;
	int paused = rc == 2;
	double retry_at = paused ? mono_ms() + JUDGE_PAUSE_MS : 0;
	if (paused)
		fprintf(stderr, "%% WARNING: %s; trying again in %d s\n", err, JUDGE_PAUSE_MS / 1000);
	if (once && dataset && (batch >= 0 || from >= 0 || all)) {
		struct store_reader *r = store_reader_open(c->store, err, sizeof(err));
		struct run_spec s;
		if (!r)
			goto bad;
		if (batch >= 0) {
			const struct store_batch *b;
			int nb = store_batches(r, dataset, &b), found = 0;
			if (nb < 0) {
				snprintf(err, sizeof(err), "no dataset '%s' in store '%s'", dataset, c->store);
				store_reader_close(r);
				goto bad;
			}
			for (int i = 0; i < nb; i++)
				if (b[i].batch == batch) {
					if (b[i].state == BATCH_OPEN) {
						snprintf(err, sizeof(err), "batch %" PRId64 " of '%s' is not complete yet",
						         batch, dataset);
						store_reader_close(r);
						goto bad;
					}
					run_spec_batch(&s, dataset, &b[i]);
					found = 1;
				}
			if (!found) {
				snprintf(err, sizeof(err), "no batch %" PRId64 " in dataset '%s'", batch, dataset);
				store_reader_close(r);
				goto bad;
			}
		} else {
			int64_t count = store_count(r, dataset);
			if (count < 0) {
				snprintf(err, sizeof(err), "no dataset '%s' in store '%s'", dataset, c->store);
				store_reader_close(r);
				goto bad;
			}
			if (all) {
				from = 0;
				to = count;
			}
			if (to > count)
				to = count;
			run_spec_range(&s, dataset, from, to < from ? from : to);
		}
		rc = eval_run(ev, r, &s, err, sizeof(err));
		store_reader_close(r);
		if (rc < 0 || rc == 2)
			goto bad;
		goto out;
	}
	double next_schedule = mono_ms() + (double)c->schedule_ms;
	while (run) {
		if (mono_ms() >= retry_at) {
			/* after a pause, the paused run first; then new batches; then the schedule */
			rc = paused ? eval_resume(ev, err, sizeof(err)) : 0;
			if (rc == 0)
				rc = eval_pending_batches(ev, &done, err, sizeof(err));
			if (rc == 0 && c->schedule_ms > 0 && (once || mono_ms() >= next_schedule)) {
				rc = eval_schedule(ev, &done, err, sizeof(err));
				if (rc == 0)
					next_schedule = mono_ms() + (double)c->schedule_ms;
			}
			if (rc < 0 || (rc == 2 && once))
				goto bad;
			paused = rc == 2;
			if (paused) {
				fprintf(stderr, "%% WARNING: %s; trying again in %d s\n", err, JUDGE_PAUSE_MS / 1000);
				retry_at = mono_ms() + JUDGE_PAUSE_MS;
			}
		}
		if (once)
			break;
		for (int waited = 0; run && waited < c->poll_ms; waited += 50)
			usleep(50000);
	}
out:
	print_stats(ev);
	evaluator_destroy(ev);
	return 0;   /* also when a signal stopped a run: it resumes on the next start */
bad:
	fprintf(stderr, "%% ERROR: %s\n", err);
	print_stats(ev);
	evaluator_destroy(ev);
	return 1;
}

/* check: what the configuration makes of the evaluator (never the key itself). */
static void print_check(const struct eval_conf *c)
{
	printf("store        %s\n", c->store);
	printf("datasets     ");
	if (!c->datasets)
		printf("every dataset");
	for (char **p = c->datasets; p && *p; p++)
		printf("%s%s", *p, p[1] ? ", " : "");
	printf("\njudge        ");
	if (econf_has_judge(c))
		printf("%s at %s (key: %s)\n", c->judge_model, c->judge_url,
		       c->judge_key ? "set" : "none");
	else
		printf("none: heuristic metrics only\n");
	printf("alerts to    %s%s%s%s\n", *c->brokers ? "topic " : "", *c->brokers ? c->alerts_topic : "",
	       *c->brokers && *c->webhook_url ? ", " : "", *c->webhook_url ? "a webhook" : "");
	printf("config hash  %016" PRIx64 "\n", c->hash);
	printf("metrics (%d):\n", c->nmetrics);
	for (int i = 0; i < c->nmetrics; i++)
		printf("  %-22s %s, threshold %g, higher is %s\n", c->metrics[i].name,
		       c->metrics[i].kind == METRIC_JUDGE ? "LLM judge" : "heuristic", c->metrics[i].threshold,
		       c->metrics[i].good_high ? "better" : "worse");
	printf("alert rules (%d):\n", c->nalerts);
	for (int i = 0; i < c->nalerts; i++)
		printf("  %-22s %s\n", c->alerts[i].name, c->alerts[i].when);
}

int main(int argc, char **argv)
{
	enum { O_STORE = 256, O_JUDGE_URL, O_JUDGE_MODEL, O_WEBHOOK, O_DATASET, O_BATCH, O_FROM,
	       O_TO, O_ALL, O_JSON };
	static const struct option longs[] = {
		{ "config", required_argument, NULL, 'c' }, { "store", required_argument, NULL, O_STORE },
		{ "brokers", required_argument, NULL, 'b' },
		{ "judge-url", required_argument, NULL, O_JUDGE_URL },
		{ "judge-model", required_argument, NULL, O_JUDGE_MODEL },
		{ "webhook", required_argument, NULL, O_WEBHOOK },
		{ "dataset", required_argument, NULL, O_DATASET },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "from-seq", required_argument, NULL, O_FROM },
		{ "to-seq", required_argument, NULL, O_TO }, { "all", no_argument, NULL, O_ALL },
		{ "json", no_argument, NULL, O_JSON }, { "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct eval_conf *cp = &conf;
	char err[1024];
	const char *config = NULL, *dataset = NULL;
	const char *flag_set[64][2];
	int nflag = 0, json = 0, all = 0, quiet = 0, verbose = 0, opt, rc;
	int64_t batch = -1, from = -1, to = -1;
	char *xkv[64][2];
	int nx = 0;

	econf_init(cp);
#define c (*cp)
	while ((opt = getopt_long(argc, argv, "c:b:s:X:qvh", longs, NULL)) != -1) {
		const char *name = NULL;
		switch (opt) {
		case 'c': config = optarg; break;
		case O_STORE: name = "store"; break;
		case 'b': name = "brokers"; break;
		case O_JUDGE_URL: name = "judge.url"; break;
		case O_JUDGE_MODEL: name = "judge.model"; break;
		case O_WEBHOOK: name = "webhook.url"; break;
		case O_DATASET: dataset = optarg; break;
		case O_BATCH:
			if (parse_i64(optarg, &batch))
				return die_usage("--batch: expected a batch number, not '%s'", optarg);
			break;
		case O_FROM:
			if (parse_i64(optarg, &from))
				return die_usage("--from-seq: expected a sequence number, not '%s'", optarg);
			break;
		case O_TO:
			if (parse_i64(optarg, &to))
				return die_usage("--to-seq: expected a sequence number, not '%s'", optarg);
			break;
		case O_ALL: all = 1; break;
		case O_JSON: json = 1; break;
		case 'q': quiet = 1; break;
		case 'v': verbose++; break;
		case 's':
		case 'X': {
			char *k, *v;
			if (split_kv(optarg, &k, &v))
				return die_usage("expected name=value, not '%s'", optarg);
			if (opt == 'X') {
				if (nx == 64)
					return die_usage("too many -X%s", "");
				xkv[nx][0] = k;
				xkv[nx++][1] = v;
			} else {
				if (nflag == 64)
					return die_usage("too many -s%s", "");
				flag_set[nflag][0] = k;
				flag_set[nflag++][1] = v;
			}
			break;
		}
		case 'h':
			usage(stdout);
			econf_release(&c);
			return 0;
		default:
			econf_release(&c);
			fprintf(stderr, "%% ERROR: see tracesift-evaluator --help\n");
			return 2;
		}
		if (name) {
			if (nflag == 64)
				return die_usage("too many settings%s", "");
			flag_set[nflag][0] = name;
			flag_set[nflag++][1] = optarg;
		}
	}
	const char *cmd = optind < argc ? argv[optind++] : "watch";
	const char *show_id = NULL;
	if (!strcmp(cmd, "show")) {
		if (optind >= argc) {
			return die_usage("show: which run?%s", "");
		}
		show_id = argv[optind++];
	}
	if (optind < argc) {
		return die_usage("unexpected argument '%s'", argv[optind]);
	}
	if (strcmp(cmd, "watch") && strcmp(cmd, "once") && strcmp(cmd, "runs") &&
	    strcmp(cmd, "show") && strcmp(cmd, "alerts") && strcmp(cmd, "check")) {
		return die_usage("unknown command '%s' (expected watch, once, runs, show, alerts or check)", cmd);
	}
	if ((batch >= 0 || from >= 0 || to >= 0 || all) && (strcmp(cmd, "once") || !dataset)) {
		return die_usage("--batch, --from-seq, --to-seq and --all go with 'once --dataset D'%s", "");
	}
	if ((from >= 0) != (to >= 0) || (batch >= 0) + (from >= 0) + all > 1 || (to >= 0 && to < from)) {
		return die_usage("give one of --batch N, --from-seq A --to-seq B (A <= B) or --all%s", "");
	}

	rc = config ? econf_load(&c, config, err, sizeof(err)) : 0;
	if (!rc)
		rc = econf_apply_env(&c, err, sizeof(err));
	for (int i = 0; !rc && i < nflag; i++)
		rc = econf_set(&c, flag_set[i][0], flag_set[i][1], err, sizeof(err));
	for (int i = 0; !rc && i < nx; i++)
		rc = econf_kafka_prop(&c, xkv[i][0], xkv[i][1], err, sizeof(err));
	if (!rc && verbose > 1)
		c.judge.debug = 1;
	c.verbose = verbose;
	if (rc) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		econf_release(&c);
		return 2;
	}
	if (!strcmp(cmd, "runs") || !strcmp(cmd, "show") || !strcmp(cmd, "alerts")) {
		rc = !strcmp(cmd, "runs") ? cmd_runs(c.store, dataset, json) :
		     !strcmp(cmd, "show") ? cmd_show(c.store, show_id, c.worst, json) :
		     cmd_alerts(c.store, json);
		econf_release(&c);
		return rc;
	}
	if (econf_finish(&c, err, sizeof(err)) || evaluator_check_kafka(&c, config, nx, err, sizeof(err))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		econf_release(&c);
		return 2;
	}
	if (!strcmp(cmd, "check")) {
		print_check(&c);
		econf_release(&c);
		return 0;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = cmd_eval(&c, !strcmp(cmd, "once"), dataset, batch, from, to, all, quiet);
	econf_release(&c);
	return rc;
#undef c
}
