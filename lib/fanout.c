/* fanout.c — the one non-blocking event loop that talks to many databases at once.
 *
 * Names are resolved first by a few detached resolver threads (PQconnectPoll
 * would block on DNS), which report on a pipe the loop polls beside the
 * connections; each job then connects with host and hostaddr and runs its
 * queries, all under its own deadline, enforced here because libpq ignores
 * connect_timeout in non-blocking mode.  The loop knows nothing of what the
 * queries mean. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "fanout.h"
#include "internal.h"

enum { S_PENDING, S_RESOLVING, S_CONNECTING, S_QUERYING, S_DONE };
#define MAX_ADDRS 4
/* One thread per distinct name up to this, shared by a run's loops: a few slow names must
 * not hold up the rest. */
#define RESOLVER_THREADS 64

double fanout_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void fanout_job_add(struct fanout_job *j, const char *key, const char *val)
{
	if (j->nparams >= (int)ELEMENTSOF(j->keys) - 1)
		return;
	j->keys[j->nparams] = key;
	j->vals[j->nparams] = val;
	j->nparams++;
	j->keys[j->nparams] = NULL;
	j->vals[j->nparams] = NULL;
}

void fanout_job_clear(struct fanout_job *j)
{
	for (int i = 0; i < FANOUT_MAX_QUERIES; i++) {
		PQclear(j->results[i]);
		j->results[i] = NULL;
	}
	if (j->conn) {
		PQfinish(j->conn);
		j->conn = NULL;
	}
	free(j->hostlist);
	j->hostlist = NULL;
}

/* ---- resolver: detached threads sharing a refcounted queue, asked as jobs start ---- */
struct request {
	char *name;
	char addrs[MAX_ADDRS * (INET6_ADDRSTRLEN + 1)];  /* comma-separated; "" when it failed */
	int naddrs;
	char error[160];
	bool local;                /* failed for want of a resource of ours */
	bool done;                 /* the fields above are set */
};

/* Every field is the lock's but pipe_r, which is the loop's. */
struct resolver {
	pthread_mutex_t lock;
	int refs;                  /* the loop's, and one for each thread still running */
	int running, busy;         /* threads started and not ended; those of them in getaddrinfo */
	int max_threads;
	bool abandoned;
	struct request *reqs;
	size_t n, size, next;      /* requests, room for them, the next to resolve */
	size_t *index;             /* names to requests: open addressing, id + 1 (0: free) */
	size_t index_size;         /* a power of two, more than twice n */
	int pipe_r, pipe_w;        /* a byte on the pipe: a request is done */
};

static void resolver_unref_locked(struct resolver *r)
{
	if (--r->refs > 0) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	pthread_mutex_unlock(&r->lock);
	pthread_mutex_destroy(&r->lock);
	for (size_t i = 0; i < r->n; i++)
		free(r->reqs[i].name);
	free(r->reqs);
	free(r->index);
	close(r->pipe_w);
	free(r);
}

/* Tells the loop, under the lock; a full pipe has told it already. */
static void resolver_notify_locked(struct resolver *r)
{
	char byte = 1;

	if (!r->abandoned && write(r->pipe_w, &byte, 1) < 0) {
		/* EAGAIN: bytes are waiting to be read, and the loop reads them all. */
	}
}

