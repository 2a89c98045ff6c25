/* dbreg-cmd.h — what the command-line front end's files share: the verb table, output, prompts. */
#ifndef DBREG_CMD_H
#define DBREG_CMD_H

#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "dbreg.h"

#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

enum {
	EXIT_OK = 0,
	EXIT_NEGATIVE = 1,
	EXIT_USAGE = 2,
	EXIT_UNAVAILABLE = 69,
	EXIT_CONFIG = 78,
};

#define VERB_ANY (-1)

/* When a verb reaches the admin database. */
enum verb_registry {
	VERB_REGISTRY_NONE,      /* never (generate-key) */
	VERB_REGISTRY_CONNECT,   /* verb_begin connects, once the arguments are checked */
	VERB_REGISTRY_SELF,      /* the verb connects itself, when it gets there (health reports
	                          * the failure in its own format, import reads its file first) */
};

/* The one table of verbs: dispatch, verb_begin, -o, help, the REPL and its completion read
 * it; tests/bats/completions.bats holds the shell completions to it. */
struct verb {
	const char *name;
	int (*run)(struct dbreg_ctx *ctx, int argc, char **argv);
	const char *summary;
	const char *usage;        /* the synopsis after "dbreg NAME" */
	bool registry_writer;     /* changes the registry (the REPL refreshes its name cache) */
	const struct option *options;  /* for completion; the same table getopt_long reads */
	bool takes_names;         /* positional arguments are connection names (checked by verb_begin) */
	bool paged;               /* on a terminal, a long output goes through the pager */
	int min_args, max_args;   /* positional arguments after the options (VERB_ANY: no limit) */
	const char *arg_name;     /* what a missing one is: "a connection NAME" */
	unsigned formats;         /* what -o takes (enum out_format bits; 0: no -o) */
	enum verb_registry registry;
};

extern const struct verb *const dbreg_verbs[];
const struct verb *verb_find(const char *name);
/* Runs argv[0] as a verb (a usage error for an unknown one); returns its exit status. */
int verb_dispatch(struct dbreg_ctx *ctx, int argc, char **argv);
const char *verb_closest(const char *name);

/* Verbs */
extern const struct verb verb_init, verb_register, verb_update, verb_list, verb_show, verb_deregister,
	verb_encrypt_password, verb_generate_key, verb_health, verb_resolve_schema, verb_pool_stats, verb_repl,
	verb_validate_config, verb_psql, verb_exec, verb_rotate_key, verb_rotate_password;
extern const struct verb verb_conninfo, verb_export;
extern const struct verb verb_import;

/* Global state set by main (or the REPL) */
extern int arg_color;            /* 1 colour, 0 none */
extern bool arg_color_forced;    /* --color=always */
extern bool arg_no_pager;        /* dbreg --no-pager: no verb pages */
extern bool in_repl;             /* commands come from the REPL */
extern bool in_repl_script;      /* the REPL reads commands from stdin */
extern bool stdout_failure_reported;  /* a verb reported a failed write to stdout and chose its status */

/* Messages: "dbreg: error: ..." on stderr. */
void log_error(const char *fmt, ...) _printf_(1, 2);
void log_warning(const char *fmt, ...) _printf_(1, 2);
/* A usage error for verb: the message, the Try line; returns EXIT_USAGE. */
int usage_error(const char *verb, const char *fmt, ...) _printf_(2, 3);
/* After getopt_long returned ':' (missing value) or '?' (unknown): the usage
 * error naming the option as typed; returns EXIT_USAGE. */
int option_error(const char *verb, int c, char **argv);
/* The connection names left after the options (checked against the naming
 * rule), NULL-terminated, or NULL when there are none; EXIT_USAGE on a bad one. */
int parse_names(const char *verb, int argc, char **argv, const char *const **ret);
/* Adds the n tags of --tag to a filter (all must match). */
/* The values of a repeated --tag, as given, until a filter takes them (add_tags). */
struct tag_list {
	const char *tags[64];
	int n;
};
/* One more --tag; past 64 a usage error (returns -1). */
int tag_list_add(const char *verb, struct tag_list *t, const char *tag);
int add_tags(struct dbreg_filter *filter, const struct tag_list *t, struct dbreg_error *err);
/* Reads an option's value as a whole number 1..max; a usage error (returns -1) otherwise. */
int parse_positive(const char *verb, const char *opt, const char *text, long max, long *ret);
/* Reads a DURATION, <integer>[s|m|h|d] (a bare number is seconds), into seconds 1..max_s;
 * a usage error (returns -1) otherwise. */
