/* import.c — connections read from a pg_service.conf (passwords by libpq's .pgpass rules)
 * or from a CSV of list's columns, then registered in one transaction: all or none. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "internal.h"

#define CSV_MAX (64u << 20)
#define PGPASS_MAX (4u << 20)
#define DEFAULT_PORT "5432"

struct entry {
	char *name;
	char *where;               /* "FILE:LINE", for messages */
	struct dbreg_spec *spec;
	int revived;
};

struct dbreg_import {
	struct entry *entries;
	size_t n, cap;
	char **warnings;
	size_t nwarn;
	char *type, *region;       /* for entries that give none */
};

_public_ int dbreg_import_new(struct dbreg_import **ret, struct dbreg_error *err)
{
	struct dbreg_import *im = calloc(1, sizeof(*im));

	if (!im)
		return dbreg_fail_oom(err);
	*ret = im;
	return 0;
}

_public_ void dbreg_import_free(struct dbreg_import *im)
{
	if (!im)
		return;
	for (size_t i = 0; i < im->n; i++) {
		free(im->entries[i].name);
		free(im->entries[i].where);
		dbreg_spec_free(im->entries[i].spec);
	}
	free(im->entries);
	for (size_t i = 0; i < im->nwarn; i++)
		free(im->warnings[i]);
	free(im->warnings);
	free(im->type);
	free(im->region);
	free(im);
}

_public_ int dbreg_import_set_defaults(struct dbreg_import *im, const char *type, const char *region,
                                       struct dbreg_error *err)
{
	struct dbreg_spec *check;
	char *t = NULL, *r = NULL;
	int rc = 0;

	/* Checked as register checks --type and --region. */
	if (dbreg_spec_new(&check, err) < 0)
		return -1;
	if ((type && dbreg_spec_set(check, DBREG_F_CONNECTION_TYPE, type, err) < 0) ||
	    (region && dbreg_spec_set(check, DBREG_F_REGION_ID, region, err) < 0))
		rc = -1;
	dbreg_spec_free(check);
	if (rc < 0)
		return -1;
	if ((type && !(t = strdup(type))) || (region && !(r = strdup(region)))) {
		free(t);
		return dbreg_fail_oom(err);
	}
	free(im->type);
	free(im->region);
	im->type = t;
	im->region = r;
	return 0;
}

static void warn(struct dbreg_import *im, const char *fmt, ...) _printf_(2, 3);
static void warn(struct dbreg_import *im, const char *fmt, ...)
{
	char **more;
	char *msg;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	more = realloc(im->warnings, (im->nwarn + 1) * sizeof(*more));
	if (!more) {
		free(msg);
		return;
	}
	im->warnings = more;
	im->warnings[im->nwarn++] = msg;
}

_public_ size_t dbreg_import_warning_count(const struct dbreg_import *im)
{
	return im ? im->nwarn : 0;
}

_public_ const char *dbreg_import_warning(const struct dbreg_import *im, size_t i)
{
	return im && i < im->nwarn ? im->warnings[i] : NULL;
}

_public_ size_t dbreg_import_count(const struct dbreg_import *im)
{
	return im ? im->n : 0;
}

_public_ const char *dbreg_import_name(const struct dbreg_import *im, size_t i)
{
	return im && i < im->n ? im->entries[i].name : NULL;
}

_public_ int dbreg_import_revived(const struct dbreg_import *im, size_t i)
{
	return im && i < im->n ? im->entries[i].revived : 0;
}

/* A file as messages name it. */
static const char *shown_path(const char *path, char *buf, size_t size)
{
	if (strcmp(path, "-") != 0)
		return dbreg_printable(path, buf, size);
	snprintf(buf, size, "stdin");
	return buf;
}

/* Takes spec (freed on failure too).  A name given twice is refused: which one was meant? */
static int add_entry(struct dbreg_import *im, const char *file, unsigned line, const char *name,
                     struct dbreg_spec *spec, struct dbreg_error *err)
{
	struct entry e = { .spec = spec };

