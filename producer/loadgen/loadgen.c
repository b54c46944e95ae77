/* producer/loadgen/loadgen.c - tracesift-loadgen: synthetic RAG traffic to stdout or Kafka */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"
#include "kvfile.h"
#include "sbuf.h"
#include "tracesift.h"
#include "tstime.h"

#define DEFAULT_TOPIC           "llm.traces"
#define DEFAULT_PROJECT         "rag-demo"
#define DEFAULT_ENQUEUE_TIMEOUT "10000"
#define MAX_REPORTED_ERRORS     5
#define SIZE_BUCKET             64    /* bytes per bucket of the size histogram */
#define SIZE_BUCKETS            1024  /* the last one holds everything larger */

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
	(void)sig;
	run = 0;
}

/* ---- options: one table gives parsing, bounds and --help ---------------- */

enum opt_id {
	O_COUNT = 'n', O_SEED = 's', O_RATE = 'r', O_BROKERS = 'b', O_TOPIC = 't',
	O_PROP = 'X', O_PROJECT = 'p', O_QUIET = 'q', O_VERBOSE = 'v', O_HELP = 'h',
	O_CONFIG = 'c', O_START = 256, O_ERROR_RATE, O_PII_RATE,
};

static const struct opt {
	enum opt_id id;
	const char *long_name, *arg;
	const char *def;   /* the default, as --help shows it */
	double min, max;   /* bounds of a number that may have a fraction */
	const char *help;
} opts[] = {
	{ O_COUNT, "count", "N", NULL, 0, 0,
	  "records to generate (required); 0: until interrupted" },
	{ O_SEED, "seed", "S", "random", 0, 0,
	  "seed (decimal or 0x hex): the same seed gives the same traffic" },
	{ O_RATE, "rate", "R", "0", 0, 1e7,
	  "records per second, paced by a monotonic clock; 0: as fast as possible" },
	{ O_START, "start", "TIME", "now", 0, 0,
	  "start_time of the first trace: RFC 3339, a date (its midnight UTC) or epoch milliseconds; later traces "
	  "follow 1/R s apart (random 10-200 ms gaps when R is 0)" },
	{ O_BROKERS, "brokers", "BROKERS", NULL, 0, 0,
	  "publish through libtracesift to these brokers instead of writing stdout" },
	{ O_TOPIC, "topic", "TOPIC", DEFAULT_TOPIC, 0, 0, "topic to publish to (with -b)" },
	{ O_PROP, NULL, "key=value", NULL, 0, 0,
	  "libtracesift or librdkafka property (with -b; repeatable; default "
	  "enqueue.timeout.ms=" DEFAULT_ENQUEUE_TIMEOUT ": wait for queue room rather than drop)" },
	{ O_PROJECT, "project", "P", DEFAULT_PROJECT, 0, 0, "the records' project" },
	{ O_ERROR_RATE, "error-rate", "F", "0.02", 0, 1,
	  "share of traces whose llm_call fails (RateLimitError, Timeout, ContextLengthExceeded)" },
	{ O_PII_RATE, "pii-rate", "F", "0.1", 0, 1,
	  "share of questions carrying an email address and/or phone number" },
	{ O_CONFIG, "config", "FILE", NULL, 0, 0,
	  "'name = value' lines, name a long option (count, seed, brokers, topic, ...) or "
	  "kafka.PROP for -X PROP=...; flags given on the command line win" },
	{ O_QUIET, "quiet", NULL, NULL, 0, 0, "print errors only" },
	{ O_VERBOSE, "verbose", NULL, NULL, 0, 0,
	  "also print the seed, progress, and record sizes and shares at the end" },
	{ O_HELP, "help", NULL, NULL, 0, 0, "show this help" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

struct config {
	int have_count;
	uint64_t count;
	int have_seed;
	uint64_t seed;
	double rate, error_rate, pii_rate;
	int have_start;
	int64_t start_us;
	const char *brokers, *topic, *project;
	const char **props;
	int nprops;
	int verbosity; /* 0 quiet, 1 normal, 2 verbose */
};

/* Writes text from column indent, wrapping at width; ends the line. */
static void put_wrapped(FILE *f, const char *text, int indent, int width)
{
	int col = indent;
	const char *p = text;
	while (*p) {
		size_t w = strcspn(p, " ");
		if (col > indent && col + 1 + (int)w > width) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		}
		if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fwrite(p, 1, w, f);
		col += (int)w;
		p += w;
		while (*p == ' ')
			p++;
	}
	fputc('\n', f);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tracesift-loadgen -n N [--seed S] [--rate R] [--start TIME]\n"
		"                         [-b BROKERS [-t TOPIC] [-X key=value]...]\n"
		"                         [--project P] [--error-rate F] [--pii-rate F] [-q|-v]\n"
		"\n"
		"Generates realistic synthetic traffic of an LLM RAG service as trace record v1:\n"
		"one JSON object per line on stdout, or published through libtracesift with -b.\n"
		"See docs/loadgen.md for what the traces look like.\n"
		"\noptions:\n");
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		char lhs[64];
		int n = o->id < 256 ? snprintf(lhs, sizeof(lhs), "-%c%s", (char)o->id,
		                               o->long_name ? ", " : "")
		                    : snprintf(lhs, sizeof(lhs), "    ");
		if (o->long_name)
			n += snprintf(lhs + n, sizeof(lhs) - (size_t)n, "--%s", o->long_name);
		if (o->arg)
			snprintf(lhs + n, sizeof(lhs) - (size_t)n, " %s", o->arg);
		char text[512];
		snprintf(text, sizeof(text), "%s%s%s%s", o->help, o->def ? " (default: " : "",
		         o->def ? o->def : "", o->def ? ")" : "");
		fprintf(f, "  %-24s", lhs);
		put_wrapped(f, text, 26, 79);
	}
	fprintf(f,
		"\nMessages go to stderr, prefixed \"%% \"; stdout carries data only.  With -b the\n"
		"exit status is non-zero when any record was not delivered.\n"
		"\nexamples:\n"
		"  tracesift-loadgen -n 1000 > traces.jsonl\n"
		"  tracesift-loadgen -n 2000 --seed 42 --start 2026-01-01T00:00:00Z > a.jsonl\n"
		"  tracesift-loadgen -n 0 --rate 50 -b 127.0.0.1:9092 -t llm.traces\n"
		"  tracesift-loadgen -n 100000 -b 127.0.0.1:9092 -X linger.ms=20 --error-rate 0.05\n"
		"  tracesift-loadgen -n 10 --pii-rate 1 | python3 -m json.tool --json-lines\n");
}

