/* conn.c — registered connections as records (the field table) and the specs that write them. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "internal.h"

enum value_kind { V_TEXT, V_INT, V_BOOL, V_NONE };

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The one field table: each field's name (the column it is read from, by name),
 * its type, how a spec takes it, and the expression that selects it as text.
 * The stored password itself is no field: a record says only what it is (a reader of the
 * library's own that decrypts it asks for it apart, DBREG_STORED_PASSWORD). */
static const struct field_def {
	const char *name;
	enum dbreg_type type;
	enum value_kind input;     /* how dbreg_spec_set reads it; V_NONE: not writable */
	int nullable;
	long min, max;             /* for V_INT */
	const char *select;
} fields[DBREG_F__COUNT] = {
	[DBREG_F_ID] = { "id", DBREG_T_TEXT, V_NONE, 0, 0, 0, "id::text" },
	[DBREG_F_CONNECTION_NAME] = { "connection_name", DBREG_T_TEXT, V_NONE, 0, 0, 0, "connection_name::text" },
	[DBREG_F_CONNECTION_TYPE] = { "connection_type", DBREG_T_TEXT, V_TEXT, 0, 0, 0, "connection_type::text" },
	[DBREG_F_REGION_ID] = { "region_id", DBREG_T_TEXT, V_TEXT, 1, 0, 0, "region_id::text" },
	[DBREG_F_HOST] = { "host", DBREG_T_TEXT, V_TEXT, 0, 0, 0, "host::text" },
	[DBREG_F_PORT] = { "port", DBREG_T_INT, V_INT, 0, 1, 65535, "port::text" },
	[DBREG_F_DATABASE_NAME] = { "database_name", DBREG_T_TEXT, V_TEXT, 0, 0, 0, "database_name::text" },
	[DBREG_F_USERNAME] = { "username", DBREG_T_TEXT, V_TEXT, 0, 0, 0, "username::text" },
	[DBREG_F_SSL_MODE] = { "ssl_mode", DBREG_T_TEXT, V_TEXT, 0, 0, 0, "ssl_mode::text" },
	[DBREG_F_POOL_MIN_SIZE] = { "pool_min_size", DBREG_T_INT, V_INT, 0, 0, INT_MAX, "pool_min_size::text" },
	[DBREG_F_POOL_MAX_SIZE] = { "pool_max_size", DBREG_T_INT, V_INT, 0, 0, INT_MAX, "pool_max_size::text" },
	[DBREG_F_POOL_TIMEOUT_SECONDS] = { "pool_timeout_seconds", DBREG_T_INT, V_INT, 0, 1, INT_MAX, "pool_timeout_seconds::text" },
	[DBREG_F_POOL_RECYCLE_SECONDS] = { "pool_recycle_seconds", DBREG_T_INT, V_INT, 0, 1, INT_MAX, "pool_recycle_seconds::text" },
	[DBREG_F_POOL_PRE_PING] = { "pool_pre_ping", DBREG_T_BOOL, V_BOOL, 0, 0, 0, "pool_pre_ping::text" },
	[DBREG_F_IS_ACTIVE] = { "is_active", DBREG_T_BOOL, V_BOOL, 0, 0, 0, "is_active::text" },
	[DBREG_F_IS_HEALTHY] = { "is_healthy", DBREG_T_BOOL, V_NONE, 0, 0, 0, "is_healthy::text" },
	[DBREG_F_LAST_HEALTH_CHECK] = { "last_health_check", DBREG_T_TIME, V_NONE, 0, 0, 0, TS("last_health_check") },
	[DBREG_F_CONSECUTIVE_FAILURES] = { "consecutive_failures", DBREG_T_INT, V_NONE, 0, 0, 0, "consecutive_failures::text" },
	[DBREG_F_MAX_CONSECUTIVE_FAILURES] = { "max_consecutive_failures", DBREG_T_INT, V_NONE, 0, 0, 0, "max_consecutive_failures::text" },
	[DBREG_F_METADATA] = { "metadata", DBREG_T_JSON, V_NONE, 0, 0, 0, "metadata::text" },
	[DBREG_F_TAGS] = { "tags", DBREG_T_JSON, V_NONE, 0, 0, 0, "to_jsonb(tags)::text" },
	[DBREG_F_CREATED_AT] = { "created_at", DBREG_T_TIME, V_NONE, 0, 0, 0, TS("created_at") },
	[DBREG_F_UPDATED_AT] = { "updated_at", DBREG_T_TIME, V_NONE, 0, 0, 0, TS("updated_at") },
	[DBREG_F_DELETED_AT] = { "deleted_at", DBREG_T_TIME, V_NONE, 0, 0, 0, TS("deleted_at") },
	[DBREG_F_HAS_PASSWORD] = { "has_password", DBREG_T_BOOL, V_NONE, 0, 0, 0, "(coalesce(encrypted_password, '') <> '')::text" },
	[DBREG_F_KEY_ID] = { "key_id", DBREG_T_TEXT, V_NONE, 0, 0, 0, "CASE WHEN encrypted_password ~ '^dbreg:v[12]:[0-9a-f]{8}:' THEN substr(encrypted_password, 10, 8) END" },
	[DBREG_F_REGION_CODE] = { "region_code", DBREG_T_TEXT, V_NONE, 0, 0, 0, NULL },
	[DBREG_F_PASSWORD_FORMAT] = { "password_format", DBREG_T_TEXT, V_NONE, 0, 0, 0, "CASE WHEN coalesce(encrypted_password, '') = '' THEN NULL WHEN encrypted_password ~ '^dbreg:v[12]:' THEN 'dbreg' WHEN encrypted_password LIKE 'gAAAAA%' THEN 'fernet' ELSE 'unknown' END" },
};