	for (size_t i = 0; i < im->n; i++)
		if (strcmp(im->entries[i].name, name) == 0) {
			dbreg_spec_free(spec);
			return dbreg_fail(err, DBREG_ERR_USAGE, "%s:%u: connection '%s' is given twice (first at %s)", file,
			                  line, name, im->entries[i].where);
		}
	if (im->n == im->cap) {
		size_t cap = im->cap ? im->cap * 2 : 16;
		struct entry *more = realloc(im->entries, cap * sizeof(*more));

		if (!more) {
			dbreg_spec_free(spec);
			return dbreg_fail_oom(err);
		}
		im->entries = more;
		im->cap = cap;
	}
	e.name = strdup(name);
	if (!e.name || asprintf(&e.where, "%s:%u", file, line) < 0) {
		free(e.name);
		dbreg_spec_free(spec);
		return dbreg_fail_oom(err);
	}
	im->entries[im->n++] = e;
	return 0;
}

/* ---- .pgpass, as libpq reads it (fe-connect.c, passwordFromFile) ---- */

/* libpq's pwdfMatchesString: the field at p (up to an unescaped ':') matches
 * token, or is "*"; returns what follows its ':', or NULL. */
static const char *pgpass_match(const char *p, const char *tok)
{
	bool bslash = false;

	if (p[0] == '*' && p[1] == ':')
		return p + 2;
	while (*p) {
		if (*p == '\\' && !bslash) {
			p++;
			bslash = true;
		}
		if (*p == ':' && !*tok && !bslash)
			return p + 1;
		bslash = false;
		if (!*tok || *p != *tok)
			return NULL;
		p++;
		tok++;
	}
	return NULL;
}

/* The password of the first line (text: lines NUL-separated, len bytes) matching
 * host, port, dbname and user, de-escaped into locked memory; NULL when none. */
static int pgpass_lookup(const char *text, size_t len, const char *host, const char *port, const char *dbname,
                         const char *user, char **ret, size_t *ret_len, struct dbreg_error *err)
{
	*ret = NULL;
	host = dbreg_pgpass_host(host);
	if (!port || !*port)
		port = DEFAULT_PORT;
	for (const char *line = text; line < text + len; line += strlen(line) + 1) {
		const char *t = line;
		char *pw;
		size_t o = 0;

		if (line[0] == '#' || !line[0])
			continue;
		if (!(t = pgpass_match(t, host)) || !(t = pgpass_match(t, port)) || !(t = pgpass_match(t, dbname)) ||
		    !(t = pgpass_match(t, user)))
			continue;
		pw = sodium_malloc(strlen(t) + 1);
		if (!pw)
			return dbreg_fail_oom(err);
		for (; *t && *t != ':'; t++) {
			if (*t == '\\' && t[1])
				t++;
			pw[o++] = *t;
		}
		pw[o] = '\0';
		*ret = pw;
		*ret_len = o;
		return 0;
	}
	return 0;
}

/* ---- service files ---- */

static const struct {
	const char *key;
	enum dbreg_field field;
} service_keys[] = {
	{ "host", DBREG_F_HOST },
	{ "port", DBREG_F_PORT },
	{ "dbname", DBREG_F_DATABASE_NAME },
	{ "user", DBREG_F_USERNAME },
	{ "sslmode", DBREG_F_SSL_MODE },
};

struct service_read {
	struct dbreg_import *im;
	struct dbreg_ctx *ctx;
	const char *file;             /* printable */
	const char *pgpass;           /* lines NUL-separated, locked memory; NULL: no --pgpass */
	size_t pgpass_len;
	struct dbreg_error *err;
	/* the section being read */
	char *name;
	unsigned line;
	struct dbreg_spec *spec;
	const char *password;         /* inside the file's locked text */
	unsigned password_line;
};

