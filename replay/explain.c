/* replay/explain.c - re-derive the sampler's decision for each replayed trace, and compare
 *
 * The decision is made exactly as tracesift-sampler makes it (sampler/select.c),
 * with the same core functions: the record is validated with the config's
 * limits (an invalid one is dead-lettered, never selected), sconf_classify()
 * gives its class, sample_draw(seed, trace_id) < the class's rate selects it.
 * A class with a rate limit applies the limit afterwards by arrival time, so
 * its decisions cannot be reproduced: a trace whose draw is below the rate is
 * "selected_unless_limited", and its absence from what was recorded is no
 * mismatch.
 *
 * What the sampler recorded is an item per selected trace, whose id is the
 * trace id (docs/sampling.md); items come from the monitoring topic or from
 * the datasets the sink stored.  A trace that is recorded but not selected
 * again, selected again but not recorded, or recorded in another class or
 * dataset, is a mismatch.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "replay.h"
#include "sample.h"
#include "sbuf.h"
#include "sconf.h"

/* What was recorded of one item id.  Dataset and class names are few:
 * each is kept once (names[]) and items point at it, so a dataset of
 * millions of items costs its ids and a little more. */
struct recorded {
	char *id;
	const char *dataset, *cls;
};

struct class_sum {
	uint64_t traces, would, recorded, mismatches;
};

struct explain {
	struct explain_opts o;
	struct sampler_conf conf;
	struct rec_limits limits;
	const char **datasets;
	int ndatasets;

	struct recorded *rec;  /* open addressing by id, cap a power of two */
	size_t cap, nrec;
	char **names;          /* every dataset and class name items carry, once */
	int nnames, names_cap;
	uint64_t duplicates, other_seed;
	char *recorded_from;   /* NULL: nothing to compare with */

	struct class_sum *cls;
	uint64_t traces, dead[REC_REASON_COUNT + 1];
	uint64_t dead_recorded;
	struct sbuf mismatches; /* "TRACE_ID\tWHY\n" lines */
	uint64_t nmismatch;
	struct sbuf line;
};

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct recorded *lookup(struct explain *e, const char *id)
{
	if (!e->cap)
		return NULL;
	size_t j = hash_id(id) & (e->cap - 1);
	while (e->rec[j].id) {
		if (!strcmp(e->rec[j].id, id))
			return &e->rec[j];
		j = (j + 1) & (e->cap - 1);
	}
	return NULL;
}

/* Adds an entry for id (not present yet); NULL when out of memory. */
static struct recorded *insert(struct explain *e, const char *id)
{
	if ((e->nrec + 1) * 2 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 1024;
		struct recorded *r = calloc(cap, sizeof(*r));
		if (!r)
			return NULL;
		for (size_t i = 0; i < e->cap; i++) {
			if (!e->rec[i].id)
				continue;
			size_t j = hash_id(e->rec[i].id) & (cap - 1);
			while (r[j].id)
				j = (j + 1) & (cap - 1);
			r[j] = e->rec[i];
		}
		free(e->rec);
		e->rec = r;
		e->cap = cap;
	}
	size_t j = hash_id(id) & (e->cap - 1);
	while (e->rec[j].id)
		j = (j + 1) & (e->cap - 1);
	if (!(e->rec[j].id = strdup(id)))
		return NULL;
	e->nrec++;
	return &e->rec[j];
}

struct explain *explain_new(const struct explain_opts *o, char *errstr, size_t size)
{
	struct explain *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(errstr, size, "out of memory");
		return NULL;
	}
	e->o = *o;
	sconf_init(&e->conf);
	sbuf_init(&e->mismatches);
	sbuf_init(&e->line);
	if (sconf_load(&e->conf, o->conf_path, errstr, size))
		goto fail;
	if (o->has_seed)
		e->conf.seed = o->seed;
	if (sconf_finish(&e->conf, errstr, size))
		goto fail;
	rec_limits_default(&e->limits);
	e->limits.max_bytes = e->conf.max_record_bytes;
	e->cls = calloc((size_t)e->conf.nclasses, sizeof(*e->cls));
	e->datasets = calloc((size_t)e->conf.nclasses, sizeof(*e->datasets));
	if (!e->cls || !e->datasets) {
		snprintf(errstr, size, "out of memory");
		goto fail;
	}
	for (int i = 0; i < e->conf.nclasses; i++) {
		const char *d = e->conf.classes[i].dataset;
		int seen = 0;
		for (int k = 0; k < e->ndatasets && !seen; k++)
			seen = !strcmp(e->datasets[k], d);
		if (!seen)
			e->datasets[e->ndatasets++] = d;
	}
	return e;
