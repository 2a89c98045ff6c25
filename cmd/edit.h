/* edit.h — libedit, loaded when the REPL's prompt first needs it, not at every start. */
#ifndef DBREG_EDIT_H
#define DBREG_EDIT_H

#include <stdbool.h>

#include <editline/readline.h>

/* What the REPL uses of libedit's readline interface: its functions, and its variables
 * through pointers. */
struct edit_api {
	__typeof__(rl_callback_handler_install) *callback_handler_install;
	__typeof__(rl_callback_read_char) *callback_read_char;
	__typeof__(rl_callback_handler_remove) *callback_handler_remove;
	__typeof__(rl_completion_matches) *completion_matches;
	__typeof__(using_history) *using_history;
	__typeof__(add_history) *add_history;
	__typeof__(stifle_history) *stifle_history;
	__typeof__(read_history) *read_history;
	__typeof__(write_history) *write_history;
	const char **readline_name;
	rl_completion_func_t **attempted_completion_function;
	int *attempted_completion_over;
	int *completion_append_character;
	char **line_buffer;
};

/* libedit's interface once loaded (NULL when the library or a symbol is missing: the
 * REPL then reads plain lines, without history or completion).  Loaded once. */
const struct edit_api *edit_load(void);

#endif