int parse_duration(const char *verb, const char *opt, const char *text, long max_s, long *ret);
/* The longest DURATION an option takes: ten years. */
#define DURATION_MAX (3650L * 86400)
/* Prints err and returns its exit status (SPEC §4). */
int fail(const struct dbreg_error *err);
int exit_status(enum dbreg_errkind kind);
/* Prints the help of a verb to stdout. */
void verb_help(const struct verb *v, const char *options);
/* Connects the context and prints the failure, returning its exit status (0 ok). */
int connect_registry(struct dbreg_ctx *ctx);
/* The same, the failure also left in *ret_err (for a verb that reports it in its format too). */
int connect_registry_err(struct dbreg_ctx *ctx, struct dbreg_error *ret_err);
/* After a verb's options (argv[optind] on): its positional arguments within the table's
 * bounds, connection names by the naming rule (usage errors), then the admin connection
 * when the verb is VERB_REGISTRY_CONNECT.  Returns 0 or the exit status. */
int verb_begin(const struct verb *v, struct dbreg_ctx *ctx, int argc, char **argv);
/* verb_begin's checks of the arguments alone. */
int verb_args(const struct verb *v, int argc, char **argv);


/* Output formats, shared by every verb. */
enum out_format {
	OUT_TABLE = 1 << 0,
	OUT_JSON = 1 << 1,
	OUT_CSV = 1 << 2,
	OUT_TEXT = 1 << 3,
	OUT_PROMETHEUS = 1 << 4,
	OUT_NAGIOS = 1 << 5,
	OUT_SQL = 1 << 6,
	OUT_KV = 1 << 7,       /* libpq key=value */
	OUT_URI = 1 << 8,
	OUT_WIDE = 1 << 9,     /* only in an allowed mask: "wide" is a table never cut short */
	OUT_HTML = 1 << 10,    /* one self-contained page: inline CSS and SVG, no script, nothing fetched */
};
/* Parses -o's value among the allowed formats (a mask); returns 0 or -1 after a usage error.
 * Where OUT_WIDE is allowed, "wide" is OUT_TABLE with out_style.wide. */
int out_parse_format(const char *verb, const char *text, unsigned allowed, enum out_format *ret);
/* -o's value among the verb's formats (out_parse_format on v->formats). */
int verb_format(const struct verb *v, const char *text, enum out_format *ret);
/* The names of the formats of a mask, NULL-terminated, in -o's order (at most 12). */
void out_format_names(unsigned mask, const char *ret[12]);

/* How tables and the pager behave for the verb running (reset before each verb). */
struct out_style {
	bool wide;          /* -o wide: cells never cut to the terminal's width */
	bool no_headers;    /* --no-headers */
	bool no_pager;      /* --no-pager (the verb's, or dbreg's own) */
	bool pretty;        /* --pretty: JSON indented even when not on a terminal */
};
extern struct out_style out_style;
/* The options every verb with a table or a long output shares, for its getopt_long table. */
enum { ARG_OUT_NO_HEADERS = 0x1000, ARG_OUT_NO_PAGER, ARG_OUT_PRETTY };
#define OUT_TABLE_OPTIONS \
	{ "no-headers", no_argument, NULL, ARG_OUT_NO_HEADERS }, { "no-pager", no_argument, NULL, ARG_OUT_NO_PAGER }
#define OUT_PAGER_OPTIONS { "no-pager", no_argument, NULL, ARG_OUT_NO_PAGER }
/* JSON is compact unless it goes to a terminal; --pretty indents it anyway. */
#define OUT_JSON_OPTIONS { "pretty", no_argument, NULL, ARG_OUT_PRETTY }
#define OUT_JSON_HELP "  --pretty             indented JSON, also when not on a terminal\n"
#define OUT_TABLE_HELP \
	"  --no-headers         a table without its header line\n" \
	"  --no-pager           never page the output\n"
#define OUT_PAGER_HELP "  --no-pager           never page the output\n"
/* Takes one of those options (true), or says it is none of them. */
bool out_option(int c);
/* On a terminal, gathers standard output until out_pager_end, which shows it through
 * the pager ($DBREG_PAGER, $PAGER, else less -FRX) when it is taller than the screen. */
void out_pager_begin(void);
void out_pager_end(void);
/* For output that goes on (pool-stats --watch): what was gathered is written, and no more is. */
void out_pager_stop(void);
/* Whether what the verb writes reaches a person's terminal (through the pager, too). */
bool out_is_terminal(void);
/* Standard output into "sh -c cmd" until out_pipe_end, which waits for it and returns its
 * exit status; -1 when it cannot be started. */
int out_pipe_begin(const char *cmd);
int out_pipe_end(void);

