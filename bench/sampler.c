/* bench/sampler.c - tracesift-sampler's throughput against a librdkafka pass-through and a Python sampler
 *
 * For records of 1 KB and 8 KB (BENCH_SAMPLER_1K records of 1024 bytes,
 * BENCH_SAMPLER_8K of 8192; every one a valid trace record v1, see
 * sampling.h) in a new topic, each of these programs reads the whole topic
 * with a consumer group of its own and writes to an output topic of its own,
 * exactly once in Kafka transactions:
 *
 *   sampler       bin/tracesift-sampler, batch.size 0 (the selector only), four
 *                 classes (error, latency, metadata, default) all at rate 0.5
 *   passthrough   build/rel/bench/passthrough: the same librdkafka loop and
 *                 properties, copying every record (no validation, no
 *                 selection, no items) - the goal is sampler >= 0.8x of it
 *   python        bench/py_sampler.py with confluent-kafka in
 *                 $BENCH_PYTHON (build/bench-venv; bench/run.sh sets it up):
 *                 the same rules and items - the goal is sampler >= 5x of it
 *
 * each with commit.interval.ms 100; and for the cost of transactions, the
 * sampler and the passthrough at 1000 ms, and the passthrough without
 * transactions (idempotent producer, auto commit every 100 ms of the offsets
 * whose copies were delivered).  Records/s
 * is COUNT over spawn-to-done, done being when the group's committed offsets
 * reach the end of the input (sampling.h says how that is watched).  Rounds
 * run every program once, in an order that rotates from round to round;
 * ratios are taken within a round and their median quoted.  Every run is
 * checked: all records classified, exactly the expected number selected
 * (computed here with sample_draw()), nothing dead-lettered; the passthrough
 * copied every record.  A failed check drops the run from the figures.
 *
 * Environment: BENCH_SAMPLER_1K (100000), BENCH_SAMPLER_8K (20000),
 * BENCH_SAMPLER_REPS (5: rounds of sampler and passthrough),
 * BENCH_SAMPLER_PY_REPS (3: of them, rounds that also run Python; 0: none),
 * BENCH_SAMPLER_TXN_REPS (3: rounds that also run the transaction-cost
 * variants; 0: none), BENCH_SAMPLER (bin/tracesift-sampler), BENCH_PYTHON.
 */
#include "sampling.h"

enum kind { K_SAMPLER, K_PASS, K_PY };

struct variant {
	const char *label;
	enum kind kind;
	int commit_ms;    /* 0: no transactions (passthrough only) */
	int group;        /* 0: every round, 1: Python rounds, 2: transaction-cost rounds */
};

static const struct variant variants[] = {
	{ "tracesift-sampler", K_SAMPLER, 100, 0 },
	{ "passthrough (librdkafka)", K_PASS, 100, 0 },
	{ "Python sampler (confluent-kafka)", K_PY, 100, 1 },
	{ "tracesift-sampler", K_SAMPLER, 1000, 2 },
	{ "passthrough (librdkafka)", K_PASS, 1000, 2 },
	{ "passthrough (librdkafka)", K_PASS, 0, 2 },
};
enum { V_S100, V_P100, V_PY, V_S1000, V_P1000, V_P0, NV };

#define MAX_REPS 32

struct series {
	double rps[MAX_REPS], steady[MAX_REPS], first_s[MAX_REPS], cpu_us[MAX_REPS];
	double round_rps[MAX_REPS]; /* by round, 0 when it did not run or failed */
	double round_steady[MAX_REPS];
	int n, failed;
};

struct size_run {
	struct sb_input in;
	char dlq[256], out[NV][256], conf[4096];
	struct series s[NV];
};

static const char *sampler_bin(void)
{
	const char *b = getenv("BENCH_SAMPLER");
	return b && *b ? b : "bin/tracesift-sampler";
}

