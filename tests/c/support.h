/*
 * Helpers for the C ABI test: counted checks, temporary folders, and reading the stats JSON.
 */
#ifndef AGENTBURN_TEST_SUPPORT_H
#define AGENTBURN_TEST_SUPPORT_H

#include <agentburn/agentburn.h>
#include <stddef.h>
#include <stdint.h>

/* Each macro counts one check. A failure prints file:line, the expression and
 * ab_last_error(), and the run goes on. */
#define CHECK(expr) check_true((expr) != 0, #expr, __FILE__, __LINE__)
/* `call` returns the code `expected`. */
#define CHECK_RC(expected, call) check_code((call), (expected), NULL, #call, __FILE__, __LINE__)
/* `call` returns AB_EINVALID and ab_last_error() contains `text` (NULL: any non-empty text). */
#define CHECK_INVALID(text, call) check_code((call), AB_EINVALID, (text), #call, __FILE__, __LINE__)

void check_true(int ok, const char* expr, const char* file, int line);
void check_code(int rc, int expected, const char* text, const char* call, const char* file,
                int line);
/* Prints the closing "N passed, M failed" line; returns the exit status. */
int check_summary(void);

/* A new folder under $TMPDIR (default /tmp), or NULL. Free with temp_dir_remove. */
char* temp_dir_new(void);
/* Removes the folder and everything in it, then frees `path`. */
void temp_dir_remove(char* path);
/* "dir/name", malloc'd; never NULL (exits on allocation failure). */
char* path_join(const char* dir, const char* name);
/* Sub-folders of `root` whose names start with `prefix` (hidden ones excluded); -1 if `root`
 * cannot be read. */
int count_folders(const char* root, const char* prefix);
/* The path of the first sub-folder of `root` whose name starts with `prefix`, malloc'd, or
 * NULL. */
char* find_folder(const char* root, const char* prefix);
/* Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF). */
int is_utf8(const char* s);
/* Writes `text` to `path`, replacing it; returns 1 on success. */
int write_file(const char* path, const char* text);

/* Where the value of the member `key` starts in a flat JSON object, or NULL. */
const char* json_member(const char* json, const char* key);
/* The stats counter `key` of the client, or STAT_MISSING if the call failed, the member is
 * absent or it is not an unsigned integer. */
#define STAT_MISSING UINT64_MAX
uint64_t stat_of(ab_client* c, const char* key);

/* ---- Events and clients ---- */

/* A valid event's required fields; EVENT("...") adds more members. */
#define REQUIRED \
  "\"agentId\":\"agent-1\",\"provider\":\"anthropic\",\"operation\":\"llm_call\",\"costUsd\":0.01"
#define EVENT(extra) "{" REQUIRED extra "}"

/* ab_client_track_json and ab_client_register_agent_json on a NUL-terminated text. */
int track(ab_client* c, const char* json);
int register_agent(char** out_id, ab_client* c, const char* json);
/* A string of `n` copies of `c`, malloc'd: for values too long for a literal. */
char* repeat(char c, size_t n);
/* `before` + `middle` + `after`, malloc'd. */
char* concat3(const char* before, const char* middle, const char* after);
/* Options for an offline client on `root`, or NULL (counted as a failed check). */
ab_options* options_at(const char* root);
/* An offline client on `root` with default options, or NULL (counted as a failed check). */
ab_client* open_at(const char* root);

#endif
