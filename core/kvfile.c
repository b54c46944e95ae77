/* core/kvfile.c - read "name = value" configuration files */
#include "kvfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

int kvfile_read(const char *path, kvfile_set_fn set, void *ctx, char *errstr, size_t errstr_size)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(errstr, errstr_size, "cannot open config file '%s': %s", path, strerror(errno));
		return -1;
	}
	char line[4096], why[512];
	int lineno = 0, rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		char *l = trim(line), *eq = strchr(l, '=');
		if (!*l || *l == '#')
			continue;
		if (!eq) {
			snprintf(errstr, errstr_size, "'%s' line %d: expected name = value", path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		why[0] = '\0';
		if (set(ctx, trim(l), trim(eq + 1), why, sizeof(why))) {
			snprintf(errstr, errstr_size, "'%s' line %d: %s", path, lineno, why);
			rc = -1;
		}
	}
	fclose(f);
	return rc;
}

char *kvfile_option(struct kvfile_values *kept, const char *name, const char *value, char *opt,
                    size_t opt_size, char *errstr, size_t errstr_size)
{
	char *keep;
	if (kept->n == KVFILE_MAX_VALUES) {
		snprintf(errstr, errstr_size, "too many settings");
		return NULL;
	}
	if (!strncmp(name, "kafka.", 6)) {
		size_t need = strlen(name) + strlen(value) + 2;
		if ((keep = malloc(need)))
			snprintf(keep, need, "%s=%s", name + 6, value);
		snprintf(opt, opt_size, "-X");
	} else {
		keep = strdup(value);
		snprintf(opt, opt_size, "%s", !strcmp(name, "brokers") ? "-b" : !strcmp(name, "topic") ? "-t" : "");
		if (!opt[0])
			snprintf(opt, opt_size, "--%s", name);
	}
	if (!keep) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	kept->v[kept->n++] = keep;
	return keep;
}

void kvfile_values_release(struct kvfile_values *kept)
{
	for (int i = 0; i < kept->n; i++)
		free(kept->v[i]);
	kept->n = 0;
}
