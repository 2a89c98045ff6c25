/* export.c — a registered connection for other programs: its connection string, a pg_service.conf and a
 * .pgpass, all from the one target builder (targets.c), so they say what dbreg itself connects with. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "targets.h"

/* The keywords other programs get, in this order; never the password (the .pgpass has it). */
static const char *const export_keywords[] = { "host", "port", "dbname", "user", "sslmode" };

/* A text that grows; with secret set, every copy it leaves behind is wiped first. */
struct text {
	char *s;
	size_t len, cap;
	bool secret, failed;
};

static void text_grow(struct text *t, size_t more)
{
	size_t cap = t->cap ? t->cap : 256;
	char *s;

	if (t->failed)
		return;
	while (cap < t->len + more + 1)
		cap *= 2;
	if (cap == t->cap)
		return;
	if (!(s = malloc(cap))) {
		t->failed = true;
		return;
	}
	if (t->s) {
		memcpy(s, t->s, t->len + 1);
		if (t->secret)
			sodium_memzero(t->s, t->cap);
		free(t->s);
	} else {
		s[0] = '\0';
	}
	t->s = s;
	t->cap = cap;
}

static void text_addn(struct text *t, const char *s, size_t n)
{
	text_grow(t, n);
	if (t->failed)
		return;
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void text_add(struct text *t, const char *s)
{
	text_addn(t, s, strlen(s));
}

static void text_addc(struct text *t, char c)
{
	text_addn(t, &c, 1);
}

static void text_free(struct text *t)
{
	if (t->s && t->secret)
		sodium_memzero(t->s, t->cap);
	free(t->s);
	t->s = NULL;
}

/* The text, or DBREG_ERR_INTERNAL when memory ran out on the way. */
static int text_take(struct text *t, char **ret, struct dbreg_error *err)
{
	text_grow(t, 0);
	if (t->failed) {
		text_free(t);
		return dbreg_fail_oom(err);
	}
	*ret = t->s;
	t->s = NULL;
	return 0;
}

/* What dbreg connects to the record with (target_params: port 5432, sslmode prefer where the row has
 * none), the values pointing into the record or at static defaults. */
static void record_job(const struct dbreg_conn *c, struct fanout_job *j)
{
	struct target_spec t = target_spec_of(c);

	memset(j, 0, sizeof(*j));
	target_params(j, &t, "dbreg", NULL);
}

static const char *job_value(const struct fanout_job *j, const char *keyword)
{
	for (int i = 0; i < j->nparams; i++)
		if (strcmp(j->keys[i], keyword) == 0)
			return j->vals[i];
	return NULL;
}

_public_ const char *dbreg_conninfo_value(const struct dbreg_conn *c, const char *keyword)
{
	struct fanout_job j;

	if (!c || !keyword)
		return NULL;
	for (size_t i = 0; i < ELEMENTSOF(export_keywords); i++)
		if (strcmp(export_keywords[i], keyword) == 0) {
			record_job(c, &j);
			return job_value(&j, keyword);
		}
	return NULL;
}

/* libpq's key=value quoting: a value that is empty or holds white space, ' or \ goes in single
 * quotes, with ' and \ escaped by \. */
static void add_kv_value(struct text *t, const char *v)
{
	bool quote = !*v || strpbrk(v, " \t\n\r\f\v'\\");

	if (!quote) {
		text_add(t, v);
		return;
	}
	text_addc(t, '\'');
	for (const char *p = v; *p; p++) {
		if (*p == '\'' || *p == '\\')
			text_addc(t, '\\');
		text_addc(t, *p);
	}
	text_addc(t, '\'');
}

/* RFC 3986 percent-encoding of everything but the unreserved characters (and keep, when given). */
static void add_pct(struct text *t, const char *v, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p) || (keep && strchr(keep, *p))) {
			text_addc(t, (char)*p);
		} else {
			text_addc(t, '%');
			text_addc(t, hex[*p >> 4]);
			text_addc(t, hex[*p & 15]);
		}
	}
}

/* A host libpq takes for a Unix-socket directory (its is_unixsock_path). */
static bool is_socket_dir(const char *host)
{
	return host && (host[0] == '/' || host[0] == '@');
}

