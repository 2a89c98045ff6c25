/* conninfo.c — the only module that parses or builds connection strings (libpq's own parser). */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* libpq's default socket directory, which its password-file lookup calls localhost. */
#if defined(__has_include)
#if __has_include(<pg_config_manual.h>)
#include <pg_config_manual.h>
#endif
#endif
#ifndef DEFAULT_PGSOCKET_DIR
#define DEFAULT_PGSOCKET_DIR "/var/run/postgresql"
#endif


static void scrub_libpq_message(const char *msg, const char *input, char *out, size_t size);

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* libpq's parser; its refusal, which may quote a password, comes back scrubbed. */
static PQconninfoOption *parse(const char *url, char *why, size_t size)
{
	PQconninfoOption *opts;
	char *msg = NULL;

	opts = PQconninfoParse(url ? url : "", &msg);
	if (!opts)
		scrub_libpq_message(msg ? msg : "out of memory", url, why, size);
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

/* ---- libpq's environment: the admin connection's, never a target's ---- */

/* Files that libpq matches per host or that only prove who we are: they stay. */
static const char *const kept_env[] = {
	"PGPASSFILE", "PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR",
};
/* libpq 15's variables, for when PQconndefaults() cannot answer (out of memory). */
static const char *const fallback_env[][2] = {
	{ "service", "PGSERVICE" }, { "user", "PGUSER" }, { "password", "PGPASSWORD" },
	{ "channel_binding", "PGCHANNELBINDING" }, { "connect_timeout", "PGCONNECT_TIMEOUT" },
	{ "dbname", "PGDATABASE" }, { "host", "PGHOST" }, { "hostaddr", "PGHOSTADDR" }, { "port", "PGPORT" },
	{ "client_encoding", "PGCLIENTENCODING" }, { "options", "PGOPTIONS" }, { "application_name", "PGAPPNAME" },
	{ "sslmode", "PGSSLMODE" }, { "sslcompression", "PGSSLCOMPRESSION" }, { "sslsni", "PGSSLSNI" },
	{ "requirepeer", "PGREQUIREPEER" }, { "ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION" },
	{ "ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION" }, { "gssencmode", "PGGSSENCMODE" },
	{ "krbsrvname", "PGKRBSRVNAME" }, { "gsslib", "PGGSSLIB" }, { "target_session_attrs", "PGTARGETSESSIONATTRS" },
};

struct pgenv {
	char *keyword, *var, *value;
};
static struct pgenv pgenv[64];
static size_t npgenv;
static bool pgenv_taken;

static bool kept(const char *var)
{
	for (size_t i = 0; i < ELEMENTSOF(kept_env); i++)
		if (strcmp(var, kept_env[i]) == 0)
			return true;
	return false;
}

/* Moves var into the table; set again since an earlier take, the new value wins. */
static void take_env(const char *keyword, const char *var)
{
	char *v = getenv(var), *copy;
	size_t i;

	if (!v || kept(var))
		return;
	for (i = 0; i < npgenv; i++)
		if (strcmp(pgenv[i].var, var) == 0)
			break;
	copy = strdup(v);
	if (copy && i < npgenv) {
		free(pgenv[i].value);
		pgenv[i].value = copy;
	} else if (copy && i < ELEMENTSOF(pgenv)) {
		pgenv[i] = (struct pgenv){ strdup(keyword), strdup(var), copy };
		if (pgenv[i].keyword && pgenv[i].var) {
			npgenv++;
		} else {
			free(pgenv[i].keyword);
			free(pgenv[i].var);
			free(copy);
		}
	} else {
		free(copy);
	}
	/* Gone from /proc/self/environ too, not only from getenv(). */
	if (strcmp(var, "PGPASSWORD") == 0)
		memset(v, 0, strlen(v));
	unsetenv(var);
}

/* The (keyword, variable) pairs libpq reads, asked of PQconndefaults() once: they do not
 * change while the process runs (libpq 15's list when it cannot answer). Kept for the
 * process's life. */
static const char *libpq_vars[64][2];
static size_t nlibpq_vars;

static void load_libpq_vars(void)
{
	PQconninfoOption *opts;

	if (nlibpq_vars)
		return;
	opts = PQconndefaults();
	for (PQconninfoOption *o = opts; o && o->keyword && nlibpq_vars < ELEMENTSOF(libpq_vars); o++) {
		char *kw, *var;

		if (!o->envvar)
			continue;
		kw = strdup(o->keyword);
		var = strdup(o->envvar);
		if (!kw || !var) {
			free(kw);
			free(var);
			continue;
		}
		libpq_vars[nlibpq_vars][0] = kw;
		libpq_vars[nlibpq_vars][1] = var;
		nlibpq_vars++;
	}
	PQconninfoFree(opts);
	for (size_t i = 0; !nlibpq_vars && i < ELEMENTSOF(fallback_env); i++) {
		libpq_vars[i][0] = fallback_env[i][0];
		libpq_vars[i][1] = fallback_env[i][1];
	}
	if (!nlibpq_vars)
		nlibpq_vars = ELEMENTSOF(fallback_env);
}

void dbreg_pgenv_take(void)
{
	/* Again at every context: a variable set since then is the newer word. */
	pgenv_taken = true;
	load_libpq_vars();
	for (size_t i = 0; i < nlibpq_vars; i++)
		take_env(libpq_vars[i][0], libpq_vars[i][1]);
}

const char *dbreg_pgpass_host(const char *host)
{
	return !host || !*host || strcmp(host, DEFAULT_PGSOCKET_DIR) == 0 ? "localhost" : host;
}

bool dbreg_libpq_var(const char *var, bool *ret_tls)
{
	*ret_tls = kept(var) && strcmp(var, "PGPASSFILE") != 0;
	load_libpq_vars();
	for (size_t i = 0; i < nlibpq_vars; i++)
		if (strcmp(libpq_vars[i][1], var) == 0)
			return true;
	return kept(var);
}

const char *dbreg_pgenv_get(const char *var)
{
	/* Until something took them, the environment is where they are. */
	if (!pgenv_taken)
		return nonempty(getenv(var));
	for (size_t i = 0; i < npgenv; i++)
		if (strcmp(pgenv[i].var, var) == 0)
			return pgenv[i].value[0] ? pgenv[i].value : NULL;
	return NULL;
}

/* ---- the admin connection ---- */

/* A string that could carry a password: a password keyword, a URI's
 * user:password@, or a URI with percent-encoding (a keyword may hide in it).
 * Nothing quoted from such a string is ever shown. */
static bool may_hold_password(const char *s)
{
	const char *u, *at;

	if (!s || strcasestr(s, "password"))
		return true;
	/* libpq's own test for a URI. */
	if (strncmp(s, "postgresql://", 13) != 0 && strncmp(s, "postgres://", 11) != 0)
		return false;
	if (strchr(s, '%'))
		return true;
	/* A ':' anywhere before the last '@': libpq would take user:password@
	 * only before the first '/', but a password with a '/' in it is still
	 * the user's password. */
	u = strstr(s, "://") + 3;
	at = strrchr(u, '@');
	return at && memchr(u, ':', (size_t)(at - u));
}

/* libpq's integer parsing (fe-connect.c, parse_int_param): white space around
 * one whole number that fits an int. */
static bool libpq_int(const char *text, long long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || v < INT_MIN || v > INT_MAX)
		return false;
	while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
		end++;
	if (*end)
		return false;
	*ret = v;
	return true;
}