/* Runs variant v once over the input; adds to its series. */
static void run_variant(struct size_run *z, int v, int round, struct sb_run *r)
{
	const struct variant *va = &variants[v];
	char group[256], txn[300], commit[16], pass[PATH_MAX + 32], gs[300], os[300], cs[64];
	bench_topic_name(group, sizeof(group), "g");
	snprintf(txn, sizeof(txn), "%s-txn", group);
	snprintf(commit, sizeof(commit), "%d", va->commit_ms ? va->commit_ms : 100);
	snprintf(r->log, sizeof(r->log), "%s/sampler-run-%zu-%d-%d.log", bench_out_dir(), z->in.size, v, round);
	char *argv[24];
	int a = 0;
	const char *py = sb_python();
	switch (va->kind) {
	case K_SAMPLER:
		snprintf(gs, sizeof(gs), "group=%s", group);
		snprintf(os, sizeof(os), "output=%s", z->out[v]);
		snprintf(cs, sizeof(cs), "commit.interval.ms=%s", commit);
		argv[a++] = (char *)sampler_bin();
		argv[a++] = "-c";
		argv[a++] = z->conf;
		argv[a++] = "-b";
		argv[a++] = (char *)bench_brokers();
		argv[a++] = "-s";
		argv[a++] = gs;
		argv[a++] = "-s";
		argv[a++] = os;
		argv[a++] = "-s";
		argv[a++] = cs;
		break;
	case K_PASS:
		snprintf(pass, sizeof(pass), "%s/passthrough", sb_self_dir());
		argv[a++] = pass;
		argv[a++] = "-b";
		argv[a++] = (char *)bench_brokers();
		argv[a++] = "-i";
		argv[a++] = z->in.topic;
		argv[a++] = "-o";
		argv[a++] = z->out[v];
		argv[a++] = "-g";
		argv[a++] = group;
		argv[a++] = "--commit-ms";
		argv[a++] = commit;
		if (va->commit_ms) {
			argv[a++] = "-t";
			argv[a++] = txn;
		} else {
			argv[a++] = "--no-txn";
		}
		break;
	case K_PY: {
		static char seed[16];
		snprintf(seed, sizeof(seed), "%d", SB_SEED);
		argv[a++] = (char *)py;
		argv[a++] = "bench/py_sampler.py";
		argv[a++] = (char *)bench_brokers();
		argv[a++] = z->in.topic;
		argv[a++] = z->out[v];
		argv[a++] = z->dlq;
		argv[a++] = group;
		argv[a++] = txn;
		argv[a++] = seed;
		argv[a++] = commit;
		break;
	}
	}
	argv[a] = NULL;
	sb_run_program(argv, group, z->in.topic, z->in.count, 300, r);

	/* Did it do the whole job? */
	long n = z->in.count;
	int ok = r->ok;
	if (ok && va->kind == K_PASS) {
		long consumed = -1, produced = -1;
		if (sb_log_passthrough(r->log, &consumed, &produced) || consumed != n || produced != n) {
			bench_log("check failed: passthrough consumed %ld, produced %ld of %ld (log %s)",
			          consumed, produced, n, r->log);
			ok = 0;
		}
	} else if (ok) {
		long cl = sb_log_number(r->log, "classified"), sel = sb_log_number(r->log, "selected_total"),
		     dead = sb_log_number(r->log, "dead_lettered_total");
		if (cl != n || sel != z->in.expected || dead != 0) {
			bench_log("check failed: %s classified %ld of %ld, selected %ld (expected %ld), "
			          "dead-lettered %ld (log %s)", va->label, cl, n, sel, z->in.expected, dead, r->log);
			ok = 0;
		}
	}
	struct series *s = &z->s[v];
	if (!ok) {
		s->failed++;
		return;
	}
	if (s->n < MAX_REPS) {
		s->rps[s->n] = (double)n / r->secs;
		s->first_s[s->n] = r->first_s;
		/* 0: the first commit took more than half the input (then what
		 * follows it is too little to measure a rate on) */
		s->steady[s->n] = r->first_offsets <= n / 2 && r->secs > r->first_s ?
		                  (double)(n - r->first_offsets) / (r->secs - r->first_s) : 0;
		s->round_steady[round] = s->steady[s->n];
		s->cpu_us[s->n] = r->cpu_s * 1e6 / (double)n;
		s->n++;
	}
	s->round_rps[round] = (double)n / r->secs;
	unlink(r->log);
}

