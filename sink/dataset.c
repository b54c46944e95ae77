/* sink/dataset.c - tracesift-dataset: list, read, export and inspect the datasets of a store
 *
 * Everything goes through the store's reader API (core/store.h), so a reader
 * sees the datasets as of the MANIFEST it opened and never a torn tail, while
 * the sink keeps writing.  Items are printed as the bytes the store holds;
 * export --format csv and stats read fields of each item with cJSON.
 *
 * An item is what the sampler writes ({"type":"item", ..., "record":{...}},
 * docs/sampling.md); a dataset archived by `tracesift-sink --archive` holds
 * bare trace records, which are read as an item whose record is itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "afile.h"
#include "item.h"
#include "sbuf.h"
#include "store.h"
#include "tally.h"
#include "tstime.h"

#define DEFAULT_STORE "./tracesift-data"
/* A progress bar once an export is this long (items, or microseconds). */
#define PROGRESS_ITEMS 10000
#define PROGRESS_AFTER_US 1000000
#define PROGRESS_EVERY_US 100000

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
	(void)sig;
	run = 0;
}

enum cmd { CMD_NONE, CMD_LS, CMD_COUNT, CMD_CAT, CMD_EXPORT, CMD_STATS, CMD_BATCHES };

struct opts {
	const char *store;
	enum cmd cmd;
	const char *name;      /* the dataset */
	const char *format;    /* export: jsonl | csv */
	const char *out;       /* export: -o FILE */
	int json;              /* ls, stats, batches: --json */
	int64_t batch;         /* cat, export, stats: --batch N, or -1 */
	int64_t since;         /* cat, export, stats: --since SEQ, or -1 */
	int progress;          /* -1 auto, 0 never (--no-progress) */
	int verbosity;         /* 0 -q, 1, 2 -v */
};

static void usage(FILE *out)
{
	fprintf(out,
	"usage: tracesift-dataset [--store DIR] COMMAND [ARGS]\n"
	"\n"
	"Reads the datasets of a tracesift store (what tracesift-sink writes) without\n"
	"disturbing the sink: each command sees the store as of its last commit.\n"
	"\n"
	"commands:\n"
	"  ls [--json]                       datasets with their item and batch counts\n"
	"  count NAME                        the number of items in NAME\n"
	"  cat NAME [--batch N] [--since SEQ]\n"
	"                                    the items as JSONL, as stored (one per line)\n"
	"  export NAME --format jsonl|csv [-o FILE] [--batch N] [--since SEQ]\n"
	"                                    jsonl: the items; csv: one row per item (RFC 4180,\n"
	"                                    UTF-8, CRLF; columns in docs/dataset-cli.md)\n"
	"  stats NAME [--json] [--batch N] [--since SEQ]\n"
	"                                    items per class, model and UTC day, tokens,\n"
	"                                    errors, latency and time to first token p50/p90/p99\n"
	"  batches NAME [--json]             the triggered batches: state, size, items stored\n"
	"\n"
	"options:\n"
	"  --store DIR        the store (env TRACESIFT_STORE; default ./tracesift-data)\n"
	"  --batch N          only the items of batch N\n"
	"  --since SEQ        only items with sequence number >= SEQ (a cursor: cat and export\n"
	"                     print '%% next cursor: N' on stderr, to pass as --since next time)\n"
	"  -o, --output FILE  export into FILE (written to a temporary file, then renamed; 0600)\n"
	"  --json             machine-readable output (one JSON object)\n"
	"  --no-progress      no progress bar (one is drawn on stderr for long exports when\n"
	"                     stderr is a terminal)\n"
	"  -q / -v            fewer / more messages on stderr\n"
	"  -h, --help         this text\n"
	"\n"
	"Data goes to stdout, messages to stderr.  Exit status: 0 success, 1 an error\n"
	"(no such dataset, unreadable store, write error), 2 a usage error.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "%% ERROR: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see --help)\n");
	return -1;
}

static int parse_i64(const char *opt, const char *v, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < 0) {
		fprintf(stderr, "%% ERROR: %s: expected a non-negative integer, got '%s' (see --help)\n", opt, v);
		return -1;
	}
	*out = n;
	return 0;
}

static const struct {
	const char *name;
	enum cmd cmd;
	int needs_name;
} commands[] = {
	{ "ls", CMD_LS, 0 }, { "count", CMD_COUNT, 1 }, { "cat", CMD_CAT, 1 },
	{ "export", CMD_EXPORT, 1 }, { "stats", CMD_STATS, 1 }, { "batches", CMD_BATCHES, 1 },
};

/* Options may come before or after the command; "--opt=value" works too.
 * Returns 0, 1 for --help (printed), -1 on a usage error (printed). */
