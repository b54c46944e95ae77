/* core/tally.c - counts per string key, and numbers for percentiles (dataset stats, replay reports) */
#include "tally.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