static void *resolver_thread(void *arg)
{
	struct resolver *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->abandoned && r->next < r->n) {
		size_t i = r->next++;
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *res = NULL;
		char name[256], addrs[sizeof(r->reqs[0].addrs)] = "", error[160] = "";
		bool local = false;
		int rc, n = 0;

		snprintf(name, sizeof(name), "%s", r->reqs[i].name);
		r->busy++;
		pthread_mutex_unlock(&r->lock);

		rc = getaddrinfo(name, NULL, &hints, &res);
		if (rc != 0) {
			local = rc == EAI_MEMORY || (rc == EAI_SYSTEM && (errno == EMFILE || errno == ENFILE));
			snprintf(error, sizeof(error), "%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		} else {
			for (struct addrinfo *a = res; a && n < MAX_ADDRS; a = a->ai_next) {
				char buf[INET6_ADDRSTRLEN];
				const void *src = a->ai_family == AF_INET
					? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
					: (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;

				if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
				    !inet_ntop(a->ai_family, src, buf, sizeof(buf)) || strstr(addrs, buf))
					continue;
				if (n++)
					strcat(addrs, ",");
				strcat(addrs, buf);
			}
			freeaddrinfo(res);
			if (n == 0)
				snprintf(error, sizeof(error), "no IPv4 or IPv6 address");
		}

		pthread_mutex_lock(&r->lock);
		r->busy--;
		memcpy(r->reqs[i].addrs, addrs, sizeof(addrs));
		memcpy(r->reqs[i].error, error, sizeof(error));
		r->reqs[i].naddrs = n;
		r->reqs[i].local = local;
		r->reqs[i].done = true;
		resolver_notify_locked(r);
	}
	r->running--;
	resolver_unref_locked(r);
	return NULL;
}

static bool needs_resolving(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (!host || !*host || host[0] == '/' || host[0] == '@')
		return false;
	return inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1;
}

/* NULL with errno set: no memory, or no pipe. */
static struct resolver *resolver_new(int max_threads)
{
	struct resolver *r = calloc(1, sizeof(*r));
	int fds[2], e;

	if (!r)
		return NULL;
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		e = errno;
		free(r);
		errno = e;
		return NULL;
	}
	r->max_threads = max_threads > 0 ? max_threads : 1;
	r->pipe_r = fds[0];
	r->pipe_w = fds[1];
	pthread_mutex_init(&r->lock, NULL);
	r->refs = 1;
	return r;
}

