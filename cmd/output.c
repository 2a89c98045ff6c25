/* output.c — the table, JSON and CSV writers that every verb shares. */
#include <stdlib.h>
#include <string.h>

#include "dbreg-cmd.h"

static const struct {
	const char *name;
	enum out_format fmt;
} formats[] = {
	{ "table", OUT_TABLE }, { "json", OUT_JSON }, { "csv", OUT_CSV }, { "text", OUT_TEXT },
	{ "prometheus", OUT_PROMETHEUS }, { "nagios", OUT_NAGIOS }, { "sql", OUT_SQL },
};

int out_parse_format(const char *verb, const char *text, unsigned allowed, enum out_format *ret)
{
	char list[128] = "";

	for (size_t i = 0; i < ELEMENTSOF(formats); i++)
		if ((allowed & formats[i].fmt) && strcmp(text, formats[i].name) == 0) {
			*ret = formats[i].fmt;
			return 0;
		}
	for (size_t i = 0; i < ELEMENTSOF(formats); i++)
		if (allowed & formats[i].fmt) {
			if (list[0])
				strcat(list, ", ");
			strcat(list, formats[i].name);
		}
	usage_error(verb, "-o/--format: '%s' is not one of %s", text, list);
	return -1;
}

const char *color(const char *ansi)
{
	return arg_color ? ansi : "";
}

/* ---- tables ---- */
struct out_table {
	size_t ncols, nrows, cap;
	char **cells;  /* row-major, headers first */
};

struct out_table *out_table_new(size_t ncols, const char *const *headers)
{
	struct out_table *t = calloc(1, sizeof(*t));

	if (!t)
		abort();
	t->ncols = ncols;
	out_table_add(t, headers);
	return t;
}

void out_table_add(struct out_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
		if (!t->cells)
			abort();
	}
	for (size_t i = 0; i < t->ncols; i++) {
		t->cells[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "-");
		if (!t->cells[t->nrows * t->ncols + i])
			abort();
	}
	t->nrows++;
}

static size_t display_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++) {
		if (*s == '\033') {  /* a colour: ESC [ ... letter, no width */
			while (s[1] && !((s[1] >= 'A' && s[1] <= 'Z') || (s[1] >= 'a' && s[1] <= 'z')))
				s++;
			if (s[1])
				s++;
			continue;
		}
		if (((unsigned char)*s & 0xC0) != 0x80)  /* count UTF-8 lead bytes */
			w++;
	}
	return w;
}

void out_table_print(FILE *f, const struct out_table *t)
{
	size_t *width = calloc(t->ncols, sizeof(size_t));

	if (!width)
		abort();
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = display_width(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		if (r == 0)
			fputs(color(C_BOLD), f);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];

			fputs(cell, f);
			if (c + 1 < t->ncols)
				fprintf(f, "%*s", (int)(width[c] - display_width(cell) + 2), "");
		}
		if (r == 0)
			fputs(color(C_RESET), f);
		fputc('\n', f);
	}
	free(width);
}

