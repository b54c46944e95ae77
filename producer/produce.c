/* producer/produce.c - tracesift-produce: JSONL trace records to Kafka through libtracesift
 *
 * Uses only the public header, as any application would.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracesift.h"

#define MAX_PROPS 256

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
	(void)sig;
	run = 0;
}

struct prop {
	const char *name;
	const char *value;
	char *owned; /* "name=value" text to free, when parsed from a string */
};

struct props {
	struct prop v[MAX_PROPS];
	int n;
};

struct options {
	const char *brokers;
	const char *topic;
	const char *conf_file;
	struct props flags;     /* -X */
	struct props file;      /* -c FILE */
	int verbosity;
	char **files;
	int nfiles;
};

static void usage(FILE *out)
{
	fprintf(out,
	"usage: tracesift-produce -b BROKERS [-t TOPIC] [-X key=value]... [-c FILE] [-q|-v] [FILE...]\n"
	"\n"
	"Publishes trace records (JSONL, one record v1 per line) to Kafka through\n"
	"libtracesift.  Reads the files in order, or stdin when none is given ('-' is\n"
	"stdin too).  Every line is validated first: an invalid line is reported with\n"
	"its file, line number and reason and is not sent; blank lines are skipped.\n"
	"\n"
	"  -b BROKERS     bootstrap servers (env TRACESIFT_BROKERS)\n"
	"  -t TOPIC       destination topic (env TRACESIFT_TOPIC; default llm.traces)\n"
	"  -X key=value   a libtracesift or librdkafka property, e.g. -X linger.ms=50,\n"
	"                 -X max.record.bytes=2097152, -X security.protocol=ssl\n"
	"  -c FILE        a config file of key=value lines ('#' starts a comment)\n"
	"  -q             no closing summary      -v  more detail\n"
	"  -h, --help     this text\n"
	"\n"
	"Precedence: flags, then environment (TRACESIFT_*), then the config file, then\n"
	"defaults.  Defaults here: enqueue.timeout.ms=300000 (wait for room rather than\n"
	"drop) and close.timeout.ms=330000 (wait for every delivery report); lower\n"
	"message.timeout.ms to give up sooner on an unreachable broker.\n"
	"\n"
	"Exit status: 0 when every line was valid and delivered, 1 when a line was\n"
	"invalid, a file could not be read or a record was not delivered, 2 on a usage\n"
	"or configuration error.  A summary (read, sent, invalid, failed) goes to stderr.\n");
}

/* Splits "key=value" (a copy is kept) into a property of p. */
static int add_prop_kv(struct props *p, const char *kv, const char *where)
{
	char *copy = strdup(kv);
	char *eq = copy ? strchr(copy, '=') : NULL;
	if (!eq || eq == copy) {
		fprintf(stderr, "%% ERROR: %s: expected key=value, got '%s'\n", where, kv);
		free(copy);
		return -1;
	}
	if (p->n == MAX_PROPS) {
		fprintf(stderr, "%% ERROR: %s: too many properties (at most %d)\n", where, MAX_PROPS);
		free(copy);
		return -1;
	}
	*eq = '\0';
	p->v[p->n++] = (struct prop){ copy, eq + 1, copy };
	return 0;
}

static void props_release(struct props *p)
{
	for (int i = 0; i < p->n; i++)
		free(p->v[i].owned);
	p->n = 0;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int read_conf_file(struct options *o, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "%% ERROR: cannot open config file '%s': %s\n", path, strerror(errno));
		return -1;
	}
	char line[4096], where[4200];
	int lineno = 0, rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		char *l = trim(line);
		if (!*l || *l == '#')
			continue;
		snprintf(where, sizeof(where), "'%s' line %d", path, lineno);
		char *eq = strchr(l, '=');
		if (eq) {
			*eq = '\0';
			char *k = trim(l), *v = trim(eq + 1);
			char kv[4096];
			snprintf(kv, sizeof(kv), "%s=%s", k, v);
			rc = add_prop_kv(&o->file, kv, where);
		} else {
			rc = add_prop_kv(&o->file, l, where);
		}
	}
	fclose(f);
	return rc;
}

static int parse_args(struct options *o, int argc, char **argv)
{
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "-q")) {
			o->verbosity = 0;
		} else if (!strcmp(a, "-v")) {
			o->verbosity = 2;
		} else if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "-b") || !strcmp(a, "-t") || !strcmp(a, "-X") || !strcmp(a, "-c")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%% ERROR: option '%s' needs a value (see --help)\n", a);
				return -1;
			}
			const char *v = argv[++i];
			if (a[1] == 'b')
				o->brokers = v;
			else if (a[1] == 't')
				o->topic = v;
			else if (a[1] == 'c')
				o->conf_file = v;
			else if (add_prop_kv(&o->flags, v, "-X"))
				return -1;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "%% ERROR: unknown option '%s' (see --help)\n", a);
			return -1;
		} else {
			break;
		}
	}
	o->files = argv + i;
	o->nfiles = argc - i;
	return 0;
}

/* Applies, lowest precedence first: our defaults, the config file, the
 * environment, the flags. */