static size_t name_hash(const char *s)
{
	size_t h = 14695981039346656037ULL;  /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* The slot of name in the index: its request's, or the free one it would take. */
static size_t *index_slot(struct resolver *r, const char *name)
{
	size_t mask = r->index_size - 1, h = name_hash(name) & mask;

	while (r->index[h] && strcmp(r->reqs[r->index[h] - 1].name, name) != 0)
		h = (h + 1) & mask;
	return &r->index[h];
}

/* Room for one more request, under the lock: the array and an index never over half full. */
static int resolver_grow_locked(struct resolver *r)
{
	if (r->n == r->size) {
		size_t size = r->size ? 2 * r->size : 16;
		struct request *grown = realloc(r->reqs, size * sizeof(*grown));

		if (!grown)
			return -1;
		r->reqs = grown;
		r->size = size;
	}
	if (2 * (r->n + 1) >= r->index_size) {
		size_t size = r->index_size ? 2 * r->index_size : 64, *old = r->index;

		r->index = calloc(size, sizeof(*r->index));
		if (!r->index) {
			r->index = old;
			return -1;
		}
		r->index_size = size;
		for (size_t i = 0; i < r->n; i++)
			*index_slot(r, r->reqs[i].name) = i + 1;
		free(old);
	}
	return 0;
}

/* A thread for the queue, under the lock; none at all leaves the request failed. */
static void resolver_spawn_locked(struct resolver *r, size_t id)
{
	pthread_attr_t attr;
	sigset_t all, saved;
	pthread_t tid;
	int rc;

	/* A thread for each queued name while none is free, up to max_threads. */
	if (r->running >= r->max_threads || (size_t)(r->running - r->busy) >= r->n - r->next)
		return;
	/* The threads take no signal: SIGINT belongs to the main thread (the REPL
	 * cancels with it), SIGPIPE must never kill the process. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	rc = pthread_create(&tid, &attr, resolver_thread, r);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rc == 0) {
		r->running++;
		r->refs++;
	} else if (r->running == 0) {
		r->reqs[id].local = true;
		r->reqs[id].done = true;
		r->next = r->n;
		snprintf(r->reqs[id].error, sizeof(r->reqs[id].error), "cannot start a thread to resolve it: %s",
		         strerror(rc));
		resolver_notify_locked(r);
	}
}

/* The request for name, asked once for all jobs with that host (-1: out of memory). */
static long resolver_request(struct resolver *r, const char *name)
{
	size_t *slot, id;

	pthread_mutex_lock(&r->lock);
	if (resolver_grow_locked(r) < 0) {
		pthread_mutex_unlock(&r->lock);
		return -1;
	}
	slot = index_slot(r, name);
	if (*slot) {
		id = *slot - 1;
		pthread_mutex_unlock(&r->lock);
		return (long)id;
	}
	id = r->n;
	memset(&r->reqs[id], 0, sizeof(r->reqs[id]));
	r->reqs[id].name = strdup(name);
	if (!r->reqs[id].name) {
		pthread_mutex_unlock(&r->lock);
		return -1;
	}
	*slot = id + 1;
	r->n++;
	resolver_spawn_locked(r, id);
	pthread_mutex_unlock(&r->lock);
	return (long)id;
}

/* The loop lets go; threads still resolving finish alone and free the rest. */
static void resolver_stop(struct resolver *r)
{
	int fd;

	if (!r)
		return;
	/* Abandoned first: a thread writes to the pipe only under the lock and
	 * only while not abandoned, so the read end may then close. */
	pthread_mutex_lock(&r->lock);
	r->abandoned = true;
	fd = r->pipe_r;
	resolver_unref_locked(r);
	close(fd);
}

static const char *job_param(const struct fanout_job *j, const char *key)
{
	for (int i = 0; i < j->nparams; i++)
		if (strcmp(j->keys[i], key) == 0)
			return j->vals[i];
	return NULL;
}

/* ---- the loop ---- */
static void finish(struct fanout_job *j, enum fanout_outcome outcome, const char *fmt, ...) _printf_(3, 4);
static void finish(struct fanout_job *j, enum fanout_outcome outcome, const char *fmt, ...)
{
	j->outcome = outcome;
	j->state = S_DONE;
	sodium_memzero(j->secret, sizeof(j->secret));
	/* What the target took, not how busy this one loop was with the others
	 * (a SCRAM login costs the client milliseconds of CPU). */
	j->elapsed_ms = fanout_now_ms() - j->started - j->queued_ms;
	if (fmt) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(j->error, sizeof(j->error), fmt, ap);
		va_end(ap);
	}
	if (j->conn && !(outcome == FANOUT_OK && j->keep_conn)) {
		PQfinish(j->conn);
		j->conn = NULL;
	}
	free(j->hostlist);
	j->hostlist = NULL;
}

/* Our own shortage (no descriptor, no memory) says nothing of the target. */
static bool local_failure(const char *why)
{
	static const int errs[] = { EMFILE, ENFILE, ENOMEM, ENOBUFS };

	for (size_t i = 0; i < ELEMENTSOF(errs); i++)
		if (strstr(why, strerror(errs[i])))
			return true;
	return strstr(why, "out of memory") != NULL;
}

static void connect_failed(struct fanout_job *j)
{
	char why[512];

	dbreg_connect_error(j->conn, why, sizeof(why));
	finish(j, local_failure(why) ? FANOUT_LOCAL : FANOUT_CONNECT, "%s", why);
}

static void send_next(struct fanout_job *j)
{
	j->answered = j->next_query;
	if (j->next_query >= j->nqueries) {
		finish(j, FANOUT_OK, NULL);
		return;
	}
	const char *param = j->query_params[j->next_query];

	if (!(param ? PQsendQueryParams(j->conn, j->queries[j->next_query], 1, NULL, &param, NULL, NULL, 0)
	            : PQsendQuery(j->conn, j->queries[j->next_query]))) {
		connect_failed(j);
		return;
	}
	j->state = S_QUERYING;
}

static void start_connect(struct fanout_job *j)
{
	j->conn = PQconnectStartParams(j->keys, j->vals, 0);
	if (!j->conn) {
		finish(j, FANOUT_LOCAL, "out of memory");
		return;
	}
	dbreg_conn_quiet(j->conn);
	if (PQstatus(j->conn) == CONNECTION_BAD) {
		connect_failed(j);
		return;
	}
	j->state = S_CONNECTING;
	j->poll = PGRES_POLLING_WRITING;
}

/* TLS as libpq negotiated it on j's connection, from its own SSL session (no second
 * connection): in use or not, protocol, cipher, and the server certificate's notAfter. */
static void capture_tls(struct fanout_job *j)
{
	const char *protocol, *cipher;
	SSL *ssl;
	X509 *cert;

	j->tls_captured = true;
	j->tls_in_use = PQsslInUse(j->conn) == 1;
	j->tls_protocol[0] = j->tls_cipher[0] = '\0';
	j->cert_not_after = -1;
	if (!j->tls_in_use)
		return;
	protocol = PQsslAttribute(j->conn, "protocol");
	cipher = PQsslAttribute(j->conn, "cipher");
	snprintf(j->tls_protocol, sizeof(j->tls_protocol), "%s", protocol ? protocol : "");
	snprintf(j->tls_cipher, sizeof(j->tls_cipher), "%s", cipher ? cipher : "");
	ssl = PQsslStruct(j->conn, "OpenSSL");
	cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	if (cert) {
		const ASN1_TIME *t = X509_get0_notAfter(cert);
		struct tm tm;

		if (t && ASN1_TIME_to_tm(t, &tm) == 1)
			j->cert_not_after = (double)timegm(&tm);
		X509_free(cert);
	}
}

static void advance_connect(struct fanout_job *j)
{
	j->poll = PQconnectPoll(j->conn);
	if (j->poll == PGRES_POLLING_FAILED) {
		connect_failed(j);
	} else if (j->poll == PGRES_POLLING_OK) {
		j->logged_in = true;
		j->server_version = PQserverVersion(j->conn);
		if (j->want_tls)
			capture_tls(j);
		PQsetnonblocking(j->conn, 1);
		send_next(j);
	}
}

static void advance_query(struct fanout_job *j, short revents)
{
	if ((revents & POLLOUT) && PQflush(j->conn) < 0) {
		connect_failed(j);
		return;
	}
	if (!(revents & (POLLIN | POLLERR | POLLHUP)))
		return;
	if (!PQconsumeInput(j->conn)) {
		connect_failed(j);
		return;
	}
	while (!PQisBusy(j->conn)) {
		PGresult *res = PQgetResult(j->conn);

		if (!res) {
			j->next_query++;
			send_next(j);
			return;
		}
		/* Keep the last result of the statement (there is one per query). */
		PQclear(j->results[j->next_query]);
		j->results[j->next_query] = res;
	}
}

/* Descriptors in use now (/proc/self/fd, else a probe of the low ones). */
static size_t fds_in_use(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;

	if (d) {
		struct dirent *e;

		while ((e = readdir(d)))
			n += e->d_name[0] != '.';
		closedir(d);
		return n > 0 ? n - 1 : 0;  /* less the directory's own */
	}
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
}

/* Room for every connection we may open, and a few more: libpq opens the
 * password file and TLS files beside the socket, the resolver a pipe. */
#define FD_RESERVE 12

size_t fanout_jobs_allowed(size_t want, long *ret_limit)
{
	struct rlimit rl;
	size_t used, room;

	if (ret_limit)
		*ret_limit = -1;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return want ? want : 1;
	used = fds_in_use();
	if (rl.rlim_cur < (rlim_t)(used + want + FD_RESERVE)) {
		rlim_t need = (rlim_t)(used + want + FD_RESERVE);

		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (ret_limit)
		*ret_limit = rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)(used + want + FD_RESERVE))
		return want ? want : 1;
	room = (size_t)rl.rlim_cur > used + FD_RESERVE ? (size_t)rl.rlim_cur - used - FD_RESERVE : 0;
	return room > 0 ? room : 1;
}

