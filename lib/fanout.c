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
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "fanout.h"
#include "internal.h"

enum { S_PENDING, S_RESOLVING, S_CONNECTING, S_QUERYING, S_DONE };
#define MAX_ADDRS 4
/* One thread per distinct name up to this: a few slow names must not hold up the rest. */
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

/* ---- resolver: detached threads sharing a refcounted queue ---- */
struct request {
	char *name;
	char addrs[MAX_ADDRS * (INET6_ADDRSTRLEN + 1)];  /* comma-separated; "" when it failed */
	int naddrs;
	char error[160];
	bool local;                /* failed for want of a resource of ours */
	bool done;                 /* set by the loop once the pipe said so */
};

struct resolver {
	pthread_mutex_t lock;
	int refs;
	bool abandoned;
	struct request *reqs;
	size_t n, next;
	int pipe_r, pipe_w;
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
	close(r->pipe_w);
	free(r);
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
		memcpy(r->reqs[i].addrs, addrs, sizeof(addrs));
		memcpy(r->reqs[i].error, error, sizeof(error));
		r->reqs[i].naddrs = n;
		r->reqs[i].local = local;
		if (!r->abandoned) {
			int id = (int)i;

			if (write(r->pipe_w, &id, sizeof(id)) < 0) {
				/* The pipe holds ints for every request; it cannot fill. */
			}
		}
	}
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

static const char *job_param(const struct fanout_job *j, const char *key)
{
	for (int i = 0; i < j->nparams; i++)
		if (strcmp(j->keys[i], key) == 0)
			return j->vals[i];
	return NULL;
}

