/* json-pipe.c — the rows of a compact JSON array made and dumped by helper threads and
 * written in their order.
 *
 * The reader (the main thread) copies each row's texts into a batch and hands full batches
 * over; DUMPERS threads each take a whole batch, make each row's object through the
 * caller's ops (with a cache of their own: no jansson value is shared between threads) and
 * dump it (jansson's json_dumpb: most of a row's cost) into the batch's text; the thread
 * that finishes the batch due next writes it, and any done after it, to the stream under
 * the lock.  At most IN_FLIGHT batches are made and not yet written, so what it holds does
 * not grow with the rows.  The helpers block every signal but SIGPIPE, so that a write to a
 * closed pipe ends the process as the reader's own write would (where SIGPIPE is ignored,
 * the first failed write stops the writing). */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json-pipe.h"

#define BATCH 64
#define IN_FLIGHT 8
#define DUMPERS 2

#define NO_VALUE UINT32_MAX

struct batch {
	size_t n;                  /* rows */
	unsigned long seq;
	uint32_t *offs;            /* BATCH x ncols: each value's place in values (NO_VALUE: NULL) */
	char *values;              /* the values, each NUL-terminated */
	size_t values_len, values_size;
	char *text;                /* the rows as JSON, after their commas */
	size_t len;
	struct batch *next;        /* in the queue to dump, then among the dumped */
};

struct json_pipe {
	FILE *f;
	size_t flags;
	size_t ncols;
	const struct json_pipe_ops *ops;
	void *userdata;
	pthread_mutex_t lock;
	pthread_cond_t work, room;
	pthread_t threads[DUMPERS];
	size_t nthreads;
	struct batch *todo, *todo_tail;   /* to dump, in order */
	struct batch *dumped;             /* dumped, not yet due */
	struct batch *filling;            /* the reader's */
	unsigned long next_seq, due;      /* the next batch made; the next one to write */
	size_t in_flight;
	bool closing, write_failed;
};

/* n bytes at *len of the buffer *buf of *size, grown as needed. */
static void append(char **buf, size_t *len, size_t *size, const char *s, size_t n)
{
	if (*len + n + 1 > *size) {
		size_t grown = (*len + n + 1) * 2;
		char *t = realloc(*buf, grown);

		if (!t)
			abort();
		*buf = t;
		*size = grown;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
}

static void batch_free(struct batch *b)
{
	free(b->offs);
	free(b->values);
	free(b->text);
	free(b);
}

/* A batch's rows as text, each after a comma but the very first of the array. */
static void dump(struct json_pipe *p, void *cache, struct batch *b)
{
	const char *values[JSON_PIPE_MAX_COLUMNS];
	size_t size = 0;
	char row[2048];

	for (size_t i = 0; i < b->n; i++) {
		json_t *o;
		size_t need;

		for (size_t k = 0; k < p->ncols; k++) {
			uint32_t at = b->offs[i * p->ncols + k];

			values[k] = at == NO_VALUE ? NULL : b->values + at;
		}
		o = p->ops->row(cache, values, p->userdata);
		need = o ? json_dumpb(o, row, sizeof(row), p->flags) : 0;

		if (b->seq > 0 || i > 0)
			append(&b->text, &b->len, &size, ",", 1);
		if (need == 0) {
			append(&b->text, &b->len, &size, "{}", 2);
		} else if (need <= sizeof(row)) {
			append(&b->text, &b->len, &size, row, need);
		} else {
			char *big = malloc(need);

			if (!big)
				abort();
			need = json_dumpb(o, big, need, p->flags);
			append(&b->text, &b->len, &size, big, need);
			free(big);
		}
	}
}

/* Writes, under the lock, every dumped batch that is due. */
static void write_due(struct json_pipe *p)
{
	for (;;) {
		struct batch **at = &p->dumped, *b;

		while (*at && (*at)->seq != p->due)
			at = &(*at)->next;
		b = *at;
		if (!b)
			return;
		*at = b->next;
		if (b->len && !p->write_failed && fwrite(b->text, 1, b->len, p->f) != b->len)
			p->write_failed = true;
		batch_free(b);
		p->due++;
		p->in_flight--;
		pthread_cond_broadcast(&p->room);
	}
}

static void *dumper(void *userdata)
{
	struct json_pipe *p = userdata;
	void *cache = p->ops->cache_new(p->userdata);

	if (!cache)
		abort();
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct batch *b = p->todo;

		if (!b) {
			if (p->closing)
				break;
			pthread_cond_wait(&p->work, &p->lock);
			continue;
		}
		p->todo = b->next;
		if (!p->todo)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->lock);
		dump(p, cache, b);
		pthread_mutex_lock(&p->lock);
		b->next = p->dumped;
		p->dumped = b;
		write_due(p);
	}
	pthread_mutex_unlock(&p->lock);
	p->ops->cache_free(cache);
	return NULL;
}