static void make_topics(struct size_run *z, long count, size_t size)
{
	sb_input_make(&z->in, "sin", count, size, 1);
	bench_topic_name(z->dlq, sizeof(z->dlq), "sdlq");
	if (bench_create_topic(z->dlq, 1))
		bench_die("cannot create topic '%s'", z->dlq);
	for (int v = 0; v < NV; v++) {
		bench_topic_name(z->out[v], sizeof(z->out[v]), "sout");
		if (bench_create_topic(z->out[v], SB_PARTITIONS))
			bench_die("cannot create topic '%s'", z->out[v]);
	}
	snprintf(z->conf, sizeof(z->conf), "%s/sampler-bench-%zu.conf", bench_out_dir(), size);
	sb_write_sampler_conf(z->conf, z->in.topic, z->dlq);
}

static void delete_topics(struct size_run *z)
{
	bench_delete_topic(z->in.topic);
	bench_delete_topic(z->dlq);
	for (int v = 0; v < NV; v++)
		bench_delete_topic(z->out[v]);
	unlink(z->conf);
}

/* The per-round ratios a/b (rounds where both ran), of records/s or of the
 * steady figure. */
static int ratios_of(const struct series *a, const struct series *b, int rounds, int steady, double *out)
{
	int n = 0;
	for (int r = 0; r < rounds; r++) {
		double x = steady ? a->round_steady[r] : a->round_rps[r];
		double y = steady ? b->round_steady[r] : b->round_rps[r];
		if (x > 0 && y > 0)
			out[n++] = x / y;
	}
	return n;
}

static int ratios(const struct series *a, const struct series *b, int rounds, double *out)
{
	return ratios_of(a, b, rounds, 0, out);
}

static void row(FILE *f, const struct variant *va, const struct series *s, size_t size)
{
	char commit[32];
	if (va->commit_ms)
		snprintf(commit, sizeof(commit), "%d ms", va->commit_ms);
	else
		snprintf(commit, sizeof(commit), "off (auto commit 100 ms)");
	if (s->n == 0) {
		fprintf(f, "| %s | %s | - | - | - | - | - | - | %d |\n", va->label, commit, s->failed);
		return;
	}
	double rps = bench_median(s->rps, (size_t)s->n), steady[MAX_REPS];
	int ns = 0;
	for (int i = 0; i < s->n; i++)
		if (s->steady[i] > 0)
			steady[ns++] = s->steady[i];
	char st[32];
	if (ns > s->n / 2)
		snprintf(st, sizeof(st), "%.0f", bench_median(steady, (size_t)ns));
	else
		snprintf(st, sizeof(st), "-");
	fprintf(f, "| %s | %s | %.0f | %.1f | %.0f..%.0f | %s | %.2f | %.1f | %d |\n", va->label, commit,
	        rps, rps * (double)size / 1e6, bench_min(s->rps, (size_t)s->n), bench_max(s->rps, (size_t)s->n),
	        st, bench_median(s->first_s, (size_t)s->n), bench_median(s->cpu_us, (size_t)s->n), s->failed);
}

static void ratio_line(FILE *f, const char *what, const struct series *a, const struct series *b,
                       int rounds, double goal)
{
	double r[MAX_REPS], rs[MAX_REPS];
	int n = ratios(a, b, rounds, r), ns = ratios_of(a, b, rounds, 1, rs);
	if (n == 0) {
		fprintf(f, "%s: no round where both ran.\n\n", what);
		return;
	}
	double m = bench_median(r, (size_t)n);
	fprintf(f, "**%s: %.2fx** (median of %d rounds' ratios, min %.2fx, max %.2fx", what, m, n,
	        bench_min(r, (size_t)n), bench_max(r, (size_t)n));
	if (goal > 0)
		fprintf(f, "; goal: at least %.1fx, %s", goal, m >= goal ? "met" : "**not met**");
	fprintf(f, ")");
	if (ns > 0)
		fprintf(f, "; steady, from the first commit: %.2fx (%.2fx..%.2fx)", bench_median(rs, (size_t)ns),
		        bench_min(rs, (size_t)ns), bench_max(rs, (size_t)ns));
	fprintf(f, ".\n\n");
}