/* Prints "% ERROR: <message> (see --help)" and returns -1. */
static int bad_arg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_arg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%% ERROR: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see --help)\n");
	va_end(ap);
	return -1;
}

static int parse_u64(const char *name, const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		return bad_arg("%s '%s': expected a non-negative integer", name, s);
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || *end)
		return bad_arg("%s '%s': expected a non-negative integer", name, s);
	*v = (uint64_t)x;
	return 0;
}

static int parse_double(const struct opt *o, const char *name, const char *s, double *v)
{
	char *end;
	errno = 0;
	double x = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(x) || x < o->min || x > o->max)
		return bad_arg("%s '%s': expected a number from %.10g to %.10g", name, s, o->min, o->max);
	*v = x;
	return 0;
}

static int parse_start(const char *s, int64_t *us)
{
	if (tstime_parse_arg(s, us) == 0)
		return 0;
	return bad_arg("--start '%s': expected RFC 3339 (2026-01-02T03:04:05Z), a date or epoch "
	               "milliseconds", s);
}

static const struct opt *opt_find(int id)
{
	for (size_t i = 0; i < NOPTS; i++)
		if ((int)opts[i].id == id)
			return &opts[i];
	return NULL;
}

/* Fills cfg from argv; returns 0, 1 (help shown) or -1 (message printed). */
static int parse_args(int argc, char **argv, struct config *cfg)
{
	struct option longopts[NOPTS + 1];
	char shortopts[3 * NOPTS + 2];
	size_t nl = 0, ns = 0;
	shortopts[ns++] = ':';
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		if (o->long_name)
			longopts[nl++] = (struct option){ o->long_name,
				o->arg ? required_argument : no_argument, NULL, (int)o->id };
		if (o->id < 256) {
			shortopts[ns++] = (char)o->id;
			if (o->arg)
				shortopts[ns++] = ':';
		}
	}
	longopts[nl] = (struct option){ 0 };
	shortopts[ns] = '\0';

	memset(cfg, 0, sizeof(*cfg));
	cfg->rate = strtod(opt_find(O_RATE)->def, NULL); /* the defaults --help shows */
	cfg->error_rate = strtod(opt_find(O_ERROR_RATE)->def, NULL);
	cfg->pii_rate = strtod(opt_find(O_PII_RATE)->def, NULL);
	cfg->topic = opt_find(O_TOPIC)->def;
	cfg->project = opt_find(O_PROJECT)->def;
	cfg->verbosity = 1;
	cfg->props = calloc((size_t)argc, sizeof(*cfg->props));
	if (!cfg->props) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		return -1;
	}

	opterr = 0;
	int c, li = -1;
	while ((c = getopt_long(argc, argv, shortopts, longopts, &li)) != -1) {
		const char *name = argv[optind - 1];
		if (c == '?') {
			if (optopt && optopt < 256)
				return bad_arg("unknown option '-%c'", optopt);
			return bad_arg("unknown option '%s'", name);
		}
		if (c == ':') {
			if (optopt && optopt < 256)
				return bad_arg("option '-%c' needs a value", optopt);
			return bad_arg("option '%s' needs a value", name);
		}
		const struct opt *o = opt_find(c);
		char spelled[64]; /* the option as the user wrote it, for messages */
		if (li >= 0)
			snprintf(spelled, sizeof(spelled), "--%s", longopts[li].name);
		else
			snprintf(spelled, sizeof(spelled), "-%c", (char)c);
		li = -1;
		switch (c) {
		case O_COUNT:
			if (parse_u64(spelled, optarg, &cfg->count))
				return -1;
			cfg->have_count = 1;
			break;
		case O_SEED:
			if (parse_u64(spelled, optarg, &cfg->seed))
				return -1;
			cfg->have_seed = 1;
			break;
		case O_RATE:
			if (parse_double(o, spelled, optarg, &cfg->rate))
				return -1;
			break;
		case O_ERROR_RATE:
			if (parse_double(o, spelled, optarg, &cfg->error_rate))
				return -1;
			break;
		case O_PII_RATE:
			if (parse_double(o, spelled, optarg, &cfg->pii_rate))
				return -1;
			break;
		case O_START:
			if (parse_start(optarg, &cfg->start_us))
				return -1;
			cfg->have_start = 1;
			break;
		case O_BROKERS:
			if (!*optarg)
				return bad_arg("%s: the broker list is empty", spelled);
			cfg->brokers = optarg;
			break;
		case O_TOPIC:
			if (!*optarg)
				return bad_arg("%s: the topic name is empty", spelled);
			cfg->topic = optarg;
			break;
		case O_PROJECT:
			if (!*optarg)
				return bad_arg("%s: the project name is empty", spelled);
			cfg->project = optarg;
			break;
		case O_PROP: {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return bad_arg("-X '%s': expected key=value", optarg);
			cfg->props[cfg->nprops++] = optarg;
			break;
		}
		case O_CONFIG: /* expanded into arguments by with_config_file() */
			break;
		case O_QUIET:
			cfg->verbosity = 0;
			break;
		case O_VERBOSE:
			cfg->verbosity = 2;
			break;
		case O_HELP:
			usage(stdout);
			return 1;
		}
	}
	if (optind < argc)
		return bad_arg("unexpected argument '%s'", argv[optind]);
	if (!cfg->have_count)
		return bad_arg("-n N is required: how many records to generate (0: until "
		               "interrupted)");
	if (!cfg->brokers && cfg->nprops)
		return bad_arg("-X '%s' needs -b BROKERS", cfg->props[0]);
	if (!cfg->brokers && strcmp(cfg->topic, DEFAULT_TOPIC))
		return bad_arg("-t '%s' needs -b BROKERS", cfg->topic);
	return 0;
}