struct setting {
	const char *value;
	const char *from;   /* "ADMIN_DATABASE_URL" or the variable */
	bool hidden;        /* from a string that may hold a password: do not quote it */
};

static struct setting effective(const PQconninfoOption *opts, const char *url, const char *keyword)
{
	struct setting s = { NULL, NULL, false };

	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0) {
			if (o->val && *o->val) {
				s = (struct setting){ o->val, "ADMIN_DATABASE_URL", may_hold_password(url) };
				return s;
			}
			if (o->envvar && dbreg_pgenv_get(o->envvar))
				s = (struct setting){ dbreg_pgenv_get(o->envvar), o->envvar, false };
			return s;
		}
	return s;
}

static int bad_value(struct dbreg_error *err, const struct setting *s, const char *keyword)
{
	char shown[96];

	if (s->hidden)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "%s: invalid %s value", s->from, keyword);
	return dbreg_fail(err, DBREG_ERR_CONFIG, "%s: invalid %s value: \"%s\"", s->from, keyword,
	                  dbreg_printable(s->value, shown, sizeof(shown)));
}

size_t dbreg_list_len(const char *s)
{
	size_t n = 1;

	if (!s)
		return 0;
	for (; *s; s++)
		n += *s == ',';
	return n;
}

/* What libpq would refuse before it sends a byte, refused here with libpq's
 * reason and as a configuration error (libpq's refusal looks like a failed
 * connection); and the plan: the deadline, and the hosts to try one by one. */