fail:
	explain_destroy(e);
	return NULL;
}

void explain_destroy(struct explain *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->cap; i++)
		free(e->rec[i].id);
	free(e->rec);
	for (int i = 0; i < e->nnames; i++)
		free(e->names[i]);
	free(e->names);
	free(e->cls);
	free(e->datasets);
	free(e->recorded_from);
	sbuf_release(&e->mismatches);
	sbuf_release(&e->line);
	sconf_release(&e->conf);
	free(e);
}

const struct rec_limits *explain_limits(const struct explain *e)
{
	return &e->limits;
}

uint64_t explain_seed(const struct explain *e)
{
	return e->conf.seed;
}

int explain_datasets(const struct explain *e, const char *const **names)
{
	*names = e->datasets;
	return e->ndatasets;
}

void explain_set_recorded(struct explain *e, const char *what)
{
	free(e->recorded_from);
	e->recorded_from = strdup(what);
}

/* The one copy of name; NULL when out of memory. */
static const char *intern(struct explain *e, const char *name)
{
	for (int i = e->nnames - 1; i >= 0; i--)
		if (!strcmp(e->names[i], name))
			return e->names[i];
	if (e->nnames == e->names_cap) {
		int cap = e->names_cap ? e->names_cap * 2 : 16;
		char **n = realloc(e->names, sizeof(*n) * (size_t)cap);
		if (!n)
			return NULL;
		e->names = n;
		e->names_cap = cap;
	}
	return (e->names[e->nnames] = strdup(name)) ? e->names[e->nnames++] : NULL;
}

int explain_record_item(struct explain *e, const char *json, size_t len, char *errstr, size_t size)
{
	cJSON *v = cJSON_ParseWithLength(json, len);
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
	const cJSON *ds = cJSON_GetObjectItemCaseSensitive(v, "dataset");
	const cJSON *cls = cJSON_GetObjectItemCaseSensitive(v, "class");
	const cJSON *seed = cJSON_GetObjectItemCaseSensitive(v, "seed");
	int rc = 1;
	if (!cJSON_IsObject(v)) {
		snprintf(errstr, size, "not a JSON object");
		rc = -1;
	} else if (cJSON_IsString(type) && !strcmp(type->valuestring, "batch")) {
		rc = 0;
	} else if (!cJSON_IsString(type) || strcmp(type->valuestring, "item")) {
		snprintf(errstr, size, "field 'type': expected \"item\" or \"batch\"");
		rc = -1;
	} else if (!cJSON_IsString(id) || !cJSON_IsString(ds)) {
		snprintf(errstr, size, "field '%s': expected a string", cJSON_IsString(id) ? "dataset" : "id");
		rc = -1;
	} else if (lookup(e, id->valuestring)) {
		e->duplicates++;
	} else {
		const char *d = intern(e, ds->valuestring), *c = intern(e, cJSON_IsString(cls) ? cls->valuestring : "");
		struct recorded *r = d && c ? insert(e, id->valuestring) : NULL;
		if (r) {
			r->dataset = d;
			r->cls = c;
		} else {
			snprintf(errstr, size, "out of memory");
			rc = -1;
		}
		if (cJSON_IsNumber(seed) && seed->valuedouble != (double)e->conf.seed)
			e->other_seed++;
	}
	cJSON_Delete(v);
	return rc;
}

/* The fewest digits that read back as the same double (0.1, not
 * 0.10000000000000001): a reader gets exactly the rate and the draw. */
static const char *num_text(double v, char *out, size_t size)
{
	snprintf(out, size, "%.15g", v);
	if (strtod(out, NULL) != v)
		snprintf(out, size, "%.17g", v);
	return out;
}

static void put_num(struct sbuf *b, double v)
{
	char n[40];
	sbuf_puts(b, num_text(v, n, sizeof(n)));
}

static void put_limit(struct sbuf *b, const struct sclass *c)
{
	sbuf_printf(b, "%d/%s", c->limit, c->limit_window_ms >= 60000 ? "min" : "s");
}

/* The members "class", "dataset", "rate" and "limit" (null without one) of
 * a JSON object, for class c. */
static void put_class_json(struct sbuf *b, const struct sclass *c)
{
	sbuf_puts(b, "\"class\":");
	sbuf_put_jstr(b, c->name, strlen(c->name));
	sbuf_puts(b, ",\"dataset\":");
	sbuf_put_jstr(b, c->dataset, strlen(c->dataset));
	sbuf_puts(b, ",\"rate\":");
	put_num(b, c->rate);
	sbuf_puts(b, ",\"limit\":");
	if (c->limit > 0) {
		sbuf_putc(b, '"');
		put_limit(b, c);
		sbuf_putc(b, '"');
	} else {
		sbuf_puts(b, "null");
	}
}

