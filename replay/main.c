/* replay/main.c - tracesift-replay: read a time range of traffic back, filter it, write it, explain it
 *
 * Records come from Kafka (a time range of llm.traces, found with
 * offsetsForTimes on every partition, end offsets fixed at start) or from
 * the archive dataset of a store (what `tracesift-sink --archive` keeps past
 * retention).  Each record of the window is validated and filtered, then
 * written as JSONL (stdout, a file, a zstd file), copied to a topic,
 * explained (the sampler's decision, re-derived) or summed up in a report.
 * docs/replay.md describes it for users.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvfile.h"
#include "replay.h"
#include "sbuf.h"
#include "store.h"
#include "tstime.h"

#define DEFAULT_TOPIC "llm.traces"
#define DEFAULT_ARCHIVE "archive"
#define DEFAULT_GRACE_MS 60000
#define TIMEOUT_MS 15000
#define FLUSH_TIMEOUT_MS 60000
#define PROGRESS_EVERY_US 200000
#define MAX_FILTERS 64

static volatile sig_atomic_t run = 1;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
	run = 0;
}

enum by { BY_TIMESTAMP, BY_START_TIME };

struct opts {
	const char *brokers, *topic, *store, *dataset;
	const char *from_s, *to_s, *by_s;
	int64_t from_us, to_us;   /* -1: open */
	enum by by;
	int by_set;
	long grace_ms;
	const char *tags[MAX_FILTERS];
	int ntags;
	const char *meta[MAX_FILTERS][2];
	int nmeta;
	const char *model, *name;
	int model_from_file, name_from_file;
	int error;                /* 1 --error, 0 --no-error, -1 either */
	int error_flags;          /* 1: --error given, 2: --no-error given */
	const char *out, *to_topic;
	long zstd_level;
	const char *explain, *monitoring_topic, *recorded_store;
	int has_seed;
	uint64_t seed;
	int summary_only, report, json, progress, verbosity;
	long max_record_bytes;
	const char *xprops[128][2];
	int nx;
};

static void usage(FILE *out)
{
	fprintf(out,
	"usage: tracesift-replay [-c FILE] [-b BROKERS] [-t TOPIC | --store DIR [--dataset NAME]]\n"
	"                        [--from TIME] [--to TIME] [--by timestamp|start_time] [FILTERS]\n"
	"                        [-o FILE] [--to-topic TOPIC] [--explain-sampling CONFIG | --report]\n"
	"                        [-X key=value]... [-q|-v] [--help]\n"
	"\n"
	"Reads a time range of trace records back, from Kafka or from the archive of a\n"
	"dataset store, and writes the records of the window that pass the filters as\n"
	"JSONL (stdout by default), copies them to a topic, re-derives the sampler's\n"
	"decision for each (--explain-sampling), or sums them up (--report).  Reading\n"
	"stops at the end offsets the range had when it started.  See docs/replay.md.\n"
	"\n"
	"where from:\n"
	"  -b BROKERS               bootstrap servers (env TRACESIFT_BROKERS; default 127.0.0.1:9092)\n"
	"  -t TOPIC                 the topic to read (default llm.traces)\n"
	"  --store DIR              without -t: read the archive dataset of this store instead\n"
	"                           (what tracesift-sink --archive keeps past Kafka's retention);\n"
	"                           with -t and --explain-sampling: the store whose datasets hold\n"
	"                           the sampler's recorded decisions\n"
	"  --dataset NAME           the archive dataset (default archive)\n"
	"\n"
	"the window, [--from, --to): --to is exclusive\n"
	"  --from TIME, --to TIME   RFC 3339 (2026-11-26T10:00:00Z, offsets allowed), a date\n"
	"                           (2026-11-26: its midnight UTC) or epoch milliseconds;\n"
	"                           either may be left out (from the beginning, to the end)\n"
	"  --by timestamp           a record is in the window by its Kafka timestamp (the default\n"
	"                           with Kafka)\n"
	"  --by start_time          ... by the record's start_time (the only way with --store);\n"
	"                           Kafka is read from --from minus --grace-ms to --to plus it\n"
	"  --grace-ms N             how far Kafka timestamps may stray from the window and still\n"
	"                           be found: out-of-order timestamps, or traces longer than this\n"
	"                           with --by start_time (default 60000)\n"
	"\n"
	"filters (all must hold; repeated --tag and --meta all must hold too):\n"
	"  --tag T                  tags holds T\n"
	"  --model M                model is M\n"
	"  --name N                 name is N\n"
	"  --meta KEY=VALUE         metadata.KEY is VALUE (a string, or a number or true/false\n"
	"                           written exactly so); strings match exactly, as the sampler's\n"
	"                           predicates do\n"
	"  --error / --no-error     only traces with / without an error\n"
	"\n"
	"what comes out (stdout carries one of: records, the explanation, the report):\n"
	"  -o FILE                  records into FILE: zstd when it ends in .zst, plain JSONL\n"
	"                           otherwise ('-': stdout).  Written to FILE.tmp.PID and renamed\n"
	"  --zstd-level N           compression level for -o FILE.zst (1-19, default 3)\n"
	"  --to-topic TOPIC         copy the records to TOPIC (idempotent producer, acks=all),\n"
	"                           with their key, timestamp and headers\n"
	"  --explain-sampling CONFIG\n"
	"                           for each trace, the class and decision tracesift-sampler makes\n"
	"                           with this config file (same parser, same functions), then a\n"
	"                           summary per class; classes with a 'limit' are marked not\n"
	"                           reproducible.  With the recorded decisions (--store with -t,\n"
	"                           --recorded-store, or --monitoring-topic) every trace whose\n"
	"                           recorded decision differs is listed\n"
	"  --seed N                 the seed the sampler ran with, if not the file's\n"
	"  --monitoring-topic T     recorded decisions: the items the sampler wrote to T\n"
	"  --recorded-store DIR     recorded decisions: the datasets the sink stored in DIR\n"
	"  --summary                the summary only, no line per trace\n"
	"  --report                 an audit summary: traces per model, tag and day, errors per\n"
	"                           type, tokens, latency and time to first token p50/p90/p99\n"
	"  --json                   the explanation or report as JSON (one object per line)\n"
	"\n"
	"other:\n"
	"  -c FILE                  config file: 'name = value' lines, name a long option without\n"
	"                           dashes (store, grace-ms, ...), brokers, topic, or kafka.PROP\n"
	"  -X key=value             a librdkafka property (TLS, SASL, ...)\n"
	"  --max-record-bytes N     larger records are invalid (default 1048576; with\n"
	"                           --explain-sampling the config's max.record.bytes)\n"
	"  --no-progress            no progress line (one is drawn on stderr when it is a terminal)\n"
	"  -q / -v                  fewer / more messages on stderr (-v: every invalid record)\n"
	"  -h, --help               this text\n"
	"\n"
	"Precedence: flags, then environment (TRACESIFT_BROKERS), then the config file,\n"
	"then defaults.  Invalid records in the window are counted and reported, never\n"
	"written.  Exit status: 0 done, 1 a runtime error (broker, store, write), 2 a\n"
	"usage error, 130 interrupted (SIGINT/SIGTERM: the output holds every record read\n"
	"until then, a zstd file ends properly).\n");
}