/* The CPUs this process may run on (its affinity mask, as taskset sets it). */
static long usable_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		return CPU_COUNT(&set);
	return sysconf(_SC_NPROCESSORS_ONLN);
}

struct json_pipe *json_pipe_new(FILE *f, size_t flags, size_t ncols, const struct json_pipe_ops *ops,
                                void *userdata)
{
	long cpus = usable_cpus();
	struct json_pipe *p;
	sigset_t all, saved;

	/* One CPU: the reader would only wait for its helpers. */
	if (cpus < 2 || ncols > JSON_PIPE_MAX_COLUMNS)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->f = f;
	p->flags = flags;
	p->ncols = ncols;
	p->ops = ops;
	p->userdata = userdata;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->room, NULL);
	json_object_seed(0);  /* the hash seed set here, once, not by two helpers at once */
	sigfillset(&all);
	sigdelset(&all, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	for (size_t i = 0; i < DUMPERS && i < (size_t)cpus; i++)
		if (pthread_create(&p->threads[p->nthreads], NULL, dumper, p) == 0)
			p->nthreads++;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (p->nthreads == 0) {
		pthread_cond_destroy(&p->room);
		pthread_cond_destroy(&p->work);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return NULL;
	}
	return p;
}

/* The reader's batch, full or the last, to the dumpers; waits while too many are out. */
static void hand_over(struct json_pipe *p)
{
	struct batch *b = p->filling;

	if (!b)
		return;
	p->filling = NULL;
	pthread_mutex_lock(&p->lock);
	while (p->in_flight >= IN_FLIGHT)
		pthread_cond_wait(&p->room, &p->lock);
	p->in_flight++;
	if (p->todo_tail)
		p->todo_tail->next = b;
	else
		p->todo = b;
	p->todo_tail = b;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

void json_pipe_push(struct json_pipe *p, const char *const *values)
{
	struct batch *b = p->filling;

	if (!b) {
		b = p->filling = calloc(1, sizeof(*b));
		if (!b || !(b->offs = malloc(BATCH * (p->ncols ? p->ncols : 1) * sizeof(*b->offs))))
			abort();
		b->seq = p->next_seq++;
	}
	for (size_t k = 0; k < p->ncols; k++) {
		uint32_t *at = &b->offs[b->n * p->ncols + k];

		if (!values[k]) {
			*at = NO_VALUE;
			continue;
		}
		if (b->values_len >= NO_VALUE - 1)
			abort();
		*at = (uint32_t)b->values_len;
		append(&b->values, &b->values_len, &b->values_size, values[k], strlen(values[k]) + 1);
	}
	if (++b->n == BATCH)
		hand_over(p);
}

void json_pipe_end(struct json_pipe *p)
{
	if (!p)
		return;
	hand_over(p);
	pthread_mutex_lock(&p->lock);
	p->closing = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* Every batch was dumped and written: the last dumper out wrote what was due. */
	pthread_cond_destroy(&p->room);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