/* A JSON string (NULL → null); bytes that are not UTF-8 become '?'. */
json_t *out_json_text(const char *text);
json_t *out_conn_json(const struct dbreg_conn *c);
/* update: a line "FIELD OLD → NEW" for each field that differs (not updated_at nor the
 * password's fields); returns how many. */
size_t out_conn_changes(FILE *f, const struct dbreg_conn *before, const struct dbreg_conn *after);
/* list/show: every format of a connection list. */
void out_conn_list(FILE *f, enum out_format fmt, const struct dbreg_conn_list *l, bool one);
/* The fields a table of connections shows (and reads: whether a row is deleted), into
 * fields (DBREG_F__COUNT of room); returns how many. */
size_t out_conn_table_fields(enum dbreg_field *fields);
/* list: every format, row by row as the stream gives them; the rows written go to *ret_rows.
 * 0, or -1 when the read failed (err set; what was written is cut short). */
int out_conn_stream(FILE *f, enum out_format fmt, struct dbreg_conn_stream *s, size_t *ret_rows,
                    struct dbreg_error *err);
const char *color(const char *ansi);  /* "" without colour */
/* Text fit for a terminal: control characters (C0, DEL, C1) and bytes that are
 * not UTF-8 as \xNN; malloc'd (NULL for NULL). */
char *out_escape(const char *s);
/* fputs of out_escape(s). */
void out_fputs_safe(const char *s, FILE *f);
/* A verb's one-line result on standard output ("registered NAME (id ...)"), control
 * characters escaped; never for a secret (the text passes through the heap). */
void out_line(const char *fmt, ...) _printf_(1, 2);
#define C_BOLD "\033[1m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_RESET "\033[0m"

/* A progress line on stderr while a fan-out runs (health, pool-stats), for the library's
 * progress callback with a struct out_progress: set it only when stderr is a terminal; it
 * shows once the run takes a second and is erased at the end. */
struct out_progress {
	const char *what;     /* "checking" */
	bool shown;
};
void out_progress(size_t done, size_t total, double elapsed_ms, void *userdata);

/* A document: sections of typed columns and rows as they come, for every format.  The
 * verb says what the columns are and hands over rows; the writer of the format decides
 * what each becomes: a table (the one writer that keeps rows, for their widths), JSON
 * (each row an object as it comes; "a.b" keys nest), CSV, Prometheus (the columns with
 * a metric; families kept whole), Nagios (one status line with perfdata, then long output),
 * HTML (rows kept: the page's summary tiles count them first), and a line a row of the
 * OUT_C_TEXT columns for text, sql, kv and uri.  The table and HTML show the columns with a
 * header that are part of the format. */
enum out_kind {
	OUT_K_TEXT, OUT_K_INT, OUT_K_REAL, OUT_K_BOOL, OUT_K_JSON,
	OUT_K_SERIES,  /* numbers, oldest first, comma-separated ("12.1,13.0,-1"; < 0: a failure):
	                * HTML draws a sparkline (inline SVG), the shown text its description */
};
enum {
	OUT_C_LABEL = 1 << 0,     /* Prometheus: a label of every sample of the row, named .label or key */
	OUT_C_NAME = 1 << 1,      /* Nagios: the row's name (perfdata label, long output); HTML: its heading */
	OUT_C_STATE = 1 << 2,     /* Nagios: a row whose state is not the ok state gets a long-output line;
	                           * HTML: the row's colour, and with .states the page's summary tiles */
	OUT_C_REASON = 1 << 3,    /* Nagios: the why of that line; HTML: the row's last cell, never cut */
	OUT_C_PERF = 1 << 4,      /* Nagios: the row's perfdata value (NULL: U), in .unit */
	OUT_C_ONEHOT = 1 << 5,    /* Prometheus: a sample for each of .states, label .label, 1 for the row's */
	OUT_C_OPTIONAL = 1 << 6,  /* Prometheus: no family at all when no row has a value */
	OUT_C_OMIT_NULL = 1 << 7, /* JSON: no key at all (not null) when the value is NULL */
	OUT_C_TEXT = 1 << 8,      /* text, sql, kv, uri: a part of the row's line (NULL: left out) */
};
struct out_column {
	const char *key;          /* JSON and CSV ("a.b": b in the object a); NULL: not there */
	const char *header;       /* the table; NULL: not in it */
	enum out_kind kind;
	unsigned flags;
	const char *metric, *help;   /* the Prometheus family of the value, scaled by .scale (0: 1) */
	double scale;
	const char *label, *label_value;  /* an extra label of its samples (state="active") */
	const char *const *states;        /* OUT_C_ONEHOT, NULL-terminated */
	const char *unit;                 /* OUT_C_PERF */
	unsigned only;                    /* the formats it is part of, its key's JSON and CSV included
	                                   * (0: every one with a place for it) */
	int width;                        /* OUT_C_TEXT: padded to this many characters */
};
enum {
	OUT_DOC_ARRAY = 1 << 0,   /* JSON: one section, a bare array */
	OUT_DOC_SINGLE = 1 << 1,  /* one row: JSON a bare object, the table a line per column */
	OUT_DOC_STREAM = 1 << 2,  /* many rows that come as read: compact JSON rows are dumped by
	                           * helper threads (json-pipe.c), written in order */
};
struct out_doc;
struct out_doc *out_doc_new(FILE *f, enum out_format fmt, unsigned flags);
/* A section: a table of its own, the array json_key of the top JSON object. */
void out_doc_section(struct out_doc *d, const char *json_key, const struct out_column *cols, size_t ncols);
/* JSON: a member of the top object (value taken), before or between the sections; HTML: a
 * line of the page's heading ("checked at: ..."), for a string or a number. */