/* Whether a read of these fields (a mask; 0: all) has field f. */
static bool wanted(uint64_t mask, int f)
{
	mask &= ~DBREG_STORED_PASSWORD;  /* not a field: alone, it is every field and it */
	/* region_code comes with region_id; connection_name always (it orders the rows). */
	if (f == DBREG_F_REGION_CODE)
		f = DBREG_F_REGION_ID;
	return mask == 0 || f == DBREG_F_CONNECTION_NAME || (mask & DBREG_FIELD_BIT(f));
}

const char *dbreg_conn_select_list(const struct dbreg_profile *p, uint64_t mask, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int f = 0; f < DBREG_F__COUNT && o < size; f++) {
		if (!wanted(mask, f))
			continue;
		if (f == DBREG_F_REGION_CODE) {
			/* Where region_id is a reference, operators speak of its code. */
			if (p && p->region_table)
				o += (size_t)snprintf(buf + o, size - o, "%s(SELECT r.code::text FROM %s r WHERE r.id = d.region_id)"
				                      " AS region_code", o ? ", " : "", p->region_table);
			continue;
		}
		o += (size_t)snprintf(buf + o, size - o, "%s%s AS %s", o ? ", " : "", fields[f].select, fields[f].name);
	}
	if ((mask & DBREG_STORED_PASSWORD) && o < size)
		snprintf(buf + o, size - o, ", encrypted_password::text AS stored_password");
	return buf;
}

/* The registry's own column field f is made from. */
static const char *base_column(int f)
{
	switch (f) {
	case DBREG_F_HAS_PASSWORD:
	case DBREG_F_KEY_ID:
	case DBREG_F_PASSWORD_FORMAT: return "encrypted_password";
	case DBREG_F_REGION_CODE: return "region_id";
	default: return fields[f].name;
	}
}

const char *dbreg_conn_base_columns(uint64_t mask, char *buf, size_t size)
{
	uint64_t done = DBREG_FIELD_BIT(DBREG_F_CONNECTION_NAME) | DBREG_FIELD_BIT(DBREG_F_DELETED_AT) |
	                DBREG_FIELD_BIT(DBREG_F_CREATED_AT);
	size_t o;

	if ((mask & ~DBREG_STORED_PASSWORD) == 0) {
		snprintf(buf, size, "*");
		return buf;
	}
	/* What the rows are ordered by, then what the mask's fields are made from, each once. */
	o = (size_t)snprintf(buf, size, "connection_name, deleted_at, created_at");
	for (int f = 0; f < DBREG_F__COUNT && o < size; f++) {
		int col = dbreg_field_lookup(base_column(f));
		/* encrypted_password is no field: has_password's bit stands for it. */
		uint64_t bit = DBREG_FIELD_BIT(col >= 0 ? col : DBREG_F_HAS_PASSWORD);

		if (!wanted(mask, f) || (done & bit))
			continue;
		done |= bit;
		o += (size_t)snprintf(buf + o, size - o, ", %s", base_column(f));
	}
	if ((mask & DBREG_STORED_PASSWORD) && !(done & DBREG_FIELD_BIT(DBREG_F_HAS_PASSWORD)) && o < size)
		snprintf(buf + o, size - o, ", encrypted_password");
	return buf;
}

