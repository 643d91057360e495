#define DOCTEST_CONFIG_IMPLEMENT
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <signal.h>

int main(int argc, char** argv) {
  // Writes to a connection the server closed must fail, not kill.
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_ALL);
  doctest::Context context(argc, argv);
  int rc = context.run();
  curl_global_cleanup();
  return rc;
}