static uint64_t random_seed(void)
{
	uint64_t s = 0;
	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = (uint64_t)tstime_now_us() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	return s;
}

/* ---- pacing and statistics ------------------------------------------------ */

/* Sleeps until the monotonic clock reaches due_us, or run is cleared. */
static void sleep_until(int64_t due_us)
{
	for (;;) {
		int64_t left = due_us - tstime_mono_us();
		if (left <= 0 || !run)
			return;
		if (left > 200000)
			left = 200000;
		struct timespec ts = { (time_t)(left / 1000000), (long)(left % 1000000) * 1000 };
		nanosleep(&ts, NULL);
	}
}

struct stats {
	uint64_t generated, errors, pii, unicode, bytes;
	size_t min, max;
	uint64_t hist[SIZE_BUCKETS];
};

static void stats_add(struct stats *st, size_t len, const struct gen_info *info)
{
	if (!st->generated || len < st->min)
		st->min = len;
	if (len > st->max)
		st->max = len;
	st->generated++;
	st->bytes += len;
	st->errors += (uint64_t)info->error;
	st->pii += (uint64_t)info->pii;
	st->unicode += (uint64_t)info->unicode;
	size_t b = len / SIZE_BUCKET;
	st->hist[b < SIZE_BUCKETS ? b : SIZE_BUCKETS - 1]++;
}