const char *dbreg_region_code_expr(const struct dbreg_profile *p, char *buf, size_t size)
{
	if (p && p->region_table)
		snprintf(buf, size, "(SELECT r.code::text FROM %s r WHERE r.id = d.region_id)", p->region_table);
	else
		snprintf(buf, size, "d.region_id::text");
	return buf;
}

/* The documented defaults (SPEC §11), written explicitly so that a registry's
 * own defaults (the platform's sslmode 'require') never differ from what
 * --test checked. */
const char *dbreg_field_default(enum dbreg_field f)
{
	switch (f) {
	case DBREG_F_PORT: return "5432";
	case DBREG_F_SSL_MODE: return "prefer";
	case DBREG_F_POOL_MIN_SIZE: return "5";
	case DBREG_F_POOL_MAX_SIZE: return "20";
	case DBREG_F_POOL_TIMEOUT_SECONDS: return "30";
	case DBREG_F_POOL_RECYCLE_SECONDS: return "3600";
	case DBREG_F_POOL_PRE_PING: return "true";
	case DBREG_F_IS_ACTIVE: return "true";
	default: return NULL;
	}
}

_public_ const char *dbreg_field_name(enum dbreg_field f)
{
	return (unsigned)f < DBREG_F__COUNT ? fields[f].name : NULL;
}

_public_ enum dbreg_type dbreg_field_type(enum dbreg_field f)
{
	return (unsigned)f < DBREG_F__COUNT ? fields[f].type : DBREG_T_TEXT;
}

_public_ int dbreg_field_lookup(const char *name)
{
	for (int i = 0; i < DBREG_F__COUNT; i++)
		if (strcmp(fields[i].name, name) == 0)
			return i;
	return -1;
}

/* ---- records ---- */
struct dbreg_conn {
	const PGresult *res;
	int row;
	const int *cols;
};

struct dbreg_conn_list {
	PGresult *res;
	size_t n;
	int cols[DBREG_F__COUNT + 1];   /* each field's column in res, found by name; then the stored password's */
	struct dbreg_conn rows[];
};

/* Each field of the mask's (0: all) column in res, by name (region_code only where the
 * registry has regions); -1 for the others. */
static int find_columns(const PGresult *res, uint64_t mask, int cols[DBREG_F__COUNT + 1], struct dbreg_error *err)
{
	for (int f = 0; f < DBREG_F__COUNT; f++) {
		cols[f] = wanted(mask, f) ? PQfnumber(res, fields[f].name) : -1;
		if (cols[f] < 0 && f != DBREG_F_REGION_CODE && wanted(mask, f))
			return dbreg_fail(err, DBREG_ERR_INTERNAL, "the connection rows have no column %s", fields[f].name);
	}
	cols[DBREG_F__COUNT] = (mask & DBREG_STORED_PASSWORD) ? PQfnumber(res, "stored_password") : -1;
	if ((mask & DBREG_STORED_PASSWORD) && cols[DBREG_F__COUNT] < 0)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "the connection rows have no column stored_password");
	return 0;
}

struct dbreg_conn_list *dbreg_conn_list_from_result(PGresult *res, uint64_t mask, struct dbreg_error *err)
{
	size_t n = (size_t)PQntuples(res);
	struct dbreg_conn_list *l;

	l = malloc(sizeof(*l) + n * sizeof(l->rows[0]));
	if (!l) {
		dbreg_fail_oom(err);
		PQclear(res);
		return NULL;
	}
	if (find_columns(res, mask, l->cols, err) < 0) {
		free(l);
		PQclear(res);
		return NULL;
	}
	l->res = res;
	l->n = n;
	for (size_t i = 0; i < n; i++)
		l->rows[i] = (struct dbreg_conn){ res, (int)i, l->cols };
	return l;
}

/* ---- a selection row by row ---- */

/* libpq's single-row mode: a result a row, so the memory a read takes does not grow with
 * the rows; the admin connection is busy until the last one (or the free) has drained it. */
struct dbreg_conn_stream {
	struct dbreg_ctx *ctx;
	PGresult *res;              /* the current row (PGRES_SINGLE_TUPLE), or the end's result */
	bool at_end, started, failed;
	int cols[DBREG_F__COUNT + 1];
	struct dbreg_conn row;
};

/* The next result of the query into s->res: a row, the end, or -1 (err set, drained). */
static int stream_advance(struct dbreg_conn_stream *s, struct dbreg_error *err)
{
	int r;

	PQclear(s->res);
	r = dbreg_rows_next(s->ctx, &s->res, err);
	s->at_end = r == 0;
	s->failed = r < 0;
	return r < 0 ? -1 : 0;
}

