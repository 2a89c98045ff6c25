/* edit.c — libedit by dlopen: only the interactive REPL needs it, and linking it would
 * load it and its libraries (libtinfo, libbsd, libmd) into every dbreg command. */
#include <dlfcn.h>
#include <stddef.h>

#include "edit.h"

/* Its soname on Debian and most others, then the development link. */
static const char *const libedit_names[] = { "libedit.so.2", "libedit.so.0", "libedit.so" };

const struct edit_api *edit_load(void)
{
	static struct edit_api api;
	static bool tried, loaded;
	void *h = NULL;

	if (tried)
		return loaded ? &api : NULL;
	tried = true;
	for (size_t i = 0; !h && i < sizeof(libedit_names) / sizeof(libedit_names[0]); i++)
		h = dlopen(libedit_names[i], RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return NULL;
	/* dlsym's void * to function pointers: POSIX requires that it works. */
#define SYM(field, name) ((api.field = (__typeof__(api.field))dlsym(h, name)) != NULL)
	loaded = SYM(callback_handler_install, "rl_callback_handler_install") &&
	         SYM(callback_read_char, "rl_callback_read_char") &&
	         SYM(callback_handler_remove, "rl_callback_handler_remove") &&
	         SYM(completion_matches, "rl_completion_matches") && SYM(using_history, "using_history") &&
	         SYM(add_history, "add_history") && SYM(stifle_history, "stifle_history") &&
	         SYM(read_history, "read_history") && SYM(write_history, "write_history") &&
	         SYM(readline_name, "rl_readline_name") &&
	         SYM(attempted_completion_function, "rl_attempted_completion_function") &&
	         SYM(attempted_completion_over, "rl_attempted_completion_over") &&
	         SYM(completion_append_character, "rl_completion_append_character") &&
	         SYM(line_buffer, "rl_line_buffer");
#undef SYM
	if (!loaded)
		dlclose(h);
	return loaded ? &api : NULL;
}