/* Queues each distinct name once; jobs remember their request. */
static int resolver_start(struct fanout_job *jobs, size_t n, struct resolver **ret)
{
	struct resolver *r;
	size_t cap = 0, nthreads;
	sigset_t all, saved;
	int fds[2];

	for (size_t i = 0; i < n; i++)
		jobs[i].resolve_id = -1;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *host = job_param(&jobs[i], "host");
		size_t k;

		if (!needs_resolving(host))
			continue;
		for (k = 0; k < r->n; k++)  /* registries hold few distinct host names */
			if (strcmp(r->reqs[k].name, host) == 0)
				break;
		if (k == r->n) {
			if (r->n == cap) {
				struct request *grown;

				cap = cap ? 2 * cap : 16;
				grown = realloc(r->reqs, cap * sizeof(*grown));
				if (!grown)
					goto fail;
				r->reqs = grown;
			}
			memset(&r->reqs[k], 0, sizeof(r->reqs[k]));
			r->reqs[k].name = strdup(host);
			if (!r->reqs[k].name)
				goto fail;
			r->n++;
		}
		jobs[i].resolve_id = (int)k;
	}
	if (r->n == 0) {
		free(r);
		*ret = NULL;
		return 0;
	}
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		goto fail;
	r->pipe_r = fds[0];
	r->pipe_w = fds[1];
	pthread_mutex_init(&r->lock, NULL);
	r->refs = 1;
	nthreads = r->n < RESOLVER_THREADS ? r->n : RESOLVER_THREADS;
	/* The threads take no signal: SIGINT belongs to the main thread (the REPL
	 * cancels with it), SIGPIPE must never kill the process. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	for (size_t t = 0; t < nthreads; t++) {
		pthread_attr_t attr;
		pthread_t tid;

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		pthread_mutex_lock(&r->lock);
		r->refs++;
		pthread_mutex_unlock(&r->lock);
		if (pthread_create(&tid, &attr, resolver_thread, r) != 0) {
			pthread_mutex_lock(&r->lock);
			r->refs--;
			pthread_mutex_unlock(&r->lock);
		}
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	*ret = r;
	return 0;
fail:
	for (size_t i = 0; i < r->n; i++)
		free(r->reqs[i].name);
	free(r->reqs);
	free(r);
	return -1;
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
		} else if (res->reqs[j->resolve_id].done) {
			const struct request *rq = &res->reqs[j->resolve_id];

			if (rq->naddrs == 0) {
				finish(j, rq->local ? FANOUT_LOCAL : FANOUT_NO_RESOLVE, "could not resolve host name \"%s\": %s", rq->name, rq->error);
				return;
			}
			if (use_address(j, rq) < 0) {
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

int fanout_run(struct fanout_job *jobs, size_t n, const struct fanout_opts *opts, char *errbuf, size_t errsize)
{
	size_t max_jobs = opts->jobs > 0 ? (size_t)opts->jobs : 64;
	struct pollfd *pfd = NULL;
	struct fanout_job **polled = NULL, **live = NULL;
	struct resolver *res = NULL;
	size_t next = 0, done = 0, nlive = 0;
	double last_progress = fanout_now_ms(), t0 = last_progress;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		jobs[i].state = jobs[i].outcome == FANOUT_SKIPPED ? S_DONE : S_PENDING;
		if (jobs[i].state == S_DONE)
			done++;
	}
	if (max_jobs > n)
		max_jobs = n ? n : 1;
	if (opts->ret_wanted)
		*opts->ret_wanted = max_jobs;
	max_jobs = fanout_jobs_allowed(max_jobs, opts->ret_fd_limit);
	if (opts->ret_used)
		*opts->ret_used = max_jobs;
	pfd = calloc(max_jobs + 1, sizeof(*pfd));
	polled = calloc(max_jobs + 1, sizeof(*polled));
	live = calloc(max_jobs, sizeof(*live));
	if (!pfd || !polled || !live || resolver_start(jobs, n, &res) < 0) {
		snprintf(errbuf, errsize, "out of memory");
		r = -1;
		goto out;
	}
	while (done < n) {
		double now = fanout_now_ms(), wait = 250, t_ready;
		int nfds = 0, rc;

		if (opts->cancel && *opts->cancel) {
			for (size_t i = 0; i < n; i++)
				if (jobs[i].state != S_DONE) {
					if (jobs[i].state == S_PENDING)
						jobs[i].started = now;
					finish(&jobs[i], FANOUT_CANCELLED, "cancelled");
				}
			done = n;
			break;
		}
		while (nlive < max_jobs && next < n) {
			struct fanout_job *j = &jobs[next++];

			if (j->state != S_PENDING)
				continue;
			j->started = fanout_now_ms();
			j->state = S_RESOLVING;
			if (opts->prepare && opts->prepare(j, opts->userdata) < 0) {
				j->outcome = FANOUT_SKIPPED;
				j->state = S_DONE;
				sodium_memzero(j->secret, sizeof(j->secret));
				done++;
				continue;
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
				done++;
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
		if (done >= n)
			break;
		if (nlive < max_jobs && next < n)
			continue;  /* slots freed: fill them before waiting */
		if (opts->progress && now - last_progress >= 200) {
			opts->progress(done, n, now - t0, opts->progress_userdata);
			last_progress = now;
		}
		rc = poll(pfd, (nfds_t)nfds, (int)(wait < 1 ? 1 : wait + 1));
		t_ready = fanout_now_ms();
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			snprintf(errbuf, errsize, "poll: %s", strerror(errno));
			r = -1;
			break;
		}
		for (int k = 0; k < nfds; k++) {
			struct fanout_job *j;

			if (!pfd[k].revents)
				continue;
			if (res && k == 0) {
				int id;

				pthread_mutex_lock(&res->lock);
				while (read(res->pipe_r, &id, sizeof(id)) == sizeof(id))
					if (id >= 0 && (size_t)id < res->n)
						res->reqs[id].done = true;
				pthread_mutex_unlock(&res->lock);
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
	if (opts->progress)
		opts->progress(done, n, fanout_now_ms() - t0, opts->progress_userdata);
out:
	resolver_stop(res);
	free(pfd);
	free(polled);
	free(live);
	return r;
}