static int use_address(struct fanout_job *j, const struct request *req)
{
	/* libpq needs host and hostaddr lists of the same length; the host name
	 * stays for TLS verification and .pgpass. */
	const char *host = job_param(j, "host");
	size_t len = strlen(host) + 1, o = 0;

	j->hostlist = malloc((size_t)req->naddrs * len);
	if (!j->hostlist)
		return -1;
	for (int i = 0; i < req->naddrs; i++) {
		if (i)
			j->hostlist[o++] = ',';
		memcpy(j->hostlist + o, host, len - 1);
		o += len - 1;
	}
	j->hostlist[o] = '\0';
	snprintf(j->hostaddr, sizeof(j->hostaddr), "%s", req->addrs);
	for (int i = 0; i < j->nparams; i++)
		if (strcmp(j->keys[i], "host") == 0)
			j->vals[i] = j->hostlist;
	fanout_job_add(j, "hostaddr", j->hostaddr);
	return 0;
}

static const char *phase(const struct fanout_job *j)
{
	switch (j->state) {
	case S_RESOLVING: return "resolving the host name";
	case S_CONNECTING: return "connecting";
	default: return "waiting for the query";
	}
}

/* Moves a live job along as far as it goes without a socket event. */
static void step(struct fanout_job *j, struct resolver *res)
{
	if (j->state == S_RESOLVING) {
		if (j->resolve_id < 0) {
			start_connect(j);
		} else {
			struct request rq;

			pthread_mutex_lock(&res->lock);
			rq = res->reqs[j->resolve_id];
			pthread_mutex_unlock(&res->lock);
			if (!rq.done)
				return;
			if (rq.naddrs == 0) {
				finish(j, rq.local ? FANOUT_LOCAL : FANOUT_NO_RESOLVE, "could not resolve host name \"%s\": %s",
				       job_param(j, "host"), rq.error);
				return;
			}
			if (use_address(j, &rq) < 0) {
				finish(j, FANOUT_LOCAL, "out of memory");
				return;
			}
			start_connect(j);
		}
	}
	/* No socket yet, or libpq dropped one to try the next address. */
	while (j->state == S_CONNECTING && PQsocket(j->conn) < 0)
		advance_connect(j);
}

