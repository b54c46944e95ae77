/* sampler/main.c - tracesift-sampler: select traces into monitoring datasets, exactly once */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sampler.h"
#include "sbuf.h"
#include "tstime.h"

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
	(void)sig;
	run = 0;
}

enum role { ROLE_ALL, ROLE_SELECT, ROLE_BATCH };

struct worker {
	const char *name;
	struct eos *eos;
	pthread_t thread;
	int rc;
	int done;
};

static void usage(FILE *out)
{
	fprintf(out,
	"usage: tracesift-sampler [-c FILE] [-b BROKERS] [-X key=value]... [-s name=value]...\n"
	"                         [--instance N] [--role all|select|batch] [--metrics-file PATH]\n"
	"                         [-q|-v] [--help]\n"
	"\n"
	"Consumes trace records, selects some by the rules of the config file (a pure\n"
	"function of seed, trace_id and class rate), and writes dataset items to the\n"
	"monitoring topic in Kafka transactions: every selected record appears there\n"
	"exactly once.  With batch.size > 0 items are numbered into batches of exactly\n"
	"N per dataset and a trigger record closes each batch.  Bad records go to the\n"
	"dead-letter topic with a 'ts-reason' header.  See docs/sampling.md.\n"
	"\n"
	"  -c FILE             config file ([sampler], [class NAME], [redact] sections)\n"
	"  -b BROKERS          bootstrap servers (same as -s brokers=...)\n"
	"  -X key=value        a librdkafka property for every client (TLS, SASL, ...),\n"
	"                      over kafka.* lines; one that would change what\n"
	"                      exactly-once needs is refused (exit 2)\n"
	"  -s name=value       a [sampler] setting, e.g. -s seed=7 -s batch.size=50\n"
	"  --instance N        this instance's number: its transactional ids are\n"
	"                      GROUP-N-select and GROUP-N-batch (give each instance its own)\n"
	"  --role ROLE         all (default), select or batch: run one stage only\n"
	"  --metrics-file PATH write the counters in Prometheus text format each interval\n"
	"  -q / -v             no stats lines / more messages\n"
	"\n"
	"Precedence: flags, then environment (TRACESIFT_BROKERS, TRACESIFT_SEED, ...:\n"
	"TRACESIFT_ and the setting's name in capitals with '_' for '.'), then the\n"
	"config file, then defaults.  Exit status: 0 after SIGTERM/SIGINT (open\n"
	"transactions committed), 1 on a fatal error (fenced, broker refused), 2 on a\n"
	"usage or configuration error.\n"
	"\n"
	"Settings ([sampler] section, -s, environment):\n");
	sconf_help(out);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->rc = eos_run(w->eos, &run);
	if (w->rc)
		fprintf(stderr, "%% ERROR: %s\n", eos_errstr(w->eos));
	w->done = 1;
	run = 0; /* one stage failing stops the other: restart them together */
	return NULL;
}

/* Checks that the topics exist and the state topic can hold the pending
 * topic's partitions.  Returns 0 or -1 with errstr. */
