// The server's unit tests (server_unit_tests): its functions in-process, no HTTP.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