/* What the loops of one run share: the source, and how far it has gone.  With more than
 * one loop, the source is called under the lock. */
struct shared {
	pthread_mutex_t lock;
	pthread_cond_t ended;        /* signalled as a loop ends */
	const struct fanout_source *src;
	const struct fanout_opts *opts;
	bool threaded;
	bool exhausted;              /* the source has given its last job */
	bool failed;                 /* a loop failed: error says why, and every loop stops */
	size_t done;                 /* jobs ended */
	int loops;                   /* loops still running */
	int resolver_threads;        /* each loop's share of RESOLVER_THREADS */
	double t0;
	char error[256];
};

static void shared_lock(struct shared *sh)
{
	if (sh->threaded)
		pthread_mutex_lock(&sh->lock);
}

static void shared_unlock(struct shared *sh)
{
	if (sh->threaded)
		pthread_mutex_unlock(&sh->lock);
}

/* Hands an ended job back to its source, under the lock. */
static void hand_back_locked(struct shared *sh, struct fanout_job *j)
{
	if (sh->src->done)
		sh->src->done(j, sh->src->userdata);
	sh->done++;
}

static void hand_back(struct shared *sh, struct fanout_job *j)
{
	shared_lock(sh);
	hand_back_locked(sh, j);
	shared_unlock(sh);
}

static bool stopping(struct shared *sh)
{
	bool stop;

	if (sh->opts->cancel && *sh->opts->cancel)
		return true;
	shared_lock(sh);
	stop = sh->failed;
	shared_unlock(sh);
	return stop;
}

static void fail_run(struct shared *sh, const char *why)
{
	shared_lock(sh);
	if (!sh->failed)
		snprintf(sh->error, sizeof(sh->error), "%s", why);
	sh->failed = true;
	shared_unlock(sh);
}

/* The source's next job, under the lock (NULL: it has no more). */
static struct fanout_job *next_locked(struct shared *sh)
{
	struct fanout_job *j = sh->exhausted ? NULL : sh->src->next(sh->src->userdata);

	if (!j)
		sh->exhausted = true;
	return j;
}

/* The next job to start, prepared (NULL: none left).  A job the source gives as
 * FANOUT_SKIPPED, or that prepare refuses, ends here. */
static struct fanout_job *take(struct shared *sh)
{
	struct fanout_job *j;

	shared_lock(sh);
	while ((j = next_locked(sh))) {
		j->resolve_id = -1;
		j->started = fanout_now_ms();
		if (j->outcome != FANOUT_SKIPPED) {
			j->state = S_RESOLVING;
			if (!sh->opts->prepare || sh->opts->prepare(j, sh->opts->userdata) >= 0)
				break;
			j->outcome = FANOUT_SKIPPED;
		}
		j->state = S_DONE;
		sodium_memzero(j->secret, sizeof(j->secret));
		hand_back_locked(sh, j);
	}
	shared_unlock(sh);
	return j;
}

