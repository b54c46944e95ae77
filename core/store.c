/* core/store.c - the dataset store: append-only zstd JSONL segments and an atomic manifest
 *
 * docs/store.md describes the files.  In memory the writer keeps, per
 * dataset, its committed state (as in the MANIFEST) plus what is staged:
 * chunks of staged items (JSONL, about CHUNK_RAW bytes each) that become one
 * zstd frame each, the id index file as one buffer (its committed bytes then
 * the staged ones; the hash set points into it), and the completed-batch
 * lines not yet written.  A full chunk is compressed by the writer's worker
 * thread while store_add() goes on, so compression overlaps the caller's own
 * work; store_commit() waits for the last ones.  A commit writes everything
 * staged from the committed lengths on, so a failed commit is retried by
 * writing the same bytes again at the same offsets, after truncating what
 * the failed attempt left (its fds are closed, never fsynced again).
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "afile.h"
#include "errfmt.h"
#include "sbuf.h"
#include "tstime.h"

#define MANIFEST_FORMAT  "tracesift-store"
#define MANIFEST_VERSION 1
#define CHUNK_RAW        ((size_t)1 << 20)   /* a chunk (one frame) is cut at this many bytes */
#define CHUNKS_KEPT      8                   /* spare chunks the writer keeps for reuse */
#define READ_CHUNK       ((size_t)256 << 10)
#define ARENA_OFF_MAX    ((uint64_t)1 << 40) /* the id slots keep 40 bits of offset */
#define SEG_PREFIX       "seg-"
#define SEG_SUFFIX       ".jsonl.zst"

/* ---- small helpers ------------------------------------------------------ */


/* Formats a path; -1 (errno ENAMETOOLONG) when it does not fit. */
static int mkpath(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int mkpath(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* A growable array: makes room in *pp (any object pointer, passed by
 * address) for need elements of size elem.  0 / -1 (unchanged). */
static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 8;
	while (n < need)
		n *= 2;
	void *p;
	memcpy(&p, pp, sizeof(p));
	void *q = realloc(p, n * elem);
	if (!q)
		return -1;
	memcpy(pp, &q, sizeof(q));
	*cap = n;
	return 0;
}

/* A byte buffer whose failures are not sticky (unlike sbuf): a failed
 * reserve leaves it as it was, so staged data stays whole. */
struct buf {
	char  *p;
	size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t n)
{
	if (n <= b->cap - b->len)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2)
			return -1;
		cap *= 2;
	}
	char *q = realloc(b->p, cap);
	if (!q)
		return -1;
	b->p = q;
	b->cap = cap;
	return 0;
}

/* Only after buf_reserve(). */
static inline void buf_put(struct buf *b, const void *p, size_t n)
{
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void buf_release(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Decimal digits of v into out (at least 21 bytes); returns the length. */
static size_t fmt_i64(char *out, int64_t v)
{
	char tmp[24];
	size_t n = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	size_t k = 0;
	if (v < 0)
		out[k++] = '-';
	while (n)
		out[k++] = tmp[--n];
	return k;
}

/* Parses an optional '-' and decimal digits, all of s[0..n); 0 / -1. */
static int parse_i64(const char *s, size_t n, int64_t *out)
{
	size_t i = 0;
	int neg = 0;
	if (n && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == n || n - i > 18)
		return -1;
	int64_t v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

static int write_all(int fd, const void *p, size_t n, uint64_t off)
{
	const char *c = p;
	while (n) {
		ssize_t k = pwrite(fd, c, n, (off_t)off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0) {
			errno = ENOSPC;
			return -1;
		}
		c += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* Reads exactly n bytes at off; -1 with errno (EIO when the file is shorter). */
static int read_all(int fd, void *p, size_t n, uint64_t off)
{
	char *c = p;
	while (n) {
		ssize_t k = pread(fd, c, n, (off_t)off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0) {
			errno = EIO;
			return -1;
		}
		c += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* mkdir 0700; an existing directory is fine. */
static int make_dir(const char *path)
{
	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

static int name_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= STORE_NAME_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return n > 0 && strcmp(s, ".") && strcmp(s, "..");
}

static int check_name(const char *s, char *errstr, size_t size)
{
	if (!s)
		return errfmt(errstr, size, "missing dataset name");
	if (!name_ok(s)) {
		if (strlen(s) > STORE_NAME_MAX)
			return errfmt(errstr, size, "bad dataset name '%.40s...': longer than %d bytes",
			            s, STORE_NAME_MAX);
		return errfmt(errstr, size, "bad dataset name '%.100s': use 1 to %d of A-Z a-z 0-9 . _ -",
		            s, STORE_NAME_MAX);
	}
	return 0;
}

/* Length of a valid id, or 0 with errstr. */
static size_t check_id(const char *id, const char *dataset, char *errstr, size_t size)
{
	if (!id) {
		errfmt(errstr, size, "missing item id in dataset '%s'", dataset);
		return 0;
	}
	size_t n = 0;
	for (; id[n]; n++) {
		unsigned char c = (unsigned char)id[n];
		if (n >= STORE_ID_MAX) {
			errfmt(errstr, size, "bad item id '%.40s...' in dataset '%s': longer than %d bytes",
			     id, dataset, STORE_ID_MAX);
			return 0;
		}
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
			errfmt(errstr, size, "bad item id in dataset '%s': byte %zu is 0x%02x (ids are "
			     "printable ASCII without quotes or backslashes)", dataset, n, c);
			return 0;
		}
	}
	if (!n)
		errfmt(errstr, size, "empty item id in dataset '%s'", dataset);
	return n;
}

/* "seg-000012.jsonl.zst" -> 12; 0 when the name is not a segment's. */
static uint32_t seg_num(const char *name)
{
	size_t n = strlen(name), pl = strlen(SEG_PREFIX), sl = strlen(SEG_SUFFIX);
	if (n < pl + 6 + sl || n > pl + 10 + sl || strncmp(name, SEG_PREFIX, pl) ||
	    strcmp(name + n - sl, SEG_SUFFIX))
		return 0;
	uint64_t v = 0;
	for (size_t i = pl; i < n - sl; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	return v > 0 && v <= UINT32_MAX ? (uint32_t)v : 0;
}

static void seg_name(char *out, uint32_t num)
{
	snprintf(out, 32, SEG_PREFIX "%06u" SEG_SUFFIX, num);
}

/* ---- what the manifest says ------------------------------------------- */

struct seg {
	uint32_t num;
	uint64_t bytes;          /* committed */
	int64_t  items, first_seq;
	int64_t  min_batch, max_batch; /* -1: no item with a batch */
	int64_t  created_us;
	uint64_t ids_off;        /* offset in the ids file of the segment's first item */
};

/* A batch that is not complete yet (complete ones live in the batches file). */
struct obatch {
	int64_t batch, first_seq;
	int size, have, partial, trigger;
};

struct dsmeta {
	char name[STORE_NAME_MAX + 1];
	int64_t items;
	uint64_t ids_bytes, batches_bytes;
	int64_t nbatches;        /* lines in the batches file */
	uint32_t next_seg;
	struct seg *segs;
	size_t nsegs, csegs;
	struct obatch *open;
	size_t nopen, copen;
};

struct offent {
	char *topic;
	int32_t partition;
	int64_t committed, staged; /* -1: none */
};

static void dsmeta_release(struct dsmeta *m)
{
	free(m->segs);
	free(m->open);
}

static int json_int(const cJSON *obj, const char *key, int64_t min, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsNumber(v))
		return -1;
	double d = v->valuedouble;
	if (d != d || d < (double)min || d > 9007199254740992.0 || d != (double)(int64_t)d)
		return -1;
	*out = (int64_t)d;
	return 0;
}

static int json_bool(const cJSON *obj, const char *key, int *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsBool(v))
		return -1;
	*out = cJSON_IsTrue(v);
	return 0;
}

static int parse_segment(const cJSON *j, struct seg *s, const char **why)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "file");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "created");
	int64_t bytes, ids_off, created;
	if (!cJSON_IsString(f) || !(s->num = seg_num(f->valuestring))) {
		*why = "bad segment file name";
		return -1;
	}
	if (json_int(j, "bytes", 0, &bytes) || json_int(j, "items", 1, &s->items) ||
	    json_int(j, "first_seq", 0, &s->first_seq) || json_int(j, "min_batch", -1, &s->min_batch) ||
	    json_int(j, "max_batch", -1, &s->max_batch) || json_int(j, "ids_offset", 0, &ids_off) ||
	    !cJSON_IsString(c) || tstime_parse(c->valuestring, strlen(c->valuestring), &created)) {
		*why = "bad segment fields";
		return -1;
	}
	s->bytes = (uint64_t)bytes;
	s->ids_off = (uint64_t)ids_off;
	s->created_us = created;
	return 0;
}

static int parse_obatch(const cJSON *j, struct obatch *b)
{
	int64_t size, have;
	if (json_int(j, "batch", 0, &b->batch) || json_int(j, "size", 0, &size) ||
	    json_int(j, "have", 0, &have) || json_int(j, "first_seq", -1, &b->first_seq) ||
	    json_bool(j, "partial", &b->partial) || json_bool(j, "trigger", &b->trigger) ||
	    size > INT_MAX || have > INT_MAX)
		return -1;
	b->size = (int)size;
	b->have = (int)have;
	return 0;
}

/* One dataset object of the manifest into m (zeroed by the caller). */
static int parse_dataset(const cJSON *j, struct dsmeta *m, const char **why)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "ids");
	const cJSON *bat = cJSON_GetObjectItemCaseSensitive(j, "batches");
	const cJSON *segs = cJSON_GetObjectItemCaseSensitive(j, "segments");
	const cJSON *open = cJSON_GetObjectItemCaseSensitive(j, "open_batches");
	int64_t next, idb, bb;
	*why = "bad dataset fields";
	if (json_int(j, "items", 0, &m->items) || json_int(j, "next_segment", 1, &next) ||
	    next > UINT32_MAX || json_int(ids, "bytes", 0, &idb) || json_int(bat, "bytes", 0, &bb) ||
	    json_int(bat, "count", 0, &m->nbatches) || !cJSON_IsArray(segs) || !cJSON_IsArray(open))
		return -1;
	m->next_seg = (uint32_t)next;
	m->ids_bytes = (uint64_t)idb;
	m->batches_bytes = (uint64_t)bb;
	size_t n = (size_t)cJSON_GetArraySize(segs);
	if (n && !(m->segs = calloc(n, sizeof(*m->segs)))) {
		*why = "out of memory";
		return -1;
	}
	m->csegs = n;
	int64_t seq = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, segs) {
		struct seg *s = &m->segs[m->nsegs];
		if (parse_segment(e, s, why))
			return -1;
		if (s->first_seq != seq || s->num >= m->next_seg ||
		    (m->nsegs && (s->num <= s[-1].num || s->ids_off < s[-1].ids_off)) ||
		    s->ids_off > m->ids_bytes) {
			*why = "segments out of order";
			return -1;
		}
		seq += s->items;
		m->nsegs++;
	}
	if (seq != m->items) {
		*why = "segment items do not add up to the item count";
		return -1;
	}
	n = (size_t)cJSON_GetArraySize(open);
	if (n && !(m->open = calloc(n, sizeof(*m->open)))) {
		*why = "out of memory";
		return -1;
	}
	m->copen = n;
	cJSON_ArrayForEach(e, open) {
		if (parse_obatch(e, &m->open[m->nopen])) {
			*why = "bad open batch";
			return -1;
		}
		m->nopen++;
	}
	return 0;
}

