/* json-pipe.h — the rows of a compact JSON array dumped by helper threads, written to the
 * stream in their order (json-pipe.c). */
#pragma once

#include <stdio.h>

#include <jansson.h>

#define JSON_PIPE_MAX_COLUMNS 64

/* How a helper makes a row's object from its texts: cache_new and cache_free once a
 * helper, row for each row (the object stays the cache's; it is dumped before the next). */
struct json_pipe_ops {
	void *(*cache_new)(void *userdata);
	void (*cache_free)(void *cache);
	json_t *(*row)(void *cache, const char *const *values, void *userdata);
};

struct json_pipe;
/* A pipe for the rows of an array whose first row is the next one pushed (the rows after it
 * go after a comma), ncols texts each, made through ops and dumped with json_dumpb's flags;
 * NULL when there is one CPU or no helper could start: write the rows yourself.  Nothing
 * else may write to f until json_pipe_end; ops and userdata are read by the helpers. */
struct json_pipe *json_pipe_new(FILE *f, size_t flags, size_t ncols, const struct json_pipe_ops *ops,
                                void *userdata);
/* The next row: its ncols texts (NULL: null), copied. */
void json_pipe_push(struct json_pipe *p, const char *const *values);
/* Every row pushed is written; the helpers are joined and the pipe freed (NULL: nothing). */
void json_pipe_end(struct json_pipe *p);
