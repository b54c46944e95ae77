/* core/tally.c - counts per string key, and numbers for percentiles (dataset stats, replay reports) */
#include "tally.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

void tally_add(struct tally *t, const char *key, int64_t n)
{
	if (t->oom)
		return;
	if ((t->len + 1) * 2 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct tally_ent *e = calloc(cap, sizeof(*e));
		if (!e) {
			t->oom = 1;
			return;
		}
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->e[i].key)
				continue;
			size_t j = hash_str(t->e[i].key) & (cap - 1);
			while (e[j].key)
				j = (j + 1) & (cap - 1);
			e[j] = t->e[i];
		}
		free(t->e);
		t->e = e;
		t->cap = cap;
	}
	size_t j = hash_str(key) & (t->cap - 1);
	while (t->e[j].key && strcmp(t->e[j].key, key))
		j = (j + 1) & (t->cap - 1);
	if (!t->e[j].key) {
		if (!(t->e[j].key = strdup(key))) {
			t->oom = 1;
			return;
		}
		t->len++;
	}
	t->e[j].n += n;
}

static int by_count(const void *a, const void *b)
{
	const struct tally_ent *x = *(const struct tally_ent *const *)a, *y = *(const struct tally_ent *const *)b;
	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->key, y->key);
}

static int by_key(const void *a, const void *b)
{
	return strcmp((*(const struct tally_ent *const *)a)->key, (*(const struct tally_ent *const *)b)->key);
}

struct tally_ent **tally_sorted(const struct tally *t, int keys)
{
	struct tally_ent **v = malloc(sizeof(*v) * (t->len + 1));
	size_t n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < t->cap; i++)
		if (t->e[i].key)
			v[n++] = &t->e[i];
	qsort(v, n, sizeof(*v), keys ? by_key : by_count);
	return v;
}

void tally_release(struct tally *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->e[i].key);
	free(t->e);
	memset(t, 0, sizeof(*t));
}

void nums_add(struct nums *a, double x)
{
	if (a->oom || !isfinite(x))
		return;
	if (a->len == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 1024;
		double *v = realloc(a->v, sizeof(*v) * cap);
		if (!v) {
			a->oom = 1;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->len++] = x;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

void nums_sort(struct nums *a)
{
	if (a->len)
		qsort(a->v, a->len, sizeof(double), cmp_double);
}

double nums_pct(const struct nums *a, int pct)
{
	if (!a->len)
		return NAN;
	size_t rank = (a->len * (size_t)pct + 99) / 100;
	return a->v[rank ? rank - 1 : 0];
}

void nums_release(struct nums *a)
{
	free(a->v);
	memset(a, 0, sizeof(*a));
}

struct cJSON *tally_json(const struct tally *t, int keys)
{
	cJSON *o = cJSON_CreateObject();
	struct tally_ent **v = tally_sorted(t, keys);
	for (size_t i = 0; v && i < t->len; i++)
		cJSON_AddNumberToObject(o, v[i]->key, (double)v[i]->n);
	free(v);
	return o;
}

/* Writes s for a person: control characters (a newline in a model name, an
 * escape sequence) become '?', so a table stays a table. */
static void put_text(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

/* Display width of UTF-8 text: one column per code point. */
static int text_width(const char *s)
{
	int w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void pad(FILE *f, int n)
{
	while (n-- > 0)
		fputc(' ', f);
}

void tally_print(FILE *out, const char *title, const char *what, const char *unit, const struct tally *t,
                 int keys, uint64_t total)
{
	struct tally_ent **v = tally_sorted(t, keys);
	int w = text_width(what);
	if (!v)
		return;
	for (size_t i = 0; i < t->len; i++)
		if (text_width(v[i]->key) > w)
			w = text_width(v[i]->key);
	fprintf(out, "\n%s\n  ", title);
	put_text(out, what);
	pad(out, w - text_width(what));
	fprintf(out, "  %10s  %6s\n", unit, "SHARE");
	for (size_t i = 0; i < t->len; i++) {
		fputs("  ", out);
		put_text(out, v[i]->key);
		pad(out, w - text_width(v[i]->key));
		fprintf(out, "  %10lld  %5.1f%%\n", (long long)v[i]->n, total ? 100.0 * (double)v[i]->n / (double)total : 0);
	}
	free(v);
}

static void num_or_null(cJSON *o, const char *key, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

void nums_json(struct cJSON *o, const char *key, const struct nums *a)
{
	cJSON *x = cJSON_AddObjectToObject(o, key);
	cJSON_AddNumberToObject(x, "count", (double)a->len);
	num_or_null(x, "p50", nums_pct(a, 50));
	num_or_null(x, "p90", nums_pct(a, 90));
	num_or_null(x, "p99", nums_pct(a, 99));
}