static int bad(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "%% ERROR: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, " (see --help)\n");
	return -1;
}

static int parse_long(const char *opt, const char *v, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max) {
		fprintf(stderr, "%% ERROR: %s: expected a number from %ld to %ld, got '%s' (see --help)\n", opt, min,
		        max, v);
		return -1;
	}
	*out = n;
	return 0;
}

static int parse_time(const char *opt, const char *v, int64_t *us)
{
	if (tstime_parse_arg(v, us) == 0)
		return 0;
	return bad("%s: expected RFC 3339 (2026-11-26T10:00:00Z), a date (2026-11-26) or epoch milliseconds, "
	           "got '%s'", opt, v);
}

/* Set while the config file is read. */
static int loading_file;

/* Options that take no value. */
static int set_flag(struct opts *o, const char *a)
{
	if (!strcmp(a, "-q")) o->verbosity = 0;
	else if (!strcmp(a, "-v")) o->verbosity = 2;
	else if (!strcmp(a, "--error")) o->error_flags |= 1, o->error = 1;
	else if (!strcmp(a, "--no-error")) o->error_flags |= 2, o->error = 0;
	else if (!strcmp(a, "--summary")) o->summary_only = 1;
	else if (!strcmp(a, "--report")) o->report = 1;
	else if (!strcmp(a, "--json")) o->json = 1;
	else if (!strcmp(a, "--no-progress")) o->progress = 0;
	else return 1;
	return 0;
}

/* One option with its value (v must live as long as o; -X and --meta write
 * into it).  Returns 0, or -1 (said why). */
static int set_option(struct opts *o, const char *a, char *v)
{
	if (!strcmp(a, "-b")) o->brokers = v;
	else if (!strcmp(a, "-t")) o->topic = v;
	else if (!strcmp(a, "--store")) o->store = v;
	else if (!strcmp(a, "--dataset")) o->dataset = v;
	else if (!strcmp(a, "--from")) o->from_s = v;
	else if (!strcmp(a, "--to")) o->to_s = v;
	else if (!strcmp(a, "--by")) o->by_s = v;
	else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->out = v;
	else if (!strcmp(a, "--to-topic")) o->to_topic = v;
	else if (!strcmp(a, "--explain-sampling")) o->explain = v;
	else if (!strcmp(a, "--monitoring-topic")) o->monitoring_topic = v;
	else if (!strcmp(a, "--recorded-store")) o->recorded_store = v;
	else if (!strcmp(a, "--model") || !strcmp(a, "--name")) {
		/* a flag replaces the config file's value; two flags contradict */
		const char **slot = a[2] == 'm' ? &o->model : &o->name;
		int *from_file = a[2] == 'm' ? &o->model_from_file : &o->name_from_file;
		if (*slot && !*from_file && strcmp(*slot, v))
			return bad("%s given twice ('%s' and another): a trace has one", a, *slot);
		*slot = v;
		*from_file = loading_file;
	} else if (!strcmp(a, "--tag")) {
		if (o->ntags == MAX_FILTERS)
			return bad("%s: more than 64%s", a, "");
		o->tags[o->ntags++] = v;
	} else if (!strcmp(a, "--meta")) {
		char *eq = strchr(v, '=');
		if (!eq || eq == v)
			return bad("--meta: expected KEY=VALUE, got '%s'%s", v, "");
		if (o->nmeta == MAX_FILTERS)
			return bad("%s: more than 64%s", a, "");
		*eq = '\0';
		o->meta[o->nmeta][0] = v;
		o->meta[o->nmeta][1] = eq + 1;
		o->nmeta++;
	} else if (!strcmp(a, "-X")) {
		char *eq = strchr(v, '=');
		if (!eq || eq == v || o->nx == 128)
			return bad("-X: expected key=value, got '%s'%s", v, "");
		*eq = '\0';
		o->xprops[o->nx][0] = v;
		o->xprops[o->nx][1] = eq + 1;
		o->nx++;
	} else if (!strcmp(a, "--grace-ms")) {
		if (parse_long(a, v, 0, 7L * 86400000, &o->grace_ms))
			return -1;
	} else if (!strcmp(a, "--zstd-level")) {
		if (parse_long(a, v, 1, 19, &o->zstd_level))
			return -1;
	} else if (!strcmp(a, "--max-record-bytes")) {
		if (parse_long(a, v, 1024, 1L << 30, &o->max_record_bytes))
			return -1;
	} else if (!strcmp(a, "--seed")) {
		char *end;
		errno = 0;
		unsigned long long s = strtoull(v, &end, 10);
		if (errno || end == v || *end || v[0] == '-')
			return bad("--seed: expected a non-negative integer, got '%s'%s", v, "");
		o->seed = s;
		o->has_seed = 1;
	} else {
		return bad("unknown option '%s'%s", a, "");
	}
	return 0;
}