/* A stopped run: every job the source has left ends as outcome, unstarted. */
static void drain(struct shared *sh, enum fanout_outcome outcome, const char *why)
{
	struct fanout_job *j;

	shared_lock(sh);
	while ((j = next_locked(sh))) {
		if (j->outcome == FANOUT_SKIPPED) {
			j->state = S_DONE;
		} else {
			j->started = fanout_now_ms();
			finish(j, outcome, "%s", why);
		}
		hand_back_locked(sh, j);
	}
	shared_unlock(sh);
}

static size_t jobs_done(struct shared *sh)
{
	size_t done;

	shared_lock(sh);
	done = sh->done;
	shared_unlock(sh);
	return done;
}

/* One event loop: up to slots jobs at once, taken from the shared source until it has no
 * more; the first loop reports progress. */
static void loop_run(struct shared *sh, size_t slots, bool reports)
{
	const struct fanout_opts *opts = sh->opts;
	struct pollfd *pfd = calloc(slots + 1, sizeof(*pfd));
	struct fanout_job **polled = calloc(slots + 1, sizeof(*polled)), **live = calloc(slots, sizeof(*live));
	struct resolver *res = NULL;
	double last_progress = sh->t0;
	size_t nlive = 0;
	bool more = true;

	if (!pfd || !polled || !live) {
		fail_run(sh, "out of memory");
		drain(sh, FANOUT_LOCAL, "out of memory");
		more = false;
	}
	while (more || nlive > 0) {
		double now = fanout_now_ms(), wait = 250, t_ready;
		int nfds = 0, rc;

		if (stopping(sh)) {
			bool cancelled = opts->cancel && *opts->cancel;
			enum fanout_outcome outcome = cancelled ? FANOUT_CANCELLED : FANOUT_LOCAL;
			char why[256];

			shared_lock(sh);
			snprintf(why, sizeof(why), "%s", cancelled ? "cancelled" : sh->error);
			shared_unlock(sh);
			for (size_t k = 0; k < nlive; k++) {
				if (live[k]->state != S_DONE)  /* one that ended in the last round stays as it ended */
					finish(live[k], outcome, "%s", why);
				hand_back(sh, live[k]);
			}
			nlive = 0;
			drain(sh, outcome, why);
			break;
		}
		while (more && nlive < slots) {
			struct fanout_job *j = take(sh);
			const char *host;
			long id;

			if (!j) {
				more = false;
				break;
			}
			host = job_param(j, "host");
			if (needs_resolving(host)) {
				if (!res && !(res = resolver_new(sh->resolver_threads))) {
					finish(j, FANOUT_LOCAL, "cannot start resolving host names: %s", strerror(errno));
					hand_back(sh, j);
					continue;
				}
				if ((id = resolver_request(res, host)) < 0) {
					finish(j, FANOUT_LOCAL, "out of memory");
					hand_back(sh, j);
					continue;
				}
				j->resolve_id = (int)id;
			}
			live[nlive++] = j;
		}
		if (res)
			pfd[nfds++] = (struct pollfd){ .fd = res->pipe_r, .events = POLLIN };
		for (size_t k = 0; k < nlive;) {
			struct fanout_job *j = live[k];
			double left = j->started + opts->timeout_ms - now;

			if (j->state != S_DONE && left <= 0)
				finish(j, FANOUT_TIMEOUT, "no answer within %d ms (%s)", opts->timeout_ms, phase(j));
			if (j->state != S_DONE)
				step(j, res);
			if (j->state == S_DONE) {
				live[k] = live[--nlive];
				hand_back(sh, j);
				continue;
			}
			k++;
			if (left < wait)
				wait = left;
			if (j->state == S_RESOLVING)
				continue;
			polled[nfds] = j;
			pfd[nfds].fd = PQsocket(j->conn);
			if (j->state == S_CONNECTING)
				pfd[nfds].events = j->poll == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			else
				pfd[nfds].events = POLLIN | (PQflush(j->conn) == 1 ? POLLOUT : 0);
			pfd[nfds].revents = 0;
			nfds++;
		}
		if (more && nlive < slots)
			continue;  /* slots freed: fill them before waiting */
		if (nlive == 0)
			continue;  /* the source is done, or the next round stops */
		if (reports && opts->progress && now - last_progress >= 200) {
			opts->progress(jobs_done(sh), sh->src->total, now - sh->t0, opts->progress_userdata);
			last_progress = now;
		}
		rc = poll(pfd, (nfds_t)nfds, (int)(wait < 1 ? 1 : wait + 1));
		t_ready = fanout_now_ms();
		if (rc < 0) {
			char why[128];

			if (errno == EINTR)
				continue;
			snprintf(why, sizeof(why), "poll: %s", strerror(errno));
			fail_run(sh, why);
			continue;
		}
		for (int k = 0; k < nfds; k++) {
			struct fanout_job *j;

			if (!pfd[k].revents)
				continue;
			if (res && k == 0) {
				char buf[256];

				while (read(res->pipe_r, buf, sizeof(buf)) > 0)
					;
				continue;
			}
			j = polled[k];
			j->queued_ms += fanout_now_ms() - t_ready;
			if (j->state == S_CONNECTING)
				advance_connect(j);
			else if (j->state == S_QUERYING)
				advance_query(j, pfd[k].revents);
		}
	}
	resolver_stop(res);
	free(pfd);
	free(polled);
	free(live);
}