static int check_topics(const struct sampler_conf *c, const struct kclient_user *kafka, int nkafka,
                        enum role role, char *errstr, size_t size)
{
	static const struct kclient_tables metadata_props = { "the sampler's metadata client", NULL, 0, NULL, 0 };
	rd_kafka_conf_t *conf = kclient_conf_new(&metadata_props, c->brokers, kafka, nkafka, errstr, size);
	rd_kafka_t *rk = conf ? kclient_new(RD_KAFKA_PRODUCER, conf, errstr, size) : NULL;
	if (!rk)
		return -1;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t merr = rd_kafka_metadata(rk, 1, NULL, &md, 15000);
	if (merr) {
		snprintf(errstr, size, "cannot reach brokers '%s': %s", c->brokers, rd_kafka_err2str(merr));
		rd_kafka_destroy(rk);
		return -1;
	}
	const char *need[5];
	int nneed = 0;
	if (role != ROLE_BATCH) {
		need[nneed++] = c->input;
		need[nneed++] = c->dlq;
	}
	if (c->batch_size > 0 || role != ROLE_SELECT)
		need[nneed++] = c->output;
	if (c->batch_size > 0) {
		need[nneed++] = c->pending;
		need[nneed++] = c->state;
	}
	int pending_parts = -1, state_parts = -1, rc = 0;
	struct sbuf missing;
	sbuf_init(&missing);
	for (int i = 0; i < nneed; i++) {
		int found = -1;
		for (int t = 0; t < md->topic_cnt; t++)
			if (!strcmp(md->topics[t].topic, need[i]) && !md->topics[t].err)
				found = md->topics[t].partition_cnt;
		if (found < 0)
			sbuf_printf(&missing, "%s'%s'", missing.len ? ", " : "", need[i]);
		if (!strcmp(need[i], c->pending))
			pending_parts = found;
		if (!strcmp(need[i], c->state))
			state_parts = found;
	}
	if (missing.len) {
		snprintf(errstr, size, "missing topics %s (create them with deploy/kafka/topics.sh)", missing.buf);
		rc = -1;
	} else if (c->batch_size > 0 && state_parts < pending_parts) {
		snprintf(errstr, size, "state topic '%s' has %d partitions, fewer than '%s' (%d)",
		         c->state, state_parts, c->pending, pending_parts);
		rc = -1;
	}
	sbuf_release(&missing);
	rd_kafka_metadata_destroy(md);
	rd_kafka_destroy(rk);
	return rc;
}

/* ---- stats ------------------------------------------------------------- */

static void print_stats(struct sampler *s, struct worker *w, int nw, const char *metrics_file,
                        int to_stderr)
{
	const struct sampler_conf *c = s->conf;
	static const char *const dead_names[REC_REASON_COUNT + 1] = {
		[REC_TOO_LARGE] = "too_large", [REC_NOT_JSON] = "not_json", [REC_BAD_UTF8] = "bad_utf8",
		[REC_TOO_DEEP] = "too_deep", [REC_NO_TRACE_ID] = "no_trace_id", [REC_SCHEMA] = "schema",
		[REC_REASON_COUNT] = "item_too_large",
	};
	struct eos_stats st[2] = { { 0 } };
	for (int i = 0; i < nw; i++)
		eos_get_stats(w[i].eos, &st[i]);
	struct sbuf j, p;
	sbuf_init(&j);
	sbuf_init(&p);
	char ts[TSTIME_LEN];
	tstime_format(tstime_now_us(), ts);
	pthread_mutex_lock(&s->lock);
	sbuf_printf(&j, "{\"ts\":\"%s\",\"instance\":%d", ts, c->instance);
	uint64_t selected = 0, seen = 0;
	sbuf_puts(&j, ",\"selected\":{");
	for (int i = 0; i < c->nclasses; i++) {
		sbuf_printf(&j, "%s\"%s\":%llu", i ? "," : "", c->classes[i].name,
		            (unsigned long long)s->classes[i].selected);
		sbuf_printf(&p, "tracesift_sampler_selected_total{class=\"%s\"} %llu\n", c->classes[i].name,
		            (unsigned long long)s->classes[i].selected);
		sbuf_printf(&p, "tracesift_sampler_rate_limited_total{class=\"%s\"} %llu\n",
		            c->classes[i].name, (unsigned long long)s->classes[i].rate_limited);
		selected += s->classes[i].selected;
		seen += s->classes[i].seen;
	}
	sbuf_puts(&j, "},\"dead_lettered\":{");
	uint64_t dead = 0;
	int first = 1;
	for (int r = 1; r <= REC_REASON_COUNT; r++) {
		dead += s->dead[r];
		sbuf_printf(&p, "tracesift_sampler_dead_lettered_total{reason=\"%s\"} %llu\n", dead_names[r],
		            (unsigned long long)s->dead[r]);
		if (s->dead[r]) {
			sbuf_printf(&j, "%s\"%s\":%llu", first ? "" : ",", dead_names[r],
			            (unsigned long long)s->dead[r]);
			first = 0;
		}
	}
	sbuf_printf(&j, "},\"classified\":%llu,\"selected_total\":%llu,\"dead_lettered_total\":%llu,"
	            "\"redactions\":%llu,\"batches\":%llu,\"partial_batches\":%llu,\"batched_items\":%llu",
	            (unsigned long long)seen, (unsigned long long)selected, (unsigned long long)dead,
	            (unsigned long long)s->redactions, (unsigned long long)s->batches,
	            (unsigned long long)s->partial_batches, (unsigned long long)s->batched_items);
	sbuf_printf(&p, "tracesift_sampler_redactions_total %llu\ntracesift_sampler_batches_total %llu\n"
	            "tracesift_sampler_partial_batches_total %llu\n",
	            (unsigned long long)s->redactions, (unsigned long long)s->batches,
	            (unsigned long long)s->partial_batches);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < nw; i++) {
		sbuf_printf(&j, ",\"%s\":{\"consumed\":%llu,\"produced\":%llu,\"partitions\":%d,"
		            "\"txn_committed\":%llu,\"txn_aborted\":%llu,\"lag\":%lld,"
		            "\"commit_ms_last\":%.0f,\"commit_ms_max\":%.0f}",
		            w[i].name, (unsigned long long)st[i].consumed, (unsigned long long)st[i].produced,
		            st[i].partitions, (unsigned long long)st[i].committed,
		            (unsigned long long)st[i].aborted, (long long)st[i].lag, st[i].commit_ms_last,
		            st[i].commit_ms_max);
		const char *n = w[i].name;
		sbuf_printf(&p, "tracesift_sampler_consumed_total{stage=\"%s\"} %llu\n"
		            "tracesift_sampler_produced_total{stage=\"%s\"} %llu\n"
		            "tracesift_sampler_txn_committed_total{stage=\"%s\"} %llu\n"
		            "tracesift_sampler_txn_aborted_total{stage=\"%s\"} %llu\n"
		            "tracesift_sampler_consumer_lag{stage=\"%s\"} %lld\n"
		            "tracesift_sampler_commit_ms_max{stage=\"%s\"} %.0f\n",
		            n, (unsigned long long)st[i].consumed, n, (unsigned long long)st[i].produced,
		            n, (unsigned long long)st[i].committed, n, (unsigned long long)st[i].aborted,
		            n, (long long)st[i].lag, n, st[i].commit_ms_max);
	}
	sbuf_putc(&j, '}');
	if (to_stderr && !j.oom)
		fprintf(stderr, "%s\n", j.buf);
	if (metrics_file && !p.oom) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", metrics_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fwrite(p.buf, 1, p.len, f) != p.len || fclose(f) || rename(tmp, metrics_file)) {
			fprintf(stderr, "%% ERROR: cannot write metrics file '%s': %s\n", metrics_file,
			        strerror(errno));
			if (f)
				unlink(tmp);
		}
	}
	sbuf_release(&j);
	sbuf_release(&p);
}