static int takes_value(const char *a)
{
	static const char *const names[] = {
		"-c", "-b", "-t", "--store", "--dataset", "--from", "--to", "--by", "-o", "--output", "--to-topic",
		"--explain-sampling", "--monitoring-topic", "--recorded-store", "--model", "--name", "--tag", "--meta",
		"-X", "--grace-ms", "--zstd-level", "--max-record-bytes", "--seed",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(a, names[i]))
			return 1;
	return 0;
}

/* Config file values, kept for the life of the process. */
static struct kvfile_values file_values;

static int set_from_file(void *ctx, const char *name, const char *value, char *errstr, size_t size)
{
	struct opts *o = ctx;
	char opt[128];
	char *keep = kvfile_option(&file_values, name, value, opt, sizeof(opt), errstr, size);
	if (!keep)
		return -1;
	if (!strcmp(value, "true") && !set_flag(o, opt))
		return 0;
	if (set_option(o, opt, keep)) {
		snprintf(errstr, size, "bad setting '%s'", name);
		return -1;
	}
	return 0;
}

/* Precedence: flags, then environment (TRACESIFT_BROKERS), then the config
 * file (-c), then defaults.  Returns 0, 1 for --help, -1 on a usage error. */
static int parse_args(struct opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 1;
		}
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "-c")) {
			char err[1024];
			loading_file = 1;
			int krc = kvfile_read(argv[i + 1], set_from_file, o, err, sizeof(err));
			loading_file = 0;
			if (krc) {
				fprintf(stderr, "%% ERROR: %s\n", err);
				return -1;
			}
			i++;
		}
	const char *env_b = getenv("TRACESIFT_BROKERS");
	if (env_b && *env_b)
		o->brokers = env_b;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i], *v = NULL;
		if (!set_flag(o, a))
			continue;
		if (a[0] != '-' || !a[1])
			return bad("unexpected argument '%s'%s", a, "");
		char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
		if (eq)
			*eq = '\0';
		if (!takes_value(a))
			return bad("unknown option '%s'%s", a, "");
		if (eq) {
			v = eq + 1;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			return bad("option '%s' needs a value%s", a, "");
		}
		if (!strcmp(a, "-c"))
			continue;
		if (set_option(o, a, v))
			return -1;
	}
	return 0;
}

/* Checks the options together; fills the window.  0, or -1 (said why). */
static int check_opts(struct opts *o)
{
	if (o->error_flags == 3)
		return bad("--error and --no-error exclude each other%s%s", "", "");
	if (o->from_s && parse_time("--from", o->from_s, &o->from_us))
		return -1;
	if (o->to_s && parse_time("--to", o->to_s, &o->to_us))
		return -1;
	if (o->from_us >= 0 && o->to_us >= 0 && o->to_us <= o->from_us)
		return bad("--to '%s' is not after --from '%s': the window [from, to) is empty", o->to_s, o->from_s);
	int from_store = o->store && !o->topic;
	if (!o->topic && !from_store)
		o->topic = DEFAULT_TOPIC;
	if (o->by_s) {
		if (!strcmp(o->by_s, "timestamp"))
			o->by = BY_TIMESTAMP;
		else if (!strcmp(o->by_s, "start_time"))
			o->by = BY_START_TIME;
		else
			return bad("--by: expected timestamp or start_time, got '%s'%s", o->by_s, "");
		o->by_set = 1;
	}
	if (from_store) {
		if (o->by_set && o->by == BY_TIMESTAMP)
			return bad("--by timestamp needs Kafka (-t TOPIC): the store keeps no Kafka timestamps%s%s", "", "");
		o->by = BY_START_TIME;
		if (!o->dataset)
			o->dataset = DEFAULT_ARCHIVE;
	} else {
		if (o->dataset)
			return bad("--dataset names the archive to read with --store (without -t)%s%s", "", "");
		if (o->store && !o->explain)
			return bad("--store with -t only names where --explain-sampling finds recorded decisions; "
			           "to replay the archive of '%s', leave out -t%s", o->store, "");
	}
	if (o->json && !o->explain && !o->report)
		return bad("--json applies to --explain-sampling and --report%s%s", "", "");
	if (o->explain && o->report)
		return bad("--explain-sampling and --report both write to stdout: run them one at a time%s%s", "", "");
	if (!o->explain && (o->has_seed || o->summary_only || o->monitoring_topic || o->recorded_store))
		return bad("--seed, --summary, --monitoring-topic and --recorded-store go with --explain-sampling%s%s",
		           "", "");
	int recorded = !!o->monitoring_topic + !!o->recorded_store + (!from_store && o->store);
	if (recorded > 1)
		return bad("give one source of recorded decisions: --store (with -t), --recorded-store or "
		           "--monitoring-topic%s%s", "", "");
	if (o->to_topic && o->topic && !strcmp(o->to_topic, o->topic))
		return bad("--to-topic '%s' is the topic being read%s", o->to_topic, "");
	if (o->out && !*o->out)
		return bad("-o needs a file name ('-' for stdout)%s%s", "", "");
	if ((o->explain || o->report) && o->out && !strcmp(o->out, "-"))
		return bad("-o -: stdout carries the %s; write the records to a file%s",
		           o->explain ? "explanation" : "report", "");
	return 0;
}

