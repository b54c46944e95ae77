/* core/sconf.c - the sampler's configuration: settings table, config file, classes, rules
 *
 * Every [sampler] setting is one row of settings[] (name, type, default,
 * bounds, help): sconf_init() applies the defaults from it, the config file,
 * sconf_set() and sconf_apply_env() parse values through it, and sconf_help()
 * prints it.  The file is INI-style (docs/sampling.md): a line is a comment,
 * a section header or "key = value"; a value may be quoted ("...", with \" and
 * \\ inside) to keep spaces or a '#'.  Everything the file builds is owned by
 * the conf at once, so sconf_release() frees it whether loading failed or not.
 * sconf_classify() runs once per record: it allocates nothing and only walks
 * the slices rec_validate() noted.
 */
#include "sconf.h"

#include "ini.h"
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* --- the settings table ------------------------------------------------------ */

enum stype {
	ST_STR,   /* a non-empty string */
	ST_TOPIC, /* a Kafka topic name */
	ST_OPT,   /* a string, empty: none (NULL) */
	ST_INT,   /* an int within min..max */
	ST_SIZE,  /* a size_t within min..max */
	ST_U64,   /* an unsigned 64-bit number, decimal or 0x hex */
	ST_PROJ   /* projection and proj_fields */
};

struct setting {
	const char *name;
	enum stype  type;
	size_t      off;   /* of the field in struct sampler_conf */
	const char *def;   /* the default as the file would say it; NULL: none */
	const char *show;  /* how --help shows a NULL default */
	long long   min, max;
	const char *help;
};

#define OFF(f) offsetof(struct sampler_conf, f)
static const struct setting settings[] = {
	{ "brokers", ST_STR, OFF(brokers), "127.0.0.1:9092", NULL, 0, 0,
	  "Kafka bootstrap servers, host:port[,host:port...]" },
	{ "input", ST_TOPIC, OFF(input), "llm.traces", NULL, 0, 0,
	  "topic the trace records are read from" },
	{ "output", ST_TOPIC, OFF(output), "llm.monitoring", NULL, 0, 0,
	  "topic the dataset items and batch triggers go to" },
	{ "pending", ST_TOPIC, OFF(pending), "llm.monitoring.pending", NULL, 0, 0,
	  "topic selected items wait in until they are batched" },
	{ "state", ST_TOPIC, OFF(state), "llm.monitoring.state", NULL, 0, 0,
	  "compacted topic holding each dataset's open batch" },
	{ "dlq", ST_TOPIC, OFF(dlq), "llm.traces.dlq", NULL, 0, 0,
	  "dead-letter topic for records that fail validation" },
	{ "group", ST_STR, OFF(group), "tracesift-sampler", NULL, 0, 0,
	  "consumer group the instances share" },
	{ "transactional.id", ST_OPT, OFF(transactional_id), NULL, "<group>-<instance>", 0, 0,
	  "base of this instance's transactional ids: one per instance" },
	{ "instance", ST_INT, OFF(instance), "0", NULL, 0, 65535,
	  "this instance's number (in the default transactional.id)" },
	{ "seed", ST_U64, OFF(seed), "0", NULL, 0, 0,
	  "seed of the sampling decision (decimal or 0x hex)" },
	{ "commit.interval.ms", ST_INT, OFF(commit_interval_ms), "100", NULL, 10, 60000,
	  "how often the open transaction is committed" },
	{ "stats.interval.ms", ST_INT, OFF(stats_interval_ms), "5000", NULL, 0, 3600000,
	  "how often a stats line goes to stderr; 0: never" },
	{ "batch.size", ST_INT, OFF(batch_size), "50", NULL, 0, 1000000,
	  "items per triggered batch of a dataset; 0: no batches" },
	{ "batch.max.wait.ms", ST_INT, OFF(batch_max_wait_ms), "0", NULL, 0, 86400000,
	  "close a partial batch this long after its first item; 0: never" },
	{ "projection", ST_PROJ, OFF(projection), "full", NULL, 0, 0,
	  "what an item carries: full, or some of input,output,context,metadata" },
	{ "max.record.bytes", ST_SIZE, OFF(max_record_bytes), "1048576", NULL, 1024, 268435456,
	  "larger records go to the dead-letter topic as too_large" },
	{ "metrics.file", ST_OPT, OFF(metrics_file), NULL, "none", 0, 0,
	  "file the counters are written to (Prometheus text format)" },
};
#define NSETTINGS ((int)(sizeof(settings) / sizeof(settings[0])))

static const char *const builtins[] = { "email", "phone", "api_key" };
#define NBUILTINS ((int)(sizeof(builtins) / sizeof(builtins[0])))

static const struct setting *setting_find(const char *name)
{
	for (int i = 0; i < NSETTINGS; i++)
		if (!strcmp(settings[i].name, name))
			return &settings[i];
	return NULL;
}

