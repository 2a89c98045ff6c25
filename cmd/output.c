/* output.c — the table, JSON, CSV, Prometheus, Nagios and HTML writers that every verb shares. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dbreg-cmd.h"
#include "json-pipe.h"

static const struct {
	const char *name;
	enum out_format fmt;
} formats[] = {
	{ "table", OUT_TABLE }, { "json", OUT_JSON }, { "csv", OUT_CSV }, { "text", OUT_TEXT },
	{ "prometheus", OUT_PROMETHEUS }, { "nagios", OUT_NAGIOS }, { "sql", OUT_SQL },
	{ "kv", OUT_KV }, { "uri", OUT_URI }, { "html", OUT_HTML },
};

struct out_style out_style;

void out_format_names(unsigned mask, const char *ret[12])
{
	size_t n = 0;

	for (size_t i = 0; i < ELEMENTSOF(formats) && n < 11; i++)
		if (mask & formats[i].fmt) {
			ret[n++] = formats[i].name;
			if (formats[i].fmt == OUT_TABLE && (mask & OUT_WIDE) && n < 11)
				ret[n++] = "wide";
		}
	ret[n] = NULL;
}

int out_parse_format(const char *verb, const char *text, unsigned allowed, enum out_format *ret)
{
	char list[128] = "";

	/* A table that is never cut to the terminal's width. */
	if ((allowed & OUT_WIDE) && strcmp(text, "wide") == 0) {
		*ret = OUT_TABLE;
		out_style.wide = true;
		return 0;
	}
	if (allowed & OUT_TABLE)
		out_style.wide = false;  /* the last -o wins */

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
			if (formats[i].fmt == OUT_TABLE && (allowed & OUT_WIDE))
				strcat(list, ", wide");
		}
	usage_error(verb, "-o/--format: '%s' is not one of %s", text, list);
	return -1;
}

bool out_option(int c)
{
	switch (c) {
	case ARG_OUT_NO_HEADERS: out_style.no_headers = true; return true;
	case ARG_OUT_NO_PAGER: out_style.no_pager = true; return true;
	case ARG_OUT_PRETTY: out_style.pretty = true; return true;
	default: return false;
	}
}

/* ---- the terminal ---- */

/* While a verb runs on a terminal, its standard output is gathered here; at its end it is
 * shown through the pager when it is taller than the screen, else written as it is. */
static struct {
	FILE *real;
	char *buf;
	size_t len;
} pager;

/* The stream a person reads: stdout's own, or the one behind the pager's buffer. */
static FILE *shown_stream(void)
{
	return pager.real ? pager.real : stdout;
}

bool out_is_terminal(void)
{
	return isatty(fileno(shown_stream())) == 1;
}

/* A positive whole number from the environment (COLUMNS, LINES), else 0. */
static int env_size(const char *var)
{
	const char *v = getenv(var);
	char *end;
	long n;

	if (!v || !*v)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	return errno || *end || n <= 0 || n > 100000 ? 0 : (int)n;
}

/* The terminal's size: COLUMNS and LINES first (as psql and systemd take them), then the tty. */
static void terminal_size(int *ret_cols, int *ret_rows)
{
	struct winsize ws = { 0 };
	bool tty = ioctl(fileno(shown_stream()), TIOCGWINSZ, &ws) == 0;

	*ret_cols = env_size("COLUMNS");
	if (!*ret_cols)
		*ret_cols = tty && ws.ws_col ? ws.ws_col : 80;
	*ret_rows = env_size("LINES");
	if (!*ret_rows)
		*ret_rows = tty && ws.ws_row ? ws.ws_row : 24;
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

void out_line(const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	out_fputs_safe(text ? text : "", stdout);
	fputc('\n', stdout);
	free(text);
}

void out_fputs_safe(const char *s, FILE *f)
{
	char *e = out_escape(s ? s : "");

	fputs(e, f);
	free(e);
}

/* ---- tables ---- */
/* A table holds its first TABLE_WINDOW rows, which give the columns' widths; then it
 * prints them and every later row as it comes, so that a long one takes no more memory. */
#define TABLE_WINDOW 1000
struct out_table {
	size_t ncols, nrows, cap;
	char **cells;          /* row-major, headers first (until printed); escaped */
	const char **colors;   /* a colour for a cell, or NULL */
	size_t *width;         /* once known: the window's widths */
	bool cut;              /* fitted to a terminal: a wider cell is cut */
	bool header_done;      /* row 0 is no longer the header */
};

static void out_table_add_colored(struct out_table *t, const char *const *cells, const char *const *colors)
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

static struct out_table *out_table_new(size_t ncols, const char *const *headers)
{
	struct out_table *t = calloc(1, sizeof(*t));

	if (!t)
		abort();
	t->ncols = ncols;
	out_table_add_colored(t, headers, NULL);
	return t;
}

static size_t display_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)  /* count UTF-8 lead bytes */
			w++;
	return w;
}

/* Narrows the widest column, one column at a time, until the row fits in cols, in
 * passes: the other columns down to their headers' width (min); the first column (the
 * name a row is known by) down to a quarter of the width (or its header); when the
 * headers alone are too wide, the other columns down to 3; last the first one too. */
static void fit_widths(size_t *width, size_t *min, size_t ncols, size_t cols)
{
	size_t total = 2 * (ncols - 1);

	for (size_t c = 0; c < ncols; c++)
		total += width[c];
	for (int pass = ncols > 1 ? 0 : 3; pass < 4 && total > cols; pass++) {
		size_t from = pass == 0 || pass == 2 ? 1 : 0, to = pass == 1 || pass == 3 ? 1 : ncols;
		size_t floor0 = cols / 4 > min[0] ? cols / 4 : min[0];

		for (size_t c = from; c < to; c++)
			if (pass == 1)
				min[0] = width[0] < floor0 ? width[0] : floor0;
			else if (pass >= 2)
				min[c] = min[c] < 3 ? min[c] : 3;
		while (total > cols) {
			size_t widest = ncols;

			for (size_t c = from; c < to; c++)
				if (width[c] > min[c] && (widest == ncols || width[c] > width[widest]))
					widest = c;
			if (widest == ncols)
				break;
			width[widest]--;
			total--;
		}
	}
}

/* Writes cell in at most w columns: cut short, the last one is "…". */
static void print_cell(FILE *f, const char *cell, size_t w)
{
	size_t shown = 0;
	const char *p = cell;

	if (display_width(cell) <= w) {
		fputs(cell, f);
		return;
	}
	while (*p && shown + 1 < w) {
		const char *next = p + 1;

		while ((*next & 0xC0) == 0x80)
			next++;
		fwrite(p, 1, (size_t)(next - p), f);
		p = next;
		shown++;
	}
	fputs("…", f);
}