/* ---- Kafka clients ---------------------------------------------------------- */

static rd_kafka_conf_t *kafka_conf(const struct opts *o, int consumer, char *errstr, size_t size)
{
	char err[512], group[64];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* A group id only because librdkafka's assign() needs one: replay never
	 * joins it (no subscribe) and never commits. */
	snprintf(group, sizeof(group), "tracesift-replay-%ld", (long)getpid());
	const char *const cdefaults[][2] = {
		{ "client.id", "tracesift-replay" }, { "isolation.level", "read_committed" },
		{ "auto.offset.reset", "earliest" }, { "fetch.message.max.bytes", "8388608" },
		{ "group.id", group },
	};
	const char *const pdefaults[][2] = {
		{ "client.id", "tracesift-replay" }, { "compression.codec", "zstd" },
		{ "message.max.bytes", "8388608" }, { "linger.ms", "20" },
	};
	const char *const cforced[][2] = {
		{ "enable.auto.commit", "false" }, { "enable.auto.offset.store", "false" },
	};
	if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) ||
	    (o->verbosity == 0 && rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err))))
		goto bad;
	if (consumer) {
		for (size_t i = 0; i < sizeof(cdefaults) / sizeof(cdefaults[0]); i++)
			if (rd_kafka_conf_set(conf, cdefaults[i][0], cdefaults[i][1], err, sizeof(err)))
				goto bad;
	} else {
		for (size_t i = 0; i < sizeof(pdefaults) / sizeof(pdefaults[0]); i++)
			if (rd_kafka_conf_set(conf, pdefaults[i][0], pdefaults[i][1], err, sizeof(err)))
				goto bad;
	}
	for (int i = 0; i < o->nx; i++)
		if (rd_kafka_conf_set(conf, o->xprops[i][0], o->xprops[i][1], err, sizeof(err)))
			goto bad;
	if (consumer)
		for (size_t i = 0; i < sizeof(cforced) / sizeof(cforced[0]); i++)
			if (rd_kafka_conf_set(conf, cforced[i][0], cforced[i][1], err, sizeof(err)))
				goto bad;
	return conf;
bad:
	snprintf(errstr, size, "%s", err);
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* ---- progress on a terminal ------------------------------------------------- */

struct progress {
	int on, shown;
	int64_t start_us, last_us;
};

static void progress_draw(struct progress *p, int64_t done, int64_t total, uint64_t records, int64_t now)
{
	double el = (double)(now - p->start_us) / 1e6, rate = el > 0 ? (double)records / el : 0;
	double orate = el > 0 ? (double)done / el : 0;
	char eta[32] = "";
	if (orate > 0 && total > done) {
		long s = (long)((double)(total - done) / orate + 0.5);
		snprintf(eta, sizeof(eta), ", ETA %ld:%02ld", s / 60, s % 60);
	}
	fprintf(stderr, "\r%% %llu records, %lld / %lld offsets (%d%%), %.0f records/s%s\033[K",
	        (unsigned long long)records, (long long)done, (long long)total,
	        total > 0 ? (int)(100.0 * (double)done / (double)total) : 100, rate, eta);
	fflush(stderr);
	p->shown = 1;
	p->last_us = now;
}

static void progress_tick(struct progress *p, int64_t done, int64_t total, uint64_t records)
{
	if (!p->on)
		return;
	int64_t now = tstime_mono_us();
	if (now - p->last_us >= PROGRESS_EVERY_US)
		progress_draw(p, done, total, records, now);
}

static void progress_clear(struct progress *p)
{
	if (p->shown)
		fprintf(stderr, "\r\033[K");
	p->shown = 0;
}

/* ---- one replay ------------------------------------------------------------- */

struct replay {
	const struct opts *o;
	struct rec_limits limits;
	int64_t win_from_us, win_to_us;  /* the window, -1 open */
	struct output *out;
	struct topic_out *topic;
	struct explain *explain;
	struct report *report;
	FILE *data;                      /* stdout: explanation or report */
	struct report_head head;
	uint64_t replayed;
	int failed;                      /* a runtime error: stop */
	char err[512];
};

