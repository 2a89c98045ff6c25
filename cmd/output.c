/* output.c — the table, JSON and CSV writers that every verb shares. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbreg-cmd.h"

static const struct {
	const char *name;
	enum out_format fmt;
} formats[] = {
	{ "table", OUT_TABLE }, { "json", OUT_JSON }, { "csv", OUT_CSV }, { "text", OUT_TEXT },
	{ "prometheus", OUT_PROMETHEUS }, { "nagios", OUT_NAGIOS }, { "sql", OUT_SQL },
	{ "kv", OUT_KV }, { "uri", OUT_URI },
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

/* ---- control characters ---- */

/* Length of the UTF-8 character at s that a terminal shows as text, 0 when
 * it is a control character (C0, DEL, C1) or not UTF-8. */
static size_t shown_char(const unsigned char *s)
{
	size_t n;

	if (*s >= 0x20 && *s < 0x7f)
		return 1;
	if (*s < 0xc2 || *s > 0xf4)
		return 0;  /* C0, DEL, a stray continuation, overlong or out of range */
	n = *s >= 0xf0 ? 4 : *s >= 0xe0 ? 3 : 2;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (s[0] == 0xc2 && s[1] < 0xa0)
		return 0;  /* C1 controls, U+0080..U+009F */
	return n;
}

char *out_escape(const char *s)
{
	size_t len = 0, o = 0;
	char *out;

	if (!s)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = shown_char(p);

		len += n ? n : 4;
		p += n ? n : 1;
	}
	out = malloc(len + 1);
	if (!out)
		abort();
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = shown_char(p);

		if (n) {
			memcpy(out + o, p, n);
			o += n;
			p += n;
		} else {
			o += (size_t)snprintf(out + o, 5, "\\x%02x", *p);
			p++;
		}
	}
	out[o] = '\0';
	return out;
}

void out_fputs_safe(const char *s, FILE *f)
{
	char *e = out_escape(s ? s : "");

	fputs(e, f);
	free(e);
}

/* ---- tables ---- */
struct out_table {
	size_t ncols, nrows, cap;
	char **cells;          /* row-major, headers first; escaped */
	const char **colors;   /* a colour for a cell, or NULL */
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

void out_table_add_colored(struct out_table *t, const char *const *cells, const char *const *colors)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
		t->colors = realloc(t->colors, t->cap * t->ncols * sizeof(char *));
		if (!t->cells || !t->colors)
			abort();
	}
	for (size_t i = 0; i < t->ncols; i++) {
		/* Every cell may come from a registry row or a server: escaped here, once. */
		t->cells[t->nrows * t->ncols + i] = out_escape(cells[i] ? cells[i] : "-");
		t->colors[t->nrows * t->ncols + i] = colors && colors[i] && *colors[i] ? colors[i] : NULL;
	}
	t->nrows++;
}

void out_table_add(struct out_table *t, const char *const *cells)
{
	out_table_add_colored(t, cells, NULL);
}

static size_t display_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)  /* count UTF-8 lead bytes */
			w++;
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
			const char *cell = t->cells[r * t->ncols + c], *col = t->colors[r * t->ncols + c];

			fprintf(f, "%s%s%s", col ? col : "", cell, col ? color(C_RESET) : "");
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
	free(t->colors);
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
		if (dbreg_conn_has(c, f))
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

		if (!dbreg_conn_has(c, i))
			continue;
		fprintf(f, "%s%-25s%s ", color(C_BOLD), dbreg_field_name(i), color(C_RESET));
		out_fputs_safe(v ? v : "-", f);
		fputc('\n', f);
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
		int last = DBREG_F__COUNT - 1;

		/* The keys of the JSON records: region_code only where the registry has it. */
		while (last > 0 && !dbreg_conn_list_has(l, last))
			last--;
		for (int i = 0; i <= last; i++)
			if (dbreg_conn_list_has(l, i))
				out_csv_cell(f, dbreg_field_name(i), i == last);
		for (size_t r = 0; r < n; r++)
			for (int i = 0; i <= last; i++)
				if (dbreg_conn_list_has(l, i))
					out_csv_cell(f, dbreg_conn_get(dbreg_conn_list_at(l, r), i), i == last);
	} else if (one) {
		print_show(f, dbreg_conn_list_at(l, 0));
	} else {
		struct out_table *t = out_table_new(ELEMENTSOF(list_columns), list_headers);
		const char *cells[ELEMENTSOF(list_columns)];

		for (size_t r = 0; r < n; r++) {
			const struct dbreg_conn *c = dbreg_conn_list_at(l, r);

			for (size_t i = 0; i < ELEMENTSOF(list_columns); i++)
				cells[i] = human(c, list_columns[i]);
			/* Operators speak of a region by its code. */
			for (size_t i = 0; i < ELEMENTSOF(list_columns); i++)
				if (list_columns[i] == DBREG_F_REGION_ID && dbreg_conn_has(c, DBREG_F_REGION_CODE))
					cells[i] = dbreg_conn_get(c, DBREG_F_REGION_CODE);
			out_table_add(t, cells);
		}
		out_table_print(f, t);
		out_table_free(t);
	}
}

