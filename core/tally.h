/* core/tally.h - counts per string key, and numbers for percentiles (dataset stats, replay reports) */
#ifndef TS_TALLY_H
#define TS_TALLY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cJSON;

/* Counts per key.  Embedded (zeroed to start); tally_release() frees.  On
 * allocation failure the tally is marked (oom) and later adds are ignored:
 * the caller checks the flag once at the end. */
struct tally_ent {
	char *key;
	int64_t n;
};

struct tally {
	struct tally_ent *e; /* open addressing, cap a power of two */
	size_t cap, len;
	int oom;
};

/* Adds n to key's count (a copy of key is kept). */
void tally_add(struct tally *t, const char *key, int64_t n);
/* The entries, sorted by count (most first, then by key) or, keys != 0, by
 * key; the caller frees the array (not the entries), valid until the next
 * add.  NULL when out of memory. */
struct tally_ent **tally_sorted(const struct tally *t, int keys);
void tally_release(struct tally *t);
/* The tally as a JSON object {KEY: COUNT, ...} in tally_sorted() order; the
 * caller owns it.  Out of memory: what fitted (NULL when nothing did). */
struct cJSON *tally_json(const struct tally *t, int keys);
/* The tally as a table for a person: a blank line, title, a header (what,
 * unit, SHARE), then KEY  COUNT  SHARE% a row, the share of total.  Keys
 * are written with control characters as '?' and padded by code points.
 * Out of memory: nothing. */
void tally_print(FILE *out, const char *title, const char *what, const char *unit, const struct tally *t,
                 int keys, uint64_t total);

/* A list of numbers.  Embedded (zeroed to start); nums_release() frees.
 * Out of memory marks it (oom), as for a tally. */
struct nums {
	double *v;
	size_t len, cap;
	int oom;
};

/* Adds x; numbers that are not finite are ignored. */
void nums_add(struct nums *a, double x);
/* Sorts the numbers: nums_pct() needs them sorted. */
void nums_sort(struct nums *a);
/* Nearest rank of the sorted list: the smallest value with at least pct
 * percent of the values at or below it; NAN for an empty list. */
double nums_pct(const struct nums *a, int pct);
void nums_release(struct nums *a);
/* Adds key: {"count": N, "p50": X, "p90": X, "p99": X} to the JSON object
 * o, a percentile null when there is none; a must be sorted. */
void nums_json(struct cJSON *o, const char *key, const struct nums *a);

#endif