/* What store_reader and store_writer share of a parsed manifest.  Each
 * dataset is allocated with ds_size bytes, struct dsmeta first. */
struct manifest {
	int64_t generation;
	struct dsmeta **ds;   /* sorted by name */
	size_t nds;
	struct offent *offs;
	size_t noffs;
};

static int cmp_dsname(const void *a, const void *b)
{
	return strcmp((*(struct dsmeta *const *)a)->name, (*(struct dsmeta *const *)b)->name);
}

static int manifest_read(const char *dir, size_t ds_size, struct manifest *mf,
                         char *errstr, size_t errstr_size)
{
	char path[PATH_MAX];
	memset(mf, 0, sizeof(*mf));
	if (mkpath(path, sizeof(path), "%s/MANIFEST", dir))
		return errfmt(errstr, errstr_size, "cannot read store '%s': path too long", dir);
	size_t len = 0;
	char *text = afile_read(path, &len);
	if (!text)
		return errfmt(errstr, errstr_size, "cannot read manifest '%s': %s", path, strerror(errno));
	cJSON *root = cJSON_ParseWithLength(text, len);
	free(text);
	const char *why = "not JSON";
	const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
	const cJSON *dsj = cJSON_GetObjectItemCaseSensitive(root, "datasets");
	const cJSON *offj = cJSON_GetObjectItemCaseSensitive(root, "offsets");
	int64_t version;
	if (!root)
		goto bad;
	why = "not a tracesift store manifest";
	if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, MANIFEST_FORMAT) ||
	    json_int(root, "version", 0, &version) || json_int(root, "generation", 0, &mf->generation) ||
	    !cJSON_IsObject(dsj) || !cJSON_IsObject(offj))
		goto bad;
	why = "unsupported version";
	if (version != MANIFEST_VERSION)
		goto bad;
	size_t n = (size_t)cJSON_GetArraySize(dsj);
	why = "out of memory";
	if (n && !(mf->ds = calloc(n, sizeof(*mf->ds))))
		goto bad;
	const cJSON *e;
	cJSON_ArrayForEach(e, dsj) {
		why = "bad dataset name";
		if (!e->string || !name_ok(e->string))
			goto bad;
		why = "out of memory";
		struct dsmeta *m = calloc(1, ds_size);
		if (!m)
			goto bad;
		mf->ds[mf->nds++] = m;
		strcpy(m->name, e->string);
		if (parse_dataset(e, m, &why))
			goto bad;
	}
	if (mf->nds)
		qsort(mf->ds, mf->nds, sizeof(*mf->ds), cmp_dsname);
	for (size_t i = 1; i < mf->nds; i++) {
		why = "a dataset is listed twice";
		if (!strcmp(mf->ds[i - 1]->name, mf->ds[i]->name))
			goto bad;
	}
	n = (size_t)cJSON_GetArraySize(offj);
	why = "out of memory";
	if (n && !(mf->offs = calloc(n, sizeof(*mf->offs))))
		goto bad;
	cJSON_ArrayForEach(e, offj) {
		const char *slash = e->string ? strrchr(e->string, '/') : NULL;
		int64_t part, next;
		why = "bad offset";
		if (!slash || slash == e->string || parse_i64(slash + 1, strlen(slash + 1), &part) ||
		    part < 0 || part > INT32_MAX || !cJSON_IsNumber(e) ||
		    json_int(offj, e->string, 0, &next))
			goto bad;
		struct offent *o = &mf->offs[mf->noffs];
		why = "out of memory";
		if (!(o->topic = strndup(e->string, (size_t)(slash - e->string))))
			goto bad;
		o->partition = (int32_t)part;
		o->committed = next;
		o->staged = -1;
		mf->noffs++;
	}
	cJSON_Delete(root);
	return 0;
bad:
	cJSON_Delete(root);
	for (size_t i = 0; i < mf->nds; i++) {
		dsmeta_release(mf->ds[i]);
		free(mf->ds[i]);
	}
	for (size_t i = 0; i < mf->noffs; i++)
		free(mf->offs[i].topic);
	free(mf->ds);
	free(mf->offs);
	memset(mf, 0, sizeof(*mf));
	return errfmt(errstr, errstr_size, "bad manifest '%s': %s", path, why);
}

/* One line of the batches file: a complete batch. */
static int parse_batch_line(const char *s, size_t n, struct store_batch *b)
{
	cJSON *j = cJSON_ParseWithLength(s, n);
	int64_t size;
	int partial = 0;
	int rc = -1;
	if (j && !json_int(j, "batch", 0, &b->batch) && !json_int(j, "size", 1, &size) &&
	    size <= INT_MAX && !json_bool(j, "partial", &partial) &&
	    !json_int(j, "first_seq", -1, &b->first_seq)) {
		b->size = b->have = (int)size;
		b->partial = partial;
		b->state = BATCH_COMPLETE;
		rc = 0;
	}
	cJSON_Delete(j);
	return rc;
}

/* ---- the writer --------------------------------------------------------- */

/* Staged items of one dataset that become one zstd frame.  Once handed to
 * the worker, only the worker touches it until chunks_wait() returns. */
struct chunk {
	struct chunk *next;       /* the dataset's staged chunks, or the spares */
	struct chunk *qnext;      /* the worker's queue */
	struct buf raw;           /* the JSONL lines */
	struct buf z;             /* the frame, once compressed */
	int64_t items, min_batch, max_batch;
	size_t ids_start;         /* the ids-file offset of its first item */
	size_t zerr;              /* a zstd error code, when compressing failed */
};

struct wds {
	struct dsmeta m;          /* committed, except open batches: committed + staged */
	/* the ids file: [0, m.ids_bytes) committed, the rest staged; the hash
	 * set's slots point into it: off << 24 | len << 16 | 16 bits of hash */
	struct buf ids;
	uint64_t *slots;
	size_t nslots, nused;
	/* complete batches: their numbers (sorted), and the lines not yet written */
	int64_t *done;
	size_t ndone, cdone;
	struct buf bstaged;
	int64_t nbstaged;
	/* staged items: chunks handed to the worker (in order), and the one
	 * being filled */
	struct chunk *shead, *stail, *cur;
	size_t nst;
	int64_t proj_items;       /* items the last segment will hold once the staged
	                             ones are in: where the next chunk must be cut */
	/* open files, kept between commits; closed (and so truncated back on
	 * their next open) after any failure */
	int segfd, idsfd, batfd;
	uint32_t segfd_num;
	int seg_touched, ids_touched, bat_touched, need_dirsync;
	int dir_synced;           /* datasets/NAME is known durable */
	/* saved before a commit attempt, restored if it fails */
	size_t sv_nsegs;
	struct seg sv_last;
	uint32_t sv_next_seg;
};

struct store_writer {
	char *dir;
	int lockfd;
	struct store_limits lim;
	ZSTD_CCtx *cctx;          /* the worker's (or the caller's, without a worker) */
	/* the compression worker: chunks in qhead..qtail, npending not done yet */
	pthread_t worker;
	int worker_ok, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	struct chunk *qhead, *qtail;
	size_t npending;
	struct chunk *spare;
	size_t nspare;
	struct wds **ds;          /* sorted by name */
	size_t nds, cds;
	struct wds *last;
	struct offent *offs;
	size_t noffs, coffs, last_off;
	int64_t generation;
	int64_t nstaged;
	int dirty;                /* something to write at the next commit */
	int offset_oom;           /* store_set_offset() could not record one */
	uint64_t seed;
};

void store_limits_default(struct store_limits *lim)
{
	lim->segment_items = 100000;
	lim->segment_bytes = (int64_t)64 << 20;
	lim->segment_age_s = 3600;
	lim->zstd_level = 3;
}

static uint64_t id_hash(uint64_t seed, const char *s, size_t n)
{
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, s, 8);
		h = (h ^ v) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
		s += 8;
		n -= 8;
	}
	uint64_t v = 0;
	memcpy(&v, s, n);
	h = (h ^ v) * 0x94d049bb133111ebULL;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return h;
}

#define SLOT_OFF(s) ((s) >> 24)
#define SLOT_LEN(s) ((size_t)(((s) >> 16) & 0xff))
#define SLOT_TAG(h) ((h) >> 48)

static int idset_has(const struct wds *d, const char *id, size_t n, uint64_t h)
{
	if (!d->nslots)
		return 0;
	size_t mask = d->nslots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint64_t s = d->slots[i];
		if (!s)
			return 0;
		if ((s & 0xffff) == SLOT_TAG(h) && SLOT_LEN(s) == n &&
		    !memcmp(d->ids.p + SLOT_OFF(s), id, n))
			return 1;
	}
}

static void idset_put(uint64_t *slots, size_t nslots, uint64_t h, uint64_t off, size_t n)
{
	size_t mask = nslots - 1, i = h & mask;
	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = off << 24 | (uint64_t)n << 16 | SLOT_TAG(h);
}

/* Room for one more id (load factor at most 1/2); 0 / -1 (out of memory). */
static int idset_reserve(struct wds *d, uint64_t seed)
{
	if ((d->nused + 1) * 2 <= d->nslots)
		return 0;
	size_t n = d->nslots ? d->nslots * 2 : 1024;
	uint64_t *s = calloc(n, sizeof(*s));
	if (!s)
		return -1;
	for (size_t i = 0; i < d->nslots; i++) {
		uint64_t v = d->slots[i];
		if (v)
			idset_put(s, n, id_hash(seed, d->ids.p + SLOT_OFF(v), SLOT_LEN(v)),
			          SLOT_OFF(v), SLOT_LEN(v));
	}
	free(d->slots);
	d->slots = s;
	d->nslots = n;
	return 0;
}