static void section_drop(struct service_read *r)
{
	free(r->name);
	r->name = NULL;
	dbreg_spec_free(r->spec);
	r->spec = NULL;
	r->password = NULL;
}

static int section_end(struct service_read *r)
{
	char *found = NULL;
	const char *pw = NULL;
	size_t len = 0;
	int rc;

	if (!r->name)
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(service_keys); i++)
		if (service_keys[i].field != DBREG_F_PORT && service_keys[i].field != DBREG_F_SSL_MODE &&
		    !dbreg_spec_is_set(r->spec, service_keys[i].field)) {
			dbreg_fail(r->err, DBREG_ERR_USAGE,
			           "%s:%u: service %s has no %s (a registered connection needs host, dbname and user)",
			           r->file, r->line, r->name, service_keys[i].key);
			section_drop(r);
			return -1;
		}
	/* As libpq: the section's own password first, else the password file's. */
	if (r->password && *r->password) {
		pw = r->password;
		len = strlen(pw);
		warn(r->im, "%s:%u: service %s: the password is read from the service file; a password file"
		            " (--pgpass) is the place for it", r->file, r->password_line, r->name);
	} else if (r->pgpass) {
		if (pgpass_lookup(r->pgpass, r->pgpass_len, dbreg_spec_value(r->spec, DBREG_F_HOST),
		                  dbreg_spec_value(r->spec, DBREG_F_PORT), dbreg_spec_value(r->spec, DBREG_F_DATABASE_NAME),
		                  dbreg_spec_value(r->spec, DBREG_F_USERNAME), &found, &len, r->err) < 0) {
			section_drop(r);
			return -1;
		}
		pw = found;
	}
	if (pw && len > 0) {
		rc = dbreg_spec_set_password(r->spec, r->ctx, pw, len, r->err);
		if (found)
			sodium_free(found);  /* wipes */
		if (rc < 0) {
			dbreg_error_prefix(r->err, "%s:%u: service %s: ", r->file, r->line, r->name);
			section_drop(r);
			return -1;
		}
	} else if (found) {
		sodium_free(found);
	}
	rc = add_entry(r->im, r->file, r->line, r->name, r->spec, r->err);
	r->spec = NULL;  /* add_entry took it */
	section_drop(r);
	return rc;
}

static int service_visit(void *ud, enum dbreg_service_line kind, const char *key, const char *value, unsigned line)
{
	struct service_read *r = ud;
	char shown[160];

	if (kind == DBREG_SVC_OTHER)
		return dbreg_fail(r->err, DBREG_ERR_USAGE, "%s:%u: syntax error: neither [NAME], KEY=VALUE nor a comment",
		                  r->file, line);
	if (kind == DBREG_SVC_GROUP) {
		if (section_end(r) < 0)
			return -1;
		if (!value)
			return dbreg_fail(r->err, DBREG_ERR_USAGE, "%s:%u: syntax error: a section name without ']'", r->file,
			                  line);
		if (dbreg_check_connection_name(key, r->err) < 0) {
			dbreg_error_prefix(r->err, "%s:%u: service [%s]: ", r->file, line,
			                   dbreg_printable(key, shown, sizeof(shown)));
			return -1;
		}
		if (dbreg_spec_new(&r->spec, r->err) < 0)
			return -1;
		r->name = strdup(key);
		r->line = line;
		if (!r->name)
			return dbreg_fail_oom(r->err);
		return 0;
	}
	dbreg_printable(key, shown, sizeof(shown));
	if (!r->name) {
		warn(r->im, "%s:%u: '%s' outside any [section]; ignored", r->file, line, shown);
		return 0;
	}
	if (strcmp(key, "password") == 0) {
		if (r->password)
			warn(r->im, "%s:%u: service %s: a second password; the first one is kept", r->file, line, r->name);
		else {
			r->password = value;
			r->password_line = line;
		}
		return 0;
	}
	for (size_t i = 0; i < ELEMENTSOF(service_keys); i++) {
		if (strcmp(key, service_keys[i].key) != 0)
			continue;
		if (dbreg_spec_is_set(r->spec, service_keys[i].field)) {
			warn(r->im, "%s:%u: service %s: a second %s; the first one is kept", r->file, line, r->name, key);
			return 0;
		}
		if (dbreg_spec_set(r->spec, service_keys[i].field, value, r->err) < 0) {
			dbreg_error_prefix(r->err, "%s:%u: service %s: ", r->file, line, r->name);
			return -1;
		}
		return 0;
	}
	warn(r->im, "%s:%u: service %s: '%s' is not kept in the registry; ignored", r->file, line, r->name, shown);
	return 0;
}