static void *field(struct sampler_conf *c, const struct setting *s)
{
	return (char *)c + s->off;
}

static int reason(char *why, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int reason(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;
	if (why && size) {
		va_start(ap, fmt);
		vsnprintf(why, size, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Strict integers: all of v, no sign for unsigned, no overflow. */
static int parse_ll(const char *v, long long *out)
{
	char *end;
	if (!*v || isspace((unsigned char)*v))
		return -1;
	errno = 0;
	*out = strtoll(v, &end, 10);
	return *end || errno ? -1 : 0;
}

static int parse_u64(const char *v, uint64_t *out)
{
	char *end;
	int hex = v[0] == '0' && (v[1] == 'x' || v[1] == 'X');
	if (!(hex ? isxdigit((unsigned char)v[2]) : isdigit((unsigned char)v[0])))
		return -1;
	errno = 0;
	unsigned long long u = strtoull(v + (hex ? 2 : 0), &end, hex ? 16 : 10);
	if (*end || errno)
		return -1;
	*out = u;
	return 0;
}

/* A finite number, all of v. */
static int parse_double(const char *v, double *out)
{
	char *end;
	if (!*v || isspace((unsigned char)*v))
		return -1;
	errno = 0;
	*out = strtod(v, &end);
	return *end || errno || !isfinite(*out) ? -1 : 0;
}

/* 1 to max bytes of A-Z a-z 0-9 . _ - */
static int name_ok(const char *s, size_t max)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
	return n > 0 && n <= max && !s[n];
}

static int replace_str(char **dst, const char *v, char *why, size_t size)
{
	char *d = NULL;
	if (v && !(d = strdup(v)))
		return reason(why, size, "out of memory");
	free(*dst);
	*dst = d;
	return 0;
}

static int parse_projection(struct sampler_conf *c, const char *v, char *why, size_t size)
{
	static const struct { const char *name; int bit; } names[] = {
		{ "input", PROJ_INPUT }, { "output", PROJ_OUTPUT },
		{ "context", PROJ_CONTEXT }, { "metadata", PROJ_METADATA },
	};
	int bits = 0;
	if (!strcmp(v, "full")) {
		c->projection = PROJ_FULL;
		c->proj_fields = 0;
		return 0;
	}
	for (const char *p = v; ; ) {
		size_t n, i;
		p += strspn(p, " \t");
		n = strcspn(p, ", \t");
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == n && !memcmp(names[i].name, p, n))
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			return reason(why, size, "expected full or a list of input, output, context, "
			              "metadata, not '%s'", v);
		bits |= names[i].bit;
		p += n;
		p += strspn(p, " \t");
		if (!*p)
			break;
		if (*p++ != ',')
			return reason(why, size, "expected full or a list of input, output, context, "
			              "metadata, not '%s'", v);
	}
	c->projection = PROJ_FIELDS;
	c->proj_fields = bits;
	return 0;
}

/* Applies value to setting s; returns 0, or -1 with the reason in why. */
static int setting_apply(struct sampler_conf *c, const struct setting *s, const char *v,
                         char *why, size_t size)
{
	long long ll;
	switch (s->type) {
	case ST_STR:
		if (!*v)
			return reason(why, size, "expected a value");
		return replace_str(field(c, s), v, why, size);
	case ST_TOPIC:
		if (!name_ok(v, 249) || !strcmp(v, ".") || !strcmp(v, ".."))
			return reason(why, size, "'%s' is not a valid topic name (1 to 249 of "
			              "A-Z a-z 0-9 . _ -)", v);
		return replace_str(field(c, s), v, why, size);
	case ST_OPT:
		return replace_str(field(c, s), *v ? v : NULL, why, size);
	case ST_INT:
	case ST_SIZE:
		if (parse_ll(v, &ll))
			return reason(why, size, "expected an integer, not '%s'", v);
		if (ll < s->min || ll > s->max)
			return reason(why, size, "%lld is out of bounds (%lld..%lld)", ll, s->min, s->max);
		if (s->type == ST_INT)
			*(int *)field(c, s) = (int)ll;
		else
			*(size_t *)field(c, s) = (size_t)ll;
		return 0;
	case ST_U64:
		if (parse_u64(v, field(c, s)))
			return reason(why, size, "expected a number from 0 to 2^64-1 (decimal or "
			              "0x hex), not '%s'", v);
		return 0;
	case ST_PROJ:
		return parse_projection(c, v, why, size);
	}
	return reason(why, size, "unknown setting");
}

int sconf_add_kafka_prop(struct sampler_conf *c, const char *name, const char *value,
                         char *errstr, size_t errstr_size)
{
	char *n, *v, **props;
	if (!name || !*name)
		return reason(errstr, errstr_size, "empty librdkafka property name");
	if (!value)
		value = "";
	for (int i = 0; i < c->nkafka_props; i++)
		if (!strcmp(c->kafka_props[2 * i], name)) {
			if (!(v = strdup(value)))
				return reason(errstr, errstr_size, "out of memory");
			free(c->kafka_props[2 * i + 1]);
			c->kafka_props[2 * i + 1] = v;
			return 0;
		}
	props = realloc(c->kafka_props, (size_t)(c->nkafka_props + 1) * 2 * sizeof(*props));
	if (!props)
		return reason(errstr, errstr_size, "out of memory");
	c->kafka_props = props;
	n = strdup(name);
	v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return reason(errstr, errstr_size, "out of memory");
	}
	props[2 * c->nkafka_props] = n;
	props[2 * c->nkafka_props + 1] = v;
	c->nkafka_props++;
	return 0;
}

int sconf_set(struct sampler_conf *c, const char *name, const char *value,
              char *errstr, size_t errstr_size)
{
	const struct setting *s;
	char why[512];
	if (!strncmp(name, "kafka.", 6)) {
		if (sconf_add_kafka_prop(c, name + 6, value, why, sizeof(why)))
			return reason(errstr, errstr_size, "'%s': %s", name, why);
		return 0;
	}
	if (!(s = setting_find(name)))
		return reason(errstr, errstr_size, "'%s': unknown setting", name);
	if (setting_apply(c, s, value ? value : "", why, sizeof(why)))
		return reason(errstr, errstr_size, "'%s': %s", name, why);
	return 0;
}

/* "TRACESIFT_" and the name in capitals with '_' for '.' */
static void env_name(const char *name, char *out, size_t size)
{
	size_t n = (size_t)snprintf(out, size, "TRACESIFT_");
	for (; *name && n + 1 < size; name++)
		out[n++] = *name == '.' ? '_' : (char)toupper((unsigned char)*name);
	out[n] = '\0';
}

int sconf_apply_env(struct sampler_conf *c, char *errstr, size_t errstr_size)
{
	for (int i = 0; i < NSETTINGS; i++) {
		char env[64], why[512];
		const char *v;
		env_name(settings[i].name, env, sizeof(env));
		if (!(v = getenv(env)) || !*v)
			continue;
		if (setting_apply(c, &settings[i], v, why, sizeof(why)))
			return reason(errstr, errstr_size, "'%s': %s", env, why);
	}
	return 0;
}

void sconf_help(FILE *out)
{
	for (int i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		char env[64], bounds[64] = "";
		env_name(s->name, env, sizeof(env));
		if (s->type == ST_INT || s->type == ST_SIZE)
			snprintf(bounds, sizeof(bounds), ", %lld..%lld", s->min, s->max);
		fprintf(out, "  %-20s default %s%s (%s)\n", s->name, s->def ? s->def : s->show,
		        bounds, env);
		fprintf(out, "  %-20s %s\n", "", s->help);
	}
	fprintf(out, "  %-20s a librdkafka property for every client (as -X does)\n", "kafka.PROP");
}

/* --- lifecycle ---------------------------------------------------------------- */

void sconf_init(struct sampler_conf *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < NSETTINGS; i++)
		if (settings[i].def)
			setting_apply(c, &settings[i], settings[i].def, NULL, 0);
}