struct loop_thread {
	struct shared *sh;
	size_t slots;
	pthread_t tid;
	bool started;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	OSSL_LIB_CTX *libctx;      /* the loop's own (NULL: the process's) */
#endif
};

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
/* An OpenSSL library context for a loop thread, its default while the loop runs: every
 * digest libpq's SCRAM fetches (thousands a login) is then looked up in this context's
 * method store, under its lock, not the process's, which the loops would otherwise all
 * take.  It reads the system's OpenSSL configuration as the process's context did (its
 * providers and properties); made in the main thread, before the loops start (the
 * configuration modules are the process's).  NULL (the process's context, as before)
 * in FIPS mode or when the configuration does not load.  Every libpq connection of the
 * loop is closed before it is freed: a loop thread keeps no connection (keep_conn). */
static OSSL_LIB_CTX *loop_libctx(void)
{
	OSSL_LIB_CTX *libctx;
	char *conf;

	if (EVP_default_properties_is_fips_enabled(NULL))
		return NULL;
	libctx = OSSL_LIB_CTX_new();
	conf = CONF_get1_default_config_file();
	if (libctx && conf && access(conf, R_OK) == 0 && OSSL_LIB_CTX_load_config(libctx, conf) != 1) {
		OSSL_LIB_CTX_free(libctx);
		libctx = NULL;
	}
	OPENSSL_free(conf);
	ERR_clear_error();
	return libctx;
}
#endif

static void *loop_thread_main(void *arg)
{
	struct loop_thread *t = arg;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	OSSL_LIB_CTX *saved = t->libctx ? OSSL_LIB_CTX_set0_default(t->libctx) : NULL;
#endif

	loop_run(t->sh, t->slots, false);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (t->libctx)
		OSSL_LIB_CTX_set0_default(saved);
#endif
	pthread_mutex_lock(&t->sh->lock);
	t->sh->loops--;
	pthread_cond_signal(&t->sh->ended);
	pthread_mutex_unlock(&t->sh->lock);
	return NULL;
}

