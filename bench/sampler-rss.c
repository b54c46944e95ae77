/* bench/sampler-rss.c - tracesift-sampler's resident memory over a long stream, against the pass-through
 *
 * One input topic of BENCH_RSS_RECORDS (200000) valid 1 KB trace records
 * (sampling.h), read from the beginning by tracesift-sampler (batch.size 0,
 * the benchmark's four classes at rate 0.5, commit.interval.ms 100) and by
 * bench/passthrough (the same exactly-once loop and librdkafka properties,
 * copying every record), and by the sampler with a 16 MB consumer prefetch
 * (-X queued.max.messages.kbytes=16384), BENCH_RSS_REPS (2) times each.  While
 * a run goes, every 10 ms: the group's committed offsets (how far it is) and
 * the process's VmRSS from /proc/PID/status; VmHWM when the input is all
 * committed.  Reported: the peak, the median RSS over the second half of the
 * input (steady state: the consumer's prefetch queue is full and the
 * producer's queue busy), and RSS as the input passes 25%, 50%, 75%, 100%,
 * which stays flat when nothing grows with the number of records.
 *
 * Environment: BENCH_RSS_RECORDS, BENCH_RSS_REPS, BENCH_SAMPLER.
 */
#include "sampling.h"

#define MAX_REPS 16
#define SMALL_PREFETCH_KB "16384"

struct mem {
	double hwm_mb, steady_mb, max_mb, at_mb[4], secs;
};

struct series {
	struct mem m[MAX_REPS];
	int n, failed;
};

static const char *sampler_bin(void)
{
	const char *b = getenv("BENCH_SAMPLER");
	return b && *b ? b : "bin/tracesift-sampler";
}

/* RSS (MB) at the first poll where committed reached frac of count. */
static double rss_at(const struct sb_run *r, long count, double frac)
{
	for (int i = 0; i < r->nrss; i++)
		if ((double)r->rss_done[i] >= frac * (double)count)
			return r->rss_kb[i] / 1024.0;
	return r->nrss ? r->rss_kb[r->nrss - 1] / 1024.0 : 0;
}

static void measure(const struct sb_run *r, long count, struct mem *m)
{
	double v[SB_MAX_SAMPLES];
	int n = 0;
	m->max_mb = 0;
	for (int i = 0; i < r->nrss; i++) {
		double mb = r->rss_kb[i] / 1024.0;
		m->max_mb = mb > m->max_mb ? mb : m->max_mb;
		if (r->rss_done[i] >= count / 2)
			v[n++] = mb;
	}
	m->steady_mb = bench_median(v, (size_t)n);
	m->hwm_mb = r->hwm_kb / 1024.0;
	for (int k = 0; k < 4; k++)
		m->at_mb[k] = rss_at(r, count, 0.25 * (k + 1));
	m->secs = r->secs;
}

