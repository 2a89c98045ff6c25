/* fuzz-service.c — dbreg_service_find on any service file.
 *
 * The input is the whole of PGSERVICEFILE (one temp file, rewritten each run);
 * PGSYSCONFDIR is an empty temp dir, so that only the input can define a service.  Both
 * are made once in LLVMFuzzerInitialize, under $TMPDIR (else /tmp).  Each run looks up
 * service "svc".  Properties: nothing crashes or leaks; the lookup fails only when out
 * of memory; found and file agree (found: file is PGSERVICEFILE and nothing is wrong;
 * not found: no file and no settings); the file is in the list of files searched; and
 * found and each setting are what the reading rule libpq and dbreg use gives (first
 * "[svc]" group, to the next group; trailing and leading blanks dropped; first key=value
 * for a key wins), computed here independently. */
#include <fcntl.h>
#include <unistd.h>

#include "dbreg.h"
#include "fuzz.h"
#include "internal.h"

static char file[4096];
static char sysdir[4096];
static int fd = -1;

static void cleanup(void)
{
	if (file[0])
		unlink(file);
	if (sysdir[0])
		rmdir(sysdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	if (!tmp || !*tmp)
		tmp = "/tmp";
	snprintf(file, sizeof(file), "%s/dbreg-fuzz-service.XXXXXX", tmp);
	snprintf(sysdir, sizeof(sysdir), "%s/dbreg-fuzz-sysconf.XXXXXX", tmp);
	fd = mkstemp(file);
	if (fd < 0 || !mkdtemp(sysdir)) {
		perror("fuzz-service: mkstemp/mkdtemp");
		abort();
	}
	atexit(cleanup);
	setenv("PGSERVICEFILE", file, 1);
	setenv("PGSYSCONFDIR", sysdir, 1);
	unsetenv("PGSERVICE");
	return 0;
}

/* ---- the model ---- */
enum { M_HOST, M_HOSTADDR, M_PORT, M_SSLMODE, M_REQUIRESSL, M_N };
static const char *const model_keys[M_N] = { "host", "hostaddr", "port", "sslmode", "requiressl" };

struct model {
	int found;
	char *val[M_N];
};

static void model_read(const uint8_t *data, size_t size, struct model *m)
{
	int in_group = 0;
	size_t at = 0;

	memset(m, 0, sizeof(*m));
	while (at < size) {
		const uint8_t *nl = memchr(data + at, '\n', size - at);
		size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
		char *line = malloc(len + 1), *p, *eq;

		FUZZ_ASSERT(line != NULL, "out of memory");
		memcpy(line, data + at, len);
		line[len] = '\0';
		at += len + (nl ? 1 : 0);
		/* Blanks at the end of the line as read (past a NUL too), then the string. */
		while (len > 0 && strchr("\r \t", line[len - 1]) && line[len - 1])
			line[--len] = '\0';
		p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#') {
			free(line);
			continue;
		}
		if (*p == '[') {
			if (in_group) {
				free(line);
				break;
			}
			in_group = strncmp(p + 1, "svc]", 4) == 0;
			m->found |= in_group;
		} else if (in_group && (eq = strchr(p, '='))) {
			*eq = '\0';
			for (int k = 0; k < M_N; k++)
				if (strcmp(p, model_keys[k]) == 0 && !m->val[k]) {
					m->val[k] = strdup(eq + 1);
					FUZZ_ASSERT(m->val[k] != NULL, "out of memory");
				}
		}
		free(line);
	}
}

static void same(const char *what, const char *got, const char *want)
{
	FUZZ_ASSERT((!got && !want) || (got && want && strcmp(got, want) == 0), "%s: dbreg read \"%s\", expected \"%s\"",
	            what, got ? got : "(null)", want ? want : "(null)");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dbreg_service s;
	struct model m;
	int r;

	FUZZ_ASSERT(ftruncate(fd, 0) == 0, "ftruncate failed");
	FUZZ_ASSERT(pwrite(fd, data, size, 0) == (ssize_t)size, "pwrite failed");

	r = dbreg_service_find("svc", &s);
	FUZZ_ASSERT(r == 0, "dbreg_service_find returned %d", r);
	FUZZ_ASSERT(memchr(s.file, '\0', sizeof(s.file)) && memchr(s.searched, '\0', sizeof(s.searched)) &&
	            memchr(s.error, '\0', sizeof(s.error)), "an unterminated string in struct dbreg_service");
	FUZZ_ASSERT(strstr(s.searched, file) != NULL, "searched \"%s\" does not name %s", s.searched, file);
	if (s.found) {
		FUZZ_ASSERT(strcmp(s.file, file) == 0, "found in \"%s\", not in %s", s.file, file);
		FUZZ_ASSERT(s.error[0] == '\0', "found, and yet error \"%s\"", s.error);
	} else {
		FUZZ_ASSERT(s.file[0] == '\0', "not found, and yet file \"%s\"", s.file);
		FUZZ_ASSERT(!s.host && !s.hostaddr && !s.port && !s.sslmode && !s.requiressl, "not found, and yet settings");
		FUZZ_ASSERT(s.error[0] == '\0', "a readable file, and yet error \"%s\"", s.error);
	}

	model_read(data, size, &m);
	FUZZ_ASSERT(s.found == m.found, "dbreg found=%d, expected %d", s.found, m.found);
	same("host", s.host, m.val[M_HOST]);
	same("hostaddr", s.hostaddr, m.val[M_HOSTADDR]);
	same("port", s.port, m.val[M_PORT]);
	same("sslmode", s.sslmode, m.val[M_SSLMODE]);
	same("requiressl", s.requiressl, m.val[M_REQUIRESSL]);
	for (int k = 0; k < M_N; k++)
		free(m.val[k]);

	dbreg_service_clear(&s);
	FUZZ_ASSERT(!s.found && !s.host && !s.file[0], "dbreg_service_clear left something");
	return 0;
}