static void mismatch(struct explain *e, const char *id, int cls, const char *why)
{
	e->nmismatch++;
	if (cls >= 0)
		e->cls[cls].mismatches++;
	sbuf_puts(&e->mismatches, id);
	sbuf_putc(&e->mismatches, '\t');
	sbuf_puts(&e->mismatches, why);
	sbuf_putc(&e->mismatches, '\n');
}

/* The line of one trace. */
static void put_line(struct explain *e, FILE *out, const struct rmsg *m, const char *id, int cls, double draw,
                     const char *decision, const char *reason, const struct recorded *rec, const char *why)
{
	struct sbuf *b = &e->line;
	const struct sclass *c = cls >= 0 ? &e->conf.classes[cls] : NULL;
	b->len = 0;
	if (e->o.json) {
		sbuf_puts(b, "{\"type\":\"decision\",\"trace_id\":");
		if (id)
			sbuf_put_jstr(b, id, strlen(id));
		else
			sbuf_puts(b, "null");
		if (m->partition >= 0)
			sbuf_printf(b, ",\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld", (int)m->partition,
			            (long long)m->offset, (long long)m->ts_ms);
		else
			sbuf_printf(b, ",\"seq\":%lld", (long long)m->offset);
		sbuf_puts(b, ",\"decision\":");
		sbuf_put_jstr(b, decision, strlen(decision));
		if (reason) {
			sbuf_puts(b, ",\"reason\":");
			sbuf_put_jstr(b, reason, strlen(reason));
		}
		if (c) {
			sbuf_putc(b, ',');
			put_class_json(b, c);
			sbuf_printf(b, ",\"seed\":%llu,\"draw\":", (unsigned long long)e->conf.seed);
			put_num(b, draw);
		}
		sbuf_printf(b, ",\"reproducible\":%s", c && c->limit > 0 ? "false" : "true");
		if (e->recorded_from) {
			sbuf_puts(b, ",\"recorded\":");
			if (rec) {
				sbuf_puts(b, "{\"selected\":true,\"dataset\":");
				sbuf_put_jstr(b, rec->dataset, strlen(rec->dataset));
				sbuf_puts(b, ",\"class\":");
				sbuf_put_jstr(b, rec->cls, strlen(rec->cls));
				sbuf_putc(b, '}');
			} else {
				sbuf_puts(b, "{\"selected\":false}");
			}
			sbuf_puts(b, ",\"mismatch\":");
			if (why)
				sbuf_put_jstr(b, why, strlen(why));
			else
				sbuf_puts(b, "null");
		}
		sbuf_puts(b, "}\n");
	} else {
		sbuf_puts(b, id ? id : "-");
		sbuf_putc(b, ' ');
		sbuf_puts(b, decision);
		if (reason) {
			sbuf_putc(b, ':');
			sbuf_puts(b, reason);
		}
		if (c) {
			char d[40], rt[40];
			sbuf_printf(b, " class=%s dataset=%s draw=%s rate=%s", c->name, c->dataset,
			            num_text(draw, d, sizeof(d)), num_text(c->rate, rt, sizeof(rt)));
			if (c->limit > 0) {
				sbuf_puts(b, " limit=");
				put_limit(b, c);
			}
		}
		if (e->recorded_from)
			sbuf_puts(b, rec ? " recorded=selected" : " recorded=not_selected");
		if (why) {
			sbuf_puts(b, " MISMATCH: ");
			sbuf_puts(b, why);
		}
		sbuf_putc(b, '\n');
	}
	if (!b->oom)
		fwrite(b->buf, 1, b->len, out);
}