int main(void)
{
	bench_name = "sampler";
	long counts[2] = { bench_env_long("BENCH_SAMPLER_1K", 100000), bench_env_long("BENCH_SAMPLER_8K", 20000) };
	const size_t sizes[2] = { 1024, 8192 };
	int reps = (int)bench_env_long("BENCH_SAMPLER_REPS", 5);
	int py_reps = (int)bench_env_long("BENCH_SAMPLER_PY_REPS", 3);
	int txn_reps = (int)bench_env_long("BENCH_SAMPLER_TXN_REPS", 3);
	reps = reps < 1 ? 1 : reps > MAX_REPS ? MAX_REPS : reps;
	py_reps = py_reps > reps ? reps : py_reps;
	txn_reps = txn_reps > reps ? reps : txn_reps;
	if (access(sampler_bin(), X_OK))
		bench_die("'%s' is not built", sampler_bin());
	if (sb_is_sanitized(sampler_bin()))
		bench_die("'%s' is a sanitizer build (it links libasan): rebuild it with make SAN=0",
		          sampler_bin());
	if (!sb_python() && py_reps > 0) {
		bench_log("no Python with confluent-kafka ($BENCH_PYTHON unset or not there): "
		          "the Python comparison is skipped");
		py_reps = 0;
	}
	static struct size_run z[2];
	struct sb_run *r = calloc(1, sizeof(*r));
	if (!r)
		bench_die("out of memory");
	int failed = 0;
	for (int k = 0; k < 2; k++) {
		if (counts[k] <= 0)
			continue;
		make_topics(&z[k], counts[k], sizes[k]);
		bench_log("%ld records of %zu bytes in '%s' (%.1f s to produce), %ld to be selected",
		          counts[k], sizes[k], z[k].in.topic, z[k].in.produce_s, z[k].in.expected);
		for (int round = 0; round < reps; round++) {
			int order[NV], n = 0;
			for (int v = 0; v < NV; v++)
				if (variants[v].group == 0 || (variants[v].group == 1 && round < py_reps) ||
				    (variants[v].group == 2 && round < txn_reps))
					order[n++] = v;
			for (int i = 0; i < n; i++) {
				/* rotate the order round by round, and reverse it every other round */
				int j = (i + round) % n;
				int v = order[round % 2 ? n - 1 - j : j];
				run_variant(&z[k], v, round, r);
				bench_log("%zu B round %d: %s, commit %d ms: %s", sizes[k], round + 1,
				          variants[v].label, variants[v].commit_ms,
				          z[k].s[v].round_rps[round] > 0 ? "ok" : "FAILED");
				if (z[k].s[v].round_rps[round] > 0)
					bench_log("  %.2f s, %.0f records/s", (double)counts[k] / z[k].s[v].round_rps[round],
					          z[k].s[v].round_rps[round]);
			}
		}
		for (int v = 0; v < NV; v++)
			failed += z[k].s[v].failed;
		delete_topics(&z[k]);
	}

	FILE *f = bench_section_open();
	fprintf(f, "## Sampler throughput: tracesift-sampler against a librdkafka pass-through and a Python sampler\n\n");
	fprintf(f, "Each run reads a whole input topic (%d partitions) of valid trace records v1 of one "
	        "size, keyed by trace_id, from the beginning with a new consumer group, and writes to "
	        "its own output topic, exactly once (read_committed, a transactional producer, "
	        "`send_offsets_to_transaction` and commit every commit interval).  "
	        "**tracesift-sampler**: batch.size 0 (the selector alone), four classes "
	        "(`error`, `latency_ms > 2000`, `metadata.user_tier = enterprise`, default), every one "
	        "at rate %.1f, no redaction, projection full.  **passthrough**: `bench/passthrough.c`, the "
	        "sampler's exactly-once loop and librdkafka properties (sampler/eos.c) copying every "
	        "record: no validation, classification or items.  **Python sampler**: "
	        "`bench/py_sampler.py`, the same rules, hash and item shape written the plain way with "
	        "confluent-kafka and the standard json module.  Records/s is the input's records over "
	        "the time from spawn to the moment the group's committed offsets reach the end of "
	        "the input (polled every %d ms with OffsetFetch from outside): process start, group "
	        "join and init_transactions are included, nothing is subtracted.  \"Steady\" is the "
	        "records committed after the first commit over the time from the first commit to "
	        "done: the rate once running, which is what a long-lived service sees (\"-\" where the "
	        "first commit already took more than half the input).  The difference matters here: with librdkafka %s the "
	        "first transaction of a new transactional producer often waits up to a second for the "
	        "output topic's metadata (see \"s to first commit\"), a fixed cost that is a large "
	        "share of runs this short.  CPU is the process's user+system time at done.  "
	        "Rounds run each program once in an order that rotates round by round; ratios are "
	        "per round, their median quoted.  Every run is checked: all records classified, "
	        "exactly the %s records the documented hash selects, none dead-lettered (the "
	        "passthrough: every record copied); failed runs are left out of the figures.\n\n",
	        SB_PARTITIONS, SB_RATE, SB_POLL_MS, rd_kafka_version_str(), "expected");
	for (int k = 0; k < 2; k++) {
		if (counts[k] <= 0)
			continue;
		struct size_run *s = &z[k];
		fprintf(f, "### Records of %zu bytes\n\n%ld records (%.1f MB), %ld of them selected; %d rounds "
		        "(the Python sampler in %d, the 1000 ms and no-transaction variants in %d).\n\n",
		        sizes[k], counts[k], (double)counts[k] * (double)sizes[k] / 1e6, s->in.expected, reps,
		        py_reps, txn_reps);
		fprintf(f, "| program | commit interval | records/s (median) | MB/s in | min..max records/s | "
		        "steady records/s | s to first commit | CPU µs/record | failed runs |\n"
		        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
		static const int shown[] = { V_S100, V_P100, V_PY, V_S1000, V_P1000, V_P0 };
		for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
			int v = shown[i];
			if ((variants[v].group == 1 && py_reps == 0) || (variants[v].group == 2 && txn_reps == 0))
				continue;
			row(f, &variants[v], &s->s[v], sizes[k]);
		}
		fprintf(f, "\n");
		ratio_line(f, "sampler / passthrough (records/s, both 100 ms)", &s->s[V_S100], &s->s[V_P100], reps, 0.8);
		if (py_reps > 0) {
			ratio_line(f, "sampler / Python sampler (records/s, both 100 ms)", &s->s[V_S100], &s->s[V_PY],
			           py_reps, 5.0);
			ratio_line(f, "passthrough / Python sampler (records/s, both 100 ms: what a sampler that did "
			           "no work at all would get)", &s->s[V_P100], &s->s[V_PY], py_reps, 0);
			if (s->s[V_S100].n && s->s[V_PY].n)
				fprintf(f, "CPU per record, Python sampler / sampler: %.1fx (medians).\n\n",
				        bench_median(s->s[V_PY].cpu_us, (size_t)s->s[V_PY].n) /
				        bench_median(s->s[V_S100].cpu_us, (size_t)s->s[V_S100].n));
		}
		if (txn_reps > 0) {
			fprintf(f, "Transaction cost, per round against the passthrough without transactions "
			        "(idempotent producer, auto commit every 100 ms of the offsets whose copies "
			        "were delivered, so that done means delivered here too).  On a finite input the "
			        "last commit waits for the commit interval, so the 1000 ms runs include up to a "
			        "second of waiting at the end:\n\n"
			        "| program | commit interval | records/s relative to no transactions (median, min..max) "
			        "| steady, from the first commit |\n| --- | --- | --- | --- |\n");
			static const int tv[] = { V_P1000, V_P100, V_S1000, V_S100 };
			for (size_t i = 0; i < sizeof(tv) / sizeof(tv[0]); i++) {
				double rr[MAX_REPS], rs[MAX_REPS];
				int n = ratios(&s->s[tv[i]], &s->s[V_P0], txn_reps, rr);
				int ns = ratios_of(&s->s[tv[i]], &s->s[V_P0], txn_reps, 1, rs);
				char st[64] = "-";
				if (ns > txn_reps / 2)
					snprintf(st, sizeof(st), "%.2fx", bench_median(rs, (size_t)ns));
				if (n)
					fprintf(f, "| %s | %d ms | %.2fx (%.2f..%.2f) | %s |\n", variants[tv[i]].label,
					        variants[tv[i]].commit_ms, bench_median(rr, (size_t)n), bench_min(rr, (size_t)n),
					        bench_max(rr, (size_t)n), st);
			}
			fprintf(f, "\n");
			ratio_line(f, "sampler at 1000 ms / sampler at 100 ms", &s->s[V_S1000], &s->s[V_S100], txn_reps, 0);
		}
	}
	fprintf(f, "Versions: the sampler and the passthrough use librdkafka %s; the Python sampler "
	        "runs %s.\n\n", rd_kafka_version_str(), getenv("BENCH_PYTHON_VERSIONS") ? getenv("BENCH_PYTHON_VERSIONS") : "(not run)");
	fclose(f);
	free(r);
	return failed ? 1 : 0;
}