int fanout_run_source(const struct fanout_source *src, const struct fanout_opts *opts, char *errbuf, size_t errsize)
{
	size_t max_jobs = opts->jobs > 0 ? (size_t)opts->jobs : 64, nthreads, slots0, extra, allowed;
	struct loop_thread *threads = NULL;
	struct shared sh = { .src = src, .opts = opts, .t0 = fanout_now_ms() };

	if (max_jobs > src->total)
		max_jobs = src->total ? src->total : 1;
	if (opts->ret_wanted)
		*opts->ret_wanted = max_jobs;
	nthreads = opts->threads > 0 ? (size_t)opts->threads : 1;
	if (nthreads > max_jobs)
		nthreads = max_jobs;
	if (nthreads > FANOUT_MAX_THREADS)
		nthreads = FANOUT_MAX_THREADS;
	/* Each loop but the first may open a resolver's pipe beyond FD_RESERVE. */
	extra = 2 * (nthreads - 1);
	allowed = fanout_jobs_allowed(max_jobs + extra, opts->ret_fd_limit);
	max_jobs = allowed > extra + 1 ? allowed - extra : 1;
	if (opts->ret_used)
		*opts->ret_used = max_jobs;
	if (nthreads > max_jobs)
		nthreads = max_jobs;
	sh.resolver_threads = RESOLVER_THREADS / (int)nthreads;
	slots0 = max_jobs;
	if (nthreads > 1)
		threads = calloc(nthreads - 1, sizeof(*threads));
	if (threads) {
		sigset_t all, saved;

		sh.threaded = true;
		pthread_mutex_init(&sh.lock, NULL);
		pthread_cond_init(&sh.ended, NULL);
		/* Each loop its share of the slots; the main loop also keeps any a thread that
		 * did not start would have had.  The loops take no signal: they are the main
		 * thread's (the REPL cancels with SIGINT). */
		slots0 = max_jobs / nthreads + max_jobs % nthreads;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &saved);
		for (size_t t = 0; t < nthreads - 1; t++) {
			threads[t] = (struct loop_thread){ .sh = &sh, .slots = max_jobs / nthreads };
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
			threads[t].libctx = loop_libctx();
#endif
			pthread_mutex_lock(&sh.lock);
			sh.loops++;
			pthread_mutex_unlock(&sh.lock);
			threads[t].started = pthread_create(&threads[t].tid, NULL, loop_thread_main, &threads[t]) == 0;
			if (!threads[t].started) {
				pthread_mutex_lock(&sh.lock);
				sh.loops--;
				pthread_mutex_unlock(&sh.lock);
				slots0 += threads[t].slots;
			}
		}
		pthread_sigmask(SIG_SETMASK, &saved, NULL);
	}
	loop_run(&sh, slots0, true);
	if (threads) {
		/* The others finish their last jobs; progress goes on meanwhile. */
		pthread_mutex_lock(&sh.lock);
		while (sh.loops > 0) {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 200 * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			if (pthread_cond_timedwait(&sh.ended, &sh.lock, &until) == ETIMEDOUT && opts->progress) {
				pthread_mutex_unlock(&sh.lock);
				opts->progress(jobs_done(&sh), src->total, fanout_now_ms() - sh.t0, opts->progress_userdata);
				pthread_mutex_lock(&sh.lock);
			}
		}
		pthread_mutex_unlock(&sh.lock);
		for (size_t t = 0; t < nthreads - 1; t++) {
			if (threads[t].started)
				pthread_join(threads[t].tid, NULL);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
			OSSL_LIB_CTX_free(threads[t].libctx);
#endif
		}
		free(threads);
		pthread_cond_destroy(&sh.ended);
		pthread_mutex_destroy(&sh.lock);
	}
	if (opts->progress)
		opts->progress(sh.done, src->total, fanout_now_ms() - sh.t0, opts->progress_userdata);
	if (sh.failed) {
		snprintf(errbuf, errsize, "%s", sh.error);
		return -1;
	}
	return 0;
}

static struct fanout_job *array_next(void *userdata)
{
	struct fanout_array *a = userdata;

	return a->next < a->n ? &a->jobs[a->next++] : NULL;
}

struct fanout_source fanout_array_source(struct fanout_array *a, struct fanout_job *jobs, size_t n)
{
	*a = (struct fanout_array){ jobs, n, 0 };
	return (struct fanout_source){ .next = array_next, .userdata = a, .total = n };
}

int fanout_run(struct fanout_job *jobs, size_t n, const struct fanout_opts *opts, char *errbuf, size_t errsize)
{
	struct fanout_array a;
	struct fanout_source src = fanout_array_source(&a, jobs, n);

	return fanout_run_source(&src, opts, errbuf, errsize);
}