static void wds_close_files(struct wds *d)
{
	if (d->segfd >= 0)
		close(d->segfd);
	if (d->idsfd >= 0)
		close(d->idsfd);
	if (d->batfd >= 0)
		close(d->batfd);
	d->segfd = d->idsfd = d->batfd = -1;
	d->seg_touched = d->ids_touched = d->bat_touched = 0;
}

static void chunk_free(struct chunk *c)
{
	if (!c)
		return;
	buf_release(&c->raw);
	buf_release(&c->z);
	free(c);
}

static void wds_free(struct wds *d)
{
	if (!d)
		return;
	wds_close_files(d);
	dsmeta_release(&d->m);
	buf_release(&d->ids);
	buf_release(&d->bstaged);
	while (d->shead) {
		struct chunk *c = d->shead;
		d->shead = c->next;
		chunk_free(c);
	}
	chunk_free(d->cur);
	free(d->slots);
	free(d->done);
	free(d);
}

static void wds_init_fds(struct wds *d)
{
	d->segfd = d->idsfd = d->batfd = -1;
}

/* -- chunks and the compression worker -- */

static void compress_chunk(ZSTD_CCtx *cctx, struct chunk *c)
{
	c->z.len = 0;
	if (buf_reserve(&c->z, ZSTD_compressBound(c->raw.len))) {
		c->zerr = (size_t)-ZSTD_error_memory_allocation;
		return;
	}
	size_t n = ZSTD_compress2(cctx, c->z.p, c->z.cap, c->raw.p, c->raw.len);
	if (ZSTD_isError(n)) {
		c->zerr = n;
		return;
	}
	c->z.len = n;
	c->zerr = 0;
}

static void *worker_main(void *arg)
{
	struct store_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->qhead && !w->stop)
			pthread_cond_wait(&w->cv_work, &w->mu);
		struct chunk *c = w->qhead;
		if (!c)
			break;
		w->qhead = c->qnext;
		if (!w->qhead)
			w->qtail = NULL;
		pthread_mutex_unlock(&w->mu);
		compress_chunk(w->cctx, c);
		pthread_mutex_lock(&w->mu);
		w->npending--;
		pthread_cond_signal(&w->cv_done);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Hands c to the worker (or compresses it here when there is none). */