static int parse_args(struct opts *o, int argc, char **argv)
{
	const char *pos[3];
	int npos = 0, saw_json = 0;
	const char *cmd_name = NULL;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		const char *v = NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 1;
		}
		if (a[0] != '-' || !strcmp(a, "-")) {
			if (npos == 3)
				return usage_error("unexpected argument '%s'", a);
			pos[npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			while (++i < argc && npos < 3)
				pos[npos++] = argv[i];
			if (i < argc)
				return usage_error("unexpected argument '%s'", argv[i]);
			break;
		}
		if (!strcmp(a, "-q")) { o->verbosity = 0; continue; }
		if (!strcmp(a, "-v")) { o->verbosity = 2; continue; }
		if (!strcmp(a, "--json")) { o->json = saw_json = 1; continue; }
		if (!strcmp(a, "--no-progress")) { o->progress = 0; continue; }
		char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
		if (eq) {
			*eq = '\0';
			v = eq + 1;
		}
		int takes = !strcmp(a, "--store") || !strcmp(a, "--batch") || !strcmp(a, "--since") ||
		            !strcmp(a, "--format") || !strcmp(a, "-o") || !strcmp(a, "--output");
		if (!takes)
			return usage_error("unknown option '%s'", a);
		if (!v) {
			if (i + 1 >= argc)
				return usage_error("option '%s' needs a value", a);
			v = argv[++i];
		}
		if (!strcmp(a, "--store")) {
			o->store = v;
		} else if (!strcmp(a, "--batch")) {
			if (parse_i64(a, v, &o->batch))
				return -1;
		} else if (!strcmp(a, "--since")) {
			if (parse_i64(a, v, &o->since))
				return -1;
		} else if (!strcmp(a, "--format")) {
			o->format = v;
		} else {
			o->out = v;
		}
	}

	if (npos == 0) {
		fprintf(stderr, "%% ERROR: no command (see --help)\n");
		return -1;
	}
	cmd_name = pos[0];
	int needs_name = 0;
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (!strcmp(cmd_name, commands[k].name)) {
			o->cmd = commands[k].cmd;
			needs_name = commands[k].needs_name;
		}
	if (o->cmd == CMD_NONE)
		return usage_error("unknown command '%s'", cmd_name);
	if (npos != 1 + needs_name) {
		if (needs_name && npos == 1)
			return usage_error("'%s' needs a dataset name", cmd_name);
		return usage_error("unexpected argument '%s'", pos[1 + needs_name]);
	}
	if (needs_name) {
		o->name = pos[1];
		if (!sink_name_valid(o->name))
			return usage_error("'%s' is not a dataset name ([A-Za-z0-9._-], 1 to 100)", o->name);
	}

	/* which options each command takes */
	int filters = o->cmd == CMD_CAT || o->cmd == CMD_EXPORT || o->cmd == CMD_STATS;
	if (!filters && o->batch >= 0)
		return usage_error("--batch does not apply to '%s'", cmd_name);
	if (!filters && o->since >= 0)
		return usage_error("--since does not apply to '%s'", cmd_name);
	if (saw_json && o->cmd != CMD_LS && o->cmd != CMD_STATS && o->cmd != CMD_BATCHES)
		return usage_error("--json does not apply to '%s'", cmd_name);
	if (o->cmd != CMD_EXPORT && (o->format || o->out))
		return usage_error("--format and -o apply to 'export', not '%s'", cmd_name);
	if (o->cmd == CMD_EXPORT) {
		if (!o->format)
			return usage_error("%s: --format jsonl|csv is required", "export");
		if (strcmp(o->format, "jsonl") && strcmp(o->format, "csv"))
			return usage_error("--format: expected jsonl or csv, got '%s'", o->format);
		if (o->out && !*o->out)
			return usage_error("%s: -o needs a file name ('-' for stdout)", "export");
		if (o->out && !strcmp(o->out, "-"))
			o->out = NULL;
	}
	return 0;
}

/* ---- small helpers ------------------------------------------------------ */

/* A number as JSON would write it: integers without a fraction, others with
 * the fewest digits that read back the same (what cJSON does). */
static void num_text(double v, char *out, size_t size)
{
	if (!isfinite(v)) {
		snprintf(out, size, "%s", "");
	} else if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, size, "%.0f", v);
	} else {
		snprintf(out, size, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, size, "%.17g", v);
	}
}