int dbreg_conn_stream_open(struct dbreg_ctx *ctx, const char *sql, int nparams, const char *const *params,
                           uint64_t mask, struct dbreg_conn_stream **ret, struct dbreg_error *err)
{
	struct dbreg_conn_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return dbreg_fail_oom(err);
	s->ctx = ctx;
	if (dbreg_rows_send(ctx, sql, nparams, params, err) < 0) {
		free(s);
		return -1;
	}
	/* The first answer now: it says which columns there are, even with no row. */
	if (stream_advance(s, err) < 0 || find_columns(s->res, mask, s->cols, err) < 0) {
		dbreg_conn_stream_free(s);
		return -1;
	}
	s->row = (struct dbreg_conn){ NULL, 0, s->cols };
	*ret = s;
	return 0;
}

_public_ int dbreg_conn_stream_next(struct dbreg_conn_stream *s, const struct dbreg_conn **ret,
                                    struct dbreg_error *err)
{
	if (!s || s->failed)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "the rows cannot be read");
	if (s->started && !s->at_end && stream_advance(s, err) < 0)
		return -1;
	s->started = true;
	if (s->at_end)
		return 0;
	s->row.res = s->res;
	*ret = &s->row;
	return 1;
}

_public_ int dbreg_conn_stream_has(const struct dbreg_conn_stream *s, enum dbreg_field f)
{
	return s && (unsigned)f < DBREG_F__COUNT && s->cols[f] >= 0;
}

_public_ void dbreg_conn_stream_free(struct dbreg_conn_stream *s)
{
	if (!s)
		return;
	if (!s->at_end && !s->failed && dbreg_ctx_conn(s->ctx)) {
		/* Left before the end: the server is told to stop, and what it sent is dropped. */
		PGcancel *c = PQgetCancel(dbreg_ctx_conn(s->ctx));
		char buf[256];

		if (c) {
			PQcancel(c, buf, sizeof(buf));
			PQfreeCancel(c);
		}
	}
	PQclear(s->res);
	if (!s->at_end && !s->failed)
		dbreg_rows_drain(s->ctx);
	free(s);
}

const char *dbreg_conn_stored_password(const struct dbreg_conn *c)
{
	int col = c->cols[DBREG_F__COUNT];

	if (col < 0 || PQgetisnull(c->res, c->row, col))
		return NULL;
	return PQgetvalue(c->res, c->row, col);
}

_public_ const char *dbreg_conn_get(const struct dbreg_conn *c, enum dbreg_field f)
{
	if ((unsigned)f >= DBREG_F__COUNT || c->cols[f] < 0 || PQgetisnull(c->res, c->row, c->cols[f]))
		return NULL;
	return PQgetvalue(c->res, c->row, c->cols[f]);
}

_public_ int dbreg_conn_list_has(const struct dbreg_conn_list *l, enum dbreg_field f)
{
	return l && (unsigned)f < DBREG_F__COUNT && l->cols[f] >= 0;
}

_public_ int dbreg_conn_has(const struct dbreg_conn *c, enum dbreg_field f)
{
	return (unsigned)f < DBREG_F__COUNT && c->cols[f] >= 0;
}

_public_ size_t dbreg_conn_list_count(const struct dbreg_conn_list *l)
{
	return l ? l->n : 0;
}

_public_ const struct dbreg_conn *dbreg_conn_list_at(const struct dbreg_conn_list *l, size_t i)
{
	return l && i < l->n ? &l->rows[i] : NULL;
}

_public_ void dbreg_conn_list_free(struct dbreg_conn_list *l)
{
	if (!l)
		return;
	PQclear(l->res);
	free(l);
}

/* ---- specs ---- */
struct dbreg_spec {
	char *values[DBREG_F__COUNT];
	unsigned char set[DBREG_F__COUNT];
	json_t *tags;              /* NULL: not given */
	char *metadata;            /* a JSON object as compact text; NULL: not given */
	char *pooler;              /* metadata.pooler: "pgbouncer", "" to remove it; NULL: not given */
	char *pooler_db;           /* metadata.pooler_db; NULL: not given */
	int password_set;          /* 1: write password (NULL = none) */
	char *password;            /* plaintext, encrypted when written; locked memory */
};

