/* fanout.h — one non-blocking event loop that talks to many databases at once. */
#ifndef DBREG_FANOUT_H
#define DBREG_FANOUT_H

#include <signal.h>
#include <stdbool.h>

#include <libpq-fe.h>

#define FANOUT_MAX_QUERIES 4
/* Event loops of one run at most (fanout_opts.threads). */
#define FANOUT_MAX_THREADS 64

enum fanout_outcome {
	FANOUT_OK,           /* logged in and ran every query (some may have failed: see results) */
	FANOUT_NO_RESOLVE,   /* the host name did not resolve */
	FANOUT_CONNECT,      /* refused, unreachable, authentication failed */
	FANOUT_TIMEOUT,      /* the deadline passed */
	FANOUT_CANCELLED,
	FANOUT_SKIPPED,      /* never started (the caller's choice) */
	FANOUT_LOCAL,        /* a resource of ours ran out (open files, memory): says nothing of the target */
};

struct fanout_job {
	/* in: connection parameters (NULL-terminated pairs; host included) */
	const char *keys[24];
	const char *vals[24];
	int nparams;
	const char *queries[FANOUT_MAX_QUERIES];
	const char *query_params[FANOUT_MAX_QUERIES];   /* $1 of each query, or NULL for none */
	int nqueries;
	/* out */
	enum fanout_outcome outcome;
	char error[512];
	PGresult *results[FANOUT_MAX_QUERIES];   /* one per query run; caller PQclear()s */
	double elapsed_ms;                       /* start to last result, or to failure, less queued_ms */
	double queued_ms;                        /* ready, but waiting while the loop served others */
	int server_version;                      /* PQserverVersion after login, 0 before */
	int answered;                            /* queries answered (a result each) before the outcome */
	bool logged_in;
	bool keep_conn;                          /* in: on FANOUT_OK, leave j->conn open for the caller;
	                                          * only in a run of one loop (threads 1: a loop
	                                          * thread's OpenSSL context ends with it) */
	bool want_tls;                           /* in: capture the session's TLS right after login */
	/* out, with want_tls, once logged in: TLS as negotiated on this connection */
	bool tls_captured;                       /* the fields below are set */
	bool tls_in_use;
	char tls_protocol[32], tls_cipher[96];   /* "" when not in use (or not said) */
	double cert_not_after;                   /* the server certificate's notAfter, epoch s; -1 none */
	void *userdata;                          /* the caller's */
	char secret[160];                        /* a password set by prepare; wiped when the job ends */
	/* private */
	int state, slot;
	PGconn *conn;
	PostgresPollingStatusType poll;
	int next_query;
	double started;
	char hostaddr[256];
	char *hostlist;                          /* "host,host,..." to match hostaddr */
	int resolve_id;
};

struct fanout_opts {
	int jobs;                 /* at most this many at once */
	int threads;              /* event loops, each in a thread with its share of jobs (0: 1) */
	int timeout_ms;           /* each job's deadline */
	volatile sig_atomic_t *cancel;   /* non-zero: stop (checked between polls) */
	void (*progress)(size_t done, size_t total, double elapsed_ms, void *userdata);
	void *progress_userdata;
	/* Called as a job starts, under the run's lock (e.g. to decrypt its password into j->secret);
	 * < 0 ends the job as FANOUT_SKIPPED with j->error set. */
	int (*prepare)(struct fanout_job *j, void *userdata);
	void *userdata;
	/* out, when given: how many at once were wanted (jobs, at most the job
	 * count) and allowed by the open-file limit, and that limit (-1: none) */
	size_t *ret_wanted, *ret_used;
	long *ret_fd_limit;
};

/* Where a run's jobs come from: next gives the next job (filled in, the loop's own fields
 * zero) or NULL when
 * there is none; done takes each back as it ends (its outcome and results set; the source
 * may reuse it at once).  Both are called under the run's lock, so a source is never
 * called by two loops at once; jobs given as FANOUT_SKIPPED end at once. */
struct fanout_source {
	struct fanout_job *(*next)(void *userdata);
	void (*done)(struct fanout_job *j, void *userdata);   /* may be NULL */
	void *userdata;
	size_t total;             /* how many next gives, for the slots, the threads and progress */
};

/* An array of jobs as a source (a keeps its place); they hold their outcomes after. */
struct fanout_array {
	struct fanout_job *jobs;
	size_t n, next;
};
struct fanout_source fanout_array_source(struct fanout_array *a, struct fanout_job *jobs, size_t n);

void fanout_job_add(struct fanout_job *j, const char *key, const char *val);
/* How many connections at once the open-file limit leaves room for (raising
 * the soft limit first when it can), at most want and at least 1. */
size_t fanout_jobs_allowed(size_t want, long *ret_limit);
/* Runs every job of src to an outcome, in opts->threads loops (at most one per slot);
 * returns 0, or -1 if a loop itself failed (every job then ended, FANOUT_LOCAL). */
int fanout_run_source(const struct fanout_source *src, const struct fanout_opts *opts, char *errbuf, size_t errsize);
/* The same for an array of jobs. */
int fanout_run(struct fanout_job *jobs, size_t n, const struct fanout_opts *opts, char *errbuf, size_t errsize);
void fanout_job_clear(struct fanout_job *j);
double fanout_now_ms(void);

#endif