static const cJSON *get(const cJSON *obj, const char *key)
{
	return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static const char *get_str(const cJSON *obj, const char *key)
{
	const cJSON *v = get(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The number at obj.key, or NAN when it is missing or not a number. */
static double get_num(const cJSON *obj, const char *key)
{
	const cJSON *v = get(obj, key);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The record an item carries: item.record, or the item itself when it is a
 * bare trace record (an archive dataset). */
static const cJSON *record_of(const cJSON *item)
{
	const cJSON *rec = get(item, "record");
	if (cJSON_IsObject(rec))
		return rec;
	return get(item, "trace_id") ? item : NULL;
}

static const char *item_id(const cJSON *item)
{
	const char *id = get_str(item, "id");
	return id ? id : get_str(item, "trace_id");
}

static void fmt_count(int64_t n, char *out, size_t size)
{
	snprintf(out, size, "%lld", (long long)n);
}

static int open_reader(const struct opts *o, struct store_reader **r)
{
	char err[512];
	struct stat st;
	if (stat(o->store, &st) && errno == ENOENT) {
		fprintf(stderr, "%% ERROR: no store at '%s' (give --store DIR or set TRACESIFT_STORE)\n", o->store);
		*r = NULL;
		return -1;
	}
	if (!(*r = store_reader_open(o->store, err, sizeof(err)))) {
		fprintf(stderr, "%% ERROR: %s\n", err);
		return -1;
	}
	return 0;
}

/* The item count of the dataset, or -1 (said why) when there is none. */
static int64_t dataset_count(struct store_reader *r, const struct opts *o)
{
	int64_t n = store_count(r, o->name);
	if (n < 0)
		fprintf(stderr, "%% ERROR: no dataset '%s' in store '%s' (see 'tracesift-dataset ls')\n",
		        o->name, o->store);
	return n;
}

static const struct store_batch *find_batch(struct store_reader *r, const char *name, int64_t batch)
{
	const struct store_batch *b;
	int n = store_batches(r, name, &b);
	for (int i = 0; i < n; i++)
		if (b[i].batch == batch)
			return &b[i];
	return NULL;
}

static const char *state_name(enum batch_state s)
{
	switch (s) {
	case BATCH_OPEN: return "open";
	case BATCH_COMPLETE: return "complete";
	case BATCH_EVALUATED: return "evaluated";
	}
	return "unknown";
}

static int print_json(cJSON *root)
{
	char *s = root ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (!s) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		return -1;
	}
	fputs(s, stdout);
	fputc('\n', stdout);
	free(s);
	return 0;
}

/* ---- iterating a dataset's items ---------------------------------------- */

/* Opens the iterator the filters ask for; *total: how many items it will
 * give, or -1 when that is not known.  NULL (said why) on failure. */
static struct store_iter *open_items(struct store_reader *r, const struct opts *o, int64_t count,
                                     int64_t *total)
{
	char err[512];
	/* sequence numbers run from 0 to count - 1 within a dataset */
	*total = o->since > 0 ? (count > o->since ? count - o->since : 0) : count;
	if (o->batch >= 0) {
		const struct store_batch *b = find_batch(r, o->name, o->batch);
		if (!b) {
			fprintf(stderr, "%% ERROR: dataset '%s' has no batch %lld (see 'tracesift-dataset batches %s')"
			        "\n", o->name, (long long)o->batch, o->name);
			return NULL;
		}
		*total = o->since > 0 ? -1 : b->have;
	}
	struct store_iter *it = store_iter_new(r, o->name, o->since > 0 ? o->since : 0, o->batch,
	                                       err, sizeof(err));
	if (!it)
		fprintf(stderr, "%% ERROR: dataset '%s': %s\n", o->name, err);
	return it;
}

struct progress {
	int on;              /* allowed: stderr is a terminal and not where the data goes */
	int shown;
	int64_t total, start_us, last_us;
};

static void progress_init(struct progress *p, const struct opts *o, int64_t total)
{
	memset(p, 0, sizeof(*p));
	p->on = o->progress != 0 && o->verbosity > 0 && isatty(STDERR_FILENO) &&
	        (o->out || !isatty(STDOUT_FILENO));
	p->total = total;
	p->start_us = tstime_mono_us();
}

static void progress_draw(struct progress *p, int64_t done, int final)
{
	int64_t now = tstime_mono_us(), el = now - p->start_us;
	double rate = el > 0 ? (double)done * 1e6 / (double)el : 0;
	char line[160];
	int n;

	if (p->total >= 0) {
		int64_t total = p->total > done ? p->total : done;
		double frac = total ? (double)done / (double)total : 1;
		char bar[21];
		int fill = (int)(frac * 20);
		for (int i = 0; i < 20; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[20] = '\0';
		n = snprintf(line, sizeof(line), "%lld / %lld items %3d%% [%s] %.0f items/s",
		             (long long)done, (long long)total, (int)(frac * 100), bar, rate);
		if (!final && rate > 0 && total > done) {
			long eta = (long)ceil((double)(total - done) / rate);
			snprintf(line + n, sizeof(line) - (size_t)n, " ETA %ld:%02ld", eta / 60, eta % 60);
		} else if (final) {
			snprintf(line + n, sizeof(line) - (size_t)n, " in %.1f s", (double)el / 1e6);
		}
	} else {
		n = snprintf(line, sizeof(line), "%lld items %.0f items/s", (long long)done, rate);
		if (final)
			snprintf(line + n, sizeof(line) - (size_t)n, " in %.1f s", (double)el / 1e6);
	}
	fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
	fflush(stderr);
	p->shown = 1;
	p->last_us = now;
}

static void progress_tick(struct progress *p, int64_t done)
{
	if (!p->on || (done & 63))
		return;
	int64_t now = tstime_mono_us();
	if (!p->shown) {
		if (now - p->start_us < PROGRESS_AFTER_US && (p->total < PROGRESS_ITEMS || done == 0))
			return;
	} else if (now - p->last_us < PROGRESS_EVERY_US) {
		return;
	}
	progress_draw(p, done, 0);
}

static void progress_end(struct progress *p, int64_t done, int ok)
{
	if (!p->shown)
		return;
	if (ok)
		progress_draw(p, done, 1);
	else
		fprintf(stderr, "\r\033[K");
}

/* ---- output into a file, atomically ------------------------------------- */

struct out {
	FILE *f;
	const char *path;    /* NULL: stdout */
	char *tmp;
};

static int out_open(struct out *w, const char *path)
{
	memset(w, 0, sizeof(*w));
	w->path = path;
	if (!path) {
		w->f = stdout;
		return 0;
	}
	size_t n = strlen(path) + 32;
	if (!(w->tmp = malloc(n)))
		return -1;
	snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "%% ERROR: cannot create '%s': %s\n", path, strerror(errno));
		free(w->tmp);
		w->tmp = NULL;
		return -1;
	}
	if (!(w->f = fdopen(fd, "wb"))) {
		fprintf(stderr, "%% ERROR: cannot write '%s': %s\n", w->tmp, strerror(errno));
		close(fd);
		unlink(w->tmp);
		free(w->tmp);
		w->tmp = NULL;
		return -1;
	}
	setvbuf(w->f, NULL, _IOFBF, 1 << 20);
	return 0;
}

/* Ends the output: ok, the file is flushed, fsynced and renamed into place
 * (and its folder fsynced); not ok, the temporary file is removed.  Returns
 * 0, or -1 (said why). */
static int out_close(struct out *w, int ok)
{
	int rc = 0;
	if (!w->path) {
		if (fflush(stdout) || ferror(stdout)) {
			fprintf(stderr, "%% ERROR: write to stdout: %s\n", strerror(errno));
			return -1;
		}
		return ok ? 0 : -1;
	}
	char err[512] = "";
	if (afile_finish(w->f, w->tmp, w->path, ok, err, sizeof(err))) {
		if (err[0])
			fprintf(stderr, "%% ERROR: %s\n", err);
		rc = -1;
	}
	free(w->tmp);
	w->tmp = NULL;
	return rc;
}

/* ---- CSV ---------------------------------------------------------------- */

static const char *const csv_columns[] = {
	"id", "dataset", "batch", "position", "class", "rate", "selected_at", "name", "model",
	"start_time", "input", "output", "total_tokens", "latency_ms", "ttft_ms", "error_type",
};
#define CSV_NCOLS (sizeof(csv_columns) / sizeof(csv_columns[0]))

/* One field, RFC 4180: quoted (quotes doubled) when it holds a comma, a
 * quote, CR or LF; as it is otherwise. */
static void csv_field(struct sbuf *b, const char *s, size_t n, int first)
{
	if (!first)
		sbuf_putc(b, ',');
	int quote = 0;
	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	if (!quote) {
		sbuf_put(b, s, n);
		return;
	}
	sbuf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			sbuf_putc(b, '"');
		sbuf_putc(b, s[i]);
	}
	sbuf_putc(b, '"');
}

static void csv_str(struct sbuf *b, const char *s, int first)
{
	csv_field(b, s ? s : "", s ? strlen(s) : 0, first);
}

/* A scalar as text: a string as it is, a number as JSON writes it, true /
 * false; null, missing or a container: empty. */
static void csv_scalar(struct sbuf *b, const cJSON *v)
{
	char num[64] = "";
	if (cJSON_IsString(v))
		csv_str(b, v->valuestring, 0);
	else if (cJSON_IsNumber(v))
		num_text(v->valuedouble, num, sizeof(num)), csv_str(b, num, 0);
	else if (cJSON_IsBool(v))
		csv_str(b, cJSON_IsTrue(v) ? "true" : "false", 0);
	else
		csv_str(b, "", 0);
}

/* A value as JSON text (for input and output); missing: empty. */
static int csv_json(struct sbuf *b, const cJSON *v)
{
	if (!v) {
		csv_str(b, "", 0);
		return 0;
	}
	char *s = cJSON_PrintUnformatted(v);
	if (!s)
		return -1;
	csv_str(b, s, 0);
	free(s);
	return 0;
}

static void csv_header(struct sbuf *b)
{
	for (size_t i = 0; i < CSV_NCOLS; i++)
		csv_str(b, csv_columns[i], i == 0);
	sbuf_put_lit(b, "\r\n");
}

/* One item as one row (columns as csv_columns). */
static int csv_row(struct sbuf *b, const cJSON *item, const char *dataset)
{
	const cJSON *rec = record_of(item), *lat = get(rec, "latency_ms"), *err = get(rec, "error");
	const char *ds = get_str(item, "dataset");

	csv_str(b, item_id(item), 1);
	csv_str(b, ds ? ds : dataset, 0);
	csv_scalar(b, get(item, "batch"));
	csv_scalar(b, get(item, "position"));
	csv_scalar(b, get(item, "class"));
	csv_scalar(b, get(item, "rate"));
	csv_scalar(b, get(item, "selected_at"));
	csv_scalar(b, get(rec, "name"));
	csv_scalar(b, get(rec, "model"));
	csv_scalar(b, get(rec, "start_time"));
	if (csv_json(b, get(rec, "input")) || csv_json(b, get(rec, "output")))
		return -1;
	csv_scalar(b, get(get(rec, "usage"), "total_tokens"));
	csv_scalar(b, get(lat, "total"));
	csv_scalar(b, get(lat, "time_to_first_token"));
	csv_scalar(b, get(err, "type"));
	sbuf_put_lit(b, "\r\n");
	return 0;
}

/* ---- commands ----------------------------------------------------------- */

static int cmd_ls(struct store_reader *r, const struct opts *o)
{
	const char *const *names;
	int n = store_datasets(r, &names);
	if (n < 0) {
		fprintf(stderr, "%% ERROR: cannot list the datasets of store '%s'\n", o->store);
		return -1;
	}
	struct row {
		int64_t items, states[3];
		int batches;
	} *rows = calloc((size_t)n + 1, sizeof(*rows));
	if (!rows) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const struct store_batch *b;
		rows[i].items = store_count(r, names[i]);
		if ((rows[i].batches = store_batches(r, names[i], &b)) < 0) {
			fprintf(stderr, "%% ERROR: cannot read the batches of dataset '%s' in store '%s'\n", names[i],
			        o->store);
			free(rows);
			return -1;
		}
		for (int k = 0; k < rows[i].batches; k++)
			if (b[k].state >= BATCH_OPEN && b[k].state <= BATCH_EVALUATED)
				rows[i].states[b[k].state]++;
	}

	int rc = 0;
	if (o->json) {
		cJSON *root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "store", o->store);
		cJSON *arr = cJSON_AddArrayToObject(root, "datasets");
		for (int i = 0; i < n; i++) {
			cJSON *d = cJSON_CreateObject();
			cJSON_AddStringToObject(d, "name", names[i]);
			cJSON_AddNumberToObject(d, "items", (double)rows[i].items);
			cJSON_AddNumberToObject(d, "batches", rows[i].batches);
			cJSON_AddNumberToObject(d, "open", (double)rows[i].states[BATCH_OPEN]);
			cJSON_AddNumberToObject(d, "complete", (double)rows[i].states[BATCH_COMPLETE]);
			cJSON_AddNumberToObject(d, "evaluated", (double)rows[i].states[BATCH_EVALUATED]);
			cJSON_AddItemToArray(arr, d);
		}
		rc = print_json(root);
	} else {
		int w = 7;
		for (int i = 0; i < n; i++)
			if ((int)strlen(names[i]) > w)
				w = (int)strlen(names[i]);
		printf("%-*s  %10s  %7s  %5s  %8s  %9s\n", w, "DATASET", "ITEMS", "BATCHES", "OPEN", "COMPLETE",
		       "EVALUATED");
		for (int i = 0; i < n; i++)
			printf("%-*s  %10lld  %7d  %5lld  %8lld  %9lld\n", w, names[i], (long long)rows[i].items,
			       rows[i].batches, (long long)rows[i].states[BATCH_OPEN],
			       (long long)rows[i].states[BATCH_COMPLETE], (long long)rows[i].states[BATCH_EVALUATED]);
		if (n == 0 && o->verbosity > 0)
			fprintf(stderr, "%% store '%s' has no datasets\n", o->store);
	}
	free(rows);
	return rc;
}