static int in_window(const struct replay *r, int64_t us)
{
	return (r->win_from_us < 0 || us >= r->win_from_us) && (r->win_to_us < 0 || us < r->win_to_us);
}

static int has_filters(const struct opts *o)
{
	return o->error >= 0 || o->model || o->name || o->ntags || o->nmeta;
}

static int passes(const struct opts *o, const char *buf, const struct rec_info *info)
{
	if (o->error >= 0 && info->has_error != o->error)
		return 0;
	if (o->model && !rec_str_equals(buf, info->model, o->model))
		return 0;
	if (o->name && !rec_str_equals(buf, info->name, o->name))
		return 0;
	for (int i = 0; i < o->ntags; i++)
		if (!rec_has_tag(buf, info, o->tags[i]))
			return 0;
	for (int i = 0; i < o->nmeta; i++)
		if (!rec_meta_equals(buf, info, o->meta[i][0], o->meta[i][1]))
			return 0;
	return 1;
}

static void where(const struct rmsg *m, char *buf, size_t size)
{
	if (m->partition >= 0)
		snprintf(buf, size, "partition %d offset %lld", (int)m->partition, (long long)m->offset);
	else
		snprintf(buf, size, "archive item %lld", (long long)m->offset);
}

/* One record read back: window, validity, filters, then wherever it goes. */
static void handle(struct replay *r, const struct rmsg *m)
{
	const struct opts *o = r->o;
	struct rec_info info;
	char verr[512], at[96];
	enum rec_reason rr;

	r->head.read++;
	int kafka_in = m->ts_ms >= 0 ? in_window(r, m->ts_ms * 1000) : r->win_from_us < 0 && r->win_to_us < 0;
	if (o->by == BY_TIMESTAMP && !kafka_in)
		return;
	memset(&info, 0, sizeof(info));
	if (!m->payload || !m->len) {
		rr = REC_REASON_COUNT; /* an empty message */
		snprintf(verr, sizeof(verr), "message has no value");
	} else {
		rr = rec_validate(m->payload, m->len, &r->limits, &info, verr, sizeof(verr));
	}
	if (o->by == BY_START_TIME) {
		/* an invalid record has no start_time to go by: from Kafka it counts
		 * when its timestamp is in the window, from the store always */
		int in = rr == REC_OK ? in_window(r, info.start_us) : m->ts_ms < 0 || kafka_in;
		if (!in)
			return;
	}
	r->head.in_window++;
	if (rr != REC_OK) {
		r->head.invalid[rr]++;
		if (o->verbosity > 1) {
			where(m, at, sizeof(at));
			fprintf(stderr, "%% invalid record at %s: %s: %s\n", at,
			        rr < REC_REASON_COUNT ? rec_reason_name(rr) : "empty", verr);
		}
		/* the sampler dead-letters it; with filters it cannot be shown to match */
		if (r->explain && !has_filters(o))
			explain_trace(r->explain, r->data, m, rr, m->payload, &info);
		return;
	}
	if (!passes(o, m->payload, &info)) {
		r->head.filtered_out++;
		return;
	}
	r->replayed++;
	if (r->out && output_line(r->out, m->payload, m->len, r->err, sizeof(r->err))) {
		r->failed = 1;
		return;
	}
	if (r->topic) {
		const void *key = m->key;
		size_t klen = m->key_len;
		int64_t ts = m->ts_ms;
		const rd_kafka_headers_t *h = NULL;
		if (m->kmsg && rd_kafka_message_headers(m->kmsg, (rd_kafka_headers_t **)&h))
			h = NULL;
		if (m->partition < 0) {
			/* from the archive: keyed by trace id as producers key, at its end_time */
			key = info.trace_id;
			klen = REC_TRACE_ID_LEN;
			ts = info.end_us / 1000;
		}
		if (topic_out_send(r->topic, key, klen, m->payload, m->len, ts, h, &run, r->err, sizeof(r->err))) {
			r->failed = 1;
			return;
		}
	}
	if (r->explain)
		explain_trace(r->explain, r->data, m, REC_OK, m->payload, &info);
	if (r->report)
		report_add(r->report, m->payload, &info);
}

static void rmsg_of(struct rmsg *m, const rd_kafka_message_t *k)
{
	memset(m, 0, sizeof(*m));
	m->payload = k->payload;
	m->len = k->len;
	m->key = k->key;
	m->key_len = k->key_len;
	m->partition = k->partition;
	m->offset = k->offset;
	m->ts_ms = rd_kafka_message_timestamp(k, NULL);
	m->kmsg = k;
}

/* The Kafka range the window needs: by timestamp, [from, to + grace); by
 * start_time, [from - grace, to + grace). */
static void kafka_bounds(const struct opts *o, int64_t *from_ms, int64_t *to_ms)
{
	int64_t grace = o->grace_ms;
	*from_ms = o->from_us < 0 ? -1 : (o->from_us + 999) / 1000 - (o->by == BY_START_TIME ? grace : 0);
	*to_ms = o->to_us < 0 ? -1 : (o->to_us + 999) / 1000 + grace;
	if (*from_ms < -1)
		*from_ms = 0;
}