static void chunk_submit(struct store_writer *w, struct chunk *c)
{
	c->qnext = NULL;
	if (!w->worker_ok) {
		compress_chunk(w->cctx, c);
		return;
	}
	pthread_mutex_lock(&w->mu);
	if (w->qtail)
		w->qtail->qnext = c;
	else
		w->qhead = c;
	w->qtail = c;
	w->npending++;
	pthread_cond_signal(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
}

/* Waits until every chunk handed to the worker is compressed. */
static void chunks_wait(struct store_writer *w)
{
	if (!w->worker_ok)
		return;
	pthread_mutex_lock(&w->mu);
	while (w->npending)
		pthread_cond_wait(&w->cv_done, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/* An empty chunk, a spare one when there is one; NULL when out of memory. */
static struct chunk *chunk_get(struct store_writer *w)
{
	struct chunk *c = w->spare;
	if (c) {
		w->spare = c->next;
		w->nspare--;
	} else if (!(c = calloc(1, sizeof(*c)))) {
		return NULL;
	}
	c->next = c->qnext = NULL;
	c->raw.len = c->z.len = 0;
	c->items = 0;
	c->min_batch = c->max_batch = -1;
	c->zerr = 0;
	return c;
}

static void chunk_put(struct store_writer *w, struct chunk *c)
{
	if (w->nspare >= CHUNKS_KEPT || c->raw.cap > 4 * CHUNK_RAW) {
		chunk_free(c);
		return;
	}
	c->next = w->spare;
	w->spare = c;
	w->nspare++;
}

/* The chunk being filled joins the staged ones and goes to be compressed. */
static void chunk_stage(struct store_writer *w, struct wds *d)
{
	struct chunk *c = d->cur;
	if (!c || !c->items)
		return;
	d->cur = NULL;
	c->next = NULL;
	if (d->stail)
		d->stail->next = c;
	else
		d->shead = c;
	d->stail = c;
	chunk_submit(w, c);
}

/* Where the next chunk must be cut: what the last segment holds, or 0 when
 * it is full (the next item starts a new one). */
static void proj_reset(const struct store_writer *w, struct wds *d)
{
	const struct seg *s = d->m.nsegs ? &d->m.segs[d->m.nsegs - 1] : NULL;
	d->proj_items = s ? s->items : 0;
	if (w->lim.segment_items > 0 && d->proj_items >= w->lim.segment_items)
		d->proj_items = 0;
}

static size_t wds_find(struct wds *const *v, size_t n, const char *name, int *found)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(v[mid]->m.name, name);
		if (!c) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static struct wds *wds_lookup(struct store_writer *w, const char *name)
{
	int found;
	if (!name)
		return NULL;
	if (w->last && !strcmp(w->last->m.name, name))
		return w->last;
	size_t i = wds_find(w->ds, w->nds, name, &found);
	return found ? (w->last = w->ds[i]) : NULL;
}

/* A new dataset (in memory; name checked by the caller); NULL with errstr. */
static struct wds *wds_create(struct store_writer *w, const char *name, char *errstr, size_t size)
{
	int found;
	size_t i = wds_find(w->ds, w->nds, name, &found);
	struct wds *d = calloc(1, sizeof(*d));
	if (!d || grow(&w->ds, &w->cds, w->nds + 1, sizeof(*w->ds))) {
		free(d);
		errfmt(errstr, size, "out of memory");
		return NULL;
	}
	wds_init_fds(d);
	strcpy(d->m.name, name);
	d->m.next_seg = 1;
	memmove(w->ds + i + 1, w->ds + i, (w->nds - i) * sizeof(*w->ds));
	w->ds[i] = d;
	w->nds++;
	return w->last = d;
}

static int done_has(const struct wds *d, int64_t b)
{
	size_t lo = 0, hi = d->ndone;
	if (hi && d->done[hi - 1] < b)
		return 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d->done[mid] == b)
			return 1;
		if (d->done[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static struct obatch *open_find(struct wds *d, int64_t b)
{
	for (size_t i = d->m.nopen; i-- > 0;)
		if (d->m.open[i].batch == b)
			return &d->m.open[i];
	return NULL;
}

#define BATCH_LINE_MAX 128

/* Room for one more open batch, one more done batch and its line. */
static int batch_reserve(struct wds *d)
{
	if (grow(&d->m.open, &d->m.copen, d->m.nopen + 1, sizeof(*d->m.open)) ||
	    grow(&d->done, &d->cdone, d->ndone + 1, sizeof(*d->done)) ||
	    buf_reserve(&d->bstaged, BATCH_LINE_MAX))
		return -1;
	return 0;
}

/* Only after batch_reserve(). */
static struct obatch *open_add(struct wds *d, int64_t b)
{
	struct obatch *o = &d->m.open[d->m.nopen++];
	memset(o, 0, sizeof(*o));
	o->batch = b;
	o->first_seq = -1;
	return o;
}

/* Moves an open batch to the complete ones.  Only after batch_reserve(). */
static void batch_complete(struct wds *d, struct obatch *o)
{
	char line[BATCH_LINE_MAX];
	int n = snprintf(line, sizeof(line), "{\"batch\":%lld,\"size\":%d,\"partial\":%s,\"first_seq\":%lld}\n",
	                 (long long)o->batch, o->size, o->partial ? "true" : "false",
	                 (long long)o->first_seq);
	buf_put(&d->bstaged, line, (size_t)n);
	d->nbstaged++;
	size_t i = d->ndone;
	while (i && d->done[i - 1] > o->batch)
		i--;
	memmove(d->done + i + 1, d->done + i, (d->ndone - i) * sizeof(*d->done));
	d->done[i] = o->batch;
	d->ndone++;
	size_t k = (size_t)(o - d->m.open);
	memmove(o, o + 1, (d->m.nopen - k - 1) * sizeof(*o));
	d->m.nopen--;
}

int store_add(struct store_writer *w, const char *dataset, const char *id,
              int64_t batch, int position, const char *json, size_t len,
              char *errstr, size_t errstr_size)
{
	(void)position;
	struct wds *d = wds_lookup(w, dataset);
	if (!d && check_name(dataset, errstr, errstr_size))
		return -1;
	size_t idn = check_id(id, dataset, errstr, errstr_size);
	if (!idn)
		return -1;
	if (batch < -1)
		return errfmt(errstr, errstr_size, "bad batch %lld of item '%s' in dataset '%s'",
		            (long long)batch, id, dataset);
	if (!json || !len)
		return errfmt(errstr, errstr_size, "empty item '%s' in dataset '%s'", id, dataset);
	if (memchr(json, '\n', len))
		return errfmt(errstr, errstr_size, "item '%s' in dataset '%s' holds a raw newline",
		            id, dataset);
	if (!d && !(d = wds_create(w, dataset, errstr, errstr_size)))
		return -1;
	uint64_t h = id_hash(w->seed, id, idn);
	if (idset_has(d, id, idn, h))
		return 0;
	size_t off = d->ids.len;
	if (off + idn + 32 >= ARENA_OFF_MAX)
		return errfmt(errstr, errstr_size, "dataset '%s' has too many ids", d->m.name);
	if (!d->cur && !(d->cur = chunk_get(w)))
		return errfmt(errstr, errstr_size, "out of memory");
	struct chunk *c = d->cur;
	if (idset_reserve(d, w->seed) || buf_reserve(&d->ids, idn + 32) ||
	    buf_reserve(&c->raw, len + 1) || (batch >= 0 && batch_reserve(d)))
		return errfmt(errstr, errstr_size, "out of memory");
	/* nothing fails from here on */
	int64_t seq = d->m.items + (int64_t)d->nst;
	buf_put(&d->ids, id, idn);
	if (batch >= 0) {
		d->ids.p[d->ids.len++] = '\t';
		d->ids.len += fmt_i64(d->ids.p + d->ids.len, batch);
	}
	d->ids.p[d->ids.len++] = '\n';
	idset_put(d->slots, d->nslots, h, off, idn);
	d->nused++;
	if (!c->items)
		c->ids_start = off;
	buf_put(&c->raw, json, len);
	c->raw.p[c->raw.len++] = '\n';
	c->items++;
	if (batch >= 0) {
		if (c->min_batch < 0 || batch < c->min_batch)
			c->min_batch = batch;
		if (batch > c->max_batch)
			c->max_batch = batch;
	}
	d->nst++;
	if (batch >= 0 && !done_has(d, batch)) {
		struct obatch *o = open_find(d, batch);
		if (!o)
			o = open_add(d, batch);
		if (o->first_seq < 0)
			o->first_seq = seq;
		o->have++;
		if (o->trigger && o->have == o->size)
			batch_complete(d, o);
	}
	/* a chunk ends where the segment will (by items) or at CHUNK_RAW bytes */
	if (w->lim.segment_items > 0 && ++d->proj_items >= w->lim.segment_items) {
		chunk_stage(w, d);
		d->proj_items = 0;
	} else if (c->raw.len >= CHUNK_RAW) {
		chunk_stage(w, d);
	}
	w->nstaged++;
	w->dirty = 1;
	return 1;
}

int store_add_trigger(struct store_writer *w, const char *dataset, int64_t batch,
                      int partial, const char *const *ids, int nids,
                      char *errstr, size_t errstr_size)
{
	struct wds *d = wds_lookup(w, dataset);
	if (!d && check_name(dataset, errstr, errstr_size))
		return -1;
	if (batch < 0)
		return errfmt(errstr, errstr_size, "bad batch %lld in dataset '%s'", (long long)batch,
		            dataset);
	if (nids < 1 || !ids)
		return errfmt(errstr, errstr_size, "trigger of batch %lld in dataset '%s' has no items",
		            (long long)batch, dataset);
	for (int i = 0; i < nids; i++)
		if (!check_id(ids[i], dataset, errstr, errstr_size))
			return -1;
	if (!d && !(d = wds_create(w, dataset, errstr, errstr_size)))
		return -1;
	if (done_has(d, batch))
		return 0;
	if (batch_reserve(d))
		return errfmt(errstr, errstr_size, "out of memory");
	struct obatch *o = open_find(d, batch);
	if (!o)
		o = open_add(d, batch);
	if (o->trigger)
		return 0;
	o->trigger = 1;
	o->size = nids;
	o->partial = !!partial;
	if (o->have == o->size)
		batch_complete(d, o);
	w->dirty = 1;
	return 0;
}

static struct offent *offset_find(const struct store_writer *w, const char *topic, int32_t partition)
{
	size_t i = w->last_off;
	if (i < w->noffs && w->offs[i].partition == partition && !strcmp(w->offs[i].topic, topic))
		return &w->offs[i];
	for (i = 0; i < w->noffs; i++)
		if (w->offs[i].partition == partition && !strcmp(w->offs[i].topic, topic)) {
			((struct store_writer *)w)->last_off = i;
			return &w->offs[i];
		}
	return NULL;
}

int64_t store_offset(const struct store_writer *w, const char *topic, int32_t partition)
{
	const struct offent *o = topic ? offset_find(w, topic, partition) : NULL;
	return o ? o->committed : -1;
}

void store_set_offset(struct store_writer *w, const char *topic, int32_t partition, int64_t next)
{
	if (!topic || !*topic || partition < 0 || next < 0)
		return;
	struct offent *o = offset_find(w, topic, partition);
	if (!o) {
		char *t = strdup(topic);
		if (!t || grow(&w->offs, &w->coffs, w->noffs + 1, sizeof(*w->offs))) {
			free(t);
			w->offset_oom = 1;
			return;
		}
		o = &w->offs[w->noffs++];
		*o = (struct offent){ t, partition, -1, -1 };
	}
	o->staged = next;
	w->dirty = 1;
}

int64_t store_staged(const struct store_writer *w)
{
	return w->nstaged;
}

/* -- committing -- */

static int ds_path(const struct store_writer *w, const struct wds *d, const char *file,
                   char *out, size_t size)
{
	if (file)
		return mkpath(out, size, "%s/datasets/%s/%s", w->dir, d->m.name, file);
	return mkpath(out, size, "%s/datasets/%s", w->dir, d->m.name);
}

/* Opens path for writing at committed length len: what lies beyond (a torn
 * tail, or what a failed commit wrote) is cut off.  fresh: a new file. */
static int open_at(const char *path, uint64_t len, int fresh, char *errstr, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (fresh ? O_TRUNC : 0), 0600);
	if (fd < 0)
		return errfmt(errstr, size, "cannot open '%s': %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		errfmt(errstr, size, "cannot open '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size < len) {
		errfmt(errstr, size, "'%s' is shorter (%lld bytes) than its committed length (%llu)",
		     path, (long long)st.st_size, (unsigned long long)len);
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size > len && ftruncate(fd, (off_t)len) < 0) {
		errfmt(errstr, size, "cannot truncate '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int need_rotate(const struct store_limits *lim, const struct seg *s, int64_t now_us)
{
	return (lim->segment_items > 0 && s->items >= lim->segment_items) ||
	       (lim->segment_bytes > 0 && s->bytes >= (uint64_t)lim->segment_bytes) ||
	       (lim->segment_age_s > 0 && now_us - s->created_us >= (int64_t)lim->segment_age_s * 1000000);
}

static int sync_seg(struct store_writer *w, struct wds *d, char *errstr, size_t size)
{
	if (d->segfd >= 0 && d->seg_touched && fdatasync(d->segfd) < 0) {
		char path[PATH_MAX], name[32];
		seg_name(name, d->segfd_num);
		ds_path(w, d, name, path, sizeof(path));
		return errfmt(errstr, size, "cannot sync segment '%s': %s", path, strerror(errno));
	}
	d->seg_touched = 0;
	return 0;
}

/* Writes the staged chunks of d (compressed) as frames into its segments,
 * rotating them: before a frame when the segment is old or big enough, or
 * when the frame's items would not fit. */
static int write_items(struct store_writer *w, struct wds *d, int64_t now_us,
                       char *errstr, size_t size)
{
	char path[PATH_MAX], name[32];
	int64_t before = 0; /* staged items in the chunks before c */
	for (struct chunk *c = d->shead; c; before += c->items, c = c->next) {
		if (c->zerr)
			return errfmt(errstr, size, "cannot compress items of dataset '%s': %s", d->m.name,
			            ZSTD_getErrorName(c->zerr));
		struct seg *s = d->m.nsegs ? &d->m.segs[d->m.nsegs - 1] : NULL;
		if (!s || need_rotate(&w->lim, s, now_us) ||
		    (w->lim.segment_items > 0 && s->items + c->items > w->lim.segment_items)) {
			if (grow(&d->m.segs, &d->m.csegs, d->m.nsegs + 1, sizeof(*d->m.segs)))
				return errfmt(errstr, size, "out of memory");
			if (sync_seg(w, d, errstr, size))
				return -1;
			s = &d->m.segs[d->m.nsegs++];
			*s = (struct seg){ .num = d->m.next_seg++, .first_seq = d->m.items + before,
			                   .min_batch = -1, .max_batch = -1, .created_us = now_us,
			                   .ids_off = c->ids_start };
		}
		seg_name(name, s->num);
		if (ds_path(w, d, name, path, sizeof(path)))
			return errfmt(errstr, size, "cannot write segment in '%s': path too long", w->dir);
		if (d->segfd < 0 || d->segfd_num != s->num) {
			if (d->segfd >= 0) {
				if (sync_seg(w, d, errstr, size))
					return -1;
				close(d->segfd);
			}
			d->segfd = open_at(path, s->bytes, s->bytes == 0, errstr, size);
			if (d->segfd < 0)
				return -1;
			d->segfd_num = s->num;
			d->need_dirsync = 1;
		}
		d->seg_touched = 1;
		if (write_all(d->segfd, c->z.p, c->z.len, s->bytes) < 0)
			return errfmt(errstr, size, "cannot write segment '%s': %s", path, strerror(errno));
		s->bytes += c->z.len;
		s->items += c->items;
		if (c->min_batch >= 0) {
			if (s->min_batch < 0 || c->min_batch < s->min_batch)
				s->min_batch = c->min_batch;
			if (c->max_batch > s->max_batch)
				s->max_batch = c->max_batch;
		}
	}
	return 0;
}

/* Appends staged bytes [committed, len) of an append-only file. */
static int write_tail(struct store_writer *w, struct wds *d, const char *file, int *fd,
                      int *touched, const char *data, uint64_t committed, size_t n,
                      char *errstr, size_t size)
{
	char path[PATH_MAX];
	if (ds_path(w, d, file, path, sizeof(path)))
		return errfmt(errstr, size, "cannot write '%s' in '%s': path too long", file, w->dir);
	if (*fd < 0) {
		*fd = open_at(path, committed, committed == 0, errstr, size);
		if (*fd < 0)
			return -1;
		d->need_dirsync = 1;
	}
	*touched = 1;
	if (write_all(*fd, data, n, committed) < 0)
		return errfmt(errstr, size, "cannot write '%s': %s", path, strerror(errno));
	return 0;
}

static int sync_tail(struct store_writer *w, struct wds *d, const char *file, int fd, int *touched,
                     char *errstr, size_t size)
{
	if (*touched && fdatasync(fd) < 0) {
		char path[PATH_MAX];
		ds_path(w, d, file, path, sizeof(path));
		return errfmt(errstr, size, "cannot sync '%s': %s", path, strerror(errno));
	}
	*touched = 0;
	return 0;
}

static void put_key_int(struct sbuf *s, const char *key, int64_t v)
{
	sbuf_printf(s, "\"%s\":%lld", key, (long long)v);
}

/* The manifest as it will be once this commit is done. */
static void manifest_build(const struct store_writer *w, struct sbuf *s, int64_t now_us)
{
	char ts[TSTIME_LEN];
	tstime_format(now_us, ts);
	sbuf_printf(s, "{\"format\":\"%s\",\"version\":%d,\"generation\":%lld,\"committed_at\":\"%s\",\n",
	            MANIFEST_FORMAT, MANIFEST_VERSION, (long long)w->generation + 1, ts);
	sbuf_puts(s, "\"offsets\":{");
	int first = 1;
	for (size_t i = 0; i < w->noffs; i++) {
		const struct offent *o = &w->offs[i];
		int64_t v = o->staged >= 0 ? o->staged : o->committed;
		if (v < 0)
			continue;
		char key[512];
		snprintf(key, sizeof(key), "%s/%d", o->topic, (int)o->partition);
		sbuf_puts(s, first ? "\n " : ",\n ");
		sbuf_put_jstr(s, key, strlen(key));
		sbuf_printf(s, ":%lld", (long long)v);
		first = 0;
	}
	sbuf_puts(s, "},\n\"datasets\":{");
	for (size_t k = 0; k < w->nds; k++) {
		const struct wds *d = w->ds[k];
		const struct dsmeta *m = &d->m;
		sbuf_printf(s, "%s\n\"%s\":{", k ? "," : "", m->name);
		put_key_int(s, "items", m->items + (int64_t)d->nst);
		sbuf_putc(s, ',');
		put_key_int(s, "next_segment", m->next_seg);
		sbuf_printf(s, ",\"ids\":{\"file\":\"ids\",\"bytes\":%zu}", d->ids.len);
		sbuf_printf(s, ",\"batches\":{\"file\":\"batches\",\"bytes\":%llu,\"count\":%lld}",
		            (unsigned long long)(m->batches_bytes + d->bstaged.len),
		            (long long)(m->nbatches + d->nbstaged));
		sbuf_puts(s, ",\n \"segments\":[");
		for (size_t i = 0; i < m->nsegs; i++) {
			const struct seg *g = &m->segs[i];
			char name[32];
			seg_name(name, g->num);
			tstime_format(g->created_us, ts);
			sbuf_printf(s, "%s\n  {\"file\":\"%s\",\"bytes\":%llu,\"items\":%lld,\"first_seq\":%lld,"
			            "\"min_batch\":%lld,\"max_batch\":%lld,\"ids_offset\":%llu,\"created\":\"%s\"}",
			            i ? "," : "", name, (unsigned long long)g->bytes, (long long)g->items,
			            (long long)g->first_seq, (long long)g->min_batch, (long long)g->max_batch,
			            (unsigned long long)g->ids_off, ts);
		}
		sbuf_puts(s, "],\n \"open_batches\":[");
		for (size_t i = 0; i < m->nopen; i++) {
			const struct obatch *o = &m->open[i];
			sbuf_printf(s, "%s\n  {\"batch\":%lld,\"size\":%d,\"have\":%d,\"partial\":%s,"
			            "\"trigger\":%s,\"first_seq\":%lld}",
			            i ? "," : "", (long long)o->batch, o->size, o->have,
			            o->partial ? "true" : "false", o->trigger ? "true" : "false",
			            (long long)o->first_seq);
		}
		sbuf_puts(s, "]}");
	}
	sbuf_puts(s, "}}\n");
}

/* 0: done; -1: failed, nothing visible; 1: the new MANIFEST is in place but
 * the directory could not be synced (visible, not known durable). */
static int commit_attempt(struct store_writer *w, int64_t now_us, char *errstr, size_t size)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int sync_datasets = 0;
	for (size_t k = 0; k < w->nds; k++)
		chunk_stage(w, w->ds[k]);
	chunks_wait(w);
	int again = 0;
	for (size_t k = 0; k < w->nds; k++)
		for (struct chunk *c = w->ds[k]->shead; c; c = c->next)
			if (c->zerr) {
				chunk_submit(w, c); /* it failed (out of memory): once more */
				again = 1;
			}
	if (again)
		chunks_wait(w);
	for (size_t k = 0; k < w->nds; k++) {
		struct wds *d = w->ds[k];
		if (!d->dir_synced) {
			if (ds_path(w, d, NULL, path, sizeof(path)) || make_dir(path) < 0)
				return errfmt(errstr, size, "cannot create dataset folder '%s/datasets/%s': %s",
				            w->dir, d->m.name, strerror(errno));
			sync_datasets = 1;
		}
		if (d->ids.len > d->m.ids_bytes &&
		    write_tail(w, d, "ids", &d->idsfd, &d->ids_touched, d->ids.p + d->m.ids_bytes,
		               d->m.ids_bytes, d->ids.len - d->m.ids_bytes, errstr, size))
			return -1;
		if (d->bstaged.len &&
		    write_tail(w, d, "batches", &d->batfd, &d->bat_touched, d->bstaged.p,
		               d->m.batches_bytes, d->bstaged.len, errstr, size))
			return -1;
		if (d->shead && write_items(w, d, now_us, errstr, size))
			return -1;
	}
	for (size_t k = 0; k < w->nds; k++) {
		struct wds *d = w->ds[k];
		if (sync_seg(w, d, errstr, size) ||
		    sync_tail(w, d, "ids", d->idsfd, &d->ids_touched, errstr, size) ||
		    sync_tail(w, d, "batches", d->batfd, &d->bat_touched, errstr, size))
			return -1;
		if (d->need_dirsync) {
			ds_path(w, d, NULL, path, sizeof(path));
			if (fsync_dir(path) < 0)
				return errfmt(errstr, size, "cannot sync folder '%s': %s", path, strerror(errno));
			d->need_dirsync = 0;
		}
	}
	if (sync_datasets) {
		if (mkpath(path, sizeof(path), "%s/datasets", w->dir) || fsync_dir(path) < 0)
			return errfmt(errstr, size, "cannot sync folder '%s/datasets': %s", w->dir,
			            strerror(errno));
	}
	if (w->offset_oom)
		return errfmt(errstr, size, "out of memory recording an offset in store '%s'", w->dir);

	struct sbuf s;
	sbuf_init(&s);
	manifest_build(w, &s, now_us);
	if (s.oom) {
		sbuf_release(&s);
		return errfmt(errstr, size, "out of memory");
	}
	if (mkpath(tmp, sizeof(tmp), "%s/MANIFEST.tmp", w->dir) ||
	    mkpath(path, sizeof(path), "%s/MANIFEST", w->dir)) {
		sbuf_release(&s);
		return errfmt(errstr, size, "cannot write manifest of '%s': path too long", w->dir);
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		sbuf_release(&s);
		return errfmt(errstr, size, "cannot write manifest '%s': %s", tmp, strerror(errno));
	}
	int rc = write_all(fd, s.buf, s.len, 0);
	sbuf_release(&s);
	if (rc < 0 || fdatasync(fd) < 0) {
		int e = errno;
		close(fd);
		return errfmt(errstr, size, "cannot write manifest '%s': %s", tmp, strerror(e));
	}
	if (close(fd) < 0)
		return errfmt(errstr, size, "cannot write manifest '%s': %s", tmp, strerror(errno));
	if (rename(tmp, path) < 0)
		return errfmt(errstr, size, "cannot rename '%s' to 'MANIFEST': %s", tmp, strerror(errno));
	if (fsync_dir(w->dir) < 0) {
		errfmt(errstr, size, "cannot sync store folder '%s': %s", w->dir, strerror(errno));
		return 1;
	}
	return 0;
}

/* The attempt's writes are now the committed state. */
static void commit_apply(struct store_writer *w)
{
	for (size_t k = 0; k < w->nds; k++) {
		struct wds *d = w->ds[k];
		d->m.items += (int64_t)d->nst;
		d->m.ids_bytes = d->ids.len;
		d->m.batches_bytes += d->bstaged.len;
		d->m.nbatches += d->nbstaged;
		d->nst = 0;
		while (d->shead) {
			struct chunk *c = d->shead;
			d->shead = c->next;
			chunk_put(w, c);
		}
		d->stail = NULL;
		proj_reset(w, d);
		d->bstaged.len = 0;
		d->nbstaged = 0;
		d->dir_synced = 1;
	}
	for (size_t i = 0; i < w->noffs; i++)
		if (w->offs[i].staged >= 0) {
			w->offs[i].committed = w->offs[i].staged;
			w->offs[i].staged = -1;
		}
	w->generation++;
	w->nstaged = 0;
	w->dirty = 0;
}

int store_commit(struct store_writer *w, char *errstr, size_t errstr_size)
{
	if (!w->dirty)
		return 0;
	for (size_t k = 0; k < w->nds; k++) {
		struct wds *d = w->ds[k];
		d->sv_nsegs = d->m.nsegs;
		d->sv_next_seg = d->m.next_seg;
		if (d->m.nsegs)
			d->sv_last = d->m.segs[d->m.nsegs - 1];
	}
	int rc = commit_attempt(w, tstime_now_us(), errstr, errstr_size);
	if (rc == 0) {
		commit_apply(w);
		return 0;
	}
	if (rc == 1) {
		/* Visible, and the data under it synced: keep it, but write and sync
		 * the manifest again at the next commit before calling it durable. */
		commit_apply(w);
		w->dirty = 1;
		return -1;
	}
	/* Nothing of this attempt counts: back to the committed segments, and
	 * every file it touched is reopened (and truncated) by the next one. */
	for (size_t k = 0; k < w->nds; k++) {
		struct wds *d = w->ds[k];
		d->m.nsegs = d->sv_nsegs;
		d->m.next_seg = d->sv_next_seg;
		if (d->m.nsegs)
			d->m.segs[d->m.nsegs - 1] = d->sv_last;
		wds_close_files(d);
		d->need_dirsync = 0;
	}
	return -1;
}

/* -- opening: recovery -- */

/* Checks that the file holds its committed bytes and cuts off what is
 * beyond.  *cut is set when something was cut. */
static int recover_file(const char *path, uint64_t len, int *cut, char *errstr, size_t size)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT && len == 0)
			return 0;
		return errfmt(errstr, size, "cannot open '%s': %s", path, strerror(errno));
	}
	if ((uint64_t)st.st_size == len)
		return 0;
	int fd = open_at(path, len, 0, errstr, size);
	if (fd < 0)
		return -1;
	if (fsync(fd) < 0) {
		errfmt(errstr, size, "cannot sync '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	*cut = 1;
	return 0;
}

/* Reads the committed part of the ids file and fills the hash set. */
static int load_ids(struct store_writer *w, struct wds *d, const char *path,
                    char *errstr, size_t size)
{
	if (d->m.ids_bytes) {
		if (buf_reserve(&d->ids, d->m.ids_bytes + 1))
			return errfmt(errstr, size, "out of memory");
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read_all(fd, d->ids.p, d->m.ids_bytes, 0) < 0) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return errfmt(errstr, size, "cannot read '%s': %s", path, strerror(e));
		}
		close(fd);
		d->ids.len = d->m.ids_bytes;
	}
	size_t nslots = 1024;
	while (nslots < (size_t)d->m.items * 2 + 2)
		nslots *= 2;
	if (!(d->slots = calloc(nslots, sizeof(*d->slots))))
		return errfmt(errstr, size, "out of memory");
	d->nslots = nslots;
	const char *p = d->ids.p, *end = d->ids.p + d->ids.len;
	int64_t n = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		const char *tab = memchr(p, '\t', (size_t)(nl - p));
		size_t idn = (size_t)((tab ? tab : nl) - p);
		if (!idn || idn > STORE_ID_MAX)
			break;
		uint64_t h = id_hash(w->seed, p, idn);
		if (!idset_has(d, p, idn, h)) {
			idset_put(d->slots, d->nslots, h, (uint64_t)(p - d->ids.p), idn);
			d->nused++;
		}
		n++;
		p = nl + 1;
	}
	if (p != end || n != d->m.items)
		return errfmt(errstr, size, "bad id index '%s': %lld lines for %lld items", path,
		            (long long)n, (long long)d->m.items);
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* The numbers of the complete batches, from the batches file. */
static int load_done(struct wds *d, const char *path, char *errstr, size_t size)
{
	if (!d->m.batches_bytes)
		return 0;
	char *b = malloc(d->m.batches_bytes);
	if (!b)
		return errfmt(errstr, size, "out of memory");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read_all(fd, b, d->m.batches_bytes, 0) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		free(b);
		return errfmt(errstr, size, "cannot read '%s': %s", path, strerror(e));
	}
	close(fd);
	const char *p = b, *end = b + d->m.batches_bytes;
	int rc = 0;
	while (p < end && !rc) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct store_batch sb;
		if (!nl || parse_batch_line(p, (size_t)(nl - p), &sb) ||
		    grow(&d->done, &d->cdone, d->ndone + 1, sizeof(*d->done)))
			rc = errfmt(errstr, size, "bad batches file '%s' at byte %zu", path, (size_t)(p - b));
		else
			d->done[d->ndone++] = sb.batch;
		p = nl ? nl + 1 : end;
	}
	free(b);
	if (!rc && (int64_t)d->ndone != d->m.nbatches)
		rc = errfmt(errstr, size, "bad batches file '%s': %zu lines for %lld batches", path,
		          d->ndone, (long long)d->m.nbatches);
	if (!rc)
		qsort(d->done, d->ndone, sizeof(*d->done), cmp_i64);
	return rc;
}

/* Removes the segments (and for a dataset the manifest does not list, the
 * ids and batches files) a commit wrote without reaching the manifest.
 * Nothing else is touched: the evaluated list is the evaluator's. */
static int clean_dataset_dir(const char *dir, const struct dsmeta *m, char *errstr, size_t size)
{
	DIR *dh = opendir(dir);
	if (!dh) {
		if (errno == ENOENT && (!m || !m->nsegs))
			return 0;
		return errfmt(errstr, size, "cannot read folder '%s': %s", dir, strerror(errno));
	}
	int removed = 0, rc = 0;
	struct dirent *e;
	while ((e = readdir(dh)) != NULL) {
		uint32_t num = seg_num(e->d_name);
		int stale = 0;
		if (num) {
			stale = 1;
			for (size_t i = 0; m && i < m->nsegs; i++)
				if (m->segs[i].num == num)
					stale = 0;
		} else if (!m && (!strcmp(e->d_name, "ids") || !strcmp(e->d_name, "batches"))) {
			stale = 1;
		}
		if (!stale)
			continue;
		char path[PATH_MAX];
		if (mkpath(path, sizeof(path), "%s/%s", dir, e->d_name) || unlink(path) < 0) {
			rc = errfmt(errstr, size, "cannot remove uncommitted '%s/%s': %s", dir, e->d_name,
			          strerror(errno));
			break;
		}
		removed = 1;
	}
	closedir(dh);
	if (!rc && removed && fsync_dir(dir) < 0)
		rc = errfmt(errstr, size, "cannot sync folder '%s': %s", dir, strerror(errno));
	return rc;
}

static int recover_dataset(struct store_writer *w, struct wds *d, char *errstr, size_t size)
{
	char dir[PATH_MAX], path[PATH_MAX], name[32];
	int cut = 0;
	if (ds_path(w, d, NULL, dir, sizeof(dir)))
		return errfmt(errstr, size, "cannot open store '%s': path too long", w->dir);
	for (size_t i = 0; i < d->m.nsegs; i++) {
		seg_name(name, d->m.segs[i].num);
		if (mkpath(path, sizeof(path), "%s/%s", dir, name) ||
		    recover_file(path, d->m.segs[i].bytes, &cut, errstr, size))
			return -1;
	}
	if (mkpath(path, sizeof(path), "%s/ids", dir) ||
	    recover_file(path, d->m.ids_bytes, &cut, errstr, size) ||
	    load_ids(w, d, path, errstr, size))
		return -1;
	if (mkpath(path, sizeof(path), "%s/batches", dir) ||
	    recover_file(path, d->m.batches_bytes, &cut, errstr, size) ||
	    load_done(d, path, errstr, size))
		return -1;
	if (clean_dataset_dir(dir, &d->m, errstr, size))
		return -1;
	struct stat st;
	d->dir_synced = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	proj_reset(w, d);
	return 0;
}

/* Folders under datasets/ that the manifest does not list: a commit that
 * created them failed.  has_data: set when one holds a segment or an index. */
static int clean_orphans(struct store_writer *w, int only_check, int *has_data,
                         char *errstr, size_t size)
{
	char path[PATH_MAX];
	if (mkpath(path, sizeof(path), "%s/datasets", w->dir))
		return errfmt(errstr, size, "cannot open store '%s': path too long", w->dir);
	DIR *dh = opendir(path);
	if (!dh)
		return errfmt(errstr, size, "cannot read folder '%s': %s", path, strerror(errno));
	struct dirent *e;
	int rc = 0;
	while (!rc && (e = readdir(dh)) != NULL) {
		int found;
		if (!name_ok(e->d_name))
			continue;
		wds_find(w->ds, w->nds, e->d_name, &found);
		if (found)
			continue;
		char dir[PATH_MAX];
		if (mkpath(dir, sizeof(dir), "%s/%s", path, e->d_name))
			continue;
		if (only_check) {
			DIR *sub = opendir(dir);
			struct dirent *f;
			while (sub && (f = readdir(sub)) != NULL) {
				struct stat st;
				char fp[PATH_MAX];
				if ((seg_num(f->d_name) || !strcmp(f->d_name, "ids")) &&
				    !mkpath(fp, sizeof(fp), "%s/%s", dir, f->d_name) &&
				    stat(fp, &st) == 0 && st.st_size > 0)
					*has_data = 1;
			}
			if (sub)
				closedir(sub);
			continue;
		}
		struct stat st;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			rc = clean_dataset_dir(dir, NULL, errstr, size);
	}
	closedir(dh);
	return rc;
}

struct store_writer *store_writer_open(const char *dir, const struct store_limits *lim,
                                       char *errstr, size_t errstr_size)
{
	char path[PATH_MAX];
	if (!dir || !*dir) {
		errfmt(errstr, errstr_size, "missing store folder");
		return NULL;
	}
	struct store_writer *w = calloc(1, sizeof(*w));
	if (!w || !(w->dir = strdup(dir))) {
		free(w);
		errfmt(errstr, errstr_size, "out of memory");
		return NULL;
	}
	w->lockfd = -1;
	if (lim)
		w->lim = *lim;
	else
		store_limits_default(&w->lim);
	if (w->lim.zstd_level < ZSTD_minCLevel() || w->lim.zstd_level > ZSTD_maxCLevel()) {
		errfmt(errstr, errstr_size, "zstd level %d is not in %d..%d", w->lim.zstd_level,
		     ZSTD_minCLevel(), ZSTD_maxCLevel());
		goto bad;
	}
	if (getrandom(&w->seed, sizeof(w->seed), GRND_NONBLOCK) != (ssize_t)sizeof(w->seed))
		w->seed = (uint64_t)tstime_mono_us() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	if (make_dir(dir) < 0) {
		errfmt(errstr, errstr_size, "cannot create store '%s': %s", dir, strerror(errno));
		goto bad;
	}
	if (mkpath(path, sizeof(path), "%s/LOCK", dir)) {
		errfmt(errstr, errstr_size, "cannot open store '%s': path too long", dir);
		goto bad;
	}
	w->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (w->lockfd < 0) {
		errfmt(errstr, errstr_size, "cannot open store lock '%s': %s", path, strerror(errno));
		goto bad;
	}
	if (flock(w->lockfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			errfmt(errstr, errstr_size, "store '%s' is locked by another writer", dir);
		else
			errfmt(errstr, errstr_size, "cannot lock store '%s': %s", dir, strerror(errno));
		goto bad;
	}
	if (mkpath(path, sizeof(path), "%s/datasets", dir) || make_dir(path) < 0) {
		errfmt(errstr, errstr_size, "cannot create folder '%s/datasets': %s", dir, strerror(errno));
		goto bad;
	}
	if (mkpath(path, sizeof(path), "%s/MANIFEST.tmp", dir) == 0)
		unlink(path); /* a commit that did not reach its rename */
	if (mkpath(path, sizeof(path), "%s/MANIFEST", dir)) {
		errfmt(errstr, errstr_size, "cannot open store '%s': path too long", dir);
		goto bad;
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT) {
			errfmt(errstr, errstr_size, "cannot read manifest '%s': %s", path, strerror(errno));
			goto bad;
		}
		/* a new store: write the empty manifest, unless data is there */
		int has_data = 0;
		if (clean_orphans(w, 1, &has_data, errstr, errstr_size))
			goto bad;
		if (has_data) {
			errfmt(errstr, errstr_size, "store '%s' holds dataset files but no MANIFEST "
			     "(not touching them)", dir);
			goto bad;
		}
	} else {
		struct manifest mf;
		if (manifest_read(dir, sizeof(struct wds), &mf, errstr, errstr_size))
			goto bad;
		w->generation = mf.generation;
		w->offs = mf.offs;
		w->noffs = w->coffs = mf.noffs;
		if (grow(&w->ds, &w->cds, mf.nds, sizeof(*w->ds))) {
			for (size_t i = 0; i < mf.nds; i++) {
				dsmeta_release(mf.ds[i]);
				free(mf.ds[i]);
			}
			free(mf.ds);
			errfmt(errstr, errstr_size, "out of memory");
			goto bad;
		}
		for (size_t i = 0; i < mf.nds; i++) {
			w->ds[w->nds++] = (struct wds *)(void *)mf.ds[i];
			wds_init_fds(w->ds[i]);
		}
		free(mf.ds);
		for (size_t i = 0; i < w->nds; i++)
			if (recover_dataset(w, w->ds[i], errstr, errstr_size))
				goto bad;
		if (clean_orphans(w, 0, NULL, errstr, errstr_size))
			goto bad;
	}
	w->cctx = ZSTD_createCCtx();
	if (!w->cctx ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->lim.zstd_level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1))) {
		errfmt(errstr, errstr_size, "cannot set up zstd compression");
		goto bad;
	}
	if (stat(path, &st) < 0) {
		w->dirty = 1;
		if (store_commit(w, errstr, errstr_size))
			goto bad;
	}
	/* the worker blocks every signal: they are the caller's business */
	if (pthread_mutex_init(&w->mu, NULL) == 0) {
		if (pthread_cond_init(&w->cv_work, NULL) == 0) {
			if (pthread_cond_init(&w->cv_done, NULL) == 0) {
				sigset_t all, old;
				sigfillset(&all);
				pthread_sigmask(SIG_SETMASK, &all, &old);
				w->worker_ok = pthread_create(&w->worker, NULL, worker_main, w) == 0;
				pthread_sigmask(SIG_SETMASK, &old, NULL);
				if (!w->worker_ok)
					pthread_cond_destroy(&w->cv_done);
			}
			if (!w->worker_ok)
				pthread_cond_destroy(&w->cv_work);
		}
		if (!w->worker_ok)
			pthread_mutex_destroy(&w->mu);
	}
	/* without a worker, compression happens in store_add() and store_commit() */
	return w;