/* The columns' widths from the rows held (the first window of a long table). */
static void table_widths(struct out_table *t)
{
	size_t *width = calloc(t->ncols, sizeof(size_t)), *min = calloc(t->ncols, sizeof(size_t));
	size_t first = out_style.no_headers ? 1 : 0;
	int cols, rows;

	if (!width || !min)
		abort();
	for (size_t r = first; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = display_width(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	/* Only a person's terminal is narrow: a pipe or a file gets every cell whole. */
	if (!out_style.wide && t->ncols > 0 && out_is_terminal()) {
		terminal_size(&cols, &rows);
		for (size_t c = 0; c < t->ncols; c++) {
			size_t h = first ? 0 : display_width(t->cells[c]);

			min[c] = width[c] < 3 ? width[c] : h > 3 ? h : 3;
		}
		fit_widths(width, min, t->ncols, (size_t)cols);
		t->cut = true;
	}
	free(min);
	t->width = width;
}

/* Prints the rows held and lets go of them; the header is row 0 of the first print. */
static void table_print_rows(FILE *f, struct out_table *t)
{
	size_t first = !t->header_done && out_style.no_headers ? 1 : 0;

	for (size_t r = first; r < t->nrows; r++) {
		bool header = r == 0 && !t->header_done;

		if (header)
			fputs(color(C_BOLD), f);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c], *col = t->colors[r * t->ncols + c];
			size_t w = display_width(cell), cw = t->width[c];

			/* A later row wider than the window's: whole, unless the terminal cuts. */
			if (!t->cut && w > cw)
				cw = w;
			fputs(col ? col : "", f);
			print_cell(f, cell, cw);
			fputs(col ? color(C_RESET) : "", f);
			if (c + 1 < t->ncols)
				fprintf(f, "%*s", (int)((w < cw ? cw - w : 0) + 2), "");
		}
		if (header)
			fputs(color(C_RESET), f);
		fputc('\n', f);
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	t->nrows = 0;
	t->header_done = true;
}

static void out_table_print(FILE *f, struct out_table *t)
{
	if (!t->width)
		table_widths(t);
	table_print_rows(f, t);
}

/* ---- the pager ---- */


void out_pager_begin(void)
{
	FILE *m;

	if (pager.real || !out_is_terminal())
		return;
	fflush(stdout);
	m = open_memstream(&pager.buf, &pager.len);
	if (!m)
		return;
	pager.real = stdout;
	stdout = m;
}

/* The terminal lines text takes at cols columns (a long line wraps). */
static size_t screen_lines(const char *text, size_t len, size_t cols)
{
	size_t lines = 0, w = 0;

	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n') {
			lines += w ? (w + cols - 1) / cols : 1;
			w = 0;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80 && text[i] != '\033') {
			w++;
		}
	}
	return lines + (w ? (w + cols - 1) / cols : 0);
}

/* The pager: $DBREG_PAGER, $PAGER, else less -FRX; "" and "cat" mean none. */
static const char *pager_command(void)
{
	const char *p = getenv("DBREG_PAGER");

	if (!p)
		p = getenv("PAGER");
	if (!p)
		p = "less -FRX";
	return *p && strcmp(p, "cat") != 0 ? p : NULL;
}

/* Starts cmd (with sh -c) with its standard input from the returned pipe end, in an
 * environment without dbreg's secrets; unless shell, a command without shell syntax
 * is run directly, so that a pager that is not installed is noticed. */
static int spawn_reader(const char *cmd, pid_t *ret_pid, bool shell)
{
	char *copy = NULL, *argv[32], **env = dbreg_environ_safe(), *save = NULL;
	posix_spawn_file_actions_t fa;
	int fds[2], r = -1, n = 0;
	bool plain = !shell &&
		strspn(cmd, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_./=+,:") == strlen(cmd);

	if (!env || pipe2(fds, O_CLOEXEC) < 0) {
		dbreg_environ_free(env);
		return -1;
	}
	if (plain && (copy = strdup(cmd))) {
		for (char *tok = strtok_r(copy, " ", &save); tok && n < 31; tok = strtok_r(NULL, " ", &save))
			argv[n++] = tok;
	}
	if (n == 0) {
		argv[n++] = (char *)"sh";
		argv[n++] = (char *)"-c";
		argv[n++] = (char *)cmd;
	}
	argv[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO);
	if (posix_spawnp(ret_pid, argv[0], &fa, NULL, argv, env) == 0)
		r = fds[1];
	else
		close(fds[1]);
	close(fds[0]);
	posix_spawn_file_actions_destroy(&fa);
	dbreg_environ_free(env);
	free(copy);
	return r;
}

/* Closes what writes to a reader started by spawn_reader (to, when not NULL) and waits for
 * the reader, Ctrl-C (the reader's key) ignored meanwhile; returns its exit status (128+N
 * for signal N). */
static int wait_reader(FILE *to, pid_t pid)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_int;
	int status = 0;

	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	if (to)
		fclose(to);  /* the reader may have quit early (head): not an error of ours */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGINT, &old_int, NULL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void show_paged(const char *text, size_t len)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_int, old_quit, old_pipe;
	const char *cmd = pager_command();
	bool written = false;
	pid_t pid;
	int fd;

	/* Keys in the pager are the pager's: Ctrl-C must not kill dbreg behind it. */
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	sigaction(SIGPIPE, &ign, &old_pipe);
	setenv("LESS", "FRX", 0);  /* as git does: a plain "less" quits on one screen, keeps colour */
	if (cmd && (fd = spawn_reader(cmd, &pid, false)) >= 0) {
		for (size_t o = 0; o < len;) {
			ssize_t w = write(fd, text + o, len - o);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;  /* the reader quit early: what it did not want is not an error */
			o += (size_t)w;
		}
		close(fd);
		wait_reader(NULL, pid);
		written = true;
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	if (!written)
		fwrite(text, 1, len, stdout);
}

/* ---- a pipe (the REPL's "COMMAND | SHELL-COMMAND") ---- */

static struct {
	FILE *real;
	pid_t pid;
	int color;
	struct sigaction old_pipe;
} piped;

int out_pipe_begin(const char *cmd)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };
	FILE *f;
	int fd;

	fflush(stdout);
	sigemptyset(&ign.sa_mask);
	if ((fd = spawn_reader(cmd, &piped.pid, true)) < 0)
		return -1;
	if (!(f = fdopen(fd, "w"))) {
		close(fd);
		waitpid(piped.pid, NULL, 0);
		return -1;
	}
	/* A reader that quits early (head) must not kill dbreg: writes fail with EPIPE instead. */
	sigaction(SIGPIPE, &ign, &piped.old_pipe);
	piped.real = stdout;
	piped.color = arg_color;
	if (!arg_color_forced)
		arg_color = 0;  /* a pipe is no terminal */
	stdout = f;
	return 0;
}

int out_pipe_end(void)
{
	int status;

	if (!piped.real)
		return 0;
	status = wait_reader(stdout, piped.pid);
	stdout = piped.real;
	piped.real = NULL;
	arg_color = piped.color;
	sigaction(SIGPIPE, &piped.old_pipe, NULL);
	return status;
}

static void pager_finish(bool may_page)
{
	int cols, rows;

	if (!pager.real)
		return;
	fclose(stdout);
	stdout = pager.real;
	pager.real = NULL;
	terminal_size(&cols, &rows);
	/* A screenful stays on the screen: one line is kept for the shell's next prompt. */
	if (may_page && !out_style.no_pager && pager.len &&
	    screen_lines(pager.buf, pager.len, (size_t)cols) >= (size_t)rows)
		show_paged(pager.buf, pager.len);
	else
		fwrite(pager.buf, 1, pager.len, stdout);
	free(pager.buf);
	pager.buf = NULL;
	pager.len = 0;
}

void out_pager_end(void)
{
	pager_finish(true);
}

void out_pager_stop(void)
{
	pager_finish(false);
}

static void out_table_free(struct out_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->colors);
	free(t->width);
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

static json_t *out_json_typed(enum dbreg_type type, const char *text)
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