static void build_uri(struct text *t, const struct fanout_job *j)
{
	const char *host = job_value(j, "host"), *port = job_value(j, "port"), *dbname = job_value(j, "dbname"),
		*user = job_value(j, "user"), *sslmode = job_value(j, "sslmode");
	bool socket = is_socket_dir(host);

	text_add(t, "postgresql://");
	if (user) {
		add_pct(t, user, NULL);
		text_addc(t, '@');
	}
	if (host && !socket && strchr(host, ':')) {
		/* An IPv6 address; libpq decodes what is inside the brackets too (a zone's %). */
		text_addc(t, '[');
		add_pct(t, host, ":");
		text_addc(t, ']');
	} else if (host && !socket) {
		add_pct(t, host, NULL);
	}
	if (port) {
		text_addc(t, ':');
		add_pct(t, port, NULL);
	}
	if (dbname) {
		text_addc(t, '/');
		add_pct(t, dbname, NULL);
	}
	text_addc(t, '?');
	if (socket) {
		text_add(t, "host=");
		add_pct(t, host, NULL);
		text_addc(t, '&');
	}
	text_add(t, "sslmode=");
	add_pct(t, sslmode, NULL);
}

_public_ int dbreg_conninfo_string(const struct dbreg_conn *c, enum dbreg_conninfo_format format, char **ret,
                                   struct dbreg_error *err)
{
	struct text t = { .s = NULL };
	struct fanout_job j;

	if (!c || !ret)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "dbreg_conninfo_string: no record");
	record_job(c, &j);
	switch (format) {
	case DBREG_CONNINFO_KEYVALUE:
		for (size_t i = 0; i < ELEMENTSOF(export_keywords); i++) {
			const char *v = job_value(&j, export_keywords[i]);

			if (!v)
				continue;  /* libpq's default, as dbreg connects */
			if (t.len)
				text_addc(&t, ' ');
			text_add(&t, export_keywords[i]);
			text_addc(&t, '=');
			add_kv_value(&t, v);
		}
		break;
	case DBREG_CONNINFO_URI:
		build_uri(&t, &j);
		break;
	default:
		return dbreg_fail(err, DBREG_ERR_USAGE, "unknown connection string format %d", (int)format);
	}
	return text_take(&t, ret, err);
}

/* ---- files ---- */

/* A value a line of a libpq file can carry as it is: no control character (a line break would end
 * it), and for pg_service.conf no trailing white space (libpq strips it). */
static bool line_safe(const char *v, bool trailing_space_ok)
{
	size_t n = strlen(v);

	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return trailing_space_ok || n == 0 || v[n - 1] != ' ';
}

static int refuse(struct dbreg_error *err, const char *name, const char *what, const char *file)
{
	char shown[128];

	return dbreg_fail(err, DBREG_ERR_FAILED, "connection '%s': its %s holds a character %s cannot carry",
	                  dbreg_printable(name, shown, sizeof(shown)), what, file);
}

/* One connection's pg_service.conf section onto t, after a blank line unless first. */
static int service_section(const struct dbreg_conn *c, bool first, struct text *t, struct dbreg_error *err)
{
	const char *name = dbreg_conn_get(c, DBREG_F_CONNECTION_NAME);
	struct fanout_job j;

	if (!name || !*name || !line_safe(name, true) || strchr(name, ']'))
		return refuse(err, name ? name : "", "name", "a pg_service.conf section");
	record_job(c, &j);
	if (!first)
		text_addc(t, '\n');
	text_addc(t, '[');
	text_add(t, name);
	text_add(t, "]\n");
	for (size_t i = 0; i < ELEMENTSOF(export_keywords); i++) {
		const char *v = job_value(&j, export_keywords[i]);

		if (!v)
			continue;
		if (!line_safe(v, false))
			return refuse(err, name, export_keywords[i], "pg_service.conf");
		text_add(t, export_keywords[i]);
		text_addc(t, '=');
		text_add(t, v);
		text_addc(t, '\n');
	}
	return 0;
}