static int cmd_count(struct store_reader *r, const struct opts *o)
{
	int64_t n = dataset_count(r, o);
	if (n < 0)
		return -1;
	printf("%lld\n", (long long)n);
	return 0;
}

static int cmd_batches(struct store_reader *r, const struct opts *o)
{
	const struct store_batch *b;
	if (dataset_count(r, o) < 0)
		return -1;
	int n = store_batches(r, o->name, &b);
	if (n < 0) {
		fprintf(stderr, "%% ERROR: cannot read the batches of dataset '%s' in store '%s'\n", o->name,
		        o->store);
		return -1;
	}
	if (o->json) {
		cJSON *root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "dataset", o->name);
		cJSON *arr = cJSON_AddArrayToObject(root, "batches");
		for (int i = 0; i < n; i++) {
			cJSON *x = cJSON_CreateObject();
			cJSON_AddNumberToObject(x, "batch", (double)b[i].batch);
			cJSON_AddStringToObject(x, "state", state_name(b[i].state));
			cJSON_AddNumberToObject(x, "size", b[i].size);
			cJSON_AddNumberToObject(x, "have", b[i].have);
			cJSON_AddBoolToObject(x, "partial", b[i].partial);
			cJSON_AddNumberToObject(x, "first_seq", (double)b[i].first_seq);
			cJSON_AddItemToArray(arr, x);
		}
		return print_json(root);
	}
	printf("%8s  %-9s  %6s  %6s  %s\n", "BATCH", "STATE", "SIZE", "HAVE", "PARTIAL");
	for (int i = 0; i < n; i++) {
		char size[24] = "-";
		if (b[i].size > 0 || b[i].state != BATCH_OPEN)
			fmt_count(b[i].size, size, sizeof(size));
		printf("%8lld  %-9s  %6s  %6d  %s\n", (long long)b[i].batch, state_name(b[i].state), size, b[i].have,
		       b[i].partial ? "yes" : "no");
	}
	if (n == 0 && o->verbosity > 0)
		fprintf(stderr, "%% dataset '%s' has no batches (the sampler's batch.size is 0)\n", o->name);
	return 0;
}