/* The upper bound of the bucket holding quantile q (0..1), in bytes. */
static size_t stats_quantile(const struct stats *st, double q)
{
	uint64_t want = (uint64_t)ceil(q * (double)st->generated), seen = 0;
	for (size_t b = 0; b < SIZE_BUCKETS; b++) {
		seen += st->hist[b];
		if (seen >= want && seen)
			return (b + 1) * SIZE_BUCKET;
	}
	return st->max;
}

static void stats_print(const struct stats *st, double secs)
{
	if (!st->generated)
		return;
	double n = (double)st->generated;
	fprintf(stderr, "%% %" PRIu64 " records, %.1f MB in %.2f s (%.0f records/s, %.1f MB/s)\n",
	        st->generated, (double)st->bytes / 1e6, secs, secs > 0 ? n / secs : 0.0,
	        secs > 0 ? (double)st->bytes / 1e6 / secs : 0.0);
	fprintf(stderr, "%% sizes: min %zu, median ~%zu, p90 ~%zu, p99 ~%zu, max %zu bytes\n",
	        st->min, stats_quantile(st, 0.5), stats_quantile(st, 0.9),
	        stats_quantile(st, 0.99), st->max);
	fprintf(stderr, "%% errors %.1f%%, pii %.1f%%, unicode %.1f%%\n",
	        100.0 * (double)st->errors / n, 100.0 * (double)st->pii / n,
	        100.0 * (double)st->unicode / n);
}

/* ---- output ------------------------------------------------------------------ */

static int run_stdout(const struct config *cfg, struct gen *g, struct stats *st)
{
	static char iobuf[1 << 20];
	setvbuf(stdout, iobuf, _IOFBF, sizeof(iobuf));
	struct sbuf out;
	sbuf_init(&out);
	int64_t mono0 = tstime_mono_us();
	int rc = 0;
	for (uint64_t i = 0; run && (cfg->count == 0 || i < cfg->count); i++) {
		if (cfg->rate > 0)
			sleep_until(mono0 + (int64_t)((double)i * 1e6 / cfg->rate));
		if (!run)
			break;
		struct gen_info info;
		out.len = 0;
		if (gen_next(g, &out, &info)) {
			fprintf(stderr, "%% ERROR: out of memory\n");
			rc = 1;
			break;
		}
		stats_add(st, out.len, &info);
		sbuf_putc(&out, '\n');
		if (fwrite(out.buf, 1, out.len, stdout) != out.len ||
		    (cfg->rate > 0 && fflush(stdout))) {
			fprintf(stderr, "%% ERROR: cannot write to stdout: %s\n", strerror(errno));
			rc = 1;
			break;
		}
	}
	if (fflush(stdout) && !rc) {
		fprintf(stderr, "%% ERROR: cannot write to stdout: %s\n", strerror(errno));
		rc = 1;
	}
	sbuf_release(&out);
	return rc;
}