/* ---- CSV (RFC 4180 quoting; lines end in LF, as psql --csv does) ---- */
static void out_csv_cell(FILE *f, const char *text, bool last)
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

size_t out_conn_table_fields(enum dbreg_field *fields)
{
	size_t n = 0;

	for (size_t k = 0; k < ELEMENTSOF(list_columns); k++)
		fields[n++] = list_columns[k];
	fields[n++] = DBREG_F_DELETED_AT;  /* human(): "deleted" */
	return n;
}

static const char *human(const struct dbreg_conn *c, enum dbreg_field f)
{
	const char *v = dbreg_conn_get(c, f);

	if (f == DBREG_F_IS_ACTIVE && dbreg_conn_get(c, DBREG_F_DELETED_AT))
		return "deleted";

	if (v && dbreg_field_type(f) == DBREG_T_BOOL)
		return strcmp(v, "true") == 0 ? "yes" : "no";
	return v;
}

size_t out_conn_changes(FILE *f, const struct dbreg_conn *before, const struct dbreg_conn *after)
{
	size_t n = 0;

	for (int i = 0; i < DBREG_F__COUNT; i++) {
		const char *a = dbreg_conn_get(before, i), *b = dbreg_conn_get(after, i);

		/* The clock, and the password's own fields (said apart, never shown). */
		if (i == DBREG_F_UPDATED_AT || i == DBREG_F_HAS_PASSWORD || i == DBREG_F_KEY_ID ||
		    i == DBREG_F_PASSWORD_FORMAT || !dbreg_conn_has(before, i) || !dbreg_conn_has(after, i))
			continue;
		if (a == b || (a && b && strcmp(a, b) == 0))
			continue;
		fprintf(f, "%s ", dbreg_field_name(i));
		out_fputs_safe(human(before, i) ? human(before, i) : "-", f);
		fputs(" → ", f);
		out_fputs_safe(human(after, i) ? human(after, i) : "-", f);
		fputc('\n', f);
		n++;
	}
	return n;
}

static enum out_kind field_kind(enum dbreg_field f)
{
	switch (dbreg_field_type(f)) {
	case DBREG_T_INT: return OUT_K_INT;
	case DBREG_T_BOOL: return OUT_K_BOOL;
	case DBREG_T_JSON: return OUT_K_JSON;
	default: return OUT_K_TEXT;
	}
}

/* The columns of a connection list (every field the rows have, in the field table's
 * order; the table shows some) into cols and which; returns how many. */
static size_t conn_columns(int (*has)(const void *, enum dbreg_field), const void *src, bool one,
                           struct out_column *cols, enum dbreg_field *which)
{
	size_t n = 0;

	for (int i = 0; i < DBREG_F__COUNT; i++) {
		const char *header = NULL;

		if (!has(src, i))
			continue;
		for (size_t k = 0; !one && k < ELEMENTSOF(list_columns); k++)
			if (list_columns[k] == (enum dbreg_field)i)
				header = list_headers[k];
		cols[n] = (struct out_column){ .key = dbreg_field_name(i), .header = one ? dbreg_field_name(i) : header,
		                               .kind = field_kind(i) };
		which[n++] = i;
	}
	return n;
}

static void conn_row(struct out_doc *d, const struct dbreg_conn *c, const enum dbreg_field *which, size_t n, bool one)
{
	const char *v[DBREG_F__COUNT], *shown[DBREG_F__COUNT];

	for (size_t k = 0; k < n; k++) {
		v[k] = dbreg_conn_get(c, which[k]);
		shown[k] = human(c, which[k]);
		/* Operators speak of a region by its code. */
		if (!one && which[k] == DBREG_F_REGION_ID && dbreg_conn_has(c, DBREG_F_REGION_CODE))
			shown[k] = dbreg_conn_get(c, DBREG_F_REGION_CODE);
	}
	out_doc_row(d, v, shown, NULL);
}

static int list_has(const void *l, enum dbreg_field f)
{
	return dbreg_conn_list_has(l, f);
}

static int stream_has(const void *s, enum dbreg_field f)
{
	return dbreg_conn_stream_has(s, f);
}

void out_conn_list(FILE *f, enum out_format fmt, const struct dbreg_conn_list *l, bool one)
{
	struct out_column cols[DBREG_F__COUNT];
	enum dbreg_field which[DBREG_F__COUNT];
	size_t n = conn_columns(list_has, l, one, cols, which);
	struct out_doc *d = out_doc_new(f, fmt, one ? OUT_DOC_SINGLE : OUT_DOC_ARRAY);

	out_doc_section(d, NULL, cols, n);
	for (size_t r = 0; r < dbreg_conn_list_count(l) && !(one && r > 0); r++)
		conn_row(d, dbreg_conn_list_at(l, r), which, n, one);
	out_doc_end(d);
}

int out_conn_stream(FILE *f, enum out_format fmt, struct dbreg_conn_stream *s, size_t *ret_rows,
                    struct dbreg_error *err)
{
	struct out_column cols[DBREG_F__COUNT];
	enum dbreg_field which[DBREG_F__COUNT];
	size_t n = conn_columns(stream_has, s, false, cols, which), rows = 0;
	struct out_doc *d = out_doc_new(f, fmt, OUT_DOC_ARRAY | OUT_DOC_STREAM);
	const struct dbreg_conn *c;
	int r;

