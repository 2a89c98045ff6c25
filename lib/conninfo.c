/* conninfo.c — the only module that parses or builds connection strings (libpq's own parser). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static void scrub_libpq_message(const char *msg, char *out, size_t size);

/* libpq's parser; its refusal, which may quote a password, comes back scrubbed. */
static PQconninfoOption *parse(const char *url, char *why, size_t size)
{
	PQconninfoOption *opts;
	char *msg = NULL;

	opts = PQconninfoParse(url ? url : "", &msg);
	if (!opts)
		scrub_libpq_message(msg ? msg : "out of memory", why, size);
	PQfreemem(msg);
	return opts;
}

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
	char why[512];
	int r = 0;

	opts = parse(url, why, sizeof(why));
	if (!opts)
		return dbreg_fail(err, DBREG_ERR_USAGE, "cannot parse the URL: %s", why);
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

/* The admin connection's deadline in seconds: the URL's connect_timeout, else
 * PGCONNECT_TIMEOUT, else 10; and how many hosts the URL lists. */
static int connect_timeout(const PQconninfoOption *opts, int *ret_hosts)
{
	const char *t = getenv("PGCONNECT_TIMEOUT");
	int hosts = 1;

	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && *o->val)
			t = o->val;
		else if ((strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) && o->val) {
			int n = 1;

			for (const char *c = o->val; *c; c++)
				n += *c == ',';
			if (n > hosts)
				hosts = n;
		}
	}
	*ret_hosts = hosts;
	if (t && *t) {
		int v = atoi(t);

		/* libpq: 0 or less waits forever; 1 is taken as 2. */
		return v <= 0 ? 0 : v < 2 ? 2 : v;
	}
	return 10;
}

/* The SQLSTATE in a verbose libpq message ("FATAL:  28P01: ..."), or "". */
static void message_sqlstate(const char *msg, char state[6])
{
	static const char *const levels[] = { "FATAL:  ", "ERROR:  ", "PANIC:  " };

	state[0] = '\0';
	for (size_t i = 0; i < ELEMENTSOF(levels); i++) {
		const char *p = strstr(msg, levels[i]);

		if (p && strspn(p + 8, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5 && p[13] == ':') {
			memcpy(state, p + 8, 5);
			state[5] = '\0';
			return;
		}
	}
}

/* What a refused admin login means (SPEC §4): the server said no to who we are
 * or what we asked for (78), or it cannot take us now (69).  The SQLSTATE
 * decides, so that it works in any language. */
static enum dbreg_errkind classify(PGconn *conn, const char *state)
{
	if (*state) {
		if (strncmp(state, "53", 2) == 0 || strncmp(state, "57P", 3) == 0 || strncmp(state, "08", 2) == 0 ||
		    strcmp(state, "55000") == 0)
			return DBREG_ERR_UNAVAILABLE;
		return DBREG_ERR_CONFIG;
	}
	/* No SQLSTATE: libpq's own verdict (no password, TLS refused) or no server at all. */
	if (PQconnectionNeedsPassword(conn) || strstr(PQerrorMessage(conn), "SSL") ||
	    strstr(PQerrorMessage(conn), "certificate"))
		return DBREG_ERR_CONFIG;
	return DBREG_ERR_UNAVAILABLE;
}

/* libpq's connect loop, with our own deadline (libpq ignores connect_timeout here). */
static PostgresPollingStatusType finish_connect(PGconn *conn, int timeout_s)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = { .fd = PQsocket(conn), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
		int wait = -1, rc;

		if (timeout_s > 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			wait = (int)(timeout_s * 1000 - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000));
			if (wait <= 0)
				return PGRES_POLLING_ACTIVE;  /* our "timed out" */
		}
		if (pfd.fd >= 0) {
			rc = poll(&pfd, 1, wait);
			if (rc == 0)
				continue;
			if (rc < 0 && errno != EINTR)
				return PGRES_POLLING_FAILED;
			if (rc < 0)
				continue;
		}
		st = PQconnectPoll(conn);
	}
	return st;
}

int dbreg_connect_admin(const char *url, PGconn **ret, struct dbreg_error *err)
{
	struct dbreg_params p = { .n = 0 };
	PQconninfoOption *check;
	PostgresPollingStatusType st;
	char why[768], state[6];
	int timeout_s, hosts;
	PGconn *conn;

	if (!url || !*url)
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "ADMIN_DATABASE_URL is not set; set it to the admin database's connection string");
	check = parse(url, why, sizeof(why));
	if (!check)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "cannot parse ADMIN_DATABASE_URL: %s", why);
	/* libpq would take a port it cannot parse for a connection failure. */
	for (PQconninfoOption *o = check; o->keyword; o++) {
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
	timeout_s = connect_timeout(check, &hosts);
	PQconninfoFree(check);

	/* Parameters before dbname are defaults: the expanded URL overrides them. */
	dbreg_params_add(&p, "fallback_application_name", "dbreg");
	dbreg_params_add(&p, "dbname", url);
	conn = PQconnectStartParams(p.keys, p.vals, 1);
	if (!conn)
		return dbreg_fail_oom(err);
	/* Verbose, for the SQLSTATE of a refused login; back to normal after. */
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	st = PQstatus(conn) == CONNECTION_BAD ? PGRES_POLLING_FAILED : finish_connect(conn, timeout_s * hosts);
	if (st != PGRES_POLLING_OK) {
		enum dbreg_errkind kind;

		message_sqlstate(PQerrorMessage(conn), state);
		kind = classify(conn, state);
		if (st == PGRES_POLLING_ACTIVE)
			snprintf(why, sizeof(why), "timeout expired after %d s", timeout_s * hosts);
		else
			dbreg_connect_error(conn, why, sizeof(why));
		PQfinish(conn);
		dbreg_fail(err, kind, "cannot connect to the admin database: %s", why);
		if (err)
			memcpy(err->sqlstate, state, sizeof(state));
		return -1;
	}
	PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
	*ret = conn;
	return 0;
}

void dbreg_connect_error(PGconn *conn, char *buf, size_t size)
{
	const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
	size_t o = 0;

	/* One line: libpq puts one line per address it tried.  A verbose message's
	 * LOCATION lines and SQLSTATE are for us, not for the reader. */
	for (const char *c = msg; *c && o + 3 < size; c++) {
		if ((c == msg || c[-1] == '\n') && strncmp(c, "LOCATION:", 9) == 0) {
			c += strcspn(c, "\n");
			if (!*c)
				break;
			continue;
		}
		if (c > msg + 2 && c[-1] == ' ' && c[-2] == ' ' && c[-3] == ':' &&
		    strspn(c, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5 && c[5] == ':' && c[6] == ' ') {
			c += 6;  /* "FATAL:  28P01: why" reads "FATAL:  why" */
			continue;
		}
		if (*c == '\n') {
			if (c[1] && o + 3 < size) {
				buf[o++] = ';';
				buf[o++] = ' ';
			}
		} else if (*c != '\t') {
			buf[o++] = *c;
		}
	}
	while (o > 0 && (buf[o - 1] == ' ' || buf[o - 1] == ';'))
		o--;
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