_public_ int dbreg_spec_new(struct dbreg_spec **ret, struct dbreg_error *err)
{
	struct dbreg_spec *s = calloc(1, sizeof(*s));

	if (!s)
		return dbreg_fail_oom(err);
	*ret = s;
	return 0;
}

static void drop_password(struct dbreg_spec *s)
{
	sodium_free(s->password);  /* wipes */
	s->password = NULL;
}

_public_ void dbreg_spec_free(struct dbreg_spec *s)
{
	if (!s)
		return;
	for (int i = 0; i < DBREG_F__COUNT; i++)
		free(s->values[i]);
	json_decref(s->tags);
	free(s->metadata);
	free(s->pooler);
	free(s->pooler_db);
	drop_password(s);
	free(s);
}

static int parse_long(const char *text, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || text[0] == ' ' || text[0] == '+')
		return -1;
	*ret = v;
	return 0;
}

/* A control character in a stored value would reach every terminal that lists it. */
static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static const char *cli_option(enum dbreg_field f)
{
	switch (f) {
	case DBREG_F_HOST: return "--host";
	case DBREG_F_DATABASE_NAME: return "--database";
	case DBREG_F_USERNAME: return "--user";
	case DBREG_F_REGION_ID: return "--region";
	case DBREG_F_SSL_MODE: return "--ssl-mode";
	case DBREG_F_CONNECTION_TYPE: return "--type";
	case DBREG_F_PORT: return "--port";
	case DBREG_F_POOL_MIN_SIZE: return "--pool-min";
	case DBREG_F_POOL_MAX_SIZE: return "--pool-max";
	case DBREG_F_POOL_TIMEOUT_SECONDS: return "--pool-timeout";
	case DBREG_F_POOL_RECYCLE_SECONDS: return "--pool-recycle";
	default: return fields[f].name;
	}
}

_public_ int dbreg_spec_set(struct dbreg_spec *s, enum dbreg_field f, const char *value, struct dbreg_error *err)
{
	const struct field_def *d;
	char *copy = NULL;

	if ((unsigned)f >= DBREG_F__COUNT || fields[f].input == V_NONE)
		return dbreg_fail(err, DBREG_ERR_USAGE, "field %d cannot be set", (int)f);
	d = &fields[f];
	if (!value) {
		if (!d->nullable)
			return dbreg_fail(err, DBREG_ERR_USAGE, "%s cannot be empty", d->name);
	} else if (d->input == V_INT) {
		long v;

		if (parse_long(value, &v) < 0)
			return dbreg_fail(err, DBREG_ERR_USAGE, "%s: '%s' is not a whole number", cli_option(f), value);
		if (v < d->min || v > d->max) {
			if (d->max == INT_MAX)
				return dbreg_fail(err, DBREG_ERR_USAGE, "%s: %ld is out of range (at least %ld)",
				                  cli_option(f), v, d->min);
			return dbreg_fail(err, DBREG_ERR_USAGE, "%s: %ld is out of range (%ld..%ld)", cli_option(f), v,
			                  d->min, d->max);
		}
	} else if (d->input == V_BOOL) {
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
			return dbreg_fail(err, DBREG_ERR_USAGE, "%s: '%s' is not true or false", d->name, value);
	} else if (!*value && !d->nullable) {
		return dbreg_fail(err, DBREG_ERR_USAGE, "%s cannot be empty", d->name);
	} else if (has_control(value)) {
		char shown[160];

		return dbreg_fail(err, DBREG_ERR_USAGE, "%s: '%s' holds a control character", cli_option(f),
		                  dbreg_printable(value, shown, sizeof(shown)));
	}
	if (value && *value && !(copy = strdup(value)))
		return dbreg_fail_oom(err);
	free(s->values[f]);
	s->values[f] = copy;
	s->set[f] = 1;
	return 0;
}

_public_ int dbreg_spec_is_set(const struct dbreg_spec *s, enum dbreg_field f)
{
	if (f == DBREG_F_TAGS)
		return s->tags != NULL;
	if (f == DBREG_F_HAS_PASSWORD)
		return s->password_set;
	if (f == DBREG_F_METADATA)
		return s->metadata || s->pooler || s->pooler_db;
	return (unsigned)f < DBREG_F__COUNT && s->set[f];
}

_public_ const char *dbreg_spec_get(const struct dbreg_spec *s, enum dbreg_field f)
{
	return (unsigned)f < DBREG_F__COUNT && s->set[f] ? s->values[f] : NULL;
}