	out_doc_section(d, NULL, cols, n);
	while ((r = dbreg_conn_stream_next(s, &c, err)) > 0) {
		conn_row(d, c, which, n, false);
		rows++;
	}
	out_doc_end(d);
	*ret_rows = rows;
	return r;
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

int out_make_dirs(const char *dir, mode_t mode)
{
	char *copy = strdup(dir);
	int r = 0, saved = 0;

	if (!copy)
		return -1;
	for (char *p = copy + 1;; p++) {
		char c = *p;

		if (c && c != '/')
			continue;
		if (p[-1] != '/') {
			*p = '\0';
			if (mkdir(copy, mode) < 0 && errno != EEXIST) {
				saved = errno;
				r = -1;
				break;
			}
			*p = c;
		}
		if (!c)
			break;
	}
	free(copy);
	errno = saved;
	return r;
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
static void out_prom_label(FILE *f, const char *name, const char *value, bool first)
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

static void out_prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- documents: typed columns and rows, the writer chosen by the format ---- */

/* A flat section's row object, kept between rows (row_cache_fill). */
struct row_cache {
	json_t *obj;
	char **last;               /* each column's text in the last row (NULL: it was null) */
};

struct doc_section {
	const char *json_key;
	const struct out_column *cols;
	size_t ncols;
	struct out_table *table;   /* the table writer's rows (it needs their widths) */
	char **kept;               /* the Prometheus and HTML writers' values, row-major (families
	                            * come whole; the page's tiles count the rows first) */
	char **kept_shown;         /* HTML: what is shown instead of the value (NULL: the value) */
	size_t nrows;
	bool json_open;
	bool json_flat;            /* no "a.b" key and none left out when NULL */
	struct row_cache rows;     /* a flat section's row object (row_cache_fill) */
	struct json_pipe *json_pipe;  /* OUT_DOC_STREAM: compact rows made and dumped by helpers */
};

/* Text gathered while the rows come (Nagios: perfdata, long output), opened on first use. */
struct doc_buf {
	FILE *f;
	char *text;
	size_t len;
};

static FILE *buf_stream(struct doc_buf *b)
{
	if (!b->f && !(b->f = open_memstream(&b->text, &b->len)))
		abort();
	return b->f;
}

/* Ends the gathering: the text ("" when none) until buf_free. */
static const char *buf_text(struct doc_buf *b)
{
	if (b->f) {
		fclose(b->f);
		b->f = NULL;
	}
	return b->text ? b->text : "";
}

static void buf_free(struct doc_buf *b)
{
	buf_text(b);
	free(b->text);
}

struct out_doc {
	FILE *f;
	enum out_format fmt;
	unsigned flags;
	struct doc_section sec[4];
	size_t nsec;
	bool json_any_member;       /* a member of the top object was written */
	bool row_written;           /* in the current section */
	bool table_printed;         /* a blank line goes before the next table */
	bool single_done;           /* OUT_DOC_SINGLE: the record was written */
	bool pretty;                /* JSON indented (a terminal, or --pretty), else compact */
	char *json_buf;             /* compact JSON: a row's text, the buffer kept between rows */
	size_t json_size;
	char *footer;
	bool footer_always;
	/* Prometheus: the run's own gauges, after the sections */
	struct doc_gauge { const char *name, *help; double value; } gauges[4];
	size_t ngauges;
	/* Nagios */
	char *status_line;
	struct doc_buf perf, long_out;  /* the status line's perfdata; the long output */
	int warn, crit;
	const char *ok_state;
	/* HTML */
	char *title;
	struct doc_buf html_meta;   /* the heading's lines */
};

/* Whether column c has a part in format fmt. */
static bool in_format(const struct out_column *c, enum out_format fmt)
{
	return !c->only || (c->only & fmt);
}

/* A CSV line of the columns that have a key in CSV: the keys themselves (values NULL) or a row. */
static void csv_line(FILE *f, const struct out_column *cols, size_t ncols, const char *const *values)
{
	size_t last = ncols;

	for (size_t i = 0; i < ncols; i++)
		if (cols[i].key && in_format(&cols[i], OUT_CSV))
			last = i;
	for (size_t i = 0; i < ncols; i++)
		if (cols[i].key && in_format(&cols[i], OUT_CSV))
			out_csv_cell(f, values ? values[i] : cols[i].key, i == last);
}

/* ---- HTML: one page that stands alone (inline CSS and SVG; no script, no link, nothing
 * fetched), so that it can be served as a file or mailed, and shows the same anywhere ---- */

/* Text as HTML: & < > " ' as references; control characters and bytes that are not UTF-8
 * as \xNN (as out_escape), but newlines and tabs kept (a cell that says so keeps them). */
static void html_text(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
		size_t n = shown_char(p);

		if (n == 1) {
			switch (*p) {
			case '&': fputs("&amp;", f); break;
			case '<': fputs("&lt;", f); break;
			case '>': fputs("&gt;", f); break;
			case '"': fputs("&quot;", f); break;
			case '\'': fputs("&#39;", f); break;
			default: fputc(*p, f);
			}
		} else if (n) {
			fwrite(p, 1, n, f);
		} else if (*p == '\n' || *p == '\t') {
			fputc(*p, f);
		} else {
			fprintf(f, "\\x%02x", *p);
		}
		p += n ? n : 1;
	}
}

/* A value as a CSS class name: its letters and digits, lower case ("st-unhealthy"). */
static void html_class(FILE *f, const char *prefix, const char *value)
{
	fputs(prefix, f);
	for (const char *p = value ? value : ""; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			fputc(*p, f);
		else if (*p >= 'A' && *p <= 'Z')
			fputc(*p - 'A' + 'a', f);
}

/* A meta key as words ("checked_at": "checked at"). */
static void html_label(FILE *f, const char *key)
{
	for (const char *p = key; *p; p++)
		if (*p == '_')
			fputc(' ', f);
		else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			fputc(*p, f);  /* a verb's own key: nothing else to escape */
}

static void html_meta(struct out_doc *d, const char *key, const json_t *value)
{
	FILE *f;

	if (!json_is_string(value) && !json_is_number(value))
		return;
	f = buf_stream(&d->html_meta);
	fputs("<div><dt>", f);
	html_label(f, key);
	fputs("</dt><dd>", f);
	if (json_is_string(value))
		html_text(f, json_string_value(value));
	else
		fprintf(f, "%.15g", json_number_value(value));
	fputs("</dd></div>\n", f);
}

/* An OUT_K_SERIES value as a sparkline: the numbers as a line scaled to the largest, a run
 * of answers a polyline, a failure (< 0) a red tick on the baseline; label is its
 * description (the title a reader's tooltip or screen reader gives). */
static void html_sparkline(FILE *f, const char *series, const char *label)
{
	enum { W = 120, H = 28, PAD = 2, MAX_POINTS = 1000 };
	double *v = malloc(MAX_POINTS * sizeof(*v)), max = 0;
	size_t n = 0;

	if (!v)
		abort();
	for (const char *p = series; p && *p && n < MAX_POINTS;) {
		char *end;
		double x = strtod(p, &end);

		if (end == p)
			break;
		v[n++] = isfinite(x) ? x : -1;
		if (isfinite(x) && x > max)
			max = x;
		if (*end != ',')
			break;
		p = end + 1;
	}
	if (n == 0) {
		html_text(f, label);
		free(v);
		return;
	}
	fprintf(f, "<svg class=\"spark\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"",
	        W, H, W, H);
	html_text(f, label);
	fputs("\"><title>", f);
	html_text(f, label);
	fputs("</title>", f);
	for (size_t i = 0; i < n;) {
		size_t j = i;

		if (v[i] < 0) {
			double x = n == 1 ? W / 2.0 : PAD + (double)i * (W - 2 * PAD) / (double)(n - 1);

			fprintf(f, "<rect class=\"fail\" x=\"%.1f\" y=\"%d\" width=\"2\" height=\"8\"/>", x - 1, H - 8);
			i++;
			continue;
		}
		while (j < n && v[j] >= 0)
			j++;
		fputs(j - i == 1 ? "<circle class=\"ok\" r=\"1.5\"" : "<polyline class=\"ok\" points=\"", f);
		for (size_t k = i; k < j; k++) {
			double x = n == 1 ? W / 2.0 : PAD + (double)k * (W - 2 * PAD) / (double)(n - 1);
			double y = H - PAD - (max > 0 ? v[k] / max : 0) * (H - 2 * PAD);

			if (j - i == 1)
				fprintf(f, " cx=\"%.1f\" cy=\"%.1f\"/>", x, y);
			else
				fprintf(f, "%s%.1f,%.1f", k > i ? " " : "", x, y);
		}
		if (j - i > 1)
			fputs("\"/>", f);
		i = j;
	}
	fputs("</svg>", f);
	free(v);
}

static const char html_style[] =
	":root{--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--unk:#57606a;--line:#d0d7de;--bg:#f6f8fa}\n"
	"*{box-sizing:border-box}\n"
	"body{margin:0;padding:1rem;font:14px/1.4 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;"
	"color:#1f2328;background:#fff}\n"
	"h1{font-size:1.4rem;margin:0 0 .5rem}\n"
	"dl.meta{display:flex;flex-wrap:wrap;gap:.25rem 1.5rem;margin:0 0 1rem;color:#57606a}\n"
	"dl.meta div{display:flex;gap:.4rem}dl.meta dt{font-weight:600}dl.meta dd{margin:0}\n"
	".tiles{display:flex;flex-wrap:wrap;gap:.75rem;margin:0 0 1rem;padding:0;list-style:none}\n"
	".tile{flex:1 1 8rem;border:1px solid var(--line);border-left:.4rem solid var(--unk);border-radius:6px;"
	"padding:.5rem .75rem;background:var(--bg)}\n"
	".tile .n{display:block;font-size:1.8rem;font-weight:700}.tile .l{font-size:.8rem;letter-spacing:.05em}\n"
	".tile.st-healthy{border-left-color:var(--ok)}.tile.st-degraded{border-left-color:var(--warn)}"
	".tile.st-unhealthy{border-left-color:var(--bad)}\n"
	".wrap{overflow-x:auto}\n"
	"table{border-collapse:collapse;width:100%}\n"
	"th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid var(--line)}\n"
	"thead th{font-size:.75rem;letter-spacing:.05em;background:var(--bg);white-space:nowrap}\n"
	"tbody th{font-weight:600;white-space:nowrap}\n"
	"td.num{text-align:right;white-space:nowrap}\n"
	"td.why{white-space:pre-wrap;overflow-wrap:anywhere;min-width:16rem}\n"
	"tbody tr{border-left:.3rem solid transparent}\n"
	"tr.st-unhealthy{background:#ffebe9}tr.st-degraded{background:#fff8c5}tr.st-unknown{background:#f6f8fa}\n"
	".badge{display:inline-block;padding:0 .4rem;border-radius:1rem;color:#fff;background:var(--unk);"
	"font-size:.75rem;font-weight:700}\n"
	".st-healthy .badge{background:var(--ok)}.st-degraded .badge{background:var(--warn)}"
	".st-unhealthy .badge{background:var(--bad)}\n"
	"svg.spark{display:block}svg.spark .ok{fill:none;stroke:#0969da;stroke-width:1.5}"
	"svg.spark circle.ok{fill:#0969da;stroke:none}svg.spark .fail{fill:var(--bad)}\n"
	"p.empty{color:#57606a}footer{margin-top:1rem;color:#57606a}\n"
	"@media (max-width:600px){\n"
	"body{padding:.5rem}\n"
	"table,thead,tbody,tr,th,td{display:block}\n"
	"thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}\n"
	"tbody tr{border:1px solid var(--line);border-radius:6px;margin:0 0 .75rem;padding:.25rem 0}\n"
	"tbody th,td{display:flex;gap:.75rem;border:0;padding:.2rem .6rem;text-align:left;white-space:normal;overflow-wrap:anywhere}\n"
	"tbody th::before,td::before{content:attr(data-label);flex:0 0 7.5rem;font-size:.75rem;font-weight:600;"
	"color:#57606a}\n"
	"td:empty{display:none}td.num{text-align:left}td.why{min-width:0}\n"
	"}\n"
	"@media print{\n"
	"*{-webkit-print-color-adjust:exact;print-color-adjust:exact}\n"
	"body{padding:0;font-size:9pt}\n"
	".wrap{overflow:visible}\n"
	"thead{display:table-header-group}tr{break-inside:avoid}\n"
	"}\n";

static void html_section(FILE *f, const struct doc_section *s)
{
	const struct out_column *state = NULL;
	size_t reason = s->ncols;

	for (size_t i = 0; i < s->ncols; i++) {
		if (!s->cols[i].header || !in_format(&s->cols[i], OUT_HTML))
			continue;
		if ((s->cols[i].flags & OUT_C_STATE) && s->cols[i].states && !state)
			state = &s->cols[i];
		if ((s->cols[i].flags & OUT_C_REASON) && reason == s->ncols)
			reason = i;
	}
	/* The summary first: a tile for each state, with how many rows are in it. */
	if (state) {
		size_t col = (size_t)(state - s->cols);

		fputs("<ul class=\"tiles\">\n", f);
		for (size_t k = 0; state->states[k]; k++) {
			size_t n = 0;

			for (size_t r = 0; r < s->nrows; r++)
				n += s->kept[r * s->ncols + col] && strcmp(s->kept[r * s->ncols + col], state->states[k]) == 0;
			fputs("<li class=\"tile ", f);
			html_class(f, "st-", state->states[k]);
			fprintf(f, "\"><span class=\"n\">%zu</span><span class=\"l\">", n);
			html_text(f, state->states[k]);
			fputs("</span></li>\n", f);
		}
		fputs("</ul>\n", f);
	}
	if (s->nrows == 0) {
		fputs("<p class=\"empty\">No results.</p>\n", f);
		return;
	}
	fputs("<div class=\"wrap\"><table>\n<thead><tr>", f);
	/* The reason last: the whole text, as wide as it needs. */
	for (size_t pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < s->ncols; i++)
			if (s->cols[i].header && in_format(&s->cols[i], OUT_HTML) && (i == reason) == (pass == 1)) {
				fputs("<th scope=\"col\">", f);
				html_text(f, s->cols[i].header);
				fputs("</th>", f);
			}
	fputs("</tr></thead>\n<tbody>\n", f);
	for (size_t r = 0; r < s->nrows; r++) {
		char *const *v = &s->kept[r * s->ncols], *const *shown = &s->kept_shown[r * s->ncols];

		fputs("<tr", f);
		if (state) {
			fputs(" class=\"", f);
			html_class(f, "st-", v[state - s->cols]);
			fputs("\"", f);
		}
		fputs(">", f);
		for (size_t pass = 0; pass < 2; pass++)
			for (size_t i = 0; i < s->ncols; i++) {
				const struct out_column *c = &s->cols[i];
				const char *x = shown[i] ? shown[i] : v[i];
				const char *tag = (c->flags & OUT_C_NAME) ? "th" : "td";

				if (!c->header || !in_format(c, OUT_HTML) || (i == reason) != (pass == 1))
					continue;
				fprintf(f, "<%s%s", tag, (c->flags & OUT_C_NAME) ? " scope=\"row\"" : "");
				if (i == reason)
					fputs(" class=\"why\"", f);
				else if (c->kind == OUT_K_INT || c->kind == OUT_K_REAL)
					fputs(" class=\"num\"", f);
				fputs(" data-label=\"", f);
				html_text(f, c->header);
				fputs("\">", f);
				if (c->kind == OUT_K_SERIES && v[i])
					html_sparkline(f, v[i], shown[i] ? shown[i] : "");
				else if (c == state && x) {
					fputs("<span class=\"badge\">", f);
					html_text(f, x);
					fputs("</span>", f);
				} else if (x) {
					html_text(f, x);
				}
				fprintf(f, "</%s>", tag);
			}
		fputs("</tr>\n", f);
	}
	fputs("</tbody>\n</table></div>\n", f);
}

static void html_write(struct out_doc *d)
{
	const char *title = d->title ? d->title : "dbreg";
	FILE *f = d->f;

	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	      /* Nothing runs and nothing is fetched, whatever a value held. */
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
	      "<title>", f);
	html_text(f, title);
	fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>", html_style);
	html_text(f, title);
	fprintf(f, "</h1>\n<dl class=\"meta\">\n%s</dl>\n</header>\n<main>\n", buf_text(&d->html_meta));
	for (size_t k = 0; k < d->nsec; k++)
		html_section(f, &d->sec[k]);
	fputs("</main>\n", f);
	if (d->footer) {
		fputs("<footer><p>", f);
		html_text(f, d->footer);
		fputs("</p></footer>\n", f);
	}
	fputs("</body>\n</html>\n", f);
}

struct out_doc *out_doc_new(FILE *f, enum out_format fmt, unsigned flags)
{
	struct out_doc *d = calloc(1, sizeof(*d));