static void class_release(struct sclass *k)
{
	free(k->name);
	free(k->dataset);
	for (int i = 0; i < k->npreds; i++) {
		free(k->preds[i].key);
		free(k->preds[i].value);
	}
	free(k->preds);
}

void sconf_release(struct sampler_conf *c)
{
	for (int i = 0; i < NSETTINGS; i++) {
		enum stype t = settings[i].type;
		if (t == ST_STR || t == ST_TOPIC || t == ST_OPT)
			free(*(char **)field(c, &settings[i]));
	}
	for (int i = 0; i < c->nclasses; i++)
		class_release(&c->classes[i]);
	free(c->classes);
	for (int i = 0; i < c->nredact; i++) {
		free(c->redact[i].builtin);
		free(c->redact[i].pattern);
		free(c->redact[i].replacement);
	}
	free(c->redact);
	for (int i = 0; i < 2 * c->nkafka_props; i++)
		free(c->kafka_props[i]);
	free(c->kafka_props);
	memset(c, 0, sizeof(*c));
}

/* --- classes and redaction rules ------------------------------------------------ */

static struct sclass *class_add(struct sampler_conf *c, const char *name)
{
	struct sclass *v = realloc(c->classes, (size_t)(c->nclasses + 1) * sizeof(*v)), *k;
	if (!v)
		return NULL;
	c->classes = v;
	k = &v[c->nclasses];
	memset(k, 0, sizeof(*k));
	k->name = strdup(name);
	k->dataset = strdup("monitoring");
	c->nclasses++;
	return k->name && k->dataset ? k : NULL;
}