/* cat, and export in either format: every selected item into w. */
static int cmd_items(struct store_reader *r, const struct opts *o)
{
	int64_t count = dataset_count(r, o), total, done = 0;
	if (count < 0)
		return -1;
	struct store_iter *it = open_items(r, o, count, &total);
	if (!it)
		return -1;
	int csv = o->cmd == CMD_EXPORT && !strcmp(o->format, "csv");
	struct out w;
	if (out_open(&w, o->out)) {
		store_iter_free(it);
		return -1;
	}
	struct progress pg;
	progress_init(&pg, o, total);
	if (o->cmd != CMD_EXPORT)
		pg.on = 0;

	struct sbuf row;
	sbuf_init(&row);
	if (csv) {
		csv_header(&row);
		fwrite(row.buf, 1, row.len, w.f);
	}
	char err[512] = "";
	const char *json;
	size_t len;
	int rc = 1, ok = 1; /* rc stays 1 when a signal stops the loop */
	int64_t next = o->since > 0 ? o->since : 0, start_us = tstime_mono_us();
	while (run && (rc = store_next(it, &json, &len, err, sizeof(err))) == 1) {
		next = store_item_seq(it) + 1;
		if (csv) {
			cJSON *item = cJSON_ParseWithLength(json, len);
			row.len = 0;
			if (!cJSON_IsObject(item) || csv_row(&row, item, o->name) || row.oom) {
				fprintf(stderr, "%% ERROR: dataset '%s': item %lld: %s\n", o->name, (long long)next - 1,
				        cJSON_IsObject(item) ? "out of memory" : "not a JSON object");
				cJSON_Delete(item);
				ok = 0;
				break;
			}
			cJSON_Delete(item);
			fwrite(row.buf, 1, row.len, w.f);
		} else {
			fwrite(json, 1, len, w.f);
			fputc('\n', w.f);
		}
		if (ferror(w.f)) {
			fprintf(stderr, "%% ERROR: write to '%s': %s\n", w.path ? w.path : "stdout", strerror(errno));
			ok = 0;
			break;
		}
		progress_tick(&pg, ++done);
	}
	if (ok && rc < 0) {
		fprintf(stderr, "%% ERROR: dataset '%s': %s\n", o->name, err);
		ok = 0;
	}
	if (ok && rc == 1) {
		fprintf(stderr, "%% ERROR: interrupted%s%s%s\n", w.path ? ": '" : "", w.path ? w.path : "",
		        w.path ? "' not written" : "");
		ok = 0;
	}
	progress_end(&pg, done, ok);
	sbuf_release(&row);
	store_iter_free(it);
	if (out_close(&w, ok))
		return -1;
	if (o->since >= 0 && o->verbosity > 0)
		fprintf(stderr, "%% next cursor: %lld\n", (long long)next);
	if (w.path && o->verbosity > 0)
		fprintf(stderr, "%% exported %lld items of '%s' to '%s' (%s)\n", (long long)done, o->name, w.path,
		        o->format);
	else if (o->verbosity > 1)
		fprintf(stderr, "%% %lld items of '%s' in %.3f s\n", (long long)done, o->name,
		        (double)(tstime_mono_us() - start_us) / 1e6);
	return 0;
}