_public_ int dbreg_spec_add_tag(struct dbreg_spec *s, const char *tag, struct dbreg_error *err)
{
	char shown[160];

	if (!tag || !*tag)
		return dbreg_fail(err, DBREG_ERR_USAGE, "--tag: a tag cannot be empty");
	if (has_control(tag))
		return dbreg_fail(err, DBREG_ERR_USAGE, "--tag: '%s' holds a control character",
		                  dbreg_printable(tag, shown, sizeof(shown)));
	if (!s->tags && !(s->tags = json_array()))
		return dbreg_fail_oom(err);
	if (json_array_append_new(s->tags, json_string(tag)) < 0)
		return dbreg_fail(err, DBREG_ERR_USAGE, "--tag: '%s' is not valid UTF-8",
		                  dbreg_printable(tag, shown, sizeof(shown)));
	return 0;
}

_public_ int dbreg_spec_set_metadata(struct dbreg_spec *s, const char *json, struct dbreg_error *err)
{
	json_error_t jerr;
	json_t *j;
	char *text;
	bool object;

	/* Checked here, kept as given: the server's jsonb keeps numbers exactly, jansson would not. */
	j = json_loads(json ? json : "", JSON_DECODE_INT_AS_REAL, &jerr);
	object = j && json_is_object(j);
	json_decref(j);
	if (!object)
		return dbreg_fail(err, DBREG_ERR_USAGE, "metadata: not a JSON object%s%s", j ? "" : ": ", j ? "" : jerr.text);
	text = strdup(json);
	if (!text)
		return dbreg_fail_oom(err);
	free(s->metadata);
	s->metadata = text;
	return 0;
}

/* The poolers dbreg knows how to ask (pool-stats reads PgBouncer's console). */
_public_ int dbreg_spec_set_pooler(struct dbreg_spec *s, const char *type, struct dbreg_error *err)
{
	char shown[64], *copy;

	if (!type || (strcmp(type, "pgbouncer") != 0 && strcmp(type, "none") != 0))
		return dbreg_fail(err, DBREG_ERR_USAGE, "--pooler: '%s' is not a pooler dbreg knows (pgbouncer, or none to remove it)",
		                  dbreg_printable(type ? type : "", shown, sizeof(shown)));
	copy = strdup(strcmp(type, "none") == 0 ? "" : type);
	if (!copy)
		return dbreg_fail_oom(err);
	free(s->pooler);
	s->pooler = copy;
	return 0;
}

_public_ int dbreg_spec_set_pooler_db(struct dbreg_spec *s, const char *dbname, struct dbreg_error *err)
{
	char shown[160], *copy;

	if (!dbname || !*dbname)
		return dbreg_fail(err, DBREG_ERR_USAGE, "--pooler-db: the database name cannot be empty");
	if (has_control(dbname))
		return dbreg_fail(err, DBREG_ERR_USAGE, "--pooler-db: '%s' holds a control character",
		                  dbreg_printable(dbname, shown, sizeof(shown)));
	/* PgBouncer's own limit on a database name (MAX_DBNAME, with its NUL). */
	if (strlen(dbname) > 63)
		return dbreg_fail(err, DBREG_ERR_USAGE, "--pooler-db: '%s' is longer than 63 bytes",
		                  dbreg_printable(dbname, shown, sizeof(shown)));
	copy = strdup(dbname);
	if (!copy)
		return dbreg_fail_oom(err);
	free(s->pooler_db);
	s->pooler_db = copy;
	return 0;
}

_public_ int dbreg_spec_merge_url(struct dbreg_spec *s, const char *url, struct dbreg_error *err)
{
	struct dbreg_url_parts *p;
	const struct {
		enum dbreg_field f;
		const char *(*get)(const struct dbreg_url_parts *);
	} map[] = {
		{ DBREG_F_HOST, dbreg_url_parts_host },
		{ DBREG_F_PORT, dbreg_url_parts_port },
		{ DBREG_F_DATABASE_NAME, dbreg_url_parts_dbname },
		{ DBREG_F_USERNAME, dbreg_url_parts_user },
		{ DBREG_F_SSL_MODE, dbreg_url_parts_sslmode },
	};
	int r = 0;

	if (dbreg_url_parse(url, &p, err) < 0)
		return -1;
	for (size_t i = 0; i < ELEMENTSOF(map) && r == 0; i++) {
		const char *v = map[i].get(p);

		if (v && !s->set[map[i].f])
			r = dbreg_spec_set(s, map[i].f, v, err);
	}
	dbreg_url_parts_free(p);
	if (r < 0)
		dbreg_error_prefix(err, "--url: ");
	return r;
}