bad:
	store_writer_close(w);
	return NULL;
}

void store_writer_close(struct store_writer *w)
{
	if (!w)
		return;
	if (w->worker_ok) {
		pthread_mutex_lock(&w->mu);
		w->stop = 1;
		pthread_cond_signal(&w->cv_work);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->worker, NULL);
		pthread_cond_destroy(&w->cv_work);
		pthread_cond_destroy(&w->cv_done);
		pthread_mutex_destroy(&w->mu);
	}
	while (w->spare) {
		struct chunk *c = w->spare;
		w->spare = c->next;
		chunk_free(c);
	}
	for (size_t i = 0; i < w->nds; i++)
		wds_free(w->ds[i]);
	free(w->ds);
	for (size_t i = 0; i < w->noffs; i++)
		free(w->offs[i].topic);
	free(w->offs);
	ZSTD_freeCCtx(w->cctx);
	if (w->lockfd >= 0)
		close(w->lockfd); /* releases the lock */
	free(w->dir);
	free(w);
}

/* ---- the evaluated list ------------------------------------------------- */

/* Parses an evaluated file's complete lines (a torn last line is ignored)
 * into a sorted array; *valid_len: bytes up to the last complete line. */
static int parse_evaluated(const char *text, size_t len, int64_t **out, size_t *n,
                           size_t *valid_len)
{
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		int64_t b;
		if (nl > p) {
			if (parse_i64(p, (size_t)(nl - p), &b) || b < 0 || grow(out, &cap, *n + 1, sizeof(**out))) {
				free(*out);
				*out = NULL;
				*n = 0;
				return -1;
			}
			(*out)[(*n)++] = b;
		}
		p = nl + 1;
	}
	if (valid_len)
		*valid_len = (size_t)(p - text);
	if (*n)
		qsort(*out, *n, sizeof(**out), cmp_i64);
	return 0;
}