/* Reads the range of the topic through handle(); 0, or -1 (said why). */
static int replay_kafka(struct replay *r, struct progress *pg)
{
	const struct opts *o = r->o;
	char err[512];
	int64_t from_ms, to_ms;
	kafka_bounds(o, &from_ms, &to_ms);
	rd_kafka_conf_t *conf = kafka_conf(o, 1, err, sizeof(err));
	struct range *rg = conf ? range_open(conf, o->topic, from_ms, to_ms, TIMEOUT_MS, err, sizeof(err)) : NULL;
	if (!rg) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		return -1;
	}
	if (o->verbosity > 1)
		for (int i = 0; i < rg->nparts; i++)
			fprintf(stderr, "%% topic '%s' partition %d: offsets %lld to %lld (oldest kept %lld)\n", o->topic,
			        i, (long long)rg->parts[i].start, (long long)rg->parts[i].end, (long long)rg->parts[i].low);
	int rc = 0, n;
	rd_kafka_message_t *k;
	while (run && !r->failed && (n = range_next(rg, 100, &k, err, sizeof(err))) != 2) {
		if (n == -1) {
			fprintf(stderr, "%% ERROR: %s\n", err);
			rc = -1;
			break;
		}
		if (n == -2) {
			if (o->verbosity > 0) {
				progress_clear(pg);
				fprintf(stderr, "%% %s\n", err);
			}
			continue;
		}
		if (n == 1) {
			struct rmsg m;
			rmsg_of(&m, k);
			handle(r, &m);
			rd_kafka_message_destroy(k);
		}
		progress_tick(pg, range_done(rg), rg->total, r->replayed);
	}
	if (r->failed) {
		fprintf(stderr, "%% ERROR: %s\n", r->err);
		rc = -1;
	}
	progress_clear(pg);
	r->head.complete = rc == 0 && run;
	/* a window that starts before what retention kept */
	for (int i = 0; o->verbosity > 0 && from_ms >= 0 && i < rg->nparts; i++) {
		const struct range_part *p = &rg->parts[i];
		if (p->low > 0 && p->start == p->low && p->seen && p->first_ts > from_ms) {
			char ts[TSTIME_LEN];
			tstime_format(p->first_ts * 1000, ts);
			fprintf(stderr, "%% WARNING: topic '%s' partition %d: its oldest record (offset %lld, %s) is later "
			        "than the window's start: older ones were deleted by retention; replay the archive "
			        "(--store DIR) for them\n", o->topic, i, (long long)p->low, ts);
		}
	}
	if (!r->head.complete && rc == 0 && o->verbosity > 0) {
		fprintf(stderr, "%% interrupted after %lld of %lld offsets:", (long long)range_done(rg),
		        (long long)rg->total);
		for (int i = 0; i < rg->nparts; i++)
			fprintf(stderr, "%s partition %d at %lld of [%lld, %lld)", i ? "," : "", i,
			        (long long)rg->parts[i].pos, (long long)rg->parts[i].start, (long long)rg->parts[i].end);
		fputc('\n', stderr);
	}
	range_destroy(rg);
	return rc;
}

/* Reads the archive dataset of the store through handle(); 0, or -1. */
static int replay_store(struct replay *r, struct progress *pg)
{
	const struct opts *o = r->o;
	char err[512];
	struct store_reader *sr = store_reader_open(o->store, err, sizeof(err));
	if (!sr) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		return -1;
	}
	int64_t total = store_count(sr, o->dataset), done = 0;
	struct store_iter *it = NULL;
	if (total < 0) {
		fprintf(stderr, "%% ERROR: no dataset '%s' in store '%s' (an archive comes from tracesift-sink "
		        "--archive NAME; to replay Kafka instead give -t TOPIC)\n", o->dataset, o->store);
		store_reader_close(sr);
		return -1;
	}
	if (!(it = store_iter_new(sr, o->dataset, 0, -1, err, sizeof(err)))) {
		fprintf(stderr, "%% ERROR: store '%s' dataset '%s': %s\n", o->store, o->dataset, err);
		store_reader_close(sr);
		return -1;
	}
	const char *json;
	size_t len;
	int n = 0, rc = 0;
	while (run && !r->failed && (n = store_next(it, &json, &len, err, sizeof(err))) == 1) {
		struct rmsg m = { .payload = json, .len = len, .partition = -1, .offset = store_item_seq(it),
		                  .ts_ms = -1 };
		handle(r, &m);
		done = m.offset + 1;
		progress_tick(pg, done, total, r->replayed);
	}
	if (run && !r->failed && n < 0) {
		fprintf(stderr, "%% ERROR: store '%s' dataset '%s': %s\n", o->store, o->dataset, err);
		rc = -1;
	}
	if (r->failed) {
		fprintf(stderr, "%% ERROR: %s\n", r->err);
		rc = -1;
	}
	progress_clear(pg);
	r->head.complete = rc == 0 && run;
	if (!r->head.complete && rc == 0 && o->verbosity > 0)
		fprintf(stderr, "%% interrupted after %lld of %lld archive items\n", (long long)done, (long long)total);
	store_iter_free(it);
	store_reader_close(sr);
	return rc;
}

/* ---- the recorded decisions for --explain-sampling -------------------------- */