static struct pred *pred_add(struct sclass *k)
{
	struct pred *v = realloc(k->preds, (size_t)(k->npreds + 1) * sizeof(*v));
	if (!v)
		return NULL;
	k->preds = v;
	memset(&v[k->npreds], 0, sizeof(*v));
	return &v[k->npreds++];
}

static struct redact_rule *rule_add(struct sampler_conf *c)
{
	struct redact_rule *v = realloc(c->redact, (size_t)(c->nredact + 1) * sizeof(*v));
	if (!v)
		return NULL;
	c->redact = v;
	memset(&v[c->nredact], 0, sizeof(*v));
	return &v[c->nredact++];
}

static int class_find(const struct sampler_conf *c, const char *name)
{
	for (int i = 0; i < c->nclasses; i++)
		if (!strcmp(c->classes[i].name, name))
			return i;
	return -1;
}

/* Checks a redaction pattern and its replacement the way redact.h will use
 * them: a POSIX ERE that does not match the empty string, \N in the
 * replacement naming one of its groups, UTF-8 text. */
static int check_pattern(const char *ere, const char *repl, char *why, size_t size)
{
	regex_t re;
	int rc;
	if (!*ere)
		return reason(why, size, "empty pattern");
	if ((rc = regcomp(&re, ere, REG_EXTENDED))) {
		char msg[256];
		regerror(rc, &re, msg, sizeof(msg));
		regfree(&re);
		return reason(why, size, "invalid pattern '%s': %s", ere, msg);
	}
	size_t groups = re.re_nsub;
	rc = regexec(&re, "", 0, NULL, 0);
	regfree(&re);
	if (rc == 0)
		return reason(why, size, "pattern '%s' matches the empty string", ere);
	if (json_utf8_check(repl, strlen(repl), NULL))
		return reason(why, size, "replacement '%s' is not valid UTF-8", repl);
	for (const char *p = repl; *p; p++) {
		if (p[0] != '\\')
			continue;
		if (p[1] >= '1' && p[1] <= '9' && (size_t)(p[1] - '0') > groups)
			return reason(why, size, "replacement '%s' refers to group %c but pattern '%s' "
			              "has %zu", repl, p[1], ere, groups);
		if (p[1])
			p++;
	}
	return 0;
}

static int builtin_known(const char *name)
{
	for (int i = 0; i < NBUILTINS; i++)
		if (!strcmp(builtins[i], name))
			return 1;
	return 0;
}

/* The class without predicates that matches what no other class does: adds
 * "default" at rate 0 when the last class has predicates (or there is none). */
static int ensure_default(struct sampler_conf *c, char *why, size_t size)
{
	if (c->nclasses > 0 && c->classes[c->nclasses - 1].npreds == 0)
		return 0;
	if (class_find(c, "default") >= 0)
		return reason(why, size, "class 'default' has 'when' lines, and no class without "
		              "'when' comes last to take the records no class matches");
	if (!class_add(c, "default"))
		return reason(why, size, "out of memory");
	return 0;
}

/* --- the config file ------------------------------------------------------------ */

enum section { SEC_NONE, SEC_SAMPLER, SEC_CLASS, SEC_REDACT };

struct loader {
	struct sampler_conf *c;
	const char *path;
	int line;
	char *errstr;
	size_t errstr_size;
	enum section sec;
	int have_sampler, have_redact;
	unsigned char set_seen[NSETTINGS];
	int kafka_first;      /* kafka_props pairs before this file */
	int first_class;      /* classes before this file */
	int *class_lines;     /* header line of each class of this file */
	unsigned class_seen;  /* rate, dataset, limit given in the open class */
};

enum { SEEN_RATE = 1, SEEN_DATASET = 2, SEEN_LIMIT = 4 };