void out_table_free(struct out_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/* ---- JSON ---- */
json_t *out_json_text(const char *text)
{
	json_t *j;
	char *copy;

	if (!text)
		return json_null();
	j = json_string(text);
	if (j)
		return j;
	/* Not UTF-8 (a server's message in another encoding): keep it, readable. */
	copy = strdup(text);
	if (!copy)
		return json_null();
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j ? j : json_null();
}

json_t *out_json_typed(enum dbreg_type type, const char *text)
{
	json_t *j;

	if (!text)
		return json_null();
	switch (type) {
	case DBREG_T_INT:
		return json_integer(strtoll(text, NULL, 10));
	case DBREG_T_BOOL:
		return json_boolean(strcmp(text, "true") == 0 || strcmp(text, "t") == 0);
	case DBREG_T_JSON:
		j = json_loads(text, JSON_DECODE_ANY, NULL);
		return j ? j : out_json_text(text);
	case DBREG_T_TEXT:
	case DBREG_T_TIME:
	default:
		return out_json_text(text);
	}
}

json_t *out_conn_json(const struct dbreg_conn *c)
{
	json_t *o = json_object();

	for (int f = 0; f < DBREG_F__COUNT; f++)
		json_object_set_new(o, dbreg_field_name(f), out_json_typed(dbreg_field_type(f), dbreg_conn_get(c, f)));
	return o;
}

void out_json_print(FILE *f, const json_t *j)
{
	json_dumpf(j, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	fputc('\n', f);
}

/* ---- CSV (RFC 4180 quoting; lines end in LF, as psql --csv does) ---- */
void out_csv_cell(FILE *f, const char *text, bool last)
{
	if (text && strpbrk(text, ",\"\r\n")) {
		fputc('"', f);
		for (const char *p = text; *p; p++) {
			if (*p == '"')
				fputc('"', f);
			fputc(*p, f);
		}
		fputc('"', f);
	} else if (text) {
		fputs(text, f);
	}
	fputs(last ? "\n" : ",", f);
}

/* ---- connections ---- */
static const enum dbreg_field list_columns[] = {
	DBREG_F_CONNECTION_NAME, DBREG_F_CONNECTION_TYPE, DBREG_F_REGION_ID, DBREG_F_HOST, DBREG_F_PORT,
	DBREG_F_DATABASE_NAME, DBREG_F_USERNAME, DBREG_F_IS_ACTIVE, DBREG_F_IS_HEALTHY,
};
static const char *const list_headers[] = {
	"NAME", "TYPE", "REGION", "HOST", "PORT", "DATABASE", "USER", "ACTIVE", "HEALTHY",
};

static const char *human(const struct dbreg_conn *c, enum dbreg_field f)
{
	const char *v = dbreg_conn_get(c, f);

	if (f == DBREG_F_IS_ACTIVE && dbreg_conn_get(c, DBREG_F_DELETED_AT))
		return "deleted";
	if (v && dbreg_field_type(f) == DBREG_T_BOOL)
		return strcmp(v, "true") == 0 ? "yes" : "no";
	return v;
}

static void print_show(FILE *f, const struct dbreg_conn *c)
{
	for (int i = 0; i < DBREG_F__COUNT; i++) {
		const char *v = human(c, i);

		fprintf(f, "%s%-25s%s %s\n", color(C_BOLD), dbreg_field_name(i), color(C_RESET), v ? v : "-");
	}
}

void out_conn_list(FILE *f, enum out_format fmt, const struct dbreg_conn_list *l, bool one)
{
	size_t n = dbreg_conn_list_count(l);

	if (fmt == OUT_JSON) {
		json_t *j;

		if (one) {
			j = out_conn_json(dbreg_conn_list_at(l, 0));
		} else {
			j = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(j, out_conn_json(dbreg_conn_list_at(l, i)));
		}
		out_json_print(f, j);
		json_decref(j);
	} else if (fmt == OUT_CSV) {
		for (int i = 0; i < DBREG_F__COUNT; i++)
			out_csv_cell(f, dbreg_field_name(i), i + 1 == DBREG_F__COUNT);
		for (size_t r = 0; r < n; r++)
			for (int i = 0; i < DBREG_F__COUNT; i++)
				out_csv_cell(f, dbreg_conn_get(dbreg_conn_list_at(l, r), i), i + 1 == DBREG_F__COUNT);
	} else if (one) {
		print_show(f, dbreg_conn_list_at(l, 0));
	} else {
		struct out_table *t = out_table_new(ELEMENTSOF(list_columns), list_headers);
		const char *cells[ELEMENTSOF(list_columns)];

		for (size_t r = 0; r < n; r++) {
			const struct dbreg_conn *c = dbreg_conn_list_at(l, r);

			for (size_t i = 0; i < ELEMENTSOF(list_columns); i++)
				cells[i] = human(c, list_columns[i]);
			out_table_add(t, cells);
		}
		out_table_print(f, t);
		out_table_free(t);
	}
}