static int recorded_from_store(struct replay *r, const char *dir)
{
	const struct opts *o = r->o;
	char err[512];
	const char *const *names;
	int n = explain_datasets(r->explain, &names);
	struct store_reader *sr = store_reader_open(dir, err, sizeof(err));
	if (!sr) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		return -1;
	}
	struct sbuf what;
	sbuf_init(&what);
	sbuf_printf(&what, "store '%s' dataset%s", dir, n == 1 ? "" : "s");
	for (int i = 0; i < n && run; i++) {
		sbuf_printf(&what, "%s '%s'", i ? "," : "", names[i]);
		if (store_count(sr, names[i]) < 0) {
			if (o->verbosity > 0)
				fprintf(stderr, "%% WARNING: no dataset '%s' in store '%s': nothing recorded as selected into "
				        "it\n", names[i], dir);
			continue;
		}
		struct store_iter *it = store_iter_new(sr, names[i], 0, -1, err, sizeof(err));
		const char *json;
		size_t len;
		int k = 0;
		while (it && run && (k = store_next(it, &json, &len, err, sizeof(err))) == 1)
			if (explain_record_item(r->explain, json, len, err, sizeof(err)) < 0 && o->verbosity > 0)
				fprintf(stderr, "%% WARNING: store '%s' dataset '%s' item %lld: %s\n", dir, names[i],
				        (long long)store_item_seq(it), err);
		if (!it || (run && k < 0)) {
			fprintf(stderr, "%% ERROR: store '%s' dataset '%s': %s\n", dir, names[i], err);
			store_iter_free(it);
			store_reader_close(sr);
			sbuf_release(&what);
			return -1;
		}
		store_iter_free(it);
	}
	store_reader_close(sr);
	explain_set_recorded(r->explain, what.oom ? "a store" : what.buf);
	sbuf_release(&what);
	return 0;
}

static int recorded_from_topic(struct replay *r, const char *topic)
{
	const struct opts *o = r->o;
	char err[512];
	int64_t from_ms, to_ms;
	kafka_bounds(o, &from_ms, &to_ms);
	/* items are written after the traces they select (the sampler may lag):
	 * from a grace before the window to the end of the topic */
	if (from_ms >= 0 && o->by == BY_TIMESTAMP)
		from_ms = from_ms > o->grace_ms ? from_ms - o->grace_ms : 0;
	rd_kafka_conf_t *conf = kafka_conf(o, 1, err, sizeof(err));
	struct range *rg = conf ? range_open(conf, topic, from_ms, -1, TIMEOUT_MS, err, sizeof(err)) : NULL;
	if (!rg) {
		fprintf(stderr, "%% ERROR: monitoring topic: %s\n", err);
		return -1;
	}
	int n, rc = 0;
	uint64_t bad_items = 0;
	rd_kafka_message_t *k;
	while (run && (n = range_next(rg, 100, &k, err, sizeof(err))) != 2) {
		if (n == -1) {
			fprintf(stderr, "%% ERROR: monitoring topic: %s\n", err);
			rc = -1;
			break;
		}
		if (n == -2 && o->verbosity > 0)
			fprintf(stderr, "%% monitoring topic: %s\n", err);
		if (n != 1)
			continue;
		if (explain_record_item(r->explain, k->payload, k->len, err, sizeof(err)) < 0) {
			if (o->verbosity > 1)
				fprintf(stderr, "%% monitoring topic '%s' partition %d offset %lld: not an item: %s\n", topic,
				        (int)k->partition, (long long)k->offset, err);
			bad_items++;
		}
		rd_kafka_message_destroy(k);
	}
	if (bad_items && o->verbosity > 0)
		fprintf(stderr, "%% WARNING: monitoring topic '%s': %llu messages are not items (skipped)\n", topic,
		        (unsigned long long)bad_items);
	range_destroy(rg);
	if (rc == 0) {
		snprintf(err, sizeof(err), "topic '%s'", topic);
		explain_set_recorded(r->explain, err);
	}
	return rc;
}

/* ---- main ------------------------------------------------------------------- */

static const char *reason_name(int i)
{
	return i < REC_REASON_COUNT ? rec_reason_name((enum rec_reason)i) : "empty";
}