static int conf_set(ts_conf_t *conf, const char *name, const char *value)
{
	char errstr[256] = "";
	int err = ts_conf_set(conf, name, value, errstr, sizeof(errstr));
	if (err) {
		fprintf(stderr, "%% ERROR: cannot set '%s' to '%s': %s\n", name, value,
		        *errstr ? errstr : ts_err_str(err));
		return -1;
	}
	return 0;
}

static int run_kafka(const struct config *cfg, struct gen *g, struct stats *st, uint64_t seed)
{
	ts_conf_t *conf = ts_conf_new();
	if (!conf) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		return 1;
	}
	if (conf_set(conf, "bootstrap.servers", cfg->brokers) ||
	    conf_set(conf, "topic", cfg->topic) ||
	    conf_set(conf, "enqueue.timeout.ms", DEFAULT_ENQUEUE_TIMEOUT)) {
		ts_conf_destroy(conf);
		return 1;
	}
	for (int i = 0; i < cfg->nprops; i++) {
		const char *kv = cfg->props[i], *eq = strchr(kv, '=');
		char key[256];
		if ((size_t)(eq - kv) >= sizeof(key)) {
			fprintf(stderr, "%% ERROR: -X '%s': the key is too long\n", kv);
			ts_conf_destroy(conf);
			return 2;
		}
		memcpy(key, kv, (size_t)(eq - kv));
		key[eq - kv] = '\0';
		if (conf_set(conf, key, eq + 1)) {
			ts_conf_destroy(conf);
			return 2;
		}
	}
	char errstr[512] = "";
	ts_client_t *client = ts_client_new(conf, errstr, sizeof(errstr));
	if (!client) {
		fprintf(stderr, "%% ERROR: cannot create the client: %s\n", errstr);
		ts_conf_destroy(conf);
		return 1;
	}
	conf = NULL; /* the client owns it */

	if (cfg->verbosity > 1)
		fprintf(stderr, "%% publishing to '%s' at %s, seed %" PRIu64 "\n", cfg->topic,
		        cfg->brokers, seed);
	struct sbuf out;
	sbuf_init(&out);
	uint64_t enq_errors = 0, reported = 0;
	int64_t mono0 = tstime_mono_us(), next_progress = mono0 + 5000000;
	int rc = 0;
	for (uint64_t i = 0; run && (cfg->count == 0 || i < cfg->count); i++) {
		if (cfg->rate > 0)
			sleep_until(mono0 + (int64_t)((double)i * 1e6 / cfg->rate));
		if (!run)
			break;
		struct gen_info info;
		out.len = 0;
		if (gen_next(g, &out, &info)) {
			fprintf(stderr, "%% ERROR: out of memory\n");
			rc = 1;
			break;
		}
		stats_add(st, out.len, &info);
		int err = ts_publish_json(client, out.buf, out.len, errstr, sizeof(errstr));
		if (err == TS_ERR_CLOSED) {
			fprintf(stderr, "%% ERROR: the client was closed\n");
			rc = 1;
			break;
		}
		if (err) {
			enq_errors++;
			if (reported++ < MAX_REPORTED_ERRORS)
				fprintf(stderr, "%% ERROR: record %" PRIu64 " not enqueued: %s: %s\n",
				        i + 1, ts_err_str(err), errstr);
		}
		if (cfg->verbosity > 1 && tstime_mono_us() >= next_progress) {
			ts_stats_t s;
			ts_client_stats(client, &s);
			fprintf(stderr, "%% %" PRIu64 " generated, %" PRIu64 " enqueued, %" PRIu64
			        " delivered, %" PRIu64 " in queue\n", st->generated, s.enqueued,
			        s.delivered, s.in_queue);
			next_progress += 5000000;
		}
	}
	sbuf_release(&out);
	if (!run && cfg->verbosity > 0)
		fprintf(stderr, "%% interrupted: flushing what was enqueued\n");

	ts_stats_t fin;
	memset(&fin, 0, sizeof(fin));
	uint64_t undelivered = ts_client_destroy(client, &fin);
	int bad = rc || enq_errors || undelivered || fin.failed || fin.dropped || fin.rejected ||
	          fin.delivered < st->generated;
	if (cfg->verbosity > 0 || bad)
		fprintf(stderr, "%s%" PRIu64 " generated, %" PRIu64 " enqueued, %" PRIu64
		        " delivered, %" PRIu64 " failed, %" PRIu64 " dropped, %" PRIu64
		        " rejected (topic '%s', seed %" PRIu64 ")\n", bad ? "% ERROR: " : "% ",
		        st->generated, fin.enqueued, fin.delivered, fin.failed, fin.dropped,
		        fin.rejected, cfg->topic, seed);
	if (bad && *fin.last_error)
		fprintf(stderr, "%% ERROR: last error: %s\n", fin.last_error);
	return bad ? 1 : 0;
}