/* One stored password in format (NULL: "dbreg"): dbreg:v2 for its target b, or Fernet. */
int dbreg_encrypt_stored(struct dbreg_ctx *ctx, const char *format, const struct dbreg_binding *b,
                         const char *password, size_t len, char **ret_stored, struct dbreg_error *err)
{
	const unsigned char *key;

	if (format && strcmp(format, "fernet") != 0 && strcmp(format, "dbreg") != 0)
		return dbreg_fail(err, DBREG_ERR_USAGE, "unknown password format '%s' (known: dbreg, fernet)", format);
	if (dbreg_ctx_load_format_keys(ctx, format, err) < 0)
		return -1;
	if (format && strcmp(format, "fernet") == 0)
		return dbreg_ctx_fernet_key(ctx, &key, err) < 0 ? -1 : dbreg_fernet_encrypt(key, password, len, ret_stored, err);
	if (!b)
		return dbreg_fail(err, DBREG_ERR_USAGE, "a dbreg password is bound to its target: give the row's id and target");
	/* Every caller but encrypt-password (which checks its --id) passes a row's id. */
	if (!b->id || !dbreg_is_canonical_uuid(b->id))
		return dbreg_fail(err, DBREG_ERR_FAILED, "the row's id '%s' is not a UUID: a dbreg password cannot be bound to it",
		                  b->id ? b->id : "");
	return dbreg_encrypt_v2(dbreg_ctx_keyring(ctx), b, NULL, password, len, ret_stored, err);
}

_public_ int dbreg_encrypt_password(struct dbreg_ctx *ctx, const char *format, const char *const target[DBREG_BIND__COUNT],
                                    const char *password, size_t len, char **ret_stored, struct dbreg_error *err)
{
	struct dbreg_binding b;
	const char *port = target ? target[DBREG_BIND_PORT] : NULL, *mode = target ? target[DBREG_BIND_SSL_MODE] : NULL;

	/* What the registry would hold: a port in plain decimal, one of libpq's sslmodes. */
	if (port && *port && (port[0] == '0' || strspn(port, "0123456789") != strlen(port) || !dbreg_port_ok(port)))
		return dbreg_fail(err, DBREG_ERR_USAGE, "the port must be plain decimal, 1..65535");
	if (mode && *mode && dbreg_sslmode_rank(mode) < 0)
		return dbreg_fail(err, DBREG_ERR_USAGE, "unknown ssl mode '%s'", mode);
	if (target)
		b = (struct dbreg_binding){ target[DBREG_BIND_ID], target[DBREG_BIND_HOST], target[DBREG_BIND_PORT],
		                            target[DBREG_BIND_DATABASE], target[DBREG_BIND_USER],
		                            target[DBREG_BIND_SSL_MODE] };
	return dbreg_encrypt_stored(ctx, format, target ? &b : NULL, password, len, ret_stored, err);
}

void dbreg_binding_of_conn(const struct dbreg_conn *c, struct dbreg_binding *b)
{
	*b = (struct dbreg_binding){ dbreg_conn_get(c, DBREG_F_ID), dbreg_conn_get(c, DBREG_F_HOST),
	                             dbreg_conn_get(c, DBREG_F_PORT), dbreg_conn_get(c, DBREG_F_DATABASE_NAME),
	                             dbreg_conn_get(c, DBREG_F_USERNAME), dbreg_conn_get(c, DBREG_F_SSL_MODE) };
}

int dbreg_binding_of_row(const PGresult *res, int row, struct dbreg_binding *b)
{
	static const char *const cols[] = { "id", "host", "port", "database_name", "username", "ssl_mode" };
	const char *v[ELEMENTSOF(cols)];

	for (size_t i = 0; i < ELEMENTSOF(cols); i++) {
		int c = PQfnumber(res, cols[i]);

		if (c < 0 || row >= PQntuples(res))
			return -1;
		v[i] = PQgetisnull(res, row, c) ? NULL : PQgetvalue(res, row, c);
	}
	*b = (struct dbreg_binding){ v[0], v[1], v[2], v[3], v[4], v[5] };
	return 0;
}