static void say_done(const struct replay *r, const char *source, uint64_t copied)
{
	const struct opts *o = r->o;
	uint64_t invalid = 0;
	for (int i = 0; i <= REC_REASON_COUNT; i++)
		invalid += r->head.invalid[i];
	fprintf(stderr, "%% %s %llu records of %s: %llu read, %llu in the window, %llu invalid", 
	        r->head.complete ? "replayed" : "replayed (interrupted)", (unsigned long long)r->replayed, source,
	        (unsigned long long)r->head.read, (unsigned long long)r->head.in_window, (unsigned long long)invalid);
	if (invalid) {
		fputs(" (", stderr);
		for (int i = 1, n = 0; i <= REC_REASON_COUNT; i++)
			if (r->head.invalid[i])
				fprintf(stderr, "%s%s %llu", n++ ? ", " : "", reason_name(i),
				        (unsigned long long)r->head.invalid[i]);
		fputc(')', stderr);
	}
	fprintf(stderr, ", %llu filtered out", (unsigned long long)r->head.filtered_out);
	if (r->out && o->out && strcmp(o->out, "-"))
		fprintf(stderr, "; written to '%s'", o->out);
	if (o->to_topic)
		fprintf(stderr, "; %llu copied to topic '%s'", (unsigned long long)copied, o->to_topic);
	fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	struct opts o = { .from_us = -1, .to_us = -1, .grace_ms = DEFAULT_GRACE_MS, .error = -1, .zstd_level = 3,
	                  .progress = 1, .verbosity = 1, .max_record_bytes = REC_MAX_BYTES_DEFAULT };
	struct replay r;
	struct progress pg;
	char err[1024] = "", source[1200];
	int rc;

	memset(&r, 0, sizeof(r));
	rc = parse_args(&o, argc, argv);
	if (rc == 0 && check_opts(&o))
		rc = -1;
	if (rc) {
		kvfile_values_release(&file_values);
		return rc > 0 ? 0 : 2;
	}
	if (!o.brokers || !*o.brokers)
		o.brokers = "127.0.0.1:9092";
	int from_store = !o.topic;
	rd_kafka_conf_t *check = kafka_conf(&o, 1, err, sizeof(err));
	if (!check) {
		fprintf(stderr, "%% ERROR: -X: %s (see --help)\n", err);
		kvfile_values_release(&file_values);
		return 2;
	}
	rd_kafka_conf_destroy(check);

	r.o = &o;
	r.data = stdout;
	r.win_from_us = o.from_us;
	r.win_to_us = o.to_us;
	r.head.from_us = o.from_us;
	r.head.to_us = o.to_us;
	r.head.by = o.by == BY_TIMESTAMP ? "timestamp" : "start_time";
	rec_limits_default(&r.limits);
	r.limits.max_bytes = (size_t)o.max_record_bytes;
	if (from_store)
		snprintf(source, sizeof(source), "store '%s' dataset '%s'", o.store, o.dataset);
	else
		snprintf(source, sizeof(source), "topic '%s'", o.topic);
	r.head.source = source;

	/* SA_RESTART: a signal never cuts a write to stdout in half; the loops
	 * see run and stop between records */
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);

	rc = 1;
	if (o.explain) {
		struct explain_opts eo = { .conf_path = o.explain, .has_seed = o.has_seed, .seed = o.seed,
		                           .json = o.json, .summary_only = o.summary_only };
		if (!(r.explain = explain_new(&eo, err, sizeof(err)))) {
			fprintf(stderr, "%% ERROR: --explain-sampling: %s\n", err);
			rc = 2;
			goto out;
		}
		r.limits = *explain_limits(r.explain);
		const char *rec_store = o.recorded_store ? o.recorded_store : !from_store ? o.store : NULL;
		if (rec_store && recorded_from_store(&r, rec_store))
			goto out;
		if (o.monitoring_topic && recorded_from_topic(&r, o.monitoring_topic))
			goto out;
		if (!run) {
			if (o.verbosity > 0)
				fprintf(stderr, "%% interrupted while reading the recorded decisions: nothing replayed\n");
			goto interrupted;
		}
	}
	if (o.report && !(r.report = report_new())) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		goto out;
	}
	/* records go to stdout unless something else does, or to -o FILE */
	if (o.out || (!o.to_topic && !o.explain && !o.report)) {
		if (!(r.out = output_open(o.out, (int)o.zstd_level, err, sizeof(err)))) {
			fprintf(stderr, "%% ERROR: %s\n", err);
			goto out;
		}
	}
	if (o.to_topic) {
		rd_kafka_conf_t *pc = kafka_conf(&o, 0, err, sizeof(err));
		if (!pc || !(r.topic = topic_out_new(pc, o.to_topic, err, sizeof(err)))) {
			fprintf(stderr, "%% ERROR: --to-topic: %s\n", err);
			goto out;
		}
	}

	memset(&pg, 0, sizeof(pg));
	pg.on = o.progress && o.verbosity > 0 && isatty(STDERR_FILENO);
	pg.start_us = pg.last_us = tstime_mono_us();
	int read_rc = from_store ? replay_store(&r, &pg) : replay_kafka(&r, &pg);
	/* a file is kept when everything was read, or until an interruption;
	 * never after an error, which could leave it short without saying so */
	int keep = !r.failed && read_rc == 0;

	/* ends what was written, also when interrupted: a whole last line, a
	 * zstd stream that ends properly */
	uint64_t copied = 0, lost = 0;
	if (r.topic) {
		lost = topic_out_close(r.topic, FLUSH_TIMEOUT_MS, &copied, err, sizeof(err));
		r.topic = NULL;
		if (lost) {
			fprintf(stderr, "%% ERROR: --to-topic '%s': %llu records not delivered: %s\n", o.to_topic,
			        (unsigned long long)lost, err);
			read_rc = -1;
		}
	}
	if (r.out) {
		int orc = output_close(r.out, keep, err, sizeof(err));
		r.out = NULL;
		if (orc && keep) {
			fprintf(stderr, "%% ERROR: %s\n", err);
			read_rc = -1;
		}
	}
	if (r.explain && read_rc == 0)
		explain_summary(r.explain, r.data, r.head.complete);
	if (r.report && read_rc == 0 && report_print(r.report, r.data, o.json, &r.head)) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		read_rc = -1;
	}
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "%% ERROR: write to stdout: %s\n", strerror(errno));
		read_rc = -1;
	}
	if (o.verbosity > 0 && read_rc == 0)
		say_done(&r, source, copied);
	if (read_rc)
		goto out;
	if (!r.head.complete)
		goto interrupted;
	rc = 0;
	goto out;

interrupted:
	rc = 130;
out:
	output_close(r.out, 0, err, sizeof(err));
	topic_out_close(r.topic, 0, NULL, err, sizeof(err));
	explain_destroy(r.explain);
	report_destroy(r.report);
	kvfile_values_release(&file_values);
	return rc;
}
