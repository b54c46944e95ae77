/* core/kvfile.c - read "name = value" configuration files */
#include "kvfile.h"

#include <errno.h>
#include <stdio.h>
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