struct stats {
	int64_t items, errors, no_record;
	double tok_in, tok_out, tok_total;
	struct tally cls, model, day, errtype;
	struct nums lat, ttft;
};

static void stats_add(struct stats *s, const cJSON *item)
{
	const cJSON *rec = record_of(item), *usage = get(rec, "usage"), *lat = get(rec, "latency_ms");
	const cJSON *err = get(rec, "error");
	const char *cls = get_str(item, "class"), *model = get_str(rec, "model");
	const char *start = get_str(rec, "start_time");
	char day[32] = "(unknown)";
	int64_t us;
	double x;

	s->items++;
	s->no_record += !rec;
	tally_add(&s->cls, cls ? cls : "(none)", 1);
	tally_add(&s->model, model ? model : "(none)", 1);
	if (start && !tstime_parse(start, strlen(start), &us)) {
		time_t sec = (time_t)(us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000));
		struct tm tm;
		if (gmtime_r(&sec, &tm))
			strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	}
	tally_add(&s->day, day, 1);
	if (isfinite(x = get_num(usage, "input_tokens")))
		s->tok_in += x;
	if (isfinite(x = get_num(usage, "output_tokens")))
		s->tok_out += x;
	if (isfinite(x = get_num(usage, "total_tokens")))
		s->tok_total += x;
	if (err && !cJSON_IsNull(err)) {
		const char *t = get_str(err, "type");
		s->errors++;
		tally_add(&s->errtype, t ? t : "(none)", 1);
	}
	nums_add(&s->lat, get_num(lat, "total"));
	nums_add(&s->ttft, get_num(lat, "time_to_first_token"));
}

