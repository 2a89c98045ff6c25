/* conninfo.c — the only module that parses or builds connection strings (libpq's own parser). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct dbreg_url_parts {
	char *host, *port, *dbname, *user, *sslmode;
};

void dbreg_params_add(struct dbreg_params *p, const char *key, const char *val)
{
	if (p->n >= (int)ELEMENTSOF(p->keys) - 1)
		return;
	p->keys[p->n] = key;
	p->vals[p->n] = val;
	p->n++;
	p->keys[p->n] = NULL;
	p->vals[p->n] = NULL;
}

_public_ void dbreg_url_parts_free(struct dbreg_url_parts *p)
{
	if (!p)
		return;
	free(p->host);
	free(p->port);
	free(p->dbname);
	free(p->user);
	free(p->sslmode);
	free(p);
}

_public_ const char *dbreg_url_parts_host(const struct dbreg_url_parts *p) { return p->host; }
_public_ const char *dbreg_url_parts_port(const struct dbreg_url_parts *p) { return p->port; }
_public_ const char *dbreg_url_parts_dbname(const struct dbreg_url_parts *p) { return p->dbname; }
_public_ const char *dbreg_url_parts_user(const struct dbreg_url_parts *p) { return p->user; }
_public_ const char *dbreg_url_parts_sslmode(const struct dbreg_url_parts *p) { return p->sslmode; }

static int dup_opt(char **dst, const char *val)
{
	if (!val || !*val)
		return 0;
	*dst = strdup(val);
	return *dst ? 0 : -1;
}

_public_ int dbreg_url_parse(const char *url, struct dbreg_url_parts **ret, struct dbreg_error *err)
{
	struct dbreg_url_parts *p;
	PQconninfoOption *opts;
	char *msg = NULL;
	int r = 0;

	opts = PQconninfoParse(url ? url : "", &msg);
	if (!opts) {
		size_t n;

		if (!msg)
			return dbreg_fail_oom(err);
		n = strlen(msg);
		while (n > 0 && msg[n - 1] == '\n')
			msg[--n] = '\0';
		dbreg_fail(err, DBREG_ERR_USAGE, "cannot parse the URL: %s", msg);
		PQfreemem(msg);
		return -1;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		PQconninfoFree(opts);
		return dbreg_fail_oom(err);
	}
	for (PQconninfoOption *o = opts; o->keyword && r == 0; o++) {
		if (!o->val)
			continue;
		if (strcmp(o->keyword, "password") == 0 && *o->val) {
			r = dbreg_fail(err, DBREG_ERR_USAGE,
			               "the URL contains a password; passwords never go on the command line (use --password-stdin)");
		} else if (strcmp(o->keyword, "host") == 0) {
			r = dup_opt(&p->host, o->val);
		} else if (strcmp(o->keyword, "hostaddr") == 0 && !p->host) {
			r = dup_opt(&p->host, o->val);
		} else if (strcmp(o->keyword, "port") == 0) {
			r = dup_opt(&p->port, o->val);
		} else if (strcmp(o->keyword, "dbname") == 0) {
			r = dup_opt(&p->dbname, o->val);
		} else if (strcmp(o->keyword, "user") == 0) {
			r = dup_opt(&p->user, o->val);
		} else if (strcmp(o->keyword, "sslmode") == 0) {
			r = dup_opt(&p->sslmode, o->val);
		}
		if (r > 0)
			r = 0;
	}
	/* Wipe a refused password from libpq's copy before freeing it. */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && strcmp(o->keyword, "password") == 0)
			memset(o->val, 0, strlen(o->val));
	PQconninfoFree(opts);
	if (r < 0) {
		if (err && err->kind == DBREG_OK)
			dbreg_fail_oom(err);
		dbreg_url_parts_free(p);
		return -1;
	}
	if ((p->host && strchr(p->host, ',')) || (p->port && strchr(p->port, ','))) {
		dbreg_url_parts_free(p);
		return dbreg_fail(err, DBREG_ERR_USAGE, "a registered connection names one host and port, not a list");
	}
	*ret = p;
	return 0;
}

/* The i-th entry of a comma-separated list into buf ("" when absent). */
const char *dbreg_list_item(const char *s, size_t i, char *buf, size_t size)
{
	const char *end;
	size_t n;

	buf[0] = '\0';
	for (; s && i > 0; i--) {
		s = strchr(s, ',');
		if (s)
			s++;
	}
	if (!s)
		return buf;
	end = strchr(s, ',');
	n = end ? (size_t)(end - s) : strlen(s);
	if (n >= size)
		n = size - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return buf;
}

bool dbreg_port_ok(const char *text)
{
	char *end;
	long v;

	while (*text == ' ' || *text == '\t')
		text++;
	if (!*text)
		return true;  /* an empty entry is the default port */
	errno = 0;
	v = strtol(text, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	return errno == 0 && end != text && *end == '\0' && v >= 1 && v <= 65535;
}

/* Does the URL itself set connect_timeout? */
static int url_has_timeout(const char *url)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	int found = 0;

	if (!opts)
		return 0;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && *o->val)
			found = 1;
	PQconninfoFree(opts);
	return found;
}