_public_ int dbreg_import_read_service(struct dbreg_import *im, struct dbreg_ctx *ctx, const char *path,
                                       const char *pgpass, struct dbreg_error *err)
{
	struct service_read r = { .im = im, .ctx = ctx, .err = err };
	char file[256], *text = NULL, *pass = NULL;
	size_t len, plen = 0;
	int rc;

	shown_path(path, file, sizeof(file));
	r.file = file;
	if (pgpass) {
		if (dbreg_secret_file_read("password file", pgpass, true, DBREG_ERR_USAGE, PGPASS_MAX, &pass, &plen, err) < 0)
			return -1;
		/* Lines as strings, CR LF or LF, as libpq strips them. */
		for (size_t i = 0; i < plen; i++)
			if (pass[i] == '\n') {
				pass[i] = '\0';
				if (i > 0 && pass[i - 1] == '\r')
					pass[i - 1] = '\0';
			}
		r.pgpass = pass;
		r.pgpass_len = plen;
	}
	/* A service file may hold passwords too: locked memory, wiped. */
	if (dbreg_secret_file_read("service file", strcmp(path, "-") == 0 ? "/dev/stdin" : path, false, DBREG_ERR_USAGE,
	                           DBREG_SERVICE_FILE_MAX, &text, &len, err) < 0) {
		dbreg_key_text_free(pass);
		return -1;
	}
	if (memchr(text, '\0', len))
		rc = dbreg_fail(err, DBREG_ERR_USAGE, "%s: the file holds a NUL byte; not a service file", file);
	else
		rc = dbreg_service_walk(text, len, service_visit, &r) < 0 ? -1 : section_end(&r);
	section_drop(&r);
	dbreg_key_text_free(text);
	dbreg_key_text_free(pass);
	return rc;
}

/* ---- CSV (RFC 4180) ---- */

struct csv {
	const char *p, *end;
	unsigned line;
	char **fields;
	size_t n, cap;
	char *buf;
	size_t len, bufcap;
};

static void csv_clear(struct csv *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->fields[i]);
	c->n = 0;
}

static int csv_put(struct csv *c, char ch)
{
	if (c->len + 1 >= c->bufcap) {
		size_t cap = c->bufcap ? c->bufcap * 2 : 256;
		char *more = realloc(c->buf, cap);

		if (!more)
			return -1;
		c->buf = more;
		c->bufcap = cap;
	}
	c->buf[c->len++] = ch;
	return 0;
}

static int csv_push(struct csv *c)
{
	char *f;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		char **more = realloc(c->fields, cap * sizeof(*more));

		if (!more)
			return -1;
		c->fields = more;
		c->cap = cap;
	}
	f = malloc(c->len + 1);
	if (!f)
		return -1;
	if (c->len)
		memcpy(f, c->buf, c->len);
	f[c->len] = '\0';
	c->fields[c->n++] = f;
	c->len = 0;
	return 0;
}