/* ---- configuration ------------------------------------------------------- */

struct kv {
	char *name, *value;
};

/* Splits "name=value" in place. */
static int split_kv(char *arg, struct kv *out, const char *opt)
{
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg) {
		fprintf(stderr, "%% ERROR: %s: expected name=value, got '%s'\n", opt, arg);
		return -1;
	}
	*eq = '\0';
	out->name = arg;
	out->value = eq + 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct sampler_conf conf;
	struct sampler s;
	char err[1024];
	int rc = 2;
	const char *conf_file = NULL, *metrics_file = NULL;
	enum role role = ROLE_ALL;
	int verbosity = 1;
	struct kv *sets = calloc((size_t)argc + 1, sizeof(*sets)), *xprops = calloc((size_t)argc + 1, sizeof(*xprops));
	int nsets = 0, nx = 0;
	struct worker w[2];
	int nw = 0;
	struct batcher *batcher = NULL;
	struct kclient_user *kafka = NULL;

	memset(&s, 0, sizeof(s));
	memset(w, 0, sizeof(w));
	sconf_init(&conf);
	pthread_mutex_init(&s.lock, NULL);
	if (!sets || !xprops) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			rc = 0;
			goto out;
		} else if (!strcmp(a, "-q")) {
			verbosity = 0;
		} else if (!strcmp(a, "-v")) {
			verbosity = 2;
		} else if (i + 1 < argc && (!strcmp(a, "-c") || !strcmp(a, "-b") || !strcmp(a, "-X") ||
		                            !strcmp(a, "-s") || !strcmp(a, "--instance") ||
		                            !strcmp(a, "--role") || !strcmp(a, "--metrics-file"))) {
			char *v = argv[++i];
			if (!strcmp(a, "-c"))
				conf_file = v;
			else if (!strcmp(a, "-b"))
				sets[nsets++] = (struct kv){ "brokers", v };
			else if (!strcmp(a, "--instance"))
				sets[nsets++] = (struct kv){ "instance", v };
			else if (!strcmp(a, "--metrics-file"))
				metrics_file = v;
			else if (!strcmp(a, "-s")) {
				if (split_kv(v, &sets[nsets++], "-s"))
					goto out;
			} else if (!strcmp(a, "-X")) {
				if (split_kv(v, &xprops[nx++], "-X"))
					goto out;
			} else if (!strcmp(v, "all") || !strcmp(v, "select") || !strcmp(v, "batch")) {
				role = v[0] == 'a' ? ROLE_ALL : v[0] == 's' ? ROLE_SELECT : ROLE_BATCH;
			} else {
				fprintf(stderr, "%% ERROR: --role: expected all, select or batch, got '%s'\n", v);
				goto out;
			}
		} else {
			fprintf(stderr, "%% ERROR: unknown option or missing value '%s' (see --help)\n", a);
			goto out;
		}
	}

	if (conf_file && sconf_load(&conf, conf_file, err, sizeof(err))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		goto out;
	}
	if (sconf_apply_env(&conf, err, sizeof(err))) {
		fprintf(stderr, "%% ERROR: environment: %s\n", err);
		goto out;
	}
	for (int i = 0; i < nsets; i++)
		if (sconf_set(&conf, sets[i].name, sets[i].value, err, sizeof(err))) {
			fprintf(stderr, "%% ERROR: %s\n", err);
			goto out;
		}
	for (int i = 0; i < nx; i++)
		if (sconf_add_kafka_prop(&conf, xprops[i].name, xprops[i].value, err, sizeof(err))) {
			fprintf(stderr, "%% ERROR: -X: %s\n", err);
			goto out;
		}
	if (sconf_finish(&conf, err, sizeof(err))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		goto out;
	}
	if (!metrics_file)
		metrics_file = conf.metrics_file;
	if (role == ROLE_BATCH && conf.batch_size <= 0) {
		fprintf(stderr, "%% ERROR: --role batch needs batch.size > 0\n");
		goto out;
	}
	if (role == ROLE_ALL && conf.batch_size <= 0)
		role = ROLE_SELECT;

	s.conf = &conf;
	rec_limits_default(&s.limits);
	s.limits.max_bytes = conf.max_record_bytes;
	s.classes = calloc((size_t)conf.nclasses, sizeof(*s.classes));
	if (!s.classes || select_prepare(&s)) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		goto out;
	}
	if (conf.nredact > 0) {
		s.redactor = redact_new();
		for (int i = 0; s.redactor && i < conf.nredact; i++) {
			const struct redact_rule *r = &conf.redact[i];
			int bad = r->builtin ? redact_add_builtin(s.redactor, r->builtin, r->replacement, err, sizeof(err))
			                     : redact_add_pattern(s.redactor, r->pattern, r->replacement, err, sizeof(err));
			if (bad) {
				fprintf(stderr, "%% ERROR: redaction: %s\n", err);
				goto out;
			}
		}
	}

	/* The user's Kafka properties, each with where it came from: -X wins
	 * over -s kafka.NAME, which wins over the file (sconf keeps the last). */
	if (!(kafka = calloc((size_t)conf.nkafka_props + 1, sizeof(*kafka)))) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		goto out;
	}
	for (int i = 0; i < conf.nkafka_props; i++) {
		const char *name = conf.kafka_props[2 * i];
		int by_x = 0, by_s = 0;
		for (int j = 0; j < nx; j++)
			by_x |= !strcmp(xprops[j].name, name);
		for (int j = 0; j < nsets; j++)
			by_s |= !strncmp(sets[j].name, "kafka.", 6) && !strcmp(sets[j].name + 6, name);
		kafka[i] = (struct kclient_user){ .name = name, .value = conf.kafka_props[2 * i + 1],
		                                  .file = by_x || by_s ? NULL : conf_file,
		                                  .flag = !by_x && by_s ? "-s kafka." : NULL };
	}
	s.kafka = kafka;
	s.nkafka = conf.nkafka_props;

	char txn_select[512], txn_batch[512];
	snprintf(txn_select, sizeof(txn_select), "%s-select", conf.transactional_id);
	snprintf(txn_batch, sizeof(txn_batch), "%s-batch", conf.transactional_id);
	char group_batch[512];
	snprintf(group_batch, sizeof(group_batch), "%s-batch", conf.group);
	struct eos_conf select_ec = {
		.brokers = conf.brokers, .group = conf.group, .transactional_id = txn_select,
		.input = conf.input, .commit_interval_ms = conf.commit_interval_ms,
		.max_txn_messages = 50000, .kafka_props = kafka, .nkafka_props = conf.nkafka_props,
		.name = "select",
	};
	struct eos_conf batch_ec = {
		.brokers = conf.brokers, .group = group_batch, .transactional_id = txn_batch,
		.input = conf.pending, .commit_interval_ms = conf.commit_interval_ms,
		.max_txn_messages = 50000, .kafka_props = kafka, .nkafka_props = conf.nkafka_props,
		.name = "batch",
	};
	/* A property that would change what exactly-once needs is refused
	 * before anything starts, for the clients of the stages that run. */
	if ((role != ROLE_BATCH && eos_check(&select_ec, err, sizeof(err))) ||
	    (role != ROLE_SELECT && (eos_check(&batch_ec, err, sizeof(err)) || batcher_check(&s, err, sizeof(err))))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		goto out;
	}

	if (check_topics(&conf, kafka, conf.nkafka_props, role, err, sizeof(err))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		rc = 1;
		goto out;
	}

	rc = 1;
	if (role != ROLE_BATCH) {
		w[nw].name = "select";
		if (!(w[nw].eos = eos_new(&select_ec, &select_ops, &s, err, sizeof(err)))) {
			fprintf(stderr, "%% ERROR: select: %s\n", err);
			goto out;
		}
		nw++;
	}
	if (role != ROLE_SELECT) {
		if (!(batcher = batcher_new(&s, err, sizeof(err)))) {
			fprintf(stderr, "%% ERROR: batch: %s\n", err);
			goto out;
		}
		w[nw].name = "batch";
		if (!(w[nw].eos = eos_new(&batch_ec, &batch_ops, batcher, err, sizeof(err)))) {
			fprintf(stderr, "%% ERROR: batch: %s\n", err);
			goto out;
		}
		nw++;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (verbosity > 0)
		fprintf(stderr, "%% sampler %d: %s -> %s%s%s (seed %llu, %d classes, batch.size %d)\n",
		        conf.instance, conf.input, conf.batch_size > 0 ? conf.pending : conf.output,
		        conf.batch_size > 0 ? " -> " : "", conf.batch_size > 0 ? conf.output : "",
		        (unsigned long long)conf.seed, conf.nclasses, conf.batch_size);

	for (int i = 0; i < nw; i++)
		pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
	int64_t last = mono_ms();
	while (run) {
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
		if (conf.stats_interval_ms > 0 && mono_ms() - last >= conf.stats_interval_ms) {
			print_stats(&s, w, nw, metrics_file, verbosity > 0);
			last = mono_ms();
		}
	}
	rc = 0;
	for (int i = 0; i < nw; i++) {
		pthread_join(w[i].thread, NULL);
		rc |= w[i].rc != 0;
	}
	print_stats(&s, w, nw, metrics_file, verbosity > 0);
out:
	for (int i = 0; i < nw; i++)
		eos_destroy(w[i].eos);
	batcher_destroy(batcher);
	redact_destroy(s.redactor);
	if (s.conf)
		select_release(&s);
	free(s.classes);
	pthread_mutex_destroy(&s.lock);
	if (verbosity > 0 && rc == 0 && nw > 0)
		fprintf(stderr, "%% sampler %d: stopped cleanly\n", conf.instance);
	sconf_release(&conf);
	free(kafka);
	free(sets);
	free(xprops);
	return rc;
}