static int i64_in(const int64_t *v, size_t n, int64_t x)
{
	return n && bsearch(&x, v, n, sizeof(*v), cmp_i64) != NULL;
}

int store_mark_evaluated(const char *dir, const char *dataset, int64_t batch,
                         char *errstr, size_t errstr_size)
{
	char dpath[PATH_MAX], path[PATH_MAX];
	if (check_name(dataset, errstr, errstr_size))
		return -1;
	if (batch < 0)
		return errfmt(errstr, errstr_size, "bad batch %lld of dataset '%s'", (long long)batch, dataset);
	if (!dir || mkpath(dpath, sizeof(dpath), "%s/datasets/%s", dir, dataset) ||
	    mkpath(path, sizeof(path), "%s/evaluated", dpath))
		return errfmt(errstr, errstr_size, "cannot open store '%s': path too long", dir ? dir : "");
	struct stat st;
	if (stat(dpath, &st) < 0 || !S_ISDIR(st.st_mode))
		return errfmt(errstr, errstr_size, "no dataset '%s' in store '%s'", dataset, dir);
	int created = stat(path, &st) < 0;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return errfmt(errstr, errstr_size, "cannot open '%s': %s", path, strerror(errno));
	int rc = -1;
	char *text = NULL;
	int64_t *done = NULL;
	size_t ndone = 0, valid = 0;
	if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
		errfmt(errstr, errstr_size, "cannot lock '%s': %s", path, strerror(errno));
		goto out;
	}
	if (!(text = malloc((size_t)st.st_size + 1)) ||
	    read_all(fd, text, (size_t)st.st_size, 0) < 0) {
		errfmt(errstr, errstr_size, "cannot read '%s': %s", path, text ? strerror(errno) : "out of memory");
		goto out;
	}
	if (parse_evaluated(text, (size_t)st.st_size, &done, &ndone, &valid)) {
		errfmt(errstr, errstr_size, "bad evaluated list '%s'", path);
		goto out;
	}
	if (i64_in(done, ndone, batch)) {
		rc = 0;
		goto out;
	}
	char line[32];
	size_t n = fmt_i64(line, batch);
	line[n++] = '\n';
	/* a torn last line (a crash mid-append) is cut off first */
	if ((valid < (size_t)st.st_size && ftruncate(fd, (off_t)valid) < 0) ||
	    write_all(fd, line, n, valid) < 0 || fdatasync(fd) < 0) {
		errfmt(errstr, errstr_size, "cannot write '%s': %s", path, strerror(errno));
		if (ftruncate(fd, (off_t)valid) < 0) {
			/* the torn line is cut off by the next call */
		}
		goto out;
	}
	if (created && fsync_dir(dpath) < 0) {
		errfmt(errstr, errstr_size, "cannot sync folder '%s': %s", dpath, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(text);
	free(done);
	close(fd);
	return rc;
}

/* ---- the reader --------------------------------------------------------- */

struct rds {
	struct dsmeta m;
	int64_t *evaluated;
	size_t nevaluated;
	struct store_batch *batches;
	size_t nbatches;
	int batches_loaded;
};

struct store_reader {
	char *dir;
	struct rds **ds;
	size_t nds;
	const char **names;
	int64_t generation;
};

static struct rds *rds_find(const struct store_reader *r, const char *name)
{
	size_t lo = 0, hi = r->nds;
	if (!name)
		return NULL;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(r->ds[mid]->m.name, name);
		if (!c)
			return r->ds[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

struct store_reader *store_reader_open(const char *dir, char *errstr, size_t errstr_size)
{
	if (!dir || !*dir) {
		errfmt(errstr, errstr_size, "missing store folder");
		return NULL;
	}
	struct store_reader *r = calloc(1, sizeof(*r));
	if (!r || !(r->dir = strdup(dir))) {
		free(r);
		errfmt(errstr, errstr_size, "out of memory");
		return NULL;
	}
	struct manifest mf;
	if (manifest_read(dir, sizeof(struct rds), &mf, errstr, errstr_size)) {
		store_reader_close(r);
		return NULL;
	}
	r->generation = mf.generation;
	for (size_t i = 0; i < mf.noffs; i++)
		free(mf.offs[i].topic);
	free(mf.offs);
	r->ds = calloc(mf.nds + 1, sizeof(*r->ds));
	for (size_t i = 0; r->ds && i < mf.nds; i++)
		r->ds[r->nds++] = (struct rds *)(void *)mf.ds[i];
	if (!r->ds) {
		for (size_t i = 0; i < mf.nds; i++) {
			dsmeta_release(mf.ds[i]);
			free(mf.ds[i]);
		}
	}
	free(mf.ds);
	if (!r->ds || !(r->names = calloc(r->nds + 1, sizeof(*r->names)))) {
		errfmt(errstr, errstr_size, "out of memory");
		store_reader_close(r);
		return NULL;
	}
	for (size_t i = 0; i < r->nds; i++) {
		struct rds *d = r->ds[i];
		char path[PATH_MAX];
		r->names[i] = d->m.name;
		if (mkpath(path, sizeof(path), "%s/datasets/%s/evaluated", dir, d->m.name)) {
			errfmt(errstr, errstr_size, "cannot open store '%s': path too long", dir);
			store_reader_close(r);
			return NULL;
		}
		size_t len;
		char *text = afile_read(path, &len);
		if (!text && errno != ENOENT) {
			errfmt(errstr, errstr_size, "cannot read '%s': %s", path, strerror(errno));
			store_reader_close(r);
			return NULL;
		}
		if (text && parse_evaluated(text, len, &d->evaluated, &d->nevaluated, NULL)) {
			free(text);
			errfmt(errstr, errstr_size, "bad evaluated list '%s'", path);
			store_reader_close(r);
			return NULL;
		}
		free(text);
	}
	return r;
}

void store_reader_close(struct store_reader *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nds; i++) {
		dsmeta_release(&r->ds[i]->m);
		free(r->ds[i]->evaluated);
		free(r->ds[i]->batches);
		free(r->ds[i]);
	}
	free(r->ds);
	free(r->names);
	free(r->dir);
	free(r);
}

int store_datasets(struct store_reader *r, const char *const **names)
{
	*names = r->names;
	return (int)r->nds;
}

int64_t store_count(struct store_reader *r, const char *dataset)
{
	const struct rds *d = rds_find(r, dataset);
	return d ? d->m.items : -1;
}

static int cmp_batch(const void *a, const void *b)
{
	int64_t x = ((const struct store_batch *)a)->batch, y = ((const struct store_batch *)b)->batch;
	return x < y ? -1 : x > y;
}

/* The complete batches (the batches file up to its committed length), the
 * open ones (the manifest), the evaluated list over both. */
static int load_batches(struct store_reader *r, struct rds *d)
{
	if (d->batches_loaded)
		return 0;
	size_t cap = (size_t)d->m.nbatches + d->m.nopen + 1, n = 0;
	struct store_batch *v = calloc(cap, sizeof(*v));
	if (!v)
		return -1;
	if (d->m.batches_bytes) {
		char path[PATH_MAX];
		char *text = NULL;
		int fd = -1, ok = 0;
		if (!mkpath(path, sizeof(path), "%s/datasets/%s/batches", r->dir, d->m.name) &&
		    (text = malloc(d->m.batches_bytes)) != NULL &&
		    (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0 &&
		    read_all(fd, text, d->m.batches_bytes, 0) == 0) {
			const char *p = text, *end = text + d->m.batches_bytes;
			ok = 1;
			while (ok && p < end) {
				const char *nl = memchr(p, '\n', (size_t)(end - p));
				if (!nl || n + d->m.nopen >= cap || parse_batch_line(p, (size_t)(nl - p), &v[n]))
					ok = 0;
				else
					n++;
				p = nl ? nl + 1 : end;
			}
		}
		if (fd >= 0)
			close(fd);
		free(text);
		if (!ok) {
			free(v);
			return -1;
		}
	}
	for (size_t i = 0; i < d->m.nopen; i++) {
		const struct obatch *o = &d->m.open[i];
		v[n++] = (struct store_batch){ .batch = o->batch, .size = o->trigger ? o->size : 0,
		                               .have = o->have, .partial = o->partial,
		                               .state = BATCH_OPEN, .first_seq = o->first_seq };
	}
	qsort(v, n, sizeof(*v), cmp_batch);
	for (size_t i = 0; i < n; i++)
		if (i64_in(d->evaluated, d->nevaluated, v[i].batch))
			v[i].state = BATCH_EVALUATED;
	d->batches = v;
	d->nbatches = n;
	d->batches_loaded = 1;
	return 0;
}

int store_batches(struct store_reader *r, const char *dataset, const struct store_batch **batches)
{
	struct rds *d = rds_find(r, dataset);
	*batches = NULL;
	if (!d || load_batches(r, d))
		return -1;
	*batches = d->batches;
	return (int)d->nbatches;
}

/* -- iterating -- */

/* Lines of a byte range of a file, zstd-decoded or not. */
struct lsrc {
	int fd;
	uint64_t off, end;
	ZSTD_DCtx *dctx;       /* NULL: plain */
	char *in;
	ZSTD_inBuffer zin;
	int frame_open;
	char *buf;             /* decoded bytes; [pos, len) unread */
	size_t cap, pos, len, scanned;
};

static void lsrc_close(struct lsrc *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static int lsrc_open(struct lsrc *s, const char *path, uint64_t off, uint64_t end)
{
	lsrc_close(s);
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return -1;
	s->off = off;
	s->end = end;
	s->pos = s->len = s->scanned = 0;
	s->zin = (ZSTD_inBuffer){ s->in, 0, 0 };
	s->frame_open = 0;
	if (s->dctx)
		ZSTD_DCtx_reset(s->dctx, ZSTD_reset_session_only);
	return 0;
}

/* More decoded bytes: 1, 0 at the end of the range, -1 with errstr. */
static int lsrc_fill(struct lsrc *s, const char *path, char *errstr, size_t size)
{
	if (s->pos) {
		memmove(s->buf, s->buf + s->pos, s->len - s->pos);
		s->len -= s->pos;
		s->scanned -= s->pos;
		s->pos = 0;
	}
	if (s->cap - s->len < s->cap / 4) {
		size_t cap = s->cap * 2;
		char *b = realloc(s->buf, cap);
		if (!b)
			return errfmt(errstr, size, "out of memory");
		s->buf = b;
		s->cap = cap;
	}
	if (!s->dctx) {
		if (s->off == s->end)
			return 0;
		size_t n = s->cap - s->len;
		if (n > s->end - s->off)
			n = (size_t)(s->end - s->off);
		if (read_all(s->fd, s->buf + s->len, n, s->off) < 0)
			return errfmt(errstr, size, "cannot read '%s': %s", path, strerror(errno));
		s->off += n;
		s->len += n;
		return 1;
	}
	for (;;) {
		if (s->zin.pos == s->zin.size && s->off < s->end) {
			size_t n = READ_CHUNK;
			if (n > s->end - s->off)
				n = (size_t)(s->end - s->off);
			if (read_all(s->fd, s->in, n, s->off) < 0)
				return errfmt(errstr, size, "cannot read segment '%s': %s", path,
				            errno == EIO ? "shorter than its committed length" : strerror(errno));
			s->off += n;
			s->zin = (ZSTD_inBuffer){ s->in, n, 0 };
		}
		int more_in = s->zin.pos < s->zin.size;
		if (!more_in && !s->frame_open)
			return 0;
		ZSTD_outBuffer out = { s->buf + s->len, s->cap - s->len, 0 };
		size_t r = ZSTD_decompressStream(s->dctx, &out, &s->zin);
		if (ZSTD_isError(r))
			return errfmt(errstr, size, "cannot decode segment '%s': %s", path, ZSTD_getErrorName(r));
		s->frame_open = r != 0;
		s->len += out.pos;
		if (out.pos)
			return 1;
		if (!more_in)
			return errfmt(errstr, size, "cannot decode segment '%s': it ends inside a zstd frame", path);
	}
}

/* The next line (without its newline, NUL-terminated in its place): 1, 0 at
 * the end, -1 with errstr. */
static int lsrc_line(struct lsrc *s, const char *path, const char **line, size_t *n,
                     char *errstr, size_t size)
{
	for (;;) {
		char *nl = s->scanned < s->len ? memchr(s->buf + s->scanned, '\n', s->len - s->scanned) : NULL;
		if (nl) {
			*line = s->buf + s->pos;
			*n = (size_t)(nl - *line);
			*nl = '\0';
			s->pos = s->scanned = (size_t)(nl - s->buf) + 1;
			return 1;
		}
		s->scanned = s->len;
		int r = lsrc_fill(s, path, errstr, size);
		if (r < 0)
			return -1;
		if (r == 0) {
			if (s->len > s->pos)
				return errfmt(errstr, size, "'%s' ends without a newline", path);
			return 0;
		}
	}
}

static int lsrc_init(struct lsrc *s, int zstd)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->cap = READ_CHUNK;
	if (!(s->buf = malloc(s->cap)))
		return -1;
	if (zstd && (!(s->in = malloc(READ_CHUNK)) || !(s->dctx = ZSTD_createDCtx())))
		return -1;
	return 0;
}

static void lsrc_release(struct lsrc *s)
{
	lsrc_close(s);
	free(s->buf);
	free(s->in);
	ZSTD_freeDCtx(s->dctx);
}

struct store_iter {
	struct store_reader *r;
	const struct rds *d;
	int64_t from_seq, batch;
	size_t segi;
	int in_seg;
	int64_t seq;          /* of the next line of the segment */
	int64_t item_seq;     /* of the item returned last */
	struct lsrc seg, ids; /* ids: only with a batch filter */
	char path[PATH_MAX], ids_path[PATH_MAX];
};

struct store_iter *store_iter_new(struct store_reader *r, const char *dataset, int64_t from_seq,
                                  int64_t batch, char *errstr, size_t errstr_size)
{
	struct rds *d = rds_find(r, dataset);
	if (!d) {
		errfmt(errstr, errstr_size, "no dataset '%s' in store '%s'", dataset ? dataset : "", r->dir);
		return NULL;
	}
	struct store_iter *it = calloc(1, sizeof(*it));
	if (it)
		it->seg.fd = it->ids.fd = -1;
	if (!it || lsrc_init(&it->seg, 1) || (batch >= 0 && lsrc_init(&it->ids, 0))) {
		if (it) {
			lsrc_release(&it->seg);
			lsrc_release(&it->ids);
		}
		free(it);
		errfmt(errstr, errstr_size, "out of memory");
		return NULL;
	}
	it->r = r;
	it->d = d;
	it->from_seq = from_seq > 0 ? from_seq : 0;
	it->batch = batch >= 0 ? batch : -1;
	it->item_seq = -1;
	if (it->batch >= 0) {
		if (load_batches(r, d)) {
			errfmt(errstr, errstr_size, "cannot read the batches of dataset '%s'", d->m.name);
			store_iter_free(it);
			return NULL;
		}
		struct store_batch key = { .batch = batch };
		const struct store_batch *b = d->nbatches ?
			bsearch(&key, d->batches, d->nbatches, sizeof(key), cmp_batch) : NULL;
		if (b && b->first_seq > it->from_seq)
			it->from_seq = b->first_seq;
	}
	/* the first segment that holds from_seq */
	size_t lo = 0, hi = d->m.nsegs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d->m.segs[mid].first_seq + d->m.segs[mid].items <= it->from_seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	it->segi = lo;
	if (mkpath(it->ids_path, sizeof(it->ids_path), "%s/datasets/%s/ids", r->dir, d->m.name)) {
		errfmt(errstr, errstr_size, "cannot open store '%s': path too long", r->dir);
		store_iter_free(it);
		return NULL;
	}
	return it;
}

/* Opens the next segment worth reading; 1, 0 when none is left, -1. */
static int iter_open_seg(struct store_iter *it, char *errstr, size_t size)
{
	const struct dsmeta *m = &it->d->m;
	for (; it->segi < m->nsegs; it->segi++) {
		const struct seg *s = &m->segs[it->segi];
		if (it->batch >= 0 && (s->min_batch < 0 || it->batch < s->min_batch || it->batch > s->max_batch))
			continue;
		char name[32];
		seg_name(name, s->num);
		if (mkpath(it->path, sizeof(it->path), "%s/datasets/%s/%s", it->r->dir, m->name, name))
			return errfmt(errstr, size, "cannot open store '%s': path too long", it->r->dir);
		if (lsrc_open(&it->seg, it->path, 0, s->bytes) < 0)
			return errfmt(errstr, size, "cannot open segment '%s': %s", it->path, strerror(errno));
		if (it->batch >= 0) {
			uint64_t end = it->segi + 1 < m->nsegs ? m->segs[it->segi + 1].ids_off : m->ids_bytes;
			if (lsrc_open(&it->ids, it->ids_path, s->ids_off, end) < 0)
				return errfmt(errstr, size, "cannot open id index '%s': %s", it->ids_path,
				            strerror(errno));
		}
		it->seq = s->first_seq;
		it->in_seg = 1;
		return 1;
	}
	return 0;
}

int store_next(struct store_iter *it, const char **json, size_t *len, char *errstr, size_t errstr_size)
{
	const struct dsmeta *m = &it->d->m;
	for (;;) {
		if (!it->in_seg) {
			int r = iter_open_seg(it, errstr, errstr_size);
			if (r <= 0)
				return r;
		}
		const struct seg *s = &m->segs[it->segi];
		const char *line;
		size_t n;
		int r = lsrc_line(&it->seg, it->path, &line, &n, errstr, errstr_size);
		if (r < 0)
			return -1;
		if (r == 0) {
			if (it->seq != s->first_seq + s->items)
				return errfmt(errstr, errstr_size, "segment '%s' holds %lld items, the manifest says %lld",
				            it->path, (long long)(it->seq - s->first_seq), (long long)s->items);
			lsrc_close(&it->seg);
			lsrc_close(&it->ids);
			it->in_seg = 0;
			it->segi++;
			continue;
		}
		if (it->seq >= s->first_seq + s->items)
			return errfmt(errstr, errstr_size, "segment '%s' holds more than the %lld items the "
			            "manifest says", it->path, (long long)s->items);
		int64_t seq = it->seq++;
		if (it->batch >= 0) {
			const char *idl;
			size_t idn;
			int64_t b = -1;
			int k = lsrc_line(&it->ids, it->ids_path, &idl, &idn, errstr, errstr_size);
			if (k < 0)
				return -1;
			const char *tab = k ? memchr(idl, '\t', idn) : NULL;
			if (!k || (tab && parse_i64(tab + 1, idn - (size_t)(tab + 1 - idl), &b)))
				return errfmt(errstr, errstr_size, "bad id index '%s' for item %lld", it->ids_path,
				            (long long)seq);
			if (b != it->batch)
				continue;
		}
		if (seq < it->from_seq)
			continue;
		it->item_seq = seq;
		*json = line;
		*len = n;
		return 1;
	}
}

int64_t store_item_seq(const struct store_iter *it)
{
	return it->item_seq;
}

void store_iter_free(struct store_iter *it)
{
	if (!it)
		return;
	lsrc_release(&it->seg);
	lsrc_release(&it->ids);
	free(it);
}