int dbreg_connect_admin(const char *url, PGconn **ret, struct dbreg_error *err)
{
	struct dbreg_params p = { .n = 0 };
	char *msg = NULL;
	PQconninfoOption *check;
	PGconn *conn;

	if (!url || !*url)
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "ADMIN_DATABASE_URL is not set; set it to the admin database's connection string");
	check = PQconninfoParse(url, &msg);
	/* libpq would take a port it cannot parse for a connection failure. */
	for (PQconninfoOption *o = check; o && o->keyword; o++) {
		size_t items = 1;
		char item[64];

		if (strcmp(o->keyword, "port") != 0 || !o->val)
			continue;
		for (const char *c = o->val; *c; c++)
			items += *c == ',';
		for (size_t i = 0; i < items; i++)
			if (!dbreg_port_ok(dbreg_list_item(o->val, i, item, sizeof(item)))) {
				PQconninfoFree(check);
				return dbreg_fail(err, DBREG_ERR_CONFIG, "ADMIN_DATABASE_URL: port \"%s\" is not 1..65535",
				                  item);
			}
	}
	if (!check) {
		size_t n = msg ? strlen(msg) : 0;

		while (n > 0 && msg[n - 1] == '\n')
			msg[--n] = '\0';
		dbreg_fail(err, DBREG_ERR_CONFIG, "cannot parse ADMIN_DATABASE_URL: %s", msg ? msg : "out of memory");
		PQfreemem(msg);
		return -1;
	}
	PQconninfoFree(check);

	/* Parameters before dbname are defaults: the expanded URL overrides them. */
	dbreg_params_add(&p, "fallback_application_name", "dbreg");
	if (!getenv("PGCONNECT_TIMEOUT") && !url_has_timeout(url))
		dbreg_params_add(&p, "connect_timeout", "10");
	dbreg_params_add(&p, "dbname", url);
	conn = PQconnectdbParams(p.keys, p.vals, 1);
	if (!conn)
		return dbreg_fail_oom(err);
	if (PQstatus(conn) != CONNECTION_OK) {
		char why[768];
		enum dbreg_errkind kind = dbreg_classify_connect_failure(conn);

		dbreg_connect_error(conn, why, sizeof(why));
		PQfinish(conn);
		return dbreg_fail(err, kind, "cannot connect to the admin database: %s", why);
	}
	*ret = conn;
	return 0;
}

enum dbreg_errkind dbreg_classify_connect_failure(PGconn *conn)
{
	/* libpq keeps no SQLSTATE for a refused login, so read its message: the
	 * server answered, and said no to who we are or what we asked for. */
	static const char *const refusals[] = {
		"authentication", "password", "pg_hba.conf", "does not exist", "permission denied",
		"server does not support SSL", "certificate",
	};
	const char *msg = PQerrorMessage(conn);

	if (PQconnectionNeedsPassword(conn) || PQconnectionUsedPassword(conn))
		return DBREG_ERR_CONFIG;
	for (size_t i = 0; i < ELEMENTSOF(refusals); i++)
		if (strstr(msg, refusals[i]))
			return DBREG_ERR_CONFIG;
	return DBREG_ERR_UNAVAILABLE;
}

void dbreg_connect_error(PGconn *conn, char *buf, size_t size)
{
	const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
	size_t o = 0;

	/* One line: libpq puts one line per address it tried. */
	for (const char *c = msg; *c && o + 3 < size; c++) {
		if (*c == '\n') {
			if (c[1] && o + 3 < size) {
				buf[o++] = ';';
				buf[o++] = ' ';
			}
		} else if (*c != '\t') {
			buf[o++] = *c;
		}
	}
	buf[o] = '\0';
	if (o == 0)
		snprintf(buf, size, "unknown error");
}

int dbreg_target_ask(const char *host, const char *port, const char *dbname, const char *user,
                     const char *sslmode, const char *password, int timeout_s, const char *sql,
                     const char *param, int *ret_true, struct dbreg_error *err)
{
	struct dbreg_params p = { .n = 0 };
	const char *params[1] = { param };
	char timeout[16];
	PGconn *conn;
	PGresult *res;
	int r = 0;

	snprintf(timeout, sizeof(timeout), "%d", timeout_s > 0 ? timeout_s : 10);
	dbreg_params_add(&p, "host", host);
	dbreg_params_add(&p, "port", port ? port : "5432");
	dbreg_params_add(&p, "dbname", dbname);
	dbreg_params_add(&p, "user", user);
	dbreg_params_add(&p, "sslmode", sslmode ? sslmode : "prefer");
	dbreg_params_add(&p, "connect_timeout", timeout);
	dbreg_params_add(&p, "fallback_application_name", "dbreg");
	if (password)
		dbreg_params_add(&p, "password", password);
	/* expand_dbname off: a registered database name is a name, never a URL. */
	conn = PQconnectdbParams(p.keys, p.vals, 0);
	if (!conn)
		return dbreg_fail_oom(err);
	if (PQstatus(conn) != CONNECTION_OK) {
		char why[768];

		dbreg_connect_error(conn, why, sizeof(why));
		r = dbreg_fail(err, DBREG_ERR_FAILED, "cannot log in to %s:%s/%s as %s: %s", host,
		               port ? port : "5432", dbname, user, why);
	} else {
		res = PQexecParams(conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
			r = dbreg_fail_result(err, res, "the query on the target failed");
			if (err)
				err->kind = DBREG_ERR_FAILED;
		} else if (ret_true) {
			*ret_true = PQgetvalue(res, 0, 0)[0] == 't';
		}
		PQclear(res);
	}
	PQfinish(conn);
	return r;
}