/* The arguments made from a config file live until exit. */
static char **file_argv;
static char *file_args[256];
static int nfile_args;

static void free_file_args(void)
{
	for (int i = 0; i < nfile_args; i++)
		free(file_args[i]);
	free(file_argv);
}

struct file_args_ctx {
	char **out;
	int n, cap;
};

/* "name = value" becomes "--name=value"; "kafka.P = v" becomes "-X P=v". */
static int add_file_arg(void *ctx, const char *name, const char *value, char *errstr, size_t size)
{
	struct file_args_ctx *a = ctx;
	size_t need = strlen(name) + strlen(value) + 8;
	char *arg = nfile_args < 256 && a->n + 2 <= a->cap ? malloc(need) : NULL;
	if (!arg) {
		snprintf(errstr, size, "too many settings");
		return -1;
	}
	file_args[nfile_args++] = arg;
	if (!strncmp(name, "kafka.", 6)) {
		a->out[a->n++] = "-X";
		snprintf(arg, need, "%s=%s", name + 6, value);
	} else {
		snprintf(arg, need, "--%s=%s", name, value);
	}
	a->out[a->n++] = arg;
	return 0;
}

/* The arguments with those of -c FILE first, so that flags win.  Returns a
 * new argv (the strings live until exit), or NULL with a message. */
static char **with_config_file(int *argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i + 1 < *argc; i++)
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))
			path = argv[i + 1];
	struct file_args_ctx a = { .cap = *argc + 512 };
	if (!(a.out = calloc((size_t)a.cap + 1, sizeof(*a.out))))
		return NULL;
	file_argv = a.out;
	atexit(free_file_args);
	a.out[a.n++] = argv[0];
	char err[1024];
	if (path && kvfile_read(path, add_file_arg, &a, err, sizeof(err))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		return NULL;
	}
	for (int i = 1; i < *argc; i++)
		a.out[a.n++] = argv[i];
	*argc = a.n;
	return a.out;
}

int main(int argc, char **argv)
{
	struct config cfg;
	argv = with_config_file(&argc, argv);
	if (!argv)
		return 2;
	int pr = parse_args(argc, argv, &cfg);
	if (pr) {
		free(cfg.props);
		return pr > 0 ? 0 : 2;
	}
	uint64_t seed = cfg.have_seed ? cfg.seed : random_seed();

	struct gen_opts go;
	gen_opts_default(&go);
	go.project = cfg.project;
	go.error_rate = cfg.error_rate;
	go.pii_rate = cfg.pii_rate;
	go.rate = cfg.rate;
	if (cfg.have_start)
		go.start_us = cfg.start_us;
	struct gen *g = gen_new(seed, &go);
	if (!g) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		free(cfg.props);
		return 1;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (cfg.verbosity > 1 && !cfg.brokers)
		fprintf(stderr, "%% seed %" PRIu64 "\n", seed);
	static struct stats st;
	int64_t t0 = tstime_mono_us();
	int rc = cfg.brokers ? run_kafka(&cfg, g, &st, seed) : run_stdout(&cfg, g, &st);
	if (cfg.verbosity > 1)
		stats_print(&st, (double)(tstime_mono_us() - t0) / 1e6);

	gen_destroy(g);
	free(cfg.props);
	return rc;
}