/* ---- files written whole or not at all ---- */

/* The temp file of the one out_file open, for the signal handler. */
static char pending_tmp[PATH_MAX];
static volatile sig_atomic_t pending;
static const int cleanup_signals[] = { SIGINT, SIGTERM, SIGHUP };
static struct sigaction saved_actions[ELEMENTSOF(cleanup_signals)];

static void on_cleanup_signal(int sig)
{
	int saved = errno;

	if (pending) {
		unlink(pending_tmp);
		pending = 0;
	}
	for (size_t i = 0; i < ELEMENTSOF(cleanup_signals); i++) {
		if (cleanup_signals[i] != sig)
			continue;
		/* Then as the signal would have acted: the REPL's Ctrl-C cancels, a default one ends us. */
		if (saved_actions[i].sa_handler != SIG_DFL && saved_actions[i].sa_handler != SIG_IGN &&
		    !(saved_actions[i].sa_flags & SA_SIGINFO)) {
			saved_actions[i].sa_handler(sig);
		} else if (saved_actions[i].sa_handler == SIG_DFL) {
			signal(sig, SIG_DFL);
			raise(sig);
		}
	}
	errno = saved;
}

static void restore_signals(void)
{
	pending = 0;
	for (size_t i = 0; i < ELEMENTSOF(cleanup_signals); i++)
		sigaction(cleanup_signals[i], &saved_actions[i], NULL);
}

int out_file_open(struct out_file *o, const char *path, mode_t mode)
{
	char *dir_copy = strdup(path), *base_copy = strdup(path);
	struct sigaction sa = { .sa_handler = on_cleanup_signal };
	sigset_t block, old;
	int fd;

	memset(o, 0, sizeof(*o));
	if (!dir_copy || !base_copy) {
		free(dir_copy);
		free(base_copy);
		log_error("out of memory");
		return -1;
	}
	o->path = path;
	o->mode = mode;
	snprintf(o->tmp, sizeof(o->tmp), "%s/.%s.XXXXXX", dirname(dir_copy), basename(base_copy));
	free(dir_copy);
	free(base_copy);
	/* Signals wait while the file is made and named for the handler: none
	 * can come between the two and leave it behind. */
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (size_t i = 0; i < ELEMENTSOF(cleanup_signals); i++)
		sigaddset(&block, cleanup_signals[i]);
	sigprocmask(SIG_BLOCK, &block, &old);
	for (size_t i = 0; i < ELEMENTSOF(cleanup_signals); i++)
		sigaction(cleanup_signals[i], &sa, &saved_actions[i]);
	fd = mkstemp(o->tmp);  /* 0600 until it is complete */
	if (fd >= 0) {
		memcpy(pending_tmp, o->tmp, sizeof(pending_tmp));
		pending = 1;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (fd < 0) {
		restore_signals();
		log_error("cannot create a temporary file beside %s: %s", path, strerror(errno));
		return -1;
	}
	o->f = fdopen(fd, "w");
	if (!o->f) {
		int saved = errno;

		close(fd);
		out_file_abort(o);
		log_error("cannot write %s: %s", path, strerror(saved));
		return -1;
	}
	return 0;
}

void out_file_abort(struct out_file *o)
{
	if (o->f)
		fclose(o->f);
	o->f = NULL;
	unlink(o->tmp);
	restore_signals();
}

int out_file_commit(struct out_file *o, bool replace)
{
	int saved = 0, fd = fileno(o->f);

	if (fflush(o->f) != 0 || ferror(o->f) || fchmod(fd, o->mode) < 0 || fsync(fd) < 0)
		saved = errno ? errno : EIO;
	if (fclose(o->f) != 0 && !saved)
		saved = errno;
	o->f = NULL;
	if (!saved && !pending)
		saved = EINTR;  /* a signal took the file away */
	if (!saved && replace && rename(o->tmp, o->path) < 0)
		saved = errno;
	/* Without replace: link() creates the name only if it does not exist. */
	if (!saved && !replace && link(o->tmp, o->path) < 0)
		saved = errno;
	if (saved || !replace)
		unlink(o->tmp);
	restore_signals();
	if (saved == EEXIST) {
		log_error("%s already exists; use --force to replace it", o->path);
		return -1;
	}
	if (saved) {
		log_error("cannot write %s: %s", o->path, strerror(saved));
		return -1;
	}
	return 0;
}

/* ---- shared by the verbs that ask many servers (health, pool-stats) ---- */

void out_progress(size_t done, size_t total, double elapsed_ms, void *userdata)
{
	struct out_progress *p = userdata;

	/* Only for a person watching, and only once the run takes a while. */
	if (elapsed_ms < 1000 && !p->shown)
		return;
	if (done < total) {
		fprintf(stderr, "\r%s: %zu of %zu done (%.1f s)\033[K", p->what, done, total, elapsed_ms / 1000);
		p->shown = true;
	} else if (p->shown) {
		fprintf(stderr, "\r\033[K");
	}
}

/* Label values escaped as the text exposition format requires. */
void out_prom_label(FILE *f, const char *name, const char *value, bool first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", name);
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void out_prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}