void explain_trace(struct explain *e, FILE *out, const struct rmsg *m, enum rec_reason r, const char *payload,
                   const struct rec_info *info)
{
	char why[512];
	const char *id = info && info->trace_id[0] ? info->trace_id : NULL;
	struct recorded *rec = id ? lookup(e, id) : NULL;
	e->traces++;

	if (r != REC_OK) {
		/* the sampler sends it to its dead-letter topic: never an item */
		e->dead[r < REC_REASON_COUNT ? r : REC_REASON_COUNT]++;
		const char *reason = r < REC_REASON_COUNT ? rec_reason_name(r) : "empty";
		const char *w = NULL;
		if (rec) {
			snprintf(why, sizeof(why), "recorded in dataset '%s' class '%s', but the sampler dead-letters it (%s)",
			         rec->dataset, rec->cls, reason);
			mismatch(e, id, -1, why);
			e->dead_recorded++;
			w = why;
		}
		if (!e->o.summary_only)
			put_line(e, out, m, id, -1, 0, "dead_letter", reason, rec, w);
		return;
	}

	int cls = sconf_classify(&e->conf, payload, info);
	const struct sclass *c = &e->conf.classes[cls];
	double draw = sample_draw(e->conf.seed, info->trace_id);
	int sel = sample_selected(draw, c->rate), limited = c->limit > 0;
	struct class_sum *s = &e->cls[cls];
	s->traces++;
	s->would += sel;
	s->recorded += rec != NULL;

	const char *w = NULL;
	char d[40], rt[40];
	num_text(draw, d, sizeof(d));
	num_text(c->rate, rt, sizeof(rt));
	if (e->recorded_from) {
		if (rec && !sel) {
			snprintf(why, sizeof(why), "recorded in dataset '%s' class '%s', not selected again (draw %s, "
			         "class '%s' rate %s)", rec->dataset, rec->cls, d, c->name, rt);
			w = why;
		} else if (rec && (strcmp(rec->dataset, c->dataset) || strcmp(rec->cls, c->name))) {
			snprintf(why, sizeof(why), "recorded in dataset '%s' class '%s', selected again into dataset '%s' "
			         "class '%s'", rec->dataset, rec->cls, c->dataset, c->name);
			w = why;
		} else if (!rec && sel && !limited) {
			snprintf(why, sizeof(why), "selected again into dataset '%s' class '%s' (draw %s < rate %s), "
			         "not recorded", c->dataset, c->name, d, rt);
			w = why;
		}
		if (w)
			mismatch(e, info->trace_id, cls, w);
	}
	if (!e->o.summary_only)
		put_line(e, out, m, info->trace_id, cls, draw,
		         !sel ? "not_selected" : limited ? "selected_unless_limited" : "selected", NULL, rec, w);
}

static uint64_t dead_total(const struct explain *e)
{
	uint64_t n = 0;
	for (int i = 0; i <= REC_REASON_COUNT; i++)
		n += e->dead[i];
	return n;
}

static const char *dead_name(int i)
{
	return i < REC_REASON_COUNT ? rec_reason_name((enum rec_reason)i) : "empty";
}

static void summary_json(struct explain *e, FILE *out, int complete)
{
	struct sbuf *b = &e->line;
	b->len = 0;
	sbuf_puts(b, "{\"type\":\"summary\",\"config\":");
	sbuf_put_jstr(b, e->o.conf_path, strlen(e->o.conf_path));
	sbuf_printf(b, ",\"seed\":%llu,\"complete\":%s,\"traces\":%llu,\"dead_lettered\":{\"count\":%llu,"
	            "\"by_reason\":{", (unsigned long long)e->conf.seed, complete ? "true" : "false",
	            (unsigned long long)e->traces, (unsigned long long)dead_total(e));
	for (int i = 1, n = 0; i <= REC_REASON_COUNT; i++)
		if (e->dead[i])
			sbuf_printf(b, "%s\"%s\":%llu", n++ ? "," : "", dead_name(i), (unsigned long long)e->dead[i]);
	sbuf_puts(b, "}},\"recorded\":");
	if (e->recorded_from)
		sbuf_put_jstr(b, e->recorded_from, strlen(e->recorded_from));
	else
		sbuf_puts(b, "null");
	sbuf_puts(b, ",\"classes\":[");
	for (int i = 0; i < e->conf.nclasses; i++) {
		const struct sclass *c = &e->conf.classes[i];
		const struct class_sum *s = &e->cls[i];
		sbuf_puts(b, i ? ",{" : "{");
		put_class_json(b, c);
		sbuf_printf(b, ",\"reproducible\":%s,\"traces\":%llu,\"would_select\":%llu,\"recorded_selected\":",
		            c->limit > 0 ? "false" : "true", (unsigned long long)s->traces, (unsigned long long)s->would);
		if (e->recorded_from)
			sbuf_printf(b, "%llu,\"mismatches\":%llu}", (unsigned long long)s->recorded,
			            (unsigned long long)s->mismatches);
		else
			sbuf_puts(b, "null,\"mismatches\":null}");
	}
	sbuf_puts(b, "],\"mismatches\":[");
	const char *p = e->mismatches.buf, *end = p ? p + e->mismatches.len : NULL;
	for (int n = 0; p && p < end; n++) {
		const char *tab = memchr(p, '\t', (size_t)(end - p)), *nl = memchr(tab, '\n', (size_t)(end - tab));
		sbuf_puts(b, n ? ",{\"trace_id\":" : "{\"trace_id\":");
		sbuf_put_jstr(b, p, (size_t)(tab - p));
		sbuf_puts(b, ",\"why\":");
		sbuf_put_jstr(b, tab + 1, (size_t)(nl - tab - 1));
		sbuf_putc(b, '}');
		p = nl + 1;
	}
	sbuf_printf(b, "],\"mismatch_count\":%llu", (unsigned long long)e->nmismatch);
	sbuf_printf(b, ",\"recorded_items\":%llu,\"recorded_other_seed\":%llu}\n", (unsigned long long)e->nrec,
	            (unsigned long long)e->other_seed);
	if (!b->oom)
		fwrite(b->buf, 1, b->len, out);
}