struct admin_plan {
	long long timeout_s;       /* each host's; 0 waits forever */
	size_t nhosts;
	struct setting host, hostaddr, port;
	bool one_by_one;           /* several hosts, each named: a deadline each, as libpq does */
	char *hosts, *hostaddrs, *ports;
};

static void admin_plan_clear(struct admin_plan *plan)
{
	free(plan->hosts);
	free(plan->hostaddrs);
	free(plan->ports);
	plan->hosts = plan->hostaddrs = plan->ports = NULL;
}

static int admin_plan(const char *url, struct admin_plan *plan, struct dbreg_error *err)
{
	static const char *const int_options[] = {
		"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
		"tcp_user_timeout",
	};
	static const struct {
		const char *keyword;
		const char *values[7];
		bool nocase;
	} enum_options[] = {
		{ "sslmode", { "disable", "allow", "prefer", "require", "verify-ca", "verify-full" }, false },
		{ "gssencmode", { "disable", "prefer", "require" }, false },
		{ "channel_binding", { "disable", "prefer", "require" }, false },
		{ "target_session_attrs", { "any", "read-write", "read-only", "primary", "standby", "prefer-standby" }, false },
		{ "ssl_min_protocol_version", { "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" }, true },
		{ "ssl_max_protocol_version", { "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" }, true },
	};
	PQconninfoOption *opts;
	struct setting s;
	char why[768];
	long long v;
	int r = 0;

	memset(plan, 0, sizeof(*plan));
	plan->timeout_s = 10;
	opts = parse(url, why, sizeof(why));
	if (!opts)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "cannot parse ADMIN_DATABASE_URL: %s", why);
	for (size_t i = 0; i < ELEMENTSOF(int_options) && r == 0; i++) {
		s = effective(opts, url, int_options[i]);
		if (!s.value)
			continue;
		if (!libpq_int(s.value, &v)) {
			char shown[96];

			r = s.hidden ? dbreg_fail(err, DBREG_ERR_CONFIG, "%s: invalid integer value for connection option %s",
			                          s.from, int_options[i])
			             : dbreg_fail(err, DBREG_ERR_CONFIG,
			                          "%s: invalid integer value \"%s\" for connection option \"%s\"", s.from,
			                          dbreg_printable(s.value, shown, sizeof(shown)), int_options[i]);
		} else if (i == 0) {
			/* libpq: 0 or less waits forever; 1 is taken as 2. */
			plan->timeout_s = v <= 0 ? 0 : v < 2 ? 2 : v;
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(enum_options) && r == 0; i++) {
		bool ok = false;

		s = effective(opts, url, enum_options[i].keyword);
		if (!s.value)
			continue;
		for (size_t k = 0; k < ELEMENTSOF(enum_options[i].values) && enum_options[i].values[k]; k++)
			ok = ok || (enum_options[i].nocase ? strcasecmp(s.value, enum_options[i].values[k])
			                                   : strcmp(s.value, enum_options[i].values[k])) == 0;
		if (!ok)
			r = bad_value(err, &s, enum_options[i].keyword);
	}
	s = effective(opts, url, "service");
	if (r == 0 && s.value) {
		struct dbreg_service svc;

		if (dbreg_service_find(s.value, &svc) < 0) {
			r = dbreg_fail_oom(err);
		} else if (svc.error[0] || !svc.found) {
			char shown[96];

			if (s.hidden)
				r = dbreg_fail(err, DBREG_ERR_CONFIG, "%s: the service it names is not defined (looked in %s)",
				               s.from, svc.searched);
			else if (svc.error[0])
				r = dbreg_fail(err, DBREG_ERR_CONFIG, "%s: service \"%s\": %s", s.from,
				               dbreg_printable(s.value, shown, sizeof(shown)), svc.error);
			else
				r = dbreg_fail(err, DBREG_ERR_CONFIG, "%s: definition of service \"%s\" not found (looked in %s)",
				               s.from, dbreg_printable(s.value, shown, sizeof(shown)), svc.searched);
		}
		dbreg_service_clear(&svc);
	}
	plan->host = effective(opts, url, "host");
	plan->hostaddr = effective(opts, url, "hostaddr");
	plan->port = effective(opts, url, "port");
	plan->nhosts = dbreg_list_len(plan->host.value) > dbreg_list_len(plan->hostaddr.value) ? dbreg_list_len(plan->host.value)
	                                                                          : dbreg_list_len(plan->hostaddr.value);
	if (plan->nhosts == 0)
		plan->nhosts = 1;
	/* libpq would take a port it cannot parse for a connection failure. */
	for (size_t i = 0; r == 0 && i < dbreg_list_len(plan->port.value); i++) {
		char item[64], shown[96];

		if (!dbreg_port_ok(dbreg_list_item(plan->port.value, i, item, sizeof(item))))
			r = plan->port.hidden ? dbreg_fail(err, DBREG_ERR_CONFIG, "%s: a port is not 1..65535", plan->port.from)
			                      : dbreg_fail(err, DBREG_ERR_CONFIG, "%s: port \"%s\" is not 1..65535",
			                                   plan->port.from, dbreg_printable(item, shown, sizeof(shown)));
	}
	if (r == 0 && dbreg_list_len(plan->port.value) > 1 && dbreg_list_len(plan->port.value) != plan->nhosts)
		r = dbreg_fail(err, DBREG_ERR_CONFIG, "%s: could not match %zu port numbers to %zu hosts", plan->port.from,
		               dbreg_list_len(plan->port.value), plan->nhosts);
	if (r == 0 && plan->host.value && plan->hostaddr.value &&
	    dbreg_list_len(plan->host.value) != dbreg_list_len(plan->hostaddr.value))
		r = dbreg_fail(err, DBREG_ERR_CONFIG, "ADMIN_DATABASE_URL: could not match %zu host names to %zu hostaddr values",
		               dbreg_list_len(plan->host.value), dbreg_list_len(plan->hostaddr.value));
	/* One by one only where every host is named: an empty entry means libpq's
	 * default, which an explicit keyword cannot say. */
	plan->one_by_one = r == 0 && plan->nhosts > 1 && plan->timeout_s > 0;
	for (size_t i = 0; plan->one_by_one && i < plan->nhosts; i++) {
		char item[256];

		if (plan->host.value && !*dbreg_list_item(plan->host.value, i, item, sizeof(item)))
			plan->one_by_one = false;
		if (plan->hostaddr.value && !*dbreg_list_item(plan->hostaddr.value, i, item, sizeof(item)))
			plan->one_by_one = false;
	}
	/* The settings point into opts: the plan keeps copies. */
	if (r == 0 && ((plan->host.value && !(plan->hosts = strdup(plan->host.value))) ||
	               (plan->hostaddr.value && !(plan->hostaddrs = strdup(plan->hostaddr.value))) ||
	               (plan->port.value && !(plan->ports = strdup(plan->port.value)))))
		r = dbreg_fail_oom(err);
	plan->host.value = plan->hosts;
	plan->hostaddr.value = plan->hostaddrs;
	plan->port.value = plan->ports;
	if (r < 0)
		admin_plan_clear(plan);
	PQconninfoFree(opts);
	return r;
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

/* libpq's connect loop, with our own deadline (libpq ignores connect_timeout
 * here): PGRES_POLLING_ACTIVE stands for "timed out". */
static PostgresPollingStatusType finish_connect(PGconn *conn, long long timeout_s)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	double deadline = timeout_s > 0 ? now_ms() + (double)timeout_s * 1000.0 : 0;

	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = { .fd = PQsocket(conn), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
		int wait = -1, rc;

		if (deadline > 0) {
			double left = deadline - now_ms();

			if (left <= 0)
				return PGRES_POLLING_ACTIVE;
			wait = left > INT_MAX ? INT_MAX : (int)left + 1;
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

/* Server NOTICEs never reach the terminal raw: the library does not print. */
static void no_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

void dbreg_conn_quiet(PGconn *conn)
{
	if (conn)
		PQsetNoticeProcessor(conn, no_notices, NULL);
}

/* One connection attempt: the URL over libpq's environment, with host i of the
 * plan named alone when hosts are tried one by one (i < 0: all at once). */
static PGconn *attempt(const char *url, const struct admin_plan *plan, int i, long long timeout_s, char *why,
                       size_t size, char state[6], enum dbreg_errkind *ret_kind)
{
	struct dbreg_params p = { .n = 0 };
	char host[256], hostaddr[256], port[64];
	PostgresPollingStatusType st;
	PGconn *conn;

	/* Parameters before dbname are defaults: the expanded URL overrides them. */
	for (size_t k = 0; k < npgenv; k++)
		dbreg_params_add(&p, pgenv[k].keyword, pgenv[k].value);
	dbreg_params_add(&p, "fallback_application_name", "dbreg");
	dbreg_params_add(&p, "dbname", url);
	if (i >= 0) {
		/* ... and these, after it, override the URL. */
		if (plan->host.value)
			dbreg_params_add(&p, "host", dbreg_list_item(plan->host.value, (size_t)i, host, sizeof(host)));
		if (plan->hostaddr.value)
			dbreg_params_add(&p, "hostaddr", dbreg_list_item(plan->hostaddr.value, (size_t)i, hostaddr,
			                                                 sizeof(hostaddr)));
		if (dbreg_list_len(plan->port.value) > 1)
			dbreg_params_add(&p, "port", dbreg_list_item(plan->port.value, (size_t)i, port, sizeof(port)));
	}
	state[0] = '\0';
	conn = PQconnectStartParams(p.keys, p.vals, 1);
	if (!conn) {
		snprintf(why, size, "out of memory");
		*ret_kind = DBREG_ERR_INTERNAL;
		return NULL;
	}
	dbreg_conn_quiet(conn);
	/* Verbose, for the SQLSTATE of a refused login; back to normal after. */
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	st = PQstatus(conn) == CONNECTION_BAD ? PGRES_POLLING_FAILED : finish_connect(conn, timeout_s);
	if (st == PGRES_POLLING_OK) {
		PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
		return conn;
	}
	message_sqlstate(PQerrorMessage(conn), state);
	*ret_kind = classify(conn, state);
	if (st == PGRES_POLLING_ACTIVE) {
		if (i >= 0 && (plan->host.value || plan->hostaddr.value))
			snprintf(why, size, "%s: timeout expired after %lld s",
			         plan->host.value ? host : hostaddr, timeout_s);
		else
			snprintf(why, size, "timeout expired after %lld s", timeout_s);
	} else {
		dbreg_connect_error(conn, why, size);
	}
	PQfinish(conn);
	return NULL;
}

int dbreg_connect_admin(const char *url, PGconn **ret, struct dbreg_error *err)
{
	struct admin_plan plan;
	enum dbreg_errkind kind = DBREG_ERR_UNAVAILABLE;
	char why[1024] = "", one[768], state[6] = "";
	PGconn *conn = NULL;
	size_t o = 0;

	if (!url || !*url)
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "ADMIN_DATABASE_URL is not set; set it to the admin database's connection string");
	if (admin_plan(url, &plan, err) < 0)
		return -1;
	if (!plan.one_by_one) {
		/* One deadline for the lot: the hosts come from where we cannot name them one by one. */
		conn = attempt(url, &plan, -1, plan.timeout_s * (long long)plan.nhosts, why, sizeof(why), state, &kind);
	} else {
		/* As libpq: each host its own connect_timeout; a server that answered
		 * with a refusal ends the search. */
		for (size_t i = 0; i < plan.nhosts && !conn; i++) {
			conn = attempt(url, &plan, (int)i, plan.timeout_s, one, sizeof(one), state, &kind);
			if (conn)
				break;
			o += (size_t)snprintf(why + o, o < sizeof(why) ? sizeof(why) - o : 0, "%s%s", o ? "; " : "", one);
			if (o >= sizeof(why))
				o = sizeof(why) - 1;
			if (state[0] || kind == DBREG_ERR_INTERNAL)
				break;
		}
	}
	admin_plan_clear(&plan);
	if (!conn) {
		dbreg_fail(err, kind, "cannot connect to the admin database: %s", why);
		if (err)
			memcpy(err->sqlstate, state, sizeof(state));
		return -1;
	}
	*ret = conn;
	return 0;
}

/* For validate-config: what connecting would refuse before it sends a byte. */
int dbreg_admin_url_check(const char *url, struct dbreg_error *err)
{
	struct admin_plan plan;

	if (admin_plan(url, &plan, err) < 0)
		return -1;
	admin_plan_clear(&plan);
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
 * password, and a quote inside the input makes the quoting ambiguous.  From a
 * string that may hold a password only libpq's own words before the first
 * quote are kept (and its "=" of 'missing "=" after'), then "(hidden)";
 * elsewhere a quoted part is kept when it looks like a keyword. */
static void scrub_libpq_message(const char *msg, const char *input, char *out, size_t size)
{
	static const char keyword_chars[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.=";
	static const char hidden[] = "\"(hidden)\"";
	static const char missing[] = "missing \"=\" after ";
	bool strict = may_hold_password(input);
	size_t o = 0;

	for (const char *p = msg; *p && o + 1 < size; p++) {
		const char *close;
		size_t n;
		bool keep;

		if (*p == '\n') {
			if (p[1] && o + 2 < size) {
				out[o++] = ';';
				out[o++] = ' ';
			}
			continue;
		}
		if (strict && p == msg && strncmp(p, missing, sizeof(missing) - 1) == 0) {
			for (const char *q = missing; *q && o + 1 < size; q++)
				out[o++] = *q;
			p += sizeof(missing) - 2;
			continue;
		}
		if (*p != '"') {
			out[o++] = *p;
			continue;
		}
		close = strchr(p + 1, '"');
		n = close ? (size_t)(close - p - 1) : strlen(p + 1);
		keep = !strict && close && (n == 1 || (n > 0 && n <= 64 && strspn(p + 1, keyword_chars) == n));
		if (keep) {
			for (const char *q = p; q <= close && o + 1 < size; q++)
				out[o++] = *q;
			p = close;
			continue;
		}
		for (const char *q = hidden; *q && o + 1 < size; q++)
			out[o++] = *q;
		if (strict || !close)
			break;
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
		scrub_libpq_message(msg, url, f->error, sizeof(f->error));
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

/* Where libpq looks for the system-wide pg_service.conf (pg_config --sysconfdir). */
#ifndef DBREG_PG_SYSCONFDIR
#define DBREG_PG_SYSCONFDIR "/etc/postgresql-common"
#endif

/* ---- service files, read as libpq reads them (fe-connect.c, parseServiceInfo) ---- */

void dbreg_service_clear(struct dbreg_service *s)
{
	free(s->host);
	free(s->hostaddr);
	free(s->port);
	free(s->sslmode);
	free(s->requiressl);
	memset(s, 0, sizeof(*s));
}

static int keep(char **dst, const char *key, const char *want, const char *val)
{
	if (strcmp(key, want) != 0 || *dst)
		return 0;
	*dst = strdup(val);
	return *dst ? 0 : -1;
}

int dbreg_service_walk(char *text, size_t len,
                       int (*visit)(void *ud, enum dbreg_service_line kind, const char *key, const char *value,
                                    unsigned line),
                       void *ud)
{
	char *p = text, *end = text + len;
	unsigned line = 0;
	int r = 0;

	while (r == 0 && p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end, *s = p, *q;

		line++;
		p = nl ? nl + 1 : end;
		while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';  /* the newline, or the terminating NUL */
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#')
			continue;
		if (*s == '[') {
			q = strchr(s, ']');
			if (q)
				*q = '\0';
			r = visit(ud, DBREG_SVC_GROUP, s + 1, q ? "" : NULL, line);
		} else if ((q = strchr(s, '='))) {
			*q = '\0';
			r = visit(ud, DBREG_SVC_SETTING, s, q + 1, line);
		} else {
			r = visit(ud, DBREG_SVC_OTHER, s, NULL, line);
		}
	}
	return r;
}

struct service_search {
	const char *name;
	struct dbreg_service *s;
	bool in_group, found;
};

static int search_visit(void *ud, enum dbreg_service_line kind, const char *key, const char *value, unsigned line)
{
	struct service_search *f = ud;
	struct dbreg_service *s = f->s;

	(void)line;
	if (kind == DBREG_SVC_GROUP) {
		if (f->in_group)
			return 1;  /* the group ended; libpq stops here too */
		f->in_group = value && strcmp(key, f->name) == 0;
		f->found = f->found || f->in_group;
		return 0;
	}
	if (kind != DBREG_SVC_SETTING || !f->in_group)
		return 0;
	if (keep(&s->host, key, "host", value) < 0 || keep(&s->hostaddr, key, "hostaddr", value) < 0 ||
	    keep(&s->port, key, "port", value) < 0 || keep(&s->sslmode, key, "sslmode", value) < 0 ||
	    keep(&s->requiressl, key, "requiressl", value) < 0)
		return -1;
	return 0;
}

/* Looks for [name] in one file: 1 found (settings kept), 0 not, -1 out of memory,
 * -2 unreadable (s->error says why).  The file may hold passwords: locked memory. */
static int service_in_file(const char *path, const char *name, struct dbreg_service *s)
{
	struct service_search f = { .name = name, .s = s };
	struct dbreg_error err;
	char *text;
	size_t len;
	int r;

	dbreg_error_clear(&err);
	if (dbreg_secret_file_read("service file", path, false, DBREG_ERR_CONFIG, DBREG_SERVICE_FILE_MAX, &text, &len,
	                           &err) < 0) {
		if (err.kind == DBREG_ERR_INTERNAL)
			return -1;
		snprintf(s->error, sizeof(s->error), "%s", err.message);
		return -2;
	}
	r = dbreg_service_walk(text, len, search_visit, &f);
	dbreg_key_text_free(text);
	if (r < 0)
		return -1;
	if (f.found)
		snprintf(s->file, sizeof(s->file), "%s", path);
	return f.found ? 1 : 0;
}

static void searched(struct dbreg_service *s, const char *path)
{
	size_t o = strlen(s->searched);

	snprintf(s->searched + o, sizeof(s->searched) - o, "%s%s", o ? ", " : "", path);
}

const char *dbreg_user_file(const char *env, const char *name, char *buf, size_t size)
{
	const char *home = nonempty(getenv("HOME"));
	struct passwd *pw;

	buf[0] = '\0';
	if (env && *env) {
		snprintf(buf, size, "%s", env);
		return buf;
	}
	/* libpq's own fallback when HOME is unset. */
	if (!home && (pw = getpwuid(geteuid())))
		home = pw->pw_dir;
	if (home)
		snprintf(buf, size, "%s/%s", home, name);
	return buf;
}

int dbreg_service_find(const char *name, struct dbreg_service *s)
{
	char path[4096];
	const char *env = nonempty(getenv("PGSERVICEFILE"));
	struct stat st;
	int r;

	memset(s, 0, sizeof(*s));
	/* First the user's file: PGSERVICEFILE, else ~/.pg_service.conf. */
	dbreg_user_file(env, ".pg_service.conf", path, sizeof(path));
	if (path[0]) {
		searched(s, path);
		if (stat(path, &st) == 0) {
			r = service_in_file(path, name, s);
			if (r == -1)
				return -1;
			if (r != 0) {
				/* Found, or unreadable: either way libpq goes no further. */
				s->found = r == 1;
				return 0;
			}
		}
	}
	/* Then the system file. */
	env = nonempty(getenv("PGSYSCONFDIR"));
	snprintf(path, sizeof(path), "%s/pg_service.conf", env ? env : DBREG_PG_SYSCONFDIR);
	searched(s, path);
	if (stat(path, &st) == 0) {
		r = service_in_file(path, name, s);
		if (r == -1)
			return -1;
	}
	s->found = s->file[0] != '\0';
	return 0;
}