void out_doc_meta(struct out_doc *d, const char *key, json_t *value);
/* HTML: the page's title and first heading (default: "dbreg"). */
void out_doc_title(struct out_doc *d, const char *title);
/* values: a text per column, of its kind (NULL: null, and "-" in a table); shown: what the
 * table shows instead (NULL, or NULL cells: the value); colors: the table's, or NULL. */
void out_doc_row(struct out_doc *d, const char *const *values, const char *const *shown, const char *const *colors);
/* The last line of the table, the text or the page (the table's is left out with --no-headers unless always). */
void out_doc_footer(struct out_doc *d, const char *text, bool always);
/* Prometheus: a gauge of the whole run, without labels, after the sections. */
void out_doc_gauge(struct out_doc *d, const char *name, const char *help, double value);
/* Nagios: the status line and its first perfdata; the rows' thresholds (crit 0: none) and
 * the state that needs no long-output line. */
void out_doc_nagios(struct out_doc *d, const char *status_line, const char *counts, int warn, int crit,
                    const char *ok_state);
/* Writes what is left (the tables, the JSON's end, Prometheus, Nagios, HTML) and frees d. */
void out_doc_end(struct out_doc *d);

/* A file written whole or not at all: a temp file beside path (removed on
 * failure and on SIGINT, SIGTERM or SIGHUP), fsync, then rename (replace) or
 * link (never over an existing file).  Errors are printed; both return -1. */
struct out_file {
	FILE *f;
	const char *path;
	mode_t mode;
	char tmp[4096];
};
int out_file_open(struct out_file *o, const char *path, mode_t mode);
/* Where a report goes: standard output (path NULL) or path, written whole (out_file,
 * replacing it).  _close flushes, commits and says (-1, printed) when it did not arrive. */
struct out_sink {
	FILE *f;
	const char *path;
	struct out_file file;
};
int out_sink_open(struct out_sink *s, const char *path, mode_t mode);
int out_sink_close(struct out_sink *s);
int out_file_commit(struct out_file *o, bool replace);
void out_file_abort(struct out_file *o);
/* mkdir -p: dir and every missing directory above it, each made with mode; existing
 * ones are left as they are.  0, or -1 with errno. */
int out_make_dirs(const char *dir, mode_t mode);

/* Passwords (prompt.c).  The buffer is locked memory; release with password_free. */
enum pw_source { PW_NONE, PW_PROMPT, PW_STDIN, PW_CLEAR };
/* "user@host:port/database" ([host] for IPv6; no host: localhost; no port: 5432). */
void password_target(char *buf, size_t size, const char *user, const char *host, const char *port,
                     const char *database);
/* target (password_target's, or NULL) names in the prompt whose password is asked for. */
int password_read(const char *verb, const char *target, enum pw_source src, bool confirm, char **ret,
                  size_t *ret_len);
void password_free(char *pw);

/* Options shared by register and update (connopts.c). */
struct conn_opts {
	struct dbreg_spec *spec;
	const char *url;
	enum pw_source pw;
	bool test, replace, dry_run;
};
extern const struct option conn_options[];
int conn_opts_parse(const char *verb, bool update, int argc, char **argv, struct conn_opts *o,
                    const char **ret_name);
/* Reads the password the options ask for; the prompt names the target, from the options
 * and (update) before, the row as it is. */
int conn_opts_apply_password(const char *verb, struct dbreg_ctx *ctx, struct conn_opts *o,
                             const struct dbreg_conn *before);

/* health --history (cmd/history.c): the history of the selection over since_s (0: 7 days). */
int health_history(struct dbreg_ctx *ctx, const struct dbreg_filter *filter, long since_s, enum out_format fmt);

#endif