int dbreg_test_login(const char *host, const char *port, const char *dbname, const char *user,
                     const char *sslmode, const char *password, int timeout_s, struct dbreg_error *err)
{
	return dbreg_target_ask(host, port, dbname, user, sslmode, password, timeout_s, "SELECT true", NULL, NULL, err);
}

/* ---- validate-config ---- */

/* libpq's sslmode values, weakest first. */
static const char *const sslmodes[] = { "disable", "allow", "prefer", "require", "verify-ca", "verify-full" };

int dbreg_sslmode_rank(const char *mode)
{
	for (size_t i = 0; mode && i < ELEMENTSOF(sslmodes); i++)
		if (strcmp(mode, sslmodes[i]) == 0)
			return (int)i;
	return -1;
}

/* libpq quotes what it could not parse, sometimes the whole URI with its
 * password: keep a quoted part only when it looks like a keyword (or is one
 * character, as in "unexpected character"). */
static void scrub_libpq_message(const char *msg, char *out, size_t size)
{
	static const char keyword_chars[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.=";
	size_t o = 0;

	for (const char *p = msg; *p && o + 1 < size; p++) {
		const char *close;
		size_t n;

		if (*p == '\n') {
			if (p[1] && o + 2 < size) {
				out[o++] = ';';
				out[o++] = ' ';
			}
			continue;
		}
		if (*p != '"' || !(close = strchr(p + 1, '"'))) {
			out[o++] = *p;
			continue;
		}
		n = (size_t)(close - p - 1);
		if (n == 1 || (n > 0 && n <= 64 && strspn(p + 1, keyword_chars) == n)) {
			for (const char *q = p; q <= close && o + 1 < size; q++)
				out[o++] = *q;
		} else {
			const char *hidden = "\"(hidden)\"";

			for (const char *q = hidden; *q && o + 1 < size; q++)
				out[o++] = *q;
		}
		p = close;
	}
	out[o] = '\0';
}

static int take(char **dst, const char *val)
{
	if (!val || !*val)
		return 0;
	free(*dst);
	*dst = strdup(val);
	return *dst ? 0 : -1;
}

void dbreg_conninfo_facts_clear(struct dbreg_conninfo_facts *f)
{
	free(f->host);
	free(f->hostaddr);
	free(f->port);
	free(f->sslmode);
	free(f->requiressl);
	free(f->service);
	memset(f, 0, sizeof(*f));
}

int dbreg_conninfo_inspect(const char *url, struct dbreg_conninfo_facts *f)
{
	PQconninfoOption *opts;
	char *msg = NULL;
	int r = 0;

	memset(f, 0, sizeof(*f));
	opts = PQconninfoParse(url ? url : "", &msg);
	if (!opts) {
		if (!msg)
			return -1;
		/* libpq's own words for a keyword it does not know, in a string and in a URI. */
		f->unknown_keyword = strstr(msg, "invalid connection option") != NULL ||
		                     strstr(msg, "invalid URI query parameter") != NULL;
		scrub_libpq_message(msg, f->error, sizeof(f->error));
		PQfreemem(msg);
		return 0;
	}
	f->parsed = 1;
	for (PQconninfoOption *o = opts; o->keyword && r == 0; o++) {
		if (!o->val)
			continue;
		if (strcmp(o->keyword, "password") == 0)
			f->has_password = *o->val != '\0';
		else if (strcmp(o->keyword, "host") == 0)
			r = take(&f->host, o->val);
		else if (strcmp(o->keyword, "hostaddr") == 0)
			r = take(&f->hostaddr, o->val);
		else if (strcmp(o->keyword, "port") == 0)
			r = take(&f->port, o->val);
		else if (strcmp(o->keyword, "sslmode") == 0)
			r = take(&f->sslmode, o->val);
		else if (strcmp(o->keyword, "requiressl") == 0)
			r = take(&f->requiressl, o->val);
		else if (strcmp(o->keyword, "service") == 0)
			r = take(&f->service, o->val);
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && strcmp(o->keyword, "password") == 0)
			memset(o->val, 0, strlen(o->val));
	PQconninfoFree(opts);
	if (r < 0) {
		dbreg_conninfo_facts_clear(f);
		return -1;
	}
	return 0;
}