static void summary_text(struct explain *e, FILE *out, int complete)
{
	int w = 5, dw = 7;
	for (int i = 0; i < e->conf.nclasses; i++) {
		int n = (int)strlen(e->conf.classes[i].name), d = (int)strlen(e->conf.classes[i].dataset);
		w = n > w ? n : w;
		dw = d > dw ? d : dw;
	}
	if (!e->o.summary_only && e->traces)
		fputc('\n', out);
	fprintf(out, "sampling decisions of '%s' (seed %llu) for %llu traces%s\n", e->o.conf_path,
	        (unsigned long long)e->conf.seed, (unsigned long long)e->traces,
	        complete ? "" : " (interrupted: the range was not read to its end)");
	fprintf(out, "recorded decisions: %s\n", e->recorded_from ? e->recorded_from : "none given (nothing compared)");
	fprintf(out, "  %-*s  %-*s  %8s  %-9s  %8s  %12s  %8s  %10s\n", w, "CLASS", dw, "DATASET", "RATE", "LIMIT",
	        "TRACES", "WOULD SELECT", "SELECTED", "MISMATCHES");
	for (int i = 0; i < e->conf.nclasses; i++) {
		const struct sclass *c = &e->conf.classes[i];
		const struct class_sum *s = &e->cls[i];
		char limit[32] = "-", rec[24] = "-", mis[24] = "-";
		if (c->limit > 0)
			snprintf(limit, sizeof(limit), "%d/%s", c->limit, c->limit_window_ms >= 60000 ? "min" : "s");
		if (e->recorded_from) {
			snprintf(rec, sizeof(rec), "%llu", (unsigned long long)s->recorded);
			snprintf(mis, sizeof(mis), "%llu", (unsigned long long)s->mismatches);
		}
		fprintf(out, "  %-*s  %-*s  %8g  %-9s  %8llu  %11llu%s  %8s  %10s\n", w, c->name, dw, c->dataset, c->rate,
		        limit, (unsigned long long)s->traces, (unsigned long long)s->would, c->limit > 0 ? "*" : " ",
		        rec, mis);
	}
	for (int i = 0; i < e->conf.nclasses; i++)
		if (e->conf.classes[i].limit > 0) {
			fprintf(out, "  * a rate limit drops some of these by arrival time: not reproducible, never a "
			        "mismatch when not recorded\n");
			break;
		}
	uint64_t dead = dead_total(e);
	if (dead) {
		fprintf(out, "dead-lettered by the sampler (never selected): %llu (", (unsigned long long)dead);
		for (int i = 1, n = 0; i <= REC_REASON_COUNT; i++)
			if (e->dead[i])
				fprintf(out, "%s%s %llu", n++ ? ", " : "", dead_name(i), (unsigned long long)e->dead[i]);
		fprintf(out, ")\n");
	}
	if (e->other_seed)
		fprintf(out, "note: %llu recorded items name another seed than %llu\n", (unsigned long long)e->other_seed,
		        (unsigned long long)e->conf.seed);
	if (!e->recorded_from)
		return;
	fprintf(out, "mismatches: %llu\n", (unsigned long long)e->nmismatch);
	const char *p = e->mismatches.buf, *end = p ? p + e->mismatches.len : NULL;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *tab = memchr(p, '\t', (size_t)(nl - p));
		fprintf(out, "  %.*s  %.*s\n", (int)(tab - p), p, (int)(nl - tab - 1), tab + 1);
		p = nl + 1;
	}
}

uint64_t explain_summary(struct explain *e, FILE *out, int complete)
{
	if (e->o.json)
		summary_json(e, out, complete);
	else
		summary_text(e, out, complete);
	return e->nmismatch;
}