static bool at_eol(const struct csv *c)
{
	return c->p < c->end && (*c->p == '\n' || (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n'));
}

/* One record into c->fields: 1, or 0 at the end, or -1 (err says why, naming the line).
 * *ret_line: the physical line it starts on.  Empty lines are skipped. */
static int csv_record(struct csv *c, const char *file, unsigned *ret_line, struct dbreg_error *err)
{
	csv_clear(c);
	while (at_eol(c)) {
		c->p += *c->p == '\r' ? 2 : 1;
		c->line++;
	}
	if (c->p >= c->end)
		return 0;
	*ret_line = c->line;
	for (;;) {
		c->len = 0;
		if (c->p < c->end && *c->p == '"') {
			unsigned opened = c->line;

			for (c->p++;; c->p++) {
				if (c->p >= c->end)
					return dbreg_fail(err, DBREG_ERR_USAGE, "%s:%u: a quoted field is not closed", file, opened);
				if (*c->p == '"') {
					if (c->p + 1 < c->end && c->p[1] == '"') {
						c->p++;
					} else {
						c->p++;
						break;
					}
				} else if (*c->p == '\n') {
					c->line++;
				}
				if (csv_put(c, *c->p) < 0)
					return dbreg_fail_oom(err);
			}
			if (c->p < c->end && *c->p != ',' && !at_eol(c))
				return dbreg_fail(err, DBREG_ERR_USAGE, "%s:%u: text after a closing quote", file, c->line);
		} else {
			for (; c->p < c->end && *c->p != ',' && !at_eol(c); c->p++) {
				if (*c->p == '"')
					return dbreg_fail(err, DBREG_ERR_USAGE,
					                  "%s:%u: a quote inside a field that does not start with one", file, c->line);
				if (csv_put(c, *c->p) < 0)
					return dbreg_fail_oom(err);
			}
		}
		if (csv_push(c) < 0)
			return dbreg_fail_oom(err);
		if (c->p >= c->end)
			return 1;
		if (*c->p == ',') {
			c->p++;
			continue;
		}
		c->p += *c->p == '\r' ? 2 : 1;  /* the line's end */
		c->line++;
		return 1;
	}
}

static int read_input(const char *path, const char *file, char **ret, size_t *ret_len, struct dbreg_error *err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return dbreg_fail(err, DBREG_ERR_USAGE, "%s: %s", file, strerror(errno));
	do {
		if (len + 65536 > cap) {
			char *more;

			cap = cap ? cap * 2 : 65536;
			if (cap > CSV_MAX + 65536) {
				free(buf);
				if (f != stdin)
					fclose(f);
				return dbreg_fail(err, DBREG_ERR_USAGE, "%s: longer than %u bytes", file, CSV_MAX);
			}
			more = realloc(buf, cap + 1);
			if (!more) {
				free(buf);
				if (f != stdin)
					fclose(f);
				return dbreg_fail_oom(err);
			}
			buf = more;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		int e = errno;

		free(buf);
		if (f != stdin)
			fclose(f);
		return dbreg_fail(err, DBREG_ERR_USAGE, "%s: %s", file, strerror(e));
	}
	if (f != stdin)
		fclose(f);
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int set_tags(struct dbreg_spec *s, const char *text, struct dbreg_error *err)
{
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	size_t i;
	json_t *v;
	int r = 0;

	if (!j || !(json_is_array(j) || json_is_null(j))) {
		json_decref(j);
		return dbreg_fail(err, DBREG_ERR_USAGE, "tags: not a JSON array of strings");
	}
	json_array_foreach(j, i, v) {
		if (!json_is_string(v)) {
			r = dbreg_fail(err, DBREG_ERR_USAGE, "tags: not a JSON array of strings");
			break;
		}
		if ((r = dbreg_spec_add_tag(s, json_string_value(v), err)) < 0)
			break;
	}
	json_decref(j);
	return r;
}

/* One row: the writable columns, the region by its code where the file has region_code. */
static int csv_row(struct dbreg_import *im, struct csv *c, const int *cols, bool by_code, const char *file,
                   unsigned line, struct dbreg_error *err)
{
	static const enum dbreg_field required[] = { DBREG_F_HOST, DBREG_F_DATABASE_NAME, DBREG_F_USERNAME };
	const char *name = NULL, *region = NULL;
	struct dbreg_spec *s;
	char shown[160];
	int r = 0;

	for (size_t i = 0; i < c->n; i++)
		if (cols[i] == DBREG_F_CONNECTION_NAME)
			name = c->fields[i];
	if (!name || !*name)
		return dbreg_fail(err, DBREG_ERR_USAGE, "%s:%u: connection_name is empty", file, line);
	if (dbreg_check_connection_name(name, err) < 0) {
		dbreg_error_prefix(err, "%s:%u: ", file, line);
		return -1;
	}
	if (dbreg_spec_new(&s, err) < 0)
		return -1;
	for (size_t i = 0; i < c->n && r == 0; i++) {
		const char *v = c->fields[i];
		int f = cols[i];

		if (!*v || f < 0)
			continue;  /* an empty cell: not given (CSV has no NULL) */
		if (f == DBREG_F_REGION_CODE || f == DBREG_F_REGION_ID) {
			if ((f == DBREG_F_REGION_CODE) == by_code)
				region = v;
		} else if (f == DBREG_F_TAGS) {
			r = set_tags(s, v, err);
		} else if (f == DBREG_F_METADATA) {
			r = dbreg_spec_set_metadata(s, v, err);
		} else if (dbreg_spec_writable((enum dbreg_field)f)) {
			r = dbreg_spec_set(s, (enum dbreg_field)f, v, err);
		}
	}
	if (r == 0 && region)
		r = dbreg_spec_set(s, DBREG_F_REGION_ID, region, err);
	for (size_t i = 0; i < ELEMENTSOF(required) && r == 0; i++)
		if (!dbreg_spec_is_set(s, required[i]))
			r = dbreg_fail(err, DBREG_ERR_USAGE, "%s is empty", dbreg_field_name(required[i]));
	if (r == 0)
		r = dbreg_spec_check(s, 1, err);
	if (r < 0) {
		dbreg_error_prefix(err, "%s:%u: connection %s: ", file, line, dbreg_printable(name, shown, sizeof(shown)));
		dbreg_spec_free(s);
		return -1;
	}
	return add_entry(im, file, line, name, s, err);
}

_public_ int dbreg_import_read_csv(struct dbreg_import *im, const char *path, struct dbreg_error *err)
{
	static const enum dbreg_field required[] = {
		DBREG_F_CONNECTION_NAME, DBREG_F_HOST, DBREG_F_DATABASE_NAME, DBREG_F_USERNAME,
	};
	struct csv c = { .line = 1 };
	char file[256], shown[160], *text = NULL;
	bool have[DBREG_F__COUNT] = { false };
	int *cols = NULL, r;
	size_t len = 0, ncols;
	unsigned line;

	shown_path(path, file, sizeof(file));
	if (read_input(path, file, &text, &len, err) < 0)
		return -1;
	c.p = text;
	c.end = text + len;
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		c.p += 3;  /* a byte-order mark */
	if (memchr(text, '\0', len)) {
		r = dbreg_fail(err, DBREG_ERR_USAGE, "%s: the file holds a NUL byte; not CSV", file);
		goto out;
	}
	r = csv_record(&c, file, &line, err);
	if (r <= 0) {
		if (r == 0)
			r = dbreg_fail(err, DBREG_ERR_USAGE, "%s: no header row (dbreg list -o csv's)", file);
		goto out;
	}
	ncols = c.n;
	cols = malloc(ncols * sizeof(*cols));
	if (!cols) {
		r = dbreg_fail_oom(err);
		goto out;
	}
	for (size_t i = 0; i < ncols; i++) {
		cols[i] = dbreg_field_lookup(c.fields[i]);
		if (cols[i] < 0) {
			warn(im, "%s:%u: column '%s' is not a registry field; ignored", file, line,
			     dbreg_printable(c.fields[i], shown, sizeof(shown)));
			continue;
		}
		if (have[cols[i]]) {
			r = dbreg_fail(err, DBREG_ERR_USAGE, "%s:%u: column %s appears twice", file, line, c.fields[i]);
			goto out;
		}
		have[cols[i]] = true;
	}
	for (size_t i = 0; i < ELEMENTSOF(required); i++)
		if (!have[required[i]]) {
			r = dbreg_fail(err, DBREG_ERR_USAGE, "%s:%u: the header row has no column %s", file, line,
			               dbreg_field_name(required[i]));
			goto out;
		}
	while ((r = csv_record(&c, file, &line, err)) > 0) {
		if (c.n != ncols) {
			r = dbreg_fail(err, DBREG_ERR_USAGE, "%s:%u: %zu field%s, the header row has %zu", file, line, c.n,
			               c.n == 1 ? "" : "s", ncols);
			break;
		}
		if ((r = csv_row(im, &c, cols, have[DBREG_F_REGION_CODE], file, line, err)) < 0)
			break;
	}
out:
	csv_clear(&c);
	free(c.fields);
	free(c.buf);
	free(cols);
	free(text);
	return r < 0 ? -1 : 0;
}

/* ---- registering them ---- */

_public_ int dbreg_import_run(struct dbreg_ctx *ctx, struct dbreg_import *im, unsigned flags,
                              struct dbreg_conn_list **ret_rows, struct dbreg_error *err)
{
	struct dbreg_conn_list *rows = NULL;
	struct dbreg_filter *filter = NULL;
	const char **names = NULL;
	int r = 0;

	for (size_t i = 0; i < im->n && r == 0; i++) {
		struct dbreg_spec *s = im->entries[i].spec;

		if (im->type && !dbreg_spec_is_set(s, DBREG_F_CONNECTION_TYPE))
			r = dbreg_spec_set(s, DBREG_F_CONNECTION_TYPE, im->type, err);
		if (r == 0 && im->region && !dbreg_spec_value(s, DBREG_F_REGION_ID))
			r = dbreg_spec_set(s, DBREG_F_REGION_ID, im->region, err);
	}
	if (r < 0)
		return -1;
	if (ret_rows) {
		names = calloc(im->n + 1, sizeof(*names));
		if (!names)
			return dbreg_fail_oom(err);
		if (dbreg_filter_new(&filter, err) < 0) {
			free(names);
			return -1;
		}
		for (size_t i = 0; i < im->n; i++)
			names[i] = im->entries[i].name;
	}
	/* One transaction: a dry run is rolled back, as is any failure. */
	if (dbreg_registry_begin(ctx, err) < 0)
		goto fail;
	for (size_t i = 0; i < im->n; i++) {
		struct entry *e = &im->entries[i];

		/* Not DBREG_WRITE_DRY_RUN: that would end this transaction; it is rolled back below. */
		if (dbreg_register(ctx, e->name, e->spec, flags & DBREG_WRITE_REPLACE, NULL, err) < 0) {
			dbreg_error_prefix(err, "%s: ", e->where);
			goto fail;
		}
		e->revived = dbreg_register_revived(ctx);
	}
	if (ret_rows && (dbreg_filter_set_names(filter, names, err) < 0 || dbreg_list(ctx, filter, &rows, err) < 0))
		goto fail;
	if (dbreg_registry_end(ctx, !(flags & DBREG_WRITE_DRY_RUN), err) < 0)
		goto fail;
	dbreg_filter_free(filter);
	free(names);
	if (ret_rows)
		*ret_rows = rows;
	return 0;
fail:
	dbreg_registry_end(ctx, false, NULL);
	dbreg_conn_list_free(rows);
	dbreg_filter_free(filter);
	free(names);
	return -1;
}
