/* evaluator/runs.c - runs, scores and fired alerts under STORE/evaluations (see runs.h) */
#include "runs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "afile.h"
#include "errfmt.h"

struct runs {
	char dir[PATH_MAX];      /* STORE/evaluations */
	int lock_fd;             /* -1 when read-only */
	char **alert_ids;        /* fired, sorted */
	size_t nalert_ids;
};

struct run_writer {
	struct runs *rs;
	char dir[PATH_MAX];
	int fd;                  /* scores.jsonl, O_APPEND */
	char *buf;               /* lines added, not yet written */
	size_t len, cap;
	int unsynced;            /* written since the last fsync */
};

static int mkpath(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int mkpath(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

static int mkdir_synced(const char *dir, const char *parent)
{
	if (mkdir(dir, 0700) == 0) {
		(void)chmod(dir, 0700);
		return fsync_dir(parent);
	}
	return errno == EEXIST ? 0 : -1;
}

/* Writes all of buf to fd. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* dir/name gets text and a newline: name.tmp written, fsynced, renamed, folder fsynced. */
static int write_atomic(const char *dir, const char *name, const char *text,
                        char *errstr, size_t size)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	if (mkpath(path, sizeof(path), "%s/%s", dir, name) ||
	    mkpath(tmp, sizeof(tmp), "%s/%s.tmp", dir, name))
		return errfmt(errstr, size, "path too long in '%s'", dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return errfmt(errstr, size, "cannot create '%s': %s", tmp, strerror(e));
	}
	if (fputs(text, f) < 0 || fputc('\n', f) == EOF) {
		int e = errno;
		afile_finish(f, tmp, path, 0, errstr, size);
		return errfmt(errstr, size, "cannot write '%s': %s", tmp, strerror(e));
	}
	return afile_finish(f, tmp, path, 1, errstr, size);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_alert_ids(struct runs *rs, char *errstr, size_t size)
{
	char path[PATH_MAX];
	size_t len;
	if (mkpath(path, sizeof(path), "%s/alerts.jsonl", rs->dir))
		return errfmt(errstr, size, "path too long in '%s'", rs->dir);
	char *text = afile_read(path, &len);
	if (!text)
		return errno == ENOENT ? 0 : errfmt(errstr, size, "cannot read '%s': %s", path, strerror(errno));
	for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		cJSON *j = cJSON_Parse(line);
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
		if (cJSON_IsString(id)) {
			char **ids = realloc(rs->alert_ids, (rs->nalert_ids + 1) * sizeof(*ids));
			if (!ids || !(ids[rs->nalert_ids] = strdup(id->valuestring))) {
				if (ids)
					rs->alert_ids = ids;
				cJSON_Delete(j);
				free(text);
				return errfmt(errstr, size, "out of memory");
			}
			rs->alert_ids = ids;
			rs->nalert_ids++;
		}
		cJSON_Delete(j);
	}
	free(text);
	qsort(rs->alert_ids, rs->nalert_ids, sizeof(*rs->alert_ids), cmp_str);
	return 0;
}

struct runs *runs_open(const char *store, int write, char *errstr, size_t size)
{
	struct runs *rs = calloc(1, sizeof(*rs));
	char path[PATH_MAX];
	if (!rs) {
		errfmt(errstr, size, "out of memory");
		return NULL;
	}
	rs->lock_fd = -1;
	if (mkpath(rs->dir, sizeof(rs->dir), "%s/evaluations", store) ||
	    mkpath(path, sizeof(path), "%s/LOCK", rs->dir)) {
		errfmt(errstr, size, "store path '%s' too long", store);
		goto bad;
	}
	if (write) {
		struct stat st;
		if (stat(store, &st) < 0 || !S_ISDIR(st.st_mode)) {
			errfmt(errstr, size, "no store at '%s' (the sink creates it)", store);
			goto bad;
		}
		char runsdir[PATH_MAX];
		if (mkdir_synced(rs->dir, store) < 0 ||
		    mkpath(runsdir, sizeof(runsdir), "%s/runs", rs->dir) ||
		    mkdir_synced(runsdir, rs->dir) < 0) {
			errfmt(errstr, size, "cannot create '%s': %s", rs->dir, strerror(errno));
			goto bad;
		}
		rs->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (rs->lock_fd < 0) {
			errfmt(errstr, size, "cannot open '%s': %s", path, strerror(errno));
			goto bad;
		}
		if (flock(rs->lock_fd, LOCK_EX | LOCK_NB) < 0) {
			errfmt(errstr, size, errno == EWOULDBLOCK ?
			     "evaluations of store '%s' are locked by another evaluator" :
			     "cannot lock evaluations of store '%s'", store);
			goto bad;
		}
	}
	if (load_alert_ids(rs, errstr, size))
		goto bad;
	return rs;
bad:
	runs_close(rs);
	return NULL;
}

void runs_close(struct runs *rs)
{
	if (!rs)
		return;
	if (rs->lock_fd >= 0)
		close(rs->lock_fd);
	for (size_t i = 0; i < rs->nalert_ids; i++)
		free(rs->alert_ids[i]);
	free(rs->alert_ids);
	free(rs);
}

int runs_list(struct runs *rs, char ***out, char *errstr, size_t size)
{
	char path[PATH_MAX];
	char **ids = NULL;
	int n = 0;
	*out = NULL;
	if (mkpath(path, sizeof(path), "%s/runs", rs->dir))
		return errfmt(errstr, size, "path too long");
	DIR *dh = opendir(path);
	if (!dh)
		return errno == ENOENT ? 0 : errfmt(errstr, size, "cannot read '%s': %s", path, strerror(errno));
	struct dirent *e;
	while ((e = readdir(dh)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char **nids = realloc(ids, (size_t)(n + 1) * sizeof(*ids));
		if (!nids || !(nids[n] = strdup(e->d_name))) {
			closedir(dh);
			ids = nids ? nids : ids;
			for (int i = 0; i < n; i++)
				free(ids[i]);
			free(ids);
			return errfmt(errstr, size, "out of memory");
		}
		ids = nids;
		n++;
	}
	closedir(dh);
	if (n)
		qsort(ids, (size_t)n, sizeof(*ids), cmp_str);
	*out = ids;
	return n;
}

static int run_path(struct runs *rs, const char *id, const char *name, char *out, size_t size)
{
	if (!*id || strchr(id, '/') || id[0] == '.')
		return -1;
	return name ? mkpath(out, size, "%s/runs/%s/%s", rs->dir, id, name) :
	              mkpath(out, size, "%s/runs/%s", rs->dir, id);
}

int runs_state(struct runs *rs, const char *id)
{
	char path[PATH_MAX];
	struct stat st;
	if (run_path(rs, id, "summary.json", path, sizeof(path)))
		return 0;
	if (stat(path, &st) == 0)
		return 2;
	if (run_path(rs, id, "run.json", path, sizeof(path)) || stat(path, &st) < 0)
		return 0;
	return 1;
}

cJSON *runs_read_json(struct runs *rs, const char *id, const char *name, char *errstr, size_t size)
{
	char path[PATH_MAX];
	if (run_path(rs, id, name, path, sizeof(path))) {
		errfmt(errstr, size, "invalid run id '%s'", id);
		return NULL;
	}
	char *text = afile_read(path, NULL);
	if (!text) {
		if (errno == ENOENT)
			errfmt(errstr, size, "no run '%s'", id);
		else
			errfmt(errstr, size, "cannot read '%s': %s", path, strerror(errno));
		return NULL;
	}
	cJSON *j = cJSON_Parse(text);
	free(text);
	if (!j)
		errfmt(errstr, size, "'%s' is not valid JSON", path);
	return j;
}

int runs_scores(struct runs *rs, const char *id, runs_score_fn fn, void *ctx, char *errstr, size_t size)
{
	char path[PATH_MAX];
	if (run_path(rs, id, "scores.jsonl", path, sizeof(path)))
		return errfmt(errstr, size, "invalid run id '%s'", id);
	char *text = afile_read(path, NULL);
	if (!text)
		return errno == ENOENT ? 0 : errfmt(errstr, size, "cannot read '%s': %s", path, strerror(errno));
	int rc = 0;
	for (char *line = text, *nl; !rc && (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		cJSON *j = cJSON_Parse(line);
		if (j)
			rc = fn(ctx, j);
		cJSON_Delete(j);
	}
	free(text);
	return rc ? errfmt(errstr, size, "reading the scores of run '%s' stopped", id) : 0;
}

/* ---- writing -------------------------------------------------------------- */

struct run_writer *run_open(struct runs *rs, const char *id, const cJSON *info, char *errstr, size_t size)
{
	char path[PATH_MAX];
	struct run_writer *w = calloc(1, sizeof(*w));
	if (!w) {
		errfmt(errstr, size, "out of memory");
		return NULL;
	}
	w->rs = rs;
	w->fd = -1;
	char runsdir[PATH_MAX];
	if (run_path(rs, id, NULL, w->dir, sizeof(w->dir)) ||
	    mkpath(runsdir, sizeof(runsdir), "%s/runs", rs->dir)) {
		errfmt(errstr, size, "invalid run id '%s'", id);
		goto bad;
	}
	if (mkdir_synced(w->dir, runsdir) < 0) {
		errfmt(errstr, size, "cannot create '%s': %s", w->dir, strerror(errno));
		goto bad;
	}
	struct stat st;
	if (mkpath(path, sizeof(path), "%s/run.json", w->dir) == 0 && stat(path, &st) < 0) {
		char *text = cJSON_PrintUnformatted(info);
		int rc = text ? write_atomic(w->dir, "run.json", text, errstr, size) :
		                errfmt(errstr, size, "out of memory");
		free(text);
		if (rc)
			goto bad;
	}
	if (mkpath(path, sizeof(path), "%s/scores.jsonl", w->dir)) {
		errfmt(errstr, size, "path too long");
		goto bad;
	}
	w->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		errfmt(errstr, size, "cannot open '%s': %s", path, strerror(errno));
		goto bad;
	}
	/* a torn last line: cut back to the last newline */
	off_t end = lseek(w->fd, 0, SEEK_END), keep = end;
	char c;
	while (keep > 0 && pread(w->fd, &c, 1, keep - 1) == 1 && c != '\n')
		keep--;
	if (keep != end && (ftruncate(w->fd, keep) < 0 || fsync(w->fd) < 0)) {
		errfmt(errstr, size, "cannot cut the torn tail of '%s': %s", path, strerror(errno));
		goto bad;
	}
	return w;
bad:
	run_close(w);
	return NULL;
}

int run_add(struct run_writer *w, const cJSON *line, char *errstr, size_t size)
{
	char *text = cJSON_PrintUnformatted(line);
	if (!text)
		return errfmt(errstr, size, "out of memory");
	size_t n = strlen(text);
	if (w->len + n + 1 > w->cap) {
		size_t cap = (w->len + n + 1) * 2;
		char *b = realloc(w->buf, cap);
		if (!b) {
			free(text);
			return errfmt(errstr, size, "out of memory");
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, text, n);
	w->buf[w->len + n] = '\n';
	w->len += n + 1;
	free(text);
	return 0;
}

int run_flush(struct run_writer *w, int sync, char *errstr, size_t size)
{
	if (!w->len && !(sync && w->unsynced))
		return 0;
	off_t before = lseek(w->fd, 0, SEEK_END);
	if (write_all(w->fd, w->buf, w->len) || (sync && fsync(w->fd))) {
		int e = errno;
		/* leave whole lines only: what was not synced goes, the lines stay added */
		if (before >= 0 && ftruncate(w->fd, before) == 0)
			(void)fsync(w->fd);
		return errfmt(errstr, size, "cannot write the scores of '%s': %s", w->dir, strerror(e));
	}
	w->unsynced = !sync;
	w->len = 0;
	return 0;
}

int run_finish(struct run_writer *w, const cJSON *summary, char *errstr, size_t size)
{
	if (run_flush(w, 1, errstr, size))
		return -1;
	char *text = cJSON_PrintUnformatted(summary);
	if (!text)
		return errfmt(errstr, size, "out of memory");
	int rc = write_atomic(w->dir, "summary.json", text, errstr, size);
	free(text);
	if (rc)
		return -1;
	run_close(w);
	return 0;
}

void run_close(struct run_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	free(w);
}

/* ---- alerts and cursors ---------------------------------------------------- */

int runs_alert_fired(struct runs *rs, const char *id)
{
	return rs->nalert_ids &&
	       bsearch(&id, rs->alert_ids, rs->nalert_ids, sizeof(*rs->alert_ids), cmp_str) != NULL;
}

int runs_alert_record(struct runs *rs, const cJSON *line, char *errstr, size_t size)
{
	char path[PATH_MAX];
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(line, "id");
	if (!cJSON_IsString(id))
		return errfmt(errstr, size, "alert line without an id");
	if (mkpath(path, sizeof(path), "%s/alerts.jsonl", rs->dir))
		return errfmt(errstr, size, "path too long");
	char *text = cJSON_PrintUnformatted(line);
	char **ids = realloc(rs->alert_ids, (rs->nalert_ids + 1) * sizeof(*ids));
	if (!text || !ids) {
		free(text);
		if (ids)
			rs->alert_ids = ids;
		return errfmt(errstr, size, "out of memory");
	}
	rs->alert_ids = ids;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	size_t n = strlen(text);
	text[n] = '\0';
	int rc = fd < 0 || write_all(fd, text, n) || write_all(fd, "\n", 1) || fsync(fd) ? -1 : 0;
	int e = errno;
	if (fd >= 0)
		close(fd);
	free(text);
	if (rc)
		return errfmt(errstr, size, "cannot write '%s': %s", path, strerror(e));
	if (!(ids[rs->nalert_ids] = strdup(id->valuestring)))
		return errfmt(errstr, size, "out of memory");
	rs->nalert_ids++;
	qsort(rs->alert_ids, rs->nalert_ids, sizeof(*rs->alert_ids), cmp_str);
	return 0;
}

cJSON *runs_alerts(struct runs *rs, char *errstr, size_t size)
{
	char path[PATH_MAX];
	cJSON *arr = cJSON_CreateArray();
	if (!arr || mkpath(path, sizeof(path), "%s/alerts.jsonl", rs->dir)) {
		cJSON_Delete(arr);
		errfmt(errstr, size, "out of memory");
		return NULL;
	}
	char *text = afile_read(path, NULL);
	if (!text) {
		if (errno == ENOENT)
			return arr;
		cJSON_Delete(arr);
		errfmt(errstr, size, "cannot read '%s': %s", path, strerror(errno));
		return NULL;
	}
	for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		cJSON *j = cJSON_Parse(line);
		if (j)
			cJSON_AddItemToArray(arr, j);
	}
	free(text);
	return arr;
}

static cJSON *read_cursors(struct runs *rs)
{
	char path[PATH_MAX];
	if (mkpath(path, sizeof(path), "%s/cursors.json", rs->dir))
		return NULL;
	char *text = afile_read(path, NULL);
	cJSON *j = text ? cJSON_Parse(text) : NULL;
	free(text);
	return j;
}

int64_t runs_cursor(struct runs *rs, const char *dataset)
{
	cJSON *j = read_cursors(rs);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, dataset);
	int64_t next = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
	cJSON_Delete(j);
	return next;
}

int runs_set_cursor(struct runs *rs, const char *dataset, int64_t next, char *errstr, size_t size)
{
	cJSON *j = read_cursors(rs);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		j = cJSON_CreateObject();
	}
	cJSON_DeleteItemFromObjectCaseSensitive(j, dataset);
	if (!j || !cJSON_AddNumberToObject(j, dataset, (double)next)) {
		cJSON_Delete(j);
		return errfmt(errstr, size, "out of memory");
	}
	char *text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	int rc = text ? write_atomic(rs->dir, "cursors.json", text, errstr, size) :
	                errfmt(errstr, size, "out of memory");
	free(text);
	return rc;
}