_public_ int dbreg_service_file(const struct dbreg_conn_list *l, char **ret, struct dbreg_error *err)
{
	struct text t = { .s = NULL };

	if (!l || !ret)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "dbreg_service_file: no list");
	text_add(&t, "");
	for (size_t r = 0; r < dbreg_conn_list_count(l); r++)
		if (service_section(dbreg_conn_list_at(l, r), r == 0, &t, err) < 0) {
			text_free(&t);
			return -1;
		}
	return text_take(&t, ret, err);
}

_public_ int dbreg_service_file_stream(struct dbreg_conn_stream *s,
                                       int (*emit)(const char *text, size_t len, void *userdata), void *userdata,
                                       size_t *ret_count, struct dbreg_error *err)
{
	struct text t = { .s = NULL };
	const struct dbreg_conn *c;
	size_t n = 0;
	int r;

	if (!s || !emit)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "dbreg_service_file_stream: no stream");
	while ((r = dbreg_conn_stream_next(s, &c, err)) > 0) {
		t.len = 0;
		text_add(&t, "");
		if (service_section(c, n == 0, &t, err) < 0) {
			r = -1;
			break;
		}
		if (t.failed) {
			r = dbreg_fail_oom(err);
			break;
		}
		if (emit(t.s, t.len, userdata) < 0) {
			r = dbreg_fail(err, DBREG_ERR_FAILED, "cannot write the service file");
			break;
		}
		n++;
	}
	text_free(&t);
	if (ret_count)
		*ret_count = n;
	return r < 0 ? -1 : 0;
}

/* A .pgpass field: : and \ escaped with \, as libpq reads them. */
static void add_pgpass_field(struct text *t, const char *v, bool last)
{
	for (const char *p = v; *p; p++) {
		if (*p == ':' || *p == '\\')
			text_addc(t, '\\');
		text_addc(t, *p);
	}
	text_addc(t, last ? '\n' : ':');
}

/* One record's line, its stored password decrypted into j->secret (wiped by the caller). */
static int pgpass_line(struct dbreg_ctx *ctx, const struct dbreg_conn *c, const char *stored, struct fanout_job *j,
                       bool have_keys, const char *key_error, struct text *t, bool *ret_written,
                       struct dbreg_error *err)
{
	const char *name = dbreg_conn_get(c, DBREG_F_CONNECTION_NAME);
	const char *fields[4];
	struct dbreg_binding b;
	int r;

	*ret_written = false;
	if (!name)
		name = "";
	record_job(c, j);
	/* libpq looks no host, and its default socket directory, up as localhost (any other directory
	 * as itself); a missing database or user (libpq's defaults) matches any. */
	fields[0] = dbreg_pgpass_host(job_value(j, "host"));
	fields[1] = job_value(j, "port");
	fields[2] = job_value(j, "dbname");
	fields[3] = job_value(j, "user");
	for (size_t i = 1; i < ELEMENTSOF(fields); i++)
		if (!fields[i] || !*fields[i])
			fields[i] = "*";
	for (size_t i = 0; i < ELEMENTSOF(fields); i++)
		if (!line_safe(fields[i], true))
			return refuse(err, name, export_keywords[i], "a password file");
	dbreg_binding_of_conn(c, &b);
	r = target_password(j, ctx, name, stored, &b, have_keys, key_error, err);
	if (r < 0)
		return -1;
	if (!j->secret[0])
		return 0;  /* no password after all (an empty stored value) */
	if (!line_safe(j->secret, true))
		return refuse(err, name, "password", "a password file");
	for (size_t i = 0; i < ELEMENTSOF(fields); i++)
		add_pgpass_field(t, fields[i], false);
	add_pgpass_field(t, j->secret, true);
	*ret_written = true;
	return 0;
}

/* A password file as it is made, record by record. */
struct pgpass_build {
	struct text t;
	size_t rows, written, skipped;
	bool keys_read, have_keys;
	char key_error[256];
};

/* One record into the file: counted as skipped without a password, else its line; the keys
 * are read at the first password (they ask the server nothing: a file of none needs none).
 * stored: the record's stored password, or NULL to ask the registry for it. */