_public_ int dbreg_spec_set_password(struct dbreg_spec *s, struct dbreg_ctx *ctx, const char *password,
                                     size_t len, struct dbreg_error *err)
{
	const char *format = dbreg_ctx_profile(ctx)->password_format;

	if (len > DBREG_PASSWORD_MAX)
		return dbreg_fail(err, DBREG_ERR_USAGE,
		                  "the password is %zu bytes; at most %d bytes fit the registry", len, DBREG_PASSWORD_MAX);
	if (memchr(password, '\0', len))
		return dbreg_fail(err, DBREG_ERR_USAGE, "the password contains a NUL byte");
	/* The registry's readers (the platform's services read Fernet alone); the key
	 * now, so that a missing one stops the command before anything is written. */
	if (format && strcmp(format, "fernet") == 0 && len > DBREG_FERNET_PASSWORD_MAX)
		return dbreg_fail(err, DBREG_ERR_USAGE, "a Fernet password is at most %d bytes (this one is %zu)",
		                  DBREG_FERNET_PASSWORD_MAX, len);
	if (dbreg_ctx_load_format_keys(ctx, format, err) < 0)
		return -1;
	drop_password(s);
	/* Encrypted when the row's id and target are known (registry.c); until then
	 * in locked memory, wiped on free. */
	s->password = sodium_malloc(len + 1);
	if (!s->password)
		return dbreg_fail_oom(err);
	memcpy(s->password, password, len);
	s->password[len] = '\0';
	s->password_set = 1;
	return 0;
}

_public_ int dbreg_spec_clear_password(struct dbreg_spec *s)
{
	drop_password(s);
	s->password_set = 1;
	return 0;
}

_public_ int dbreg_spec_check(const struct dbreg_spec *s, int for_register, struct dbreg_error *err)
{
	static const struct { enum dbreg_field f; const char *opt; } required[] = {
		{ DBREG_F_HOST, "--host" },
		{ DBREG_F_DATABASE_NAME, "--database" },
		{ DBREG_F_USERNAME, "--user" },
	};

	if (for_register)
		for (size_t i = 0; i < ELEMENTSOF(required); i++)
			if (!s->values[required[i].f])
				return dbreg_fail(err, DBREG_ERR_USAGE, "%s is required (or give it in --url)",
				                  required[i].opt);
	if (s->pooler_db && s->pooler && !*s->pooler)
		return dbreg_fail(err, DBREG_ERR_USAGE, "--pooler-db and --pooler none exclude each other");
	/* On update, a row that is a pooler already takes --pooler-db alone (checked there). */
	if (for_register && s->pooler_db && !s->pooler)
		return dbreg_fail(err, DBREG_ERR_USAGE, "--pooler-db needs --pooler pgbouncer");
	if (for_register && s->pooler && !*s->pooler)
		return dbreg_fail(err, DBREG_ERR_USAGE, "--pooler none removes a pooler: it is for 'dbreg update'");
	if (for_register || (s->set[DBREG_F_POOL_MIN_SIZE] && s->set[DBREG_F_POOL_MAX_SIZE])) {
		long min = 5, max = 20;

		if (s->values[DBREG_F_POOL_MIN_SIZE])
			parse_long(s->values[DBREG_F_POOL_MIN_SIZE], &min);
		if (s->values[DBREG_F_POOL_MAX_SIZE])
			parse_long(s->values[DBREG_F_POOL_MAX_SIZE], &max);
		if (min > max)
			return dbreg_fail(err, DBREG_ERR_USAGE, "--pool-min (%ld) is greater than --pool-max (%ld)", min, max);
	}
	return 0;
}

/* Accessors for registry.c, which turns a spec into statement parameters. */
const char *dbreg_spec_value(const struct dbreg_spec *s, enum dbreg_field f)
{
	return s->values[f];
}

char *dbreg_spec_tags_json(const struct dbreg_spec *s)
{
	return s->tags ? json_dumps(s->tags, JSON_COMPACT) : NULL;
}

const char *dbreg_spec_metadata_json(const struct dbreg_spec *s)
{
	return s->metadata;
}

const char *dbreg_spec_pooler(const struct dbreg_spec *s)
{
	return s->pooler;
}

char *dbreg_spec_pooler_patch(const struct dbreg_spec *s)
{
	json_t *o;
	char *text;

	if ((!s->pooler || !*s->pooler) && !s->pooler_db)
		return NULL;
	o = json_object();
	if (s->pooler && *s->pooler)
		json_object_set_new(o, "pooler", json_string(s->pooler));
	if (s->pooler_db)
		json_object_set_new(o, "pooler_db", json_string(s->pooler_db));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

const char *dbreg_spec_password(const struct dbreg_spec *s)
{
	return s->password;
}

int dbreg_spec_writable(enum dbreg_field f)
{
	return (unsigned)f < DBREG_F__COUNT && fields[f].input != V_NONE;
}