static void stats_release(struct stats *s)
{
	tally_release(&s->cls);
	tally_release(&s->model);
	tally_release(&s->day);
	tally_release(&s->errtype);
	nums_release(&s->lat);
	nums_release(&s->ttft);
}

static const char *ms_text(double v, char *buf, size_t size)
{
	if (!isfinite(v))
		return "-";
	snprintf(buf, size, v == floor(v) && fabs(v) < 1e15 ? "%.0f" : "%.1f", v);
	return buf;
}

static int cmd_stats(struct store_reader *r, const struct opts *o)
{
	int64_t count = dataset_count(r, o), total;
	if (count < 0)
		return -1;
	struct store_iter *it = open_items(r, o, count, &total);
	if (!it)
		return -1;
	struct stats s;
	memset(&s, 0, sizeof(s));
	char err[512] = "";
	const char *json;
	size_t len;
	int rc = 1, ok = 1; /* rc stays 1 when a signal stops the loop */
	while (run && (rc = store_next(it, &json, &len, err, sizeof(err))) == 1) {
		cJSON *item = cJSON_ParseWithLength(json, len);
		if (!cJSON_IsObject(item)) {
			fprintf(stderr, "%% ERROR: dataset '%s': item %lld: not a JSON object\n", o->name,
			        (long long)store_item_seq(it));
			cJSON_Delete(item);
			ok = 0;
			break;
		}
		stats_add(&s, item);
		cJSON_Delete(item);
	}
	store_iter_free(it);
	if (ok && rc < 0) {
		fprintf(stderr, "%% ERROR: dataset '%s': %s\n", o->name, err);
		ok = 0;
	}
	if (ok && rc == 1) {
		fprintf(stderr, "%% ERROR: interrupted\n");
		ok = 0;
	}
	if (ok && (s.cls.oom || s.model.oom || s.day.oom || s.errtype.oom || s.lat.oom || s.ttft.oom)) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		ok = 0;
	}
	if (!ok) {
		stats_release(&s);
		return -1;
	}
	nums_sort(&s.lat);
	nums_sort(&s.ttft);
	double lat50 = nums_pct(&s.lat, 50), lat90 = nums_pct(&s.lat, 90), lat99 = nums_pct(&s.lat, 99);
	double tt50 = nums_pct(&s.ttft, 50), tt90 = nums_pct(&s.ttft, 90), tt99 = nums_pct(&s.ttft, 99);

	rc = 0;
	if (o->json) {
		cJSON *root = cJSON_CreateObject(), *x;
		cJSON_AddStringToObject(root, "dataset", o->name);
		if (o->batch >= 0)
			cJSON_AddNumberToObject(root, "batch", (double)o->batch);
		if (o->since >= 0)
			cJSON_AddNumberToObject(root, "since", (double)o->since);
		cJSON_AddNumberToObject(root, "items", (double)s.items);
		cJSON_AddItemToObject(root, "by_class", tally_json(&s.cls, 0));
		cJSON_AddItemToObject(root, "by_model", tally_json(&s.model, 0));
		cJSON_AddItemToObject(root, "by_day", tally_json(&s.day, 1));
		x = cJSON_AddObjectToObject(root, "tokens");
		cJSON_AddNumberToObject(x, "input", s.tok_in);
		cJSON_AddNumberToObject(x, "output", s.tok_out);
		cJSON_AddNumberToObject(x, "total", s.tok_total);
		x = cJSON_AddObjectToObject(root, "errors");
		cJSON_AddNumberToObject(x, "count", (double)s.errors);
		cJSON_AddItemToObject(x, "by_type", tally_json(&s.errtype, 0));
		nums_json(root, "latency_ms", &s.lat);
		nums_json(root, "ttft_ms", &s.ttft);
		rc = print_json(root);
	} else {
		char a[32], b[32], c[32];
		printf("dataset %s", o->name);
		if (o->batch >= 0)
			printf(", batch %lld", (long long)o->batch);
		if (o->since >= 0)
			printf(", since %lld", (long long)o->since);
		printf(": %lld items\n", (long long)s.items);
		tally_print(stdout, "per class", "CLASS", "ITEMS", &s.cls, 0, s.items);
		tally_print(stdout, "per model", "MODEL", "ITEMS", &s.model, 0, s.items);
		tally_print(stdout, "per day (UTC, of start_time)", "DAY", "ITEMS", &s.day, 1, s.items);
		printf("\ntokens\n  %-8s  %14.0f\n  %-8s  %14.0f\n  %-8s  %14.0f\n", "input", s.tok_in, "output",
		       s.tok_out, "total", s.tok_total);
		printf("\nerrors: %lld (%.1f%%)\n", (long long)s.errors,
		       s.items ? 100.0 * (double)s.errors / (double)s.items : 0);
		if (s.errors)
			tally_print(stdout, "errors per type", "TYPE", "ITEMS", &s.errtype, 0, s.errors);
		printf("\nlatency (ms)   %8s  %8s  %8s  %8s\n", "ITEMS", "P50", "P90", "P99");
		printf("  total        %8zu  %8s  %8s  %8s\n", s.lat.len, ms_text(lat50, a, sizeof(a)),
		       ms_text(lat90, b, sizeof(b)), ms_text(lat99, c, sizeof(c)));
		printf("  first token  %8zu  %8s  %8s  %8s\n", s.ttft.len, ms_text(tt50, a, sizeof(a)),
		       ms_text(tt90, b, sizeof(b)), ms_text(tt99, c, sizeof(c)));
	}
	if (s.no_record && o->verbosity > 0)
		fprintf(stderr, "%% %lld items carry no trace record\n", (long long)s.no_record);
	stats_release(&s);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = { .batch = -1, .since = -1, .progress = -1, .verbosity = 1 };
	struct store_reader *r = NULL;
	int rc;

	o.store = getenv("TRACESIFT_STORE");
	rc = parse_args(&o, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (!o.store || !*o.store)
		o.store = DEFAULT_STORE;

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);

	if (open_reader(&o, &r))
		return 1;
	switch (o.cmd) {
	case CMD_LS: rc = cmd_ls(r, &o); break;
	case CMD_COUNT: rc = cmd_count(r, &o); break;
	case CMD_CAT:
	case CMD_EXPORT: rc = cmd_items(r, &o); break;
	case CMD_STATS: rc = cmd_stats(r, &o); break;
	case CMD_BATCHES: rc = cmd_batches(r, &o); break;
	default: rc = -1; break;
	}
	store_reader_close(r);
	if (fflush(stdout) || ferror(stdout)) {
		if (rc == 0)
			fprintf(stderr, "%% ERROR: write to stdout: %s\n", strerror(errno));
		rc = -1;
	}
	return rc ? 1 : 0;
}
