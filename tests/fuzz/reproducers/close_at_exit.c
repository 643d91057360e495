/* Known issue (tests/fuzz/README.md): an ab_ call that fails from an atexit handler writes
 * ab_last_error()'s thread_local text after the thread's thread_locals were destroyed, a
 * heap-use-after-free. Seen with AddressSanitizer:
 *
 *   cc -fsanitize=address -g tests/fuzz/reproducers/close_at_exit.c -Iinclude -Ibuild/include \
 *      -Lbuild -lagentburn -Wl,-rpath,"$PWD/build" -o close_at_exit && ./close_at_exit
 *
 * Expected: "close: -9" (AB_ETIMEOUT: the event stays on disk) and no report. */
#include <agentburn/agentburn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ab_client *client;

static void close_at_exit(void) {
  int rc = ab_client_close(client, 0); /* AB_ETIMEOUT: an event is pending, no endpoint */
  printf("close: %d\n", rc);
}

int main(void) {
  char root[] = "/tmp/agentburn-close-at-exit-XXXXXX";
  ab_options *opts = NULL;
  const char *event = "{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"compute\",\"costUsd\":1}";
  if (!mkdtemp(root) || ab_options_new(&opts) != AB_OK) return 1;
  ab_options_set_buffer_root(opts, root);
  if (ab_client_open(&client, opts) != AB_OK) return 1;
  ab_options_free(opts);
  if (ab_client_track_json(client, event, strlen(event)) != AB_OK) return 1;
  ab_client_track_json(client, "{}", 2); /* AB_EINVALID: this thread now holds an error text */
  atexit(close_at_exit);
  return 0;
}