int main(void)
{
	bench_name = "sampler-rss";
	long count = bench_env_long("BENCH_RSS_RECORDS", 200000);
	int reps = (int)bench_env_long("BENCH_RSS_REPS", 2);
	reps = reps < 1 ? 1 : reps > MAX_REPS ? MAX_REPS : reps;
	if (access(sampler_bin(), X_OK))
		bench_die("'%s' is not built", sampler_bin());
	if (sb_is_sanitized(sampler_bin()))
		bench_die("'%s' is a sanitizer build (it links libasan): rebuild it with make SAN=0",
		          sampler_bin());
	struct sb_input in;
	sb_input_make(&in, "rss", count, 1024, 2);
	char dlq[256], out[256], conf[4096], pass[PATH_MAX + 32];
	bench_topic_name(dlq, sizeof(dlq), "rdlq");
	bench_topic_name(out, sizeof(out), "rout");
	if (bench_create_topic(dlq, 1) || bench_create_topic(out, SB_PARTITIONS))
		bench_die("cannot create the output topics");
	snprintf(conf, sizeof(conf), "%s/sampler-rss.conf", bench_out_dir());
	sb_write_sampler_conf(conf, in.topic, dlq);
	snprintf(pass, sizeof(pass), "%s/passthrough", sb_self_dir());
	bench_log("%ld records of 1024 bytes in '%s' (%.1f s to produce)", count, in.topic, in.produce_s);

	struct sb_run *r = calloc(1, sizeof(*r));
	enum { NP = 3 };
	static struct series s[NP]; /* sampler, passthrough, sampler with a smaller prefetch */
	static const char *const names[NP] = {
		"tracesift-sampler", "passthrough (librdkafka)",
		"tracesift-sampler, `-X queued.max.messages.kbytes=" SMALL_PREFETCH_KB "`",
	};
	if (!r)
		bench_die("out of memory");
	for (int rep = 0; rep < reps; rep++)
		for (int j = 0; j < NP; j++) {
			int which = rep % 2 ? NP - 1 - j : j;
			char group[256], txn[300], gs[300], os[300];
			bench_topic_name(group, sizeof(group), "rg");
			snprintf(txn, sizeof(txn), "%s-txn", group);
			snprintf(gs, sizeof(gs), "group=%s", group);
			snprintf(os, sizeof(os), "output=%s", out);
			snprintf(r->log, sizeof(r->log), "%s/sampler-rss-%d-%d.log", bench_out_dir(), which, rep);
			char *sampler_argv[] = { (char *)sampler_bin(), "-c", conf, "-b", (char *)bench_brokers(),
			                         "-s", gs, "-s", os, NULL, NULL, NULL };
			if (which == 2) {
				sampler_argv[9] = "-X";
				sampler_argv[10] = "queued.max.messages.kbytes=" SMALL_PREFETCH_KB;
			}
			char *pass_argv[] = { pass, "-b", (char *)bench_brokers(), "-i", in.topic, "-o", out,
			                      "-g", group, "-t", txn, NULL };
			sb_run_program(which == 1 ? pass_argv : sampler_argv, group, in.topic, count, 300, r);
			int ok = r->ok;
			if (ok && which != 1 && (sb_log_number(r->log, "classified") != count ||
			                         sb_log_number(r->log, "selected_total") != in.expected))
				ok = 0;
			long consumed = -1, produced = -1;
			if (ok && which == 1 && (sb_log_passthrough(r->log, &consumed, &produced) ||
			                         consumed != count || produced != count))
				ok = 0;
			if (!ok) {
				bench_log("%s run %d failed (log %s)", names[which], rep + 1, r->log);
				s[which].failed++;
				continue;
			}
			measure(r, count, &s[which].m[s[which].n]);
			bench_log("%s run %d: %.2f s, VmHWM %.1f MB, steady VmRSS %.1f MB",
			          names[which], rep + 1, r->secs,
			          s[which].m[s[which].n].hwm_mb, s[which].m[s[which].n].steady_mb);
			s[which].n++;
			unlink(r->log);
		}
	bench_delete_topic(in.topic);
	bench_delete_topic(dlq);
	bench_delete_topic(out);
	unlink(conf);

	FILE *f = bench_section_open();
	fprintf(f, "## Sampler memory: resident set over a long stream\n\n");
	fprintf(f, "%ld valid 1 KB trace records (%.0f MB) in a new %d-partition topic, read from the "
	        "beginning by tracesift-sampler (batch.size 0, four classes at rate %.1f, "
	        "commit.interval.ms 100; items go out as they are built) and by the pass-through (bench/passthrough.c: the same "
	        "exactly-once loop and librdkafka properties, copying every record), each with a new "
	        "group, %d runs each, alternating.  VmRSS is read from /proc/PID/status every %d ms while "
	        "the group's committed offsets are polled; VmHWM when they reach the end of the "
	        "input.  \"Steady\" is the median VmRSS over the second half of the input.  Both use "
	        "librdkafka's default consumer prefetch (queued.max.messages.kbytes 65536, "
	        "queued.min.messages 100000), which bounds what a consumer holds; the third row "
	        "shows the sampler with that prefetch cut to " SMALL_PREFETCH_KB " KB (a `-X` for "
	        "every client; the producer ignores it).  Figures are medians over the runs.\n\n",
	        count, (double)count * 1024 / 1e6, SB_PARTITIONS, SB_RATE, reps, SB_POLL_MS);
	fprintf(f, "| program | peak (VmHWM) MB | steady VmRSS MB | max VmRSS MB | VmRSS at 25%% / 50%% / 75%% / 100%% of the input, MB | "
	        "seconds | failed runs |\n| --- | ---: | ---: | ---: | --- | ---: | ---: |\n");
	double med[NP][8];
	for (int w = 0; w < NP; w++) {
		double v[8][MAX_REPS];
		for (int i = 0; i < s[w].n; i++) {
			const struct mem *m = &s[w].m[i];
			double row[8] = { m->hwm_mb, m->steady_mb, m->max_mb, m->at_mb[0], m->at_mb[1],
			                  m->at_mb[2], m->at_mb[3], m->secs };
			for (int k = 0; k < 8; k++)
				v[k][i] = row[k];
		}
		for (int k = 0; k < 8; k++)
			med[w][k] = bench_median(v[k], (size_t)s[w].n);
		if (s[w].n == 0) {
			fprintf(f, "| %s | - | - | - | - | - | %d |\n", names[w], s[w].failed);
			continue;
		}
		fprintf(f, "| %s | %.1f | %.1f | %.1f | %.1f / %.1f / %.1f / %.1f | %.2f | %d |\n", names[w],
		        med[w][0], med[w][1], med[w][2], med[w][3], med[w][4], med[w][5], med[w][6], med[w][7],
		        s[w].failed);
	}
	if (s[0].n && s[1].n)
		fprintf(f, "\nSampler over pass-through: steady %+.1f MB, peak %+.1f MB.\n",
		        med[0][1] - med[1][1], med[0][0] - med[1][0]);
	fprintf(f, "\n");
	fclose(f);
	free(r);
	return s[0].failed || s[1].failed || s[2].failed ? 1 : 0;
}
