#define _XOPEN_SOURCE 700

#include "support.h"

#include <ctype.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int g_passed;
static int g_failed;

void check_true(int ok, const char* expr, const char* file, int line) {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  printf("%s:%d: FAILED: %s\n    ab_last_error: \"%s\"\n", file, line, expr, ab_last_error());
  fflush(stdout);
}

void check_code(int rc, int expected, const char* text, const char* call, const char* file,
                int line) {
  /* Copied first: the text is only valid until the next ab_ call (ab_strerror below). */
  char error[1024] = "(NULL)";
  const char* last = ab_last_error();
  int ok = rc == expected;
  if (last) snprintf(error, sizeof error, "%s", last);
  if (ok && expected != AB_OK) {
    ok = last != NULL && (text ? strstr(error, text) != NULL : error[0] != '\0');
  }
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  printf("%s:%d: FAILED: %s\n    returned %d (%s), expected %d (%s)", file, line, call, rc,
         ab_strerror(rc), expected, ab_strerror(expected));
  if (text) printf(" with an error naming \"%s\"", text);
  printf("\n    ab_last_error: \"%s\"\n", error);
  fflush(stdout);
}

int check_summary(void) {
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 && g_passed > 0 ? 0 : 1;
}

char* path_join(const char* dir, const char* name) {
  size_t n = strlen(dir) + 1 + strlen(name) + 1;
  char* path = malloc(n);
  if (!path) {
    printf("out of memory\n");
    exit(2);
  }
  snprintf(path, n, "%s/%s", dir, name);
  return path;
}

char* temp_dir_new(void) {
  const char* base = getenv("TMPDIR");
  char* path = path_join(base && base[0] == '/' ? base : "/tmp", "agentburn-capi-XXXXXX");
  if (!mkdtemp(path)) {
    free(path);
    return NULL;
  }
  return path;
}

static int remove_entry(const char* path, const struct stat* st, int type, struct FTW* ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  return remove(path);
}

void temp_dir_remove(char* path) {
  if (!path) return;
  nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(path);
}

/* Calls `visit` for each sub-folder of `root` named `prefix`...; stops when it returns 0. */
static int for_each_folder(const char* root, const char* prefix,
                           int (*visit)(const char* path, void* ctx), void* ctx) {
  DIR* d = opendir(root);
  struct dirent* e;
  int n = 0;
  if (!d) return -1;
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    char* path;
    int is_dir;
    if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    path = path_join(root, e->d_name);
    is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if (is_dir) {
      ++n;
      if (visit && !visit(path, ctx)) {
        free(path);
        break;
      }
    }
    free(path);
  }
  closedir(d);
  return n;
}

int count_folders(const char* root, const char* prefix) {
  return for_each_folder(root, prefix, NULL, NULL);
}

static int keep_first(const char* path, void* ctx) {
  *(char**)ctx = strdup(path);
  return 0;
}

char* find_folder(const char* root, const char* prefix) {
  char* found = NULL;
  for_each_folder(root, prefix, keep_first, &found);
  return found;
}

int is_utf8(const char* text) {
  const unsigned char* s = (const unsigned char*)text;
  while (*s) {
    unsigned long cp;
    int more, i;
    if (*s < 0x80) {
      ++s;
      continue;
    } else if ((*s & 0xE0) == 0xC0) {
      cp = *s & 0x1Fu, more = 1;
    } else if ((*s & 0xF0) == 0xE0) {
      cp = *s & 0x0Fu, more = 2;
    } else if ((*s & 0xF8) == 0xF0) {
      cp = *s & 0x07u, more = 3;
    } else {
      return 0;
    }
    for (i = 1; i <= more; ++i) {
      if ((s[i] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return 0;
    }
    s += more + 1;
  }
  return 1;
}

int write_file(const char* path, const char* text) {
  FILE* f = fopen(path, "w");
  int ok;
  if (!f) return 0;
  ok = fputs(text, f) >= 0;
  return fclose(f) == 0 && ok;
}

const char* json_member(const char* json, const char* key) {
  size_t n = strlen(key);
  const char* p = json;
  while (json && (p = strchr(p, '"')) != NULL) {
    const char* after = p + 1 + n;
    if (strncmp(p + 1, key, n) == 0 && *after == '"') {
      ++after;
      while (isspace((unsigned char)*after)) ++after;
      if (*after == ':') {
        ++after;
        while (isspace((unsigned char)*after)) ++after;
        return after;
      }
    }
    ++p;
  }
  return NULL;
}

uint64_t stat_of(ab_client* c, const char* key) {
  char* json = NULL;
  const char* value;
  uint64_t result = STAT_MISSING;
  if (ab_client_stats_json(&json, c) != AB_OK) return STAT_MISSING;
  value = json_member(json, key);
  if (value && isdigit((unsigned char)*value)) {
    char* end;
    unsigned long long v = strtoull(value, &end, 10);
    if (*end == ',' || *end == '}' || isspace((unsigned char)*end)) result = v;
  }
  ab_free(json);
  return result;
}

int track(ab_client* c, const char* json) {
  return ab_client_track_json(c, json, strlen(json));
}

int register_agent(char** out_id, ab_client* c, const char* json) {
  return ab_client_register_agent_json(out_id, c, json, strlen(json));
}

char* repeat(char c, size_t n) {
  char* s = malloc(n + 1);
  if (!s) exit(2);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

char* concat3(const char* before, const char* middle, const char* after) {
  size_t a = strlen(before), b = strlen(middle), n = a + b + strlen(after) + 1;
  char* s = malloc(n);
  if (!s) exit(2);
  memcpy(s, before, a);
  memcpy(s + a, middle, b);
  strcpy(s + a + b, after);
  return s;
}

ab_options* options_at(const char* root) {
  ab_options* o = NULL;
  CHECK_RC(AB_OK, ab_options_new(&o));
  if (o) CHECK_RC(AB_OK, ab_options_set_buffer_root(o, root));
  return o;
}

ab_client* open_at(const char* root) {
  ab_client* c = NULL;
  ab_options* o = options_at(root);
  CHECK_RC(AB_OK, ab_client_open(&c, o));
  ab_options_free(o);
  return c;
}