static int pgpass_record(struct dbreg_ctx *ctx, const struct dbreg_conn *c, const char *stored,
                         struct pgpass_build *pb, struct dbreg_error *err)
{
	const char *hp = dbreg_conn_get(c, DBREG_F_HAS_PASSWORD);
	struct fanout_job j;
	char *asked = NULL;
	bool line = false;
	int r;

	pb->rows++;
	if (!hp || strcmp(hp, "true") != 0) {
		pb->skipped++;
		return 0;
	}
	if (!pb->keys_read) {
		pb->keys_read = true;
		if (target_keys(ctx, &pb->have_keys, pb->key_error, sizeof(pb->key_error), err) < 0)
			return -1;
	}
	if (!stored && dbreg_registry_stored_password(ctx, dbreg_conn_get(c, DBREG_F_ID), &asked, err) < 0)
		return -1;
	r = pgpass_line(ctx, c, stored ? stored : asked, &j, pb->have_keys, pb->key_error, &pb->t, &line, err);
	free(asked);
	sodium_memzero(j.secret, sizeof(j.secret));
	if (r < 0)
		return -1;
	if (line)
		pb->written++;
	else
		pb->skipped++;
	return 0;
}

/* The file made (r 0) into *ret and the counts out, or (r < 0) nothing. */
static int pgpass_take(struct pgpass_build *pb, int r, char **ret, size_t *ret_rows, size_t *ret_written,
                       size_t *ret_skipped, struct dbreg_error *err)
{
	if (r < 0) {
		text_free(&pb->t);
		return -1;
	}
	if (text_take(&pb->t, ret, err) < 0)
		return -1;
	if (ret_rows)
		*ret_rows = pb->rows;
	if (ret_written)
		*ret_written = pb->written;
	if (ret_skipped)
		*ret_skipped = pb->skipped;
	return 0;
}

_public_ int dbreg_pgpass_file(struct dbreg_ctx *ctx, const struct dbreg_conn_list *l, char **ret,
                               size_t *ret_written, size_t *ret_skipped, struct dbreg_error *err)
{
	struct pgpass_build pb = { .t = { .secret = true } };
	int r = 0;

	if (!ctx || !l || !ret)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "dbreg_pgpass_file: no context or list");
	text_add(&pb.t, "");
	for (size_t i = 0; i < dbreg_conn_list_count(l) && r == 0; i++)
		r = pgpass_record(ctx, dbreg_conn_list_at(l, i), NULL, &pb, err);
	return pgpass_take(&pb, r, ret, NULL, ret_written, ret_skipped, err);
}

_public_ int dbreg_pgpass_file_select(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, char **ret,
                                      size_t *ret_rows, size_t *ret_written, size_t *ret_skipped,
                                      struct dbreg_error *err)
{
	/* What a line is made of: the binding, the name, whether there is a password, and it. */
	static const enum dbreg_field need[] = {
		DBREG_F_ID, DBREG_F_CONNECTION_NAME, DBREG_F_HOST, DBREG_F_PORT, DBREG_F_DATABASE_NAME,
		DBREG_F_USERNAME, DBREG_F_SSL_MODE, DBREG_F_HAS_PASSWORD,
	};
	struct pgpass_build pb = { .t = { .secret = true } };
	uint64_t mask = DBREG_STORED_PASSWORD;
	struct dbreg_conn_stream *s;
	const struct dbreg_conn *c;
	int r;

	if (!ctx || !ret)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "dbreg_pgpass_file_select: no context or result");
	for (size_t i = 0; i < ELEMENTSOF(need); i++)
		mask |= DBREG_FIELD_BIT(need[i]);
	if (dbreg_list_stream_mask(ctx, filter, mask, &s, err) < 0)
		return -1;
	text_add(&pb.t, "");
	while ((r = dbreg_conn_stream_next(s, &c, err)) > 0)
		if (pgpass_record(ctx, c, dbreg_conn_stored_password(c), &pb, err) < 0) {
			r = -1;
			break;
		}
	dbreg_conn_stream_free(s);
	return pgpass_take(&pb, r, ret, ret_rows, ret_written, ret_skipped, err);
}