	if (!d)
		abort();
	d->f = f;
	d->fmt = fmt;
	d->flags = flags;
	d->pretty = out_style.pretty || (f == stdout && out_is_terminal());
	if (fmt == OUT_JSON && !(flags & OUT_DOC_ARRAY) && !(flags & OUT_DOC_SINGLE))
		fputs("{", f);
	return d;
}

static struct doc_section *cur(struct out_doc *d)
{
	return &d->sec[d->nsec - 1];
}

static void json_close_section(struct out_doc *d)
{
	struct doc_section *s;

	if (!d->nsec || d->fmt != OUT_JSON || (d->flags & OUT_DOC_SINGLE))
		return;
	s = cur(d);
	if (!s->json_open)
		return;
	json_pipe_end(s->json_pipe);
	s->json_pipe = NULL;
	fputs(d->row_written && d->pretty ? (d->flags & OUT_DOC_ARRAY ? "\n]" : "\n  ]") : "]", d->f);
	s->json_open = false;
}

/* Prints the rows the section's table holds: a blank line first when another table was
 * printed before this one began. */
static void table_emit(struct out_doc *d, struct doc_section *s)
{
	if (d->table_printed && !s->table->width)
		fputc('\n', d->f);
	out_table_print(d->f, s->table);
	d->table_printed = true;
}

static void table_flush(struct out_doc *d, struct doc_section *s)
{
	if (!s->table)
		return;
	/* Streaming (widths known): what is left; else the whole table, if it has a row. */
	if (s->table->width || s->nrows > 0)
		table_emit(d, s);
	out_table_free(s->table);
	s->table = NULL;
}

void out_doc_section(struct out_doc *d, const char *json_key, const struct out_column *cols, size_t ncols)
{
	struct doc_section *s;

	if (d->nsec == ELEMENTSOF(d->sec))
		abort();
	json_close_section(d);
	s = &d->sec[d->nsec++];
	*s = (struct doc_section){ .json_key = json_key, .cols = cols, .ncols = ncols, .json_flat = true };
	for (size_t i = 0; i < ncols; i++)
		if (cols[i].key && (strchr(cols[i].key, '.') || (cols[i].flags & OUT_C_OMIT_NULL)))
			s->json_flat = false;
	d->row_written = false;
	if (d->fmt == OUT_TABLE && !(d->flags & OUT_DOC_SINGLE)) {
		const char *headers[64];
		size_t n = 0;

		for (size_t i = 0; i < ncols && n < ELEMENTSOF(headers); i++)
			if (cols[i].header && in_format(&cols[i], OUT_TABLE))
				headers[n++] = cols[i].header;
		if (n)
			s->table = out_table_new(n, headers);
	} else if (d->fmt == OUT_CSV) {
		csv_line(d->f, cols, ncols, NULL);
	} else if (d->fmt == OUT_JSON && !(d->flags & OUT_DOC_SINGLE) && json_key) {
		fprintf(d->f, "%s%s\"%s\":%s[", d->json_any_member ? "," : "", d->pretty ? "\n  " : "", json_key,
		        d->pretty ? " " : "");
		d->json_any_member = true;
		s->json_open = true;
	} else if (d->fmt == OUT_JSON && (d->flags & OUT_DOC_ARRAY)) {
		fputs("[", d->f);
		s->json_open = true;
	}
}

/* text, each line after the first indented by indent (NULL: as it is), a line at a time. */
static void write_indented(FILE *f, const char *text, const char *indent)
{
	const char *p = text, *nl;

	while (indent && (nl = strchr(p, '\n'))) {
		fwrite(p, 1, (size_t)(nl - p + 1), f);
		fputs(indent, f);
		p = nl + 1;
	}
	fputs(p, f);
}

void out_doc_meta(struct out_doc *d, const char *key, json_t *value)
{
	char *text;

	if (d->fmt == OUT_JSON && !(d->flags & (OUT_DOC_ARRAY | OUT_DOC_SINGLE))) {
		text = json_dumps(value, (d->pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_PRESERVE_ORDER |
		                         JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
		fprintf(d->f, "%s%s\"%s\":%s", d->json_any_member ? "," : "", d->pretty ? "\n  " : "", key,
		        d->pretty ? " " : "");
		write_indented(d->f, text ? text : "null", d->pretty ? "  " : NULL);
		free(text);
		d->json_any_member = true;
	} else if (d->fmt == OUT_HTML) {
		html_meta(d, key, value);
	}
	json_decref(value);
}

void out_doc_title(struct out_doc *d, const char *title)
{
	free(d->title);
	d->title = strdup(title);
}

/* A JSON value for text of a kind (NULL → null). */
static json_t *typed(enum out_kind kind, const char *text)
{
	if (!text)
		return json_null();
	switch (kind) {
	case OUT_K_INT: return json_integer(strtoll(text, NULL, 10));
	case OUT_K_REAL: return json_real(strtod(text, NULL));
	case OUT_K_BOOL: return json_boolean(strcmp(text, "true") == 0 || strcmp(text, "t") == 0);
	case OUT_K_JSON: return out_json_typed(DBREG_T_JSON, text);
	default: return out_json_text(text);
	}
}

/* Sets key ("a.b": b of the object a, made when missing) in o. */
static void set_path(json_t *o, const char *key, json_t *v)
{
	const char *dot = strchr(key, '.');
	char head[64];
	json_t *sub;

	if (!dot || (size_t)(dot - key) >= sizeof(head)) {
		json_object_set_new(o, key, v);
		return;
	}
	memcpy(head, key, (size_t)(dot - key));
	head[dot - key] = '\0';
	sub = json_object_get(o, head);
	if (!sub) {
		sub = json_object();
		json_object_set_new(o, head, sub);
	}
	set_path(sub, dot + 1, v);
}

/* text, sql, kv, uri: the row's OUT_C_TEXT parts, a space between, escaped, coloured. */
static void text_row(struct out_doc *d, const struct doc_section *s, const char *const *values,
                     const char *const *shown, const char *const *colors)
{
	bool first = true;

	for (size_t i = 0; i < s->ncols; i++) {
		const char *x = shown && shown[i] ? shown[i] : values[i], *col = colors ? colors[i] : NULL;
		char *e;
		int w;

		if (!(s->cols[i].flags & OUT_C_TEXT) || !in_format(&s->cols[i], d->fmt) || !x)
			continue;
		e = out_escape(x);
		w = (int)display_width(e);
		fprintf(d->f, "%s%s%s%s", first ? "" : " ", col && *col ? col : "", e, col && *col ? color(C_RESET) : "");
		if (s->cols[i].width > w)
			fprintf(d->f, "%*s", s->cols[i].width - w, "");
		free(e);
		first = false;
	}
	fputc('\n', d->f);
}

/* A flat section's row object: its keys set once, in the columns' order, and its values
 * replaced row after row; a value the last row had too is kept as it is (neither made nor
 * parsed again). */
static json_t *row_cache_fill(struct row_cache *c, const struct doc_section *s, const char *const *values)
{
	bool first = !c->obj;

	if (first) {
		c->obj = json_object();
		c->last = calloc(s->ncols ? s->ncols : 1, sizeof(*c->last));
		if (!c->obj || !c->last)
			abort();
	}
	for (size_t i = 0; i < s->ncols; i++) {
		if (!s->cols[i].key || !in_format(&s->cols[i], OUT_JSON))
			continue;
		if (!first && (c->last[i] == values[i] || (c->last[i] && values[i] && strcmp(c->last[i], values[i]) == 0)))
			continue;
		json_object_set_new(c->obj, s->cols[i].key, typed(s->cols[i].kind, values[i]));
		free(c->last[i]);
		c->last[i] = values[i] ? strdup(values[i]) : NULL;
		if (values[i] && !c->last[i])
			abort();
	}
	return c->obj;
}

static void row_cache_clear(struct row_cache *c, size_t ncols)
{
	json_decref(c->obj);
	for (size_t i = 0; c->last && i < ncols; i++)
		free(c->last[i]);
	free(c->last);
	*c = (struct row_cache){ 0 };
}

/* A helper of the JSON pipe makes a streamed flat section's rows with a cache of its own. */
struct pipe_cache {
	struct row_cache rows;
	const struct doc_section *s;
};

static void *pipe_cache_new(void *userdata)
{
	struct pipe_cache *c = calloc(1, sizeof(*c));

	if (c)
		c->s = userdata;
	return c;
}

static void pipe_cache_free(void *cache)
{
	struct pipe_cache *c = cache;

	row_cache_clear(&c->rows, c->s->ncols);
	free(c);
}

static json_t *pipe_row(void *cache, const char *const *values, void *userdata)
{
	return row_cache_fill(&((struct pipe_cache *)cache)->rows, userdata, values);
}

static const struct json_pipe_ops pipe_ops = { pipe_cache_new, pipe_cache_free, pipe_row };

static void json_row(struct out_doc *d, struct doc_section *s, const char *const *values)
{
	const char *indent = d->flags & OUT_DOC_SINGLE ? "" : d->flags & OUT_DOC_ARRAY ? "  " : "    ";
	size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10);
	json_t *o;
	char *text;

	/* Many compact rows of one shape: helper threads make and dump them (json-pipe.c). */
	if (!s->json_pipe && !d->row_written && !d->pretty && (d->flags & OUT_DOC_STREAM) && s->json_flat)
		s->json_pipe = json_pipe_new(d->f, flags, s->ncols, &pipe_ops, s);
	if (s->json_pipe) {
		json_pipe_push(s->json_pipe, values);
		return;
	}
	if (s->json_flat) {
		o = json_incref(row_cache_fill(&s->rows, s, values));
	} else {
		o = json_object();
		for (size_t i = 0; i < s->ncols; i++)
			if (s->cols[i].key && in_format(&s->cols[i], OUT_JSON) &&
			    !(values[i] == NULL && (s->cols[i].flags & OUT_C_OMIT_NULL)))
				set_path(o, s->cols[i].key, typed(s->cols[i].kind, values[i]));
	}
	if (!(d->flags & OUT_DOC_SINGLE))
		fprintf(d->f, "%s%s%s", d->row_written ? "," : "", d->pretty ? "\n" : "", d->pretty ? indent : "");
	if (d->pretty) {
		text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
		write_indented(d->f, text ? text : "{}", indent);
		free(text);
	} else {
		/* Into one buffer, kept for the next row, then a single write. */
		size_t need = json_dumpb(o, d->json_buf, d->json_size, flags);

		if (need > d->json_size) {
			char *grown = realloc(d->json_buf, need * 2);

			if (!grown)
				abort();
			d->json_buf = grown;
			d->json_size = need * 2;
			need = json_dumpb(o, d->json_buf, d->json_size, flags);
		}
		if (need == 0)
			fputs("{}", d->f);
		else
			fwrite(d->json_buf, 1, need, d->f);
	}
	json_decref(o);
}

/* Nagios: a row's perfdata label, quoted, a quote doubled; '=' (which no label may
 * hold) and control characters as '_'. */
static void perf_label(FILE *f, const char *name)
{
	fputc('\'', f);
	for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p; p++) {
		if (*p == '\'')
			fputs("''", f);
		else if (*p == '=' || *p < 0x20 || *p == 0x7f)
			fputc('_', f);
		else
			fputc(*p, f);
	}
	fputc('\'', f);
}

static void nagios_row(struct out_doc *d, const struct doc_section *s, const char *const *values)
{
	const char *name = NULL, *state = NULL, *reason = NULL, *perf = NULL, *unit = "";
	bool has_perf = false;
	FILE *f;

	for (size_t i = 0; i < s->ncols; i++) {
		unsigned fl = s->cols[i].flags;

		if (fl & OUT_C_NAME)
			name = values[i];
		if (fl & OUT_C_STATE)
			state = values[i];
		if (fl & OUT_C_REASON)
			reason = values[i];
		if (fl & OUT_C_PERF) {
			perf = values[i];
			unit = s->cols[i].unit ? s->cols[i].unit : "";
			has_perf = true;
		}
	}
	if (has_perf) {
		f = buf_stream(&d->perf);
		fputc(' ', f);
		perf_label(f, name);
		if (perf)
			fprintf(f, "=%s%s;%d;", perf, unit, d->warn);
		else
			fprintf(f, "=U;%d;", d->warn);  /* not measured: the plugin guidelines' "U" */
		if (d->crit > 0)
			fprintf(f, "%d", d->crit);
	}
	if (state && d->ok_state && strcmp(state, d->ok_state) != 0) {
		f = buf_stream(&d->long_out);
		out_fputs_safe(name, f);
		fprintf(f, " %s: ", state);
		out_fputs_safe(reason ? reason : "no reason given", f);
		fputc('\n', f);
	}
}

/* A copy of a row's texts (NULL row: NULL cells) at the end of *kept, which has s->nrows rows. */
static void keep_row(char ***kept, const struct doc_section *s, const char *const *texts)
{
	*kept = realloc(*kept, (s->nrows + 1) * s->ncols * sizeof(char *));
	if (!*kept)
		abort();
	for (size_t i = 0; i < s->ncols; i++)
		(*kept)[s->nrows * s->ncols + i] = texts && texts[i] ? strdup(texts[i]) : NULL;
}

void out_doc_row(struct out_doc *d, const char *const *values, const char *const *shown, const char *const *colors)
{
	struct doc_section *s = cur(d);

	switch (d->fmt) {
	case OUT_TABLE:
		if (d->flags & OUT_DOC_SINGLE) {
			/* One record: a line a column, its header, then its value. */
			for (size_t i = 0; i < s->ncols; i++)
				if (s->cols[i].header && in_format(&s->cols[i], OUT_TABLE)) {
					const char *x = shown && shown[i] ? shown[i] : values[i];

					fprintf(d->f, "%s%-25s%s ", color(C_BOLD), s->cols[i].header, color(C_RESET));
					out_fputs_safe(x ? x : "-", d->f);
					fputc('\n', d->f);
				}
		} else if (s->table) {
			const char *cells[64], *cc[64];
			size_t n = 0;

			for (size_t i = 0; i < s->ncols && n < ELEMENTSOF(cells); i++)
				if (s->cols[i].header && in_format(&s->cols[i], OUT_TABLE)) {
					cells[n] = shown && shown[i] ? shown[i] : values[i];
					cc[n++] = colors ? colors[i] : NULL;
				}
			out_table_add_colored(s->table, cells, cc);
			/* Past the window (or once streaming), rows go out as they come. */
			if (s->table->width || s->table->nrows > TABLE_WINDOW)
				table_emit(d, s);
		}
		break;
	case OUT_CSV:
		csv_line(d->f, s->cols, s->ncols, values);
		break;
	case OUT_JSON:
		/* One record: the first row of the document is it; a later section is the text's alone. */
		if (s->json_open || ((d->flags & OUT_DOC_SINGLE) && !d->single_done))
			json_row(d, s, values);
		d->single_done = true;
		break;
	case OUT_PROMETHEUS:
		keep_row(&s->kept, s, values);
		break;
	case OUT_HTML:
		keep_row(&s->kept, s, values);
		keep_row(&s->kept_shown, s, shown);
		break;
	case OUT_NAGIOS:
		nagios_row(d, s, values);
		break;
	case OUT_TEXT:
	case OUT_SQL:
	case OUT_KV:
	case OUT_URI:
		text_row(d, s, values, shown, colors);
		break;
	default:
		break;
	}
	s->nrows++;
	d->row_written = true;
}

void out_doc_footer(struct out_doc *d, const char *text, bool always)
{
	free(d->footer);
	d->footer = strdup(text);
	d->footer_always = always;
}

void out_doc_gauge(struct out_doc *d, const char *name, const char *help, double value)
{
	if (d->ngauges < ELEMENTSOF(d->gauges))
		d->gauges[d->ngauges++] = (struct doc_gauge){ name, help, value };
}

void out_doc_nagios(struct out_doc *d, const char *status_line, const char *counts, int warn, int crit,
                    const char *ok_state)
{
	free(d->status_line);
	d->status_line = strdup(status_line);
	fputs(counts, buf_stream(&d->perf));
	d->warn = warn;
	d->crit = crit;
	d->ok_state = ok_state;
}

/* The samples of one family in a section (named by its first column): each row's value
 * of every column of that family.  Its HELP and TYPE come first; an OUT_C_OPTIONAL family
 * has them only when some row has a value. */
static void prom_family(FILE *f, const struct doc_section *s, const struct out_column *family)
{
	const char *metric = family->metric;
	bool header = !(family->flags & OUT_C_OPTIONAL);

	if (header)
		out_prom_family(f, metric, "gauge", family->help);
	for (size_t r = 0; r < s->nrows; r++)
		for (size_t i = 0; i < s->ncols; i++) {
			const struct out_column *c = &s->cols[i];
			const char *v = s->kept[r * s->ncols + i];

			if (!c->metric || strcmp(c->metric, metric) != 0 || !v)
				continue;
			if (!header) {
				out_prom_family(f, metric, "gauge", family->help);
				header = true;
			}
			for (size_t k = 0; (c->flags & OUT_C_ONEHOT) ? c->states[k] != NULL : k == 0; k++) {
				bool first = true;

				fputs(metric, f);
				for (size_t j = 0; j < s->ncols; j++)
					if (s->cols[j].flags & OUT_C_LABEL) {
						fputs(first ? "{" : "", f);
						out_prom_label(f, s->cols[j].label ? s->cols[j].label : s->cols[j].key,
						               s->kept[r * s->ncols + j], first);
						first = false;
					}
				if (c->label) {
					fputs(first ? "{" : "", f);
					out_prom_label(f, c->label, (c->flags & OUT_C_ONEHOT) ? c->states[k] : c->label_value, first);
					first = false;
				}
				fputs(first ? " " : "} ", f);
				if (c->flags & OUT_C_ONEHOT)
					fprintf(f, "%d\n", strcmp(v, c->states[k]) == 0);
				else if (c->kind == OUT_K_BOOL)
					fprintf(f, "%d\n", strcmp(v, "true") == 0);
				else
					fprintf(f, "%.15g\n", strtod(v, NULL) * (c->scale ? c->scale : 1));
			}
		}
}

static void prom_write(struct out_doc *d)
{
	for (size_t k = 0; k < d->nsec; k++) {
		const struct doc_section *s = &d->sec[k];

		/* Each family once, in the order of its first column. */
		for (size_t i = 0; i < s->ncols; i++) {
			bool seen = false;

			if (!s->cols[i].metric)
				continue;
			for (size_t j = 0; j < i; j++)
				if (s->cols[j].metric && strcmp(s->cols[j].metric, s->cols[i].metric) == 0)
					seen = true;
			if (!seen)
				prom_family(d->f, s, &s->cols[i]);
		}
	}
	for (size_t g = 0; g < d->ngauges; g++) {
		out_prom_family(d->f, d->gauges[g].name, "gauge", d->gauges[g].help);
		fprintf(d->f, "%s %.15g\n", d->gauges[g].name, d->gauges[g].value);
	}
}

void out_doc_end(struct out_doc *d)
{
	if (!d)
		return;
	switch (d->fmt) {
	case OUT_TABLE:
		for (size_t k = 0; k < d->nsec; k++)
			table_flush(d, &d->sec[k]);
		if (d->footer && (!out_style.no_headers || d->footer_always))
			fprintf(d->f, "%s\n", d->footer);
		break;
	case OUT_JSON:
		json_close_section(d);
		if (d->flags & (OUT_DOC_ARRAY | OUT_DOC_SINGLE))
			fputc('\n', d->f);
		else
			fputs(d->json_any_member && d->pretty ? "\n}\n" : "}\n", d->f);
		break;
	case OUT_PROMETHEUS:
		prom_write(d);
		break;
	case OUT_TEXT:
		if (d->footer)
			fprintf(d->f, "%s\n", d->footer);
		break;
	case OUT_NAGIOS:
		fprintf(d->f, "%s | %s\n%s", d->status_line ? d->status_line : "DBREG UNKNOWN", buf_text(&d->perf),
		        buf_text(&d->long_out));
		break;
	case OUT_HTML:
		html_write(d);
		break;
	default:
		break;
	}
	for (size_t k = 0; k < d->nsec; k++) {
		struct doc_section *s = &d->sec[k];

		out_table_free(s->table);
		json_pipe_end(s->json_pipe);
		row_cache_clear(&s->rows, s->ncols);
		for (size_t i = 0; s->kept && i < s->nrows * s->ncols; i++)
			free(s->kept[i]);
		for (size_t i = 0; s->kept_shown && i < s->nrows * s->ncols; i++)
			free(s->kept_shown[i]);
		free(s->kept);
		free(s->kept_shown);
	}
	buf_free(&d->perf);
	buf_free(&d->long_out);
	buf_free(&d->html_meta);
	free(d->title);
	free(d->footer);
	free(d->status_line);
	free(d->json_buf);
	free(d);
}

/* ---- where a report goes ---- */

int out_sink_open(struct out_sink *s, const char *path, mode_t mode)
{
	s->path = path;
	if (!path) {
		s->f = stdout;
		return 0;
	}
	if (out_file_open(&s->file, path, mode) < 0)
		return -1;
	s->f = s->file.f;
	return 0;
}

int out_sink_close(struct out_sink *s)
{
	if (s->path)
		return out_file_commit(&s->file, true);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* As a failed --output: the report did not reach its reader. */
		log_error("write failure on standard output: %s", strerror(errno));
		stdout_failure_reported = true;
		return -1;
	}
	return 0;
}