static ts_conf_t *build_conf(const struct options *o)
{
	char err[512];
	ts_conf_t *conf = ts_conf_new();
	if (!conf) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		return NULL;
	}
	struct prop all[MAX_PROPS + 8];
	int n = 0;
	all[n++] = (struct prop){ "enqueue.timeout.ms", "300000", NULL };
	all[n++] = (struct prop){ "close.timeout.ms", "330000", NULL };
	for (int i = 0; i < o->file.n; i++)
		all[n++] = o->file.v[i];
	const char *env_b = getenv("TRACESIFT_BROKERS"), *env_t = getenv("TRACESIFT_TOPIC");
	if (env_b && *env_b)
		all[n++] = (struct prop){ "bootstrap.servers", env_b, NULL };
	if (env_t && *env_t)
		all[n++] = (struct prop){ "topic", env_t, NULL };
	for (int i = 0; i < o->flags.n; i++)
		all[n++] = o->flags.v[i];
	if (o->brokers)
		all[n++] = (struct prop){ "bootstrap.servers", o->brokers, NULL };
	if (o->topic)
		all[n++] = (struct prop){ "topic", o->topic, NULL };
	int have_brokers = 0;
	for (int i = 0; i < n; i++) {
		have_brokers |= !strcmp(all[i].name, "bootstrap.servers") ||
		                !strcmp(all[i].name, "metadata.broker.list");
		if (ts_conf_set(conf, all[i].name, all[i].value, err, sizeof(err)) != TS_OK) {
			fprintf(stderr, "%% ERROR: property '%s': %s\n", all[i].name, err);
			ts_conf_destroy(conf);
			return NULL;
		}
	}
	if (!have_brokers) {
		fprintf(stderr, "%% ERROR: no brokers: give -b BROKERS (or TRACESIFT_BROKERS, "
		        "or bootstrap.servers in the config file)\n");
		ts_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

struct counts {
	unsigned long read, invalid, dropped, files_failed;
};

static void produce_file(ts_client_t *c, FILE *f, const char *name, struct counts *n,
                         int verbosity)
{
	char *line = NULL, err[512];
	size_t cap = 0;
	unsigned long lineno = 0;
	ssize_t len;
	while (run && (len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 0)
			continue;
		n->read++;
		int rc = ts_publish_json(c, line, (size_t)len, err, sizeof(err));
		if (rc == TS_ERR_INVALID || rc == TS_ERR_TOO_LARGE) {
			n->invalid++;
			fprintf(stderr, "%% ERROR: %s:%lu: %s\n", name, lineno, err);
		} else if (rc != TS_OK) {
			n->dropped++;
			if (verbosity > 0)
				fprintf(stderr, "%% ERROR: %s:%lu: not sent: %s\n", name, lineno, err);
		}
	}
	if (ferror(f) && run) {
		fprintf(stderr, "%% ERROR: cannot read '%s': %s\n", name, strerror(errno));
		n->files_failed++;
	}
	free(line);
}

int main(int argc, char **argv)
{
	struct options o = { .verbosity = 1 };
	char err[512];
	int rc = 2;
	ts_client_t *c = NULL;

	if (parse_args(&o, argc, argv))
		goto out;
	if (o.conf_file && read_conf_file(&o, o.conf_file))
		goto out;
	ts_conf_t *conf = build_conf(&o);
	if (!conf)
		goto out;
	if (!(c = ts_client_new(conf, err, sizeof(err)))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		ts_conf_destroy(conf);
		goto out;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct counts n = { 0 };
	if (o.nfiles == 0) {
		produce_file(c, stdin, "<stdin>", &n, o.verbosity);
	}
	for (int i = 0; i < o.nfiles && run; i++) {
		if (!strcmp(o.files[i], "-")) {
			produce_file(c, stdin, "<stdin>", &n, o.verbosity);
			continue;
		}
		FILE *f = fopen(o.files[i], "r");
		if (!f) {
			fprintf(stderr, "%% ERROR: cannot open '%s': %s\n", o.files[i], strerror(errno));
			n.files_failed++;
			continue;
		}
		produce_file(c, f, o.files[i], &n, o.verbosity);
		fclose(f);
	}
	if (!run)
		fprintf(stderr, "%% interrupted: flushing what was read\n");

	ts_stats_t st;
	uint64_t undelivered = ts_client_destroy(c, &st);
	c = NULL;
	if (o.verbosity > 0 || undelivered || n.invalid)
		fprintf(stderr, "%% read %lu, sent %llu, invalid %lu, failed %llu%s%s\n",
		        n.read, (unsigned long long)st.delivered, n.invalid,
		        (unsigned long long)(undelivered + n.dropped),
		        st.last_error[0] && (undelivered || n.dropped) ? "; last error: " : "",
		        st.last_error[0] && (undelivered || n.dropped) ? st.last_error : "");
	rc = (n.invalid || n.files_failed || n.dropped || undelivered ||
	      st.delivered != n.read - n.invalid) ? 1 : 0;
out:
	props_release(&o.flags);
	props_release(&o.file);
	ts_client_destroy(c, NULL);
	return rc;
}