static int lfail(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lfail(struct loader *ld, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(ld->errstr, ld->errstr_size, "'%s' line %d: ", ld->path, ld->line);
	if (n >= 0 && (size_t)n < ld->errstr_size) {
		va_start(ap, fmt);
		vsnprintf(ld->errstr + n, ld->errstr_size - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static const char pred_syntax[] =
	"expected error, tag = X, metadata.KEY = VALUE, model = X, name = X, "
	"latency_ms > N, ttft_ms > N or tokens > N";

/* Parses a 'when' predicate (the line's value, not modified) into p. */
static int parse_pred(const char *text, struct pred *p, char *why, size_t size)
{
	static const struct { const char *name; enum pred_kind kind; char op; } fields[] = {
		{ "tag", PRED_TAG, '=' }, { "model", PRED_MODEL, '=' }, { "name", PRED_NAME, '=' },
		{ "latency_ms", PRED_LATENCY_GT, '>' }, { "ttft_ms", PRED_TTFT_GT, '>' },
		{ "tokens", PRED_TOKENS_GT, '>' }, { "metadata", PRED_META_EQ, '=' },
	};
	const char *q = text, *f;
	size_t flen, i;
	char *operand = NULL, *val;

	if (!*text)
		return reason(why, size, "'when' needs a predicate: %s", pred_syntax);
	if (!strcmp(text, "error")) {
		p->kind = PRED_ERROR;
		return 0;
	}
	f = q;
	q += strspn(q, "abcdefghijklmnopqrstuvwxyz_");
	flen = (size_t)(q - f);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strlen(fields[i].name) == flen && !memcmp(fields[i].name, f, flen))
			break;
	if (i == sizeof(fields) / sizeof(fields[0]) || (fields[i].kind == PRED_META_EQ) != (*q == '.'))
		return reason(why, size, "invalid predicate '%s': %s", text, pred_syntax);
	p->kind = fields[i].kind;
	if (p->kind == PRED_META_EQ) {
		const char *k = ++q;
		if (*q == '"') {
			char *dup = strdup(q), *end;
			if (!dup)
				return reason(why, size, "out of memory");
			if (!(end = ini_take_quoted(dup))) {
				free(dup);
				return reason(why, size, "invalid predicate '%s': no closing quote", text);
			}
			q += end - dup;
			p->key = dup;
		} else {
			q += strcspn(q, " \t=><!");
			p->key = strndup(k, (size_t)(q - k));
			if (!p->key)
				return reason(why, size, "out of memory");
		}
		if (!*p->key)
			return reason(why, size, "invalid predicate '%s': empty metadata key", text);
	}
	q += strspn(q, " \t");
	if (*q != fields[i].op || q[1] == '=')
		return reason(why, size, "invalid predicate '%s': '%.*s' takes '%s'", text,
		              (int)flen, f, fields[i].op == '=' ? "= VALUE" : "> N");
	q++;
	q += strspn(q, " \t");
	if (!*q)
		return reason(why, size, "invalid predicate '%s': missing value", text);
	if (!(operand = strdup(q)))
		return reason(why, size, "out of memory");
	char inner[256];
	if (ini_unquote(operand, &val, inner, sizeof(inner))) {
		free(operand);
		return reason(why, size, "invalid predicate '%s': %s", text, inner);
	}
	if (fields[i].op == '>') {
		int bad = parse_double(val, &p->bound) || p->bound < 0;
		free(operand);
		if (bad)
			return reason(why, size, "invalid predicate '%s': expected a number of 0 or more",
			              text);
		return 0;
	}
	memmove(operand, val, strlen(val) + 1);
	p->value = operand;
	return 0;
}

/* "N/s" or "N/min" */
static int parse_limit(const char *v, struct sclass *k)
{
	char *end;
	long n;
	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || n < 1 || n > 1000000)
		return -1;
	end += strspn(end, " \t");
	if (*end++ != '/')
		return -1;
	end += strspn(end, " \t");
	if (!strcmp(end, "s"))
		k->limit_window_ms = 1000;
	else if (!strcmp(end, "min"))
		k->limit_window_ms = 60000;
	else
		return -1;
	k->limit = (int)n;
	return 0;
}

/* Ends the section being read: a class must have had its rate. */
static int end_section(struct loader *ld)
{
	if (ld->sec == SEC_CLASS && !(ld->class_seen & SEEN_RATE)) {
		struct sampler_conf *c = ld->c;
		ld->line = ld->class_lines[c->nclasses - 1 - ld->first_class];
		return lfail(ld, "class '%s' has no 'rate'", c->classes[c->nclasses - 1].name);
	}
	return 0;
}

static int section_header(struct loader *ld, char *s)
{
	struct sampler_conf *c = ld->c;
	char *end = strchr(s, ']'), *name;
	if (!end)
		return lfail(ld, "no ']' in section header '%s'", s);
	if (*ini_trim(end + 1))
		return lfail(ld, "text after section header '%.*s'", (int)(end + 1 - s), s);
	*end = '\0';
	name = ini_trim(s + 1);
	if (end_section(ld))
		return -1;
	if (!strcmp(name, "sampler")) {
		if (ld->have_sampler++)
			return lfail(ld, "section '[sampler]' appears twice");
		ld->sec = SEC_SAMPLER;
		return 0;
	}
	if (!strcmp(name, "redact")) {
		if (ld->have_redact++)
			return lfail(ld, "section '[redact]' appears twice");
		ld->sec = SEC_REDACT;
		return 0;
	}
	if (strncmp(name, "class", 5) || (name[5] && !isspace((unsigned char)name[5])))
		return lfail(ld, "unknown section '[%s]' (expected [sampler], [class NAME] or "
		             "[redact])", name);
	name = ini_trim(name + 5);
	if (!*name)
		return lfail(ld, "class section without a name: expected [class NAME]");
	if (!name_ok(name, 100))
		return lfail(ld, "class name '%s' is not 1 to 100 of A-Z a-z 0-9 . _ -", name);
	if (class_find(c, name) >= 0)
		return lfail(ld, "class '%s' appears twice", name);
	if (c->nclasses > 0 && c->classes[c->nclasses - 1].npreds == 0) {
		struct sclass *prev = &c->classes[c->nclasses - 1];
		if (c->nclasses > ld->first_class)
			ld->line = ld->class_lines[c->nclasses - 1 - ld->first_class];
		return lfail(ld, "class '%s' has no 'when' but is not last", prev->name);
	}
	int *lines = realloc(ld->class_lines, (size_t)(c->nclasses - ld->first_class + 1) *
	                     sizeof(*lines));
	if (!lines)
		return lfail(ld, "out of memory");
	ld->class_lines = lines;
	lines[c->nclasses - ld->first_class] = ld->line;
	if (!class_add(c, name))
		return lfail(ld, "out of memory");
	ld->sec = SEC_CLASS;
	ld->class_seen = 0;
	return 0;
}

static int sampler_line(struct loader *ld, const char *key, char *raw)
{
	char why[512], *v;
	const struct setting *s;
	if (ini_unquote(raw, &v, why, sizeof(why)))
		return lfail(ld, "'%s': %s", key, why);
	if (!strncmp(key, "kafka.", 6)) {
		for (int i = ld->kafka_first; i < ld->c->nkafka_props; i++)
			if (!strcmp(ld->c->kafka_props[2 * i], key + 6))
				return lfail(ld, "'%s' appears twice in [sampler]", key);
		if (sconf_add_kafka_prop(ld->c, key + 6, v, why, sizeof(why)))
			return lfail(ld, "'%s': %s", key, why);
		return 0;
	}
	if (!(s = setting_find(key)))
		return lfail(ld, "unknown setting '%s'", key);
	if (ld->set_seen[s - settings]++)
		return lfail(ld, "'%s' appears twice in [sampler]", key);
	if (setting_apply(ld->c, s, v, why, sizeof(why)))
		return lfail(ld, "'%s': %s", key, why);
	return 0;
}

static int class_line(struct loader *ld, const char *key, char *raw)
{
	struct sclass *k = &ld->c->classes[ld->c->nclasses - 1];
	char why[512], *v;
	unsigned bit = !strcmp(key, "rate") ? SEEN_RATE : !strcmp(key, "dataset") ? SEEN_DATASET :
	               !strcmp(key, "limit") ? SEEN_LIMIT : 0;
	if (!strcmp(key, "when")) {
		struct pred *p = pred_add(k);
		if (!p)
			return lfail(ld, "out of memory");
		if (parse_pred(raw, p, why, sizeof(why)))
			return lfail(ld, "%s", why);
		return 0;
	}
	if (!bit)
		return lfail(ld, "unknown key '%s' in class '%s' (expected when, rate, dataset, limit)",
		             key, k->name);
	if (ld->class_seen & bit)
		return lfail(ld, "'%s' appears twice in class '%s'", key, k->name);
	ld->class_seen |= bit;
	if (ini_unquote(raw, &v, why, sizeof(why)))
		return lfail(ld, "'%s': %s", key, why);
	switch (bit) {
	case SEEN_RATE:
		if (parse_double(v, &k->rate) || k->rate < 0 || k->rate > 1)
			return lfail(ld, "'rate': expected a number from 0 to 1, not '%s'", v);
		return 0;
	case SEEN_DATASET:
		if (!name_ok(v, 100))
			return lfail(ld, "'dataset': '%s' is not a valid dataset name (1 to 100 of "
			             "A-Z a-z 0-9 . _ -)", v);
		if (replace_str(&k->dataset, v, why, sizeof(why)))
			return lfail(ld, "%s", why);
		return 0;
	default:
		if (parse_limit(v, k))
			return lfail(ld, "'limit': expected N/s or N/min with N from 1 to 1000000, "
			             "not '%s'", v);
		return 0;
	}
}

/* Splits "LEFT => RIGHT" at the first "=>" with whitespace (or the end)
 * around it, or after a quoted LEFT.  LEFT is unquoted; RIGHT is returned
 * as written (NULL when there is no "=>"). */
static char *split_arrow(char *v, char **left, char *why, size_t size)
{
	char *p;
	if (*v == '"') {
		if (!(p = ini_take_quoted(v)))
			return reason(why, size, "no closing quote in '%s'", v), NULL;
		*left = v;
		p += strspn(p, " \t");
		if (strncmp(p, "=>", 2)) {
			if (*p)
				return reason(why, size, "text after the closing quote"), NULL;
			return why[0] = '\0', NULL;
		}
		return ini_trim(p + 2);
	}
	for (p = v; (p = strstr(p, "=>")); p += 2)
		if ((p == v || isspace((unsigned char)p[-1])) &&
		    (!p[2] || isspace((unsigned char)p[2]))) {
			*p = '\0';
			*left = ini_trim(v);
			return ini_trim(p + 2);
		}
	*left = v;
	return why[0] = '\0', NULL;
}

static int redact_line(struct loader *ld, const char *key, char *raw)
{
	struct sampler_conf *c = ld->c;
	char why[512] = "", *left = raw, *right, *repl = NULL;
	if (strcmp(key, "builtin") && strcmp(key, "pattern"))
		return lfail(ld, "unknown key '%s' in [redact] (expected builtin, pattern)", key);
	right = split_arrow(raw, &left, why, sizeof(why));
	if (why[0])
		return lfail(ld, "'%s': %s", key, why);
	if (right && ini_unquote(right, &repl, why, sizeof(why)))
		return lfail(ld, "'%s': replacement: %s", key, why);
	if (!strcmp(key, "pattern")) {
		struct redact_rule *r;
		if (!right)
			return lfail(ld, "'pattern': expected 'REGEX => REPLACEMENT'");
		if (check_pattern(left, repl, why, sizeof(why)))
			return lfail(ld, "%s", why);
		if (!(r = rule_add(c)) || !(r->pattern = strdup(left)) ||
		    !(r->replacement = strdup(repl)))
			return lfail(ld, "out of memory");
		return 0;
	}
	if (repl && json_utf8_check(repl, strlen(repl), NULL))
		return lfail(ld, "replacement '%s' is not valid UTF-8", repl);
	for (char *p = left, *name; *p; ) {
		size_t n = strcspn(p, ",");
		int last = !p[n];
		p[n] = '\0';
		name = ini_trim(p);
		if (!builtin_known(name))
			return lfail(ld, "unknown builtin '%s' (known: email, phone, api_key)", name);
		for (int i = 0; i < c->nredact; i++)
			if (c->redact[i].builtin && !strcmp(c->redact[i].builtin, name))
				return lfail(ld, "builtin '%s' listed twice", name);
		struct redact_rule *r = rule_add(c);
		if (!r || !(r->builtin = strdup(name)) || (repl && !(r->replacement = strdup(repl))))
			return lfail(ld, "out of memory");
		p += n + !last;
	}
	return 0;
}

static int load_line(struct loader *ld, char *line)
{
	char *s, *eq, *key;
	ini_strip_comment(line);
	s = ini_trim(line);
	if (!*s)
		return 0;
	if (*s == '[')
		return section_header(ld, s);
	if (!(eq = strchr(s, '=')))
		return lfail(ld, "missing '=' in '%s' (expected 'NAME = VALUE')", s);
	*eq = '\0';
	key = ini_trim(s);
	if (!*key)
		return lfail(ld, "missing name before '='");
	if (strcspn(key, " \t") != strlen(key))
		return lfail(ld, "invalid name '%s'", key);
	switch (ld->sec) {
	case SEC_SAMPLER: return sampler_line(ld, key, ini_trim(eq + 1));
	case SEC_CLASS:   return class_line(ld, key, ini_trim(eq + 1));
	case SEC_REDACT:  return redact_line(ld, key, ini_trim(eq + 1));
	default:
		return lfail(ld, "'%s' is outside a section (expected [sampler], [class NAME] or "
		             "[redact] first)", key);
	}
}

int sconf_load(struct sampler_conf *c, const char *path, char *errstr, size_t errstr_size)
{
	struct loader ld;
	char dummy[1], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	FILE *f;

	if (!errstr || !errstr_size) {
		errstr = dummy;
		errstr_size = sizeof(dummy);
	}
	errstr[0] = '\0';
	if (!(f = fopen(path, "r")))
		return reason(errstr, errstr_size, "cannot open '%s': %s", path, strerror(errno));
	memset(&ld, 0, sizeof(ld));
	ld.c = c;
	ld.path = path;
	ld.errstr = errstr;
	ld.errstr_size = errstr_size;
	ld.kafka_first = c->nkafka_props;
	ld.first_class = c->nclasses;
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *s = line;
		ld.line++;
		if (ld.line == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
			s += 3;
		if (strlen(line) != (size_t)n) {
			rc = lfail(&ld, "holds a NUL byte");
			break;
		}
		if ((rc = load_line(&ld, s)))
			break;
	}
	if (!rc && ferror(f))
		rc = reason(errstr, errstr_size, "cannot read '%s': %s", path, strerror(errno));
	if (!rc)
		rc = end_section(&ld);
	if (!rc) {
		char why[512];
		int d = class_find(c, "default");
		if (ensure_default(c, why, sizeof(why))) {
			if (d >= ld.first_class)
				ld.line = ld.class_lines[d - ld.first_class];
			rc = d >= ld.first_class ? lfail(&ld, "%s", why) :
			     reason(errstr, errstr_size, "'%s': %s", path, why);
		}
	}
	free(line);
	free(ld.class_lines);
	fclose(f);
	return rc;
}

/* --- the whole ------------------------------------------------------------------ */

int sconf_finish(struct sampler_conf *c, char *errstr, size_t errstr_size)
{
	char why[512];
	for (int i = 0; i < NSETTINGS; i++) {
		enum stype t = settings[i].type;
		if ((t == ST_STR || t == ST_TOPIC) && !*(char **)field(c, &settings[i]))
			return reason(errstr, errstr_size, "out of memory");
	}
	if (c->batch_max_wait_ms > 0 && c->batch_size <= 0)
		return reason(errstr, errstr_size, "'batch.max.wait.ms' needs 'batch.size' above 0");
	if (c->projection == PROJ_FIELDS && !c->proj_fields)
		return reason(errstr, errstr_size, "'projection' names no field");
	if (!c->transactional_id) {
		char id[512];
		snprintf(id, sizeof(id), "%s-%d", c->group, c->instance);
		if (!(c->transactional_id = strdup(id)))
			return reason(errstr, errstr_size, "out of memory");
	}
	if (ensure_default(c, why, sizeof(why)))
		return reason(errstr, errstr_size, "%s", why);
	for (int i = 0; i < c->nclasses; i++) {
		const struct sclass *k = &c->classes[i];
		if (!k->name || !name_ok(k->name, 100))
			return reason(errstr, errstr_size, "class %d has no valid name", i + 1);
		if (class_find(c, k->name) != i)
			return reason(errstr, errstr_size, "class '%s' appears twice", k->name);
		if (k->npreds == 0 && i != c->nclasses - 1)
			return reason(errstr, errstr_size, "class '%s' has no 'when' but is not last",
			              k->name);
		if (!(k->rate >= 0 && k->rate <= 1))
			return reason(errstr, errstr_size, "class '%s': rate %g is not in [0, 1]",
			              k->name, k->rate);
		if (!k->dataset || !name_ok(k->dataset, 100))
			return reason(errstr, errstr_size, "class '%s': not a valid dataset name",
			              k->name);
		if (k->limit < 0 || (k->limit > 0 && k->limit_window_ms != 1000 &&
		                     k->limit_window_ms != 60000))
			return reason(errstr, errstr_size, "class '%s': a rate limit needs a window "
			              "of 1000 or 60000 ms", k->name);
		for (int j = 0; j < k->npreds; j++) {
			const struct pred *p = &k->preds[j];
			int str = p->kind == PRED_TAG || p->kind == PRED_META_EQ ||
			          p->kind == PRED_MODEL || p->kind == PRED_NAME;
			if ((str && !p->value) || (p->kind == PRED_META_EQ && !p->key) ||
			    (!str && p->kind != PRED_ERROR && !(p->bound >= 0)))
				return reason(errstr, errstr_size, "class '%s': predicate %d is incomplete",
				              k->name, j + 1);
		}
	}
	for (int i = 0; i < c->nredact; i++) {
		const struct redact_rule *r = &c->redact[i];
		if (r->builtin) {
			if (!builtin_known(r->builtin))
				return reason(errstr, errstr_size, "unknown builtin '%s' (known: email, "
				              "phone, api_key)", r->builtin);
		} else if (!r->pattern) {
			return reason(errstr, errstr_size, "redaction rule %d has no pattern", i + 1);
		} else if (check_pattern(r->pattern, r->replacement ? r->replacement : "",
		                         why, sizeof(why))) {
			return reason(errstr, errstr_size, "%s", why);
		}
	}
	return 0;
}

/* --- classifying records ----------------------------------------------------------- */

static int pred_holds(const struct pred *p, const char *buf, const struct rec_info *info)
{
	switch (p->kind) {
	case PRED_ERROR:      return info->has_error;
	case PRED_TAG:        return rec_has_tag(buf, info, p->value);
	case PRED_META_EQ:    return rec_meta_equals(buf, info, p->key, p->value);
	case PRED_MODEL:      return rec_str_equals(buf, info->model, p->value);
	case PRED_NAME:       return rec_str_equals(buf, info->name, p->value);
	case PRED_LATENCY_GT: return info->latency_total >= 0 && info->latency_total > p->bound;
	case PRED_TTFT_GT:    return info->ttft >= 0 && info->ttft > p->bound;
	case PRED_TOKENS_GT:  return info->total_tokens >= 0 && (double)info->total_tokens > p->bound;
	}
	return 0;
}

int sconf_classify(const struct sampler_conf *c, const char *buf, const struct rec_info *info)
{
	for (int i = 0; i < c->nclasses - 1; i++) {
		const struct sclass *k = &c->classes[i];
		int j = 0;
		while (j < k->npreds && pred_holds(&k->preds[j], buf, info))
			j++;
		if (j == k->npreds)
			return i;
	}
	return c->nclasses - 1;
}
