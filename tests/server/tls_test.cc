// HTTPS with --tls-cert/--tls-key, with a CA and certificate made by the openssl CLI.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "harness.hpp"
#include "support/certs.hpp"

using testing::make_certificates;

using nlohmann::json;


TEST_SUITE_BEGIN("server.tls");

TEST_CASE("--tls-cert/--tls-key serve HTTPS: trusted with the CA, refused without") {
  testing::TempDir certs;
  REQUIRE(make_certificates(certs.path()));
  testing::TestServer s(
      {"--tls-cert", certs.sub("server.pem"), "--tls-key", certs.sub("server.key")});
  CHECK(s.process.url().rfind("https://127.0.0.1:", 0) == 0);

  testing::HttpRequest req;
  req.method = "POST";
  req.url = s.url("/api/agents");
  req.body = R"({"name": "tls agent"})";
  req.ca_file = certs.sub("ca.pem");
  auto trusted = testing::http_send(req);
  INFO(trusted.error);
  REQUIRE(trusted.status == 201);
  std::string agent = trusted.json()["id"];

  req.url = s.url("/api/ingest");
  req.body = testing::make_event(agent, 1, "tls-1").dump();
  req.headers = {"x-api-key: " + s.key};
  CHECK(testing::http_send(req).status == 200);
  req.body = testing::gzip_compress(testing::make_event(agent, 1, "tls-2").dump());
  req.headers.push_back("Content-Encoding: gzip");
  CHECK(testing::http_send(req).status == 200);

  testing::HttpRequest untrusted = req;
  untrusted.ca_file.clear();
  auto refused = testing::http_send(untrusted);
  CHECK(refused.status == 0);
  CHECK(refused.code == CURLE_PEER_FAILED_VERIFICATION);

  testing::HttpRequest plain = req;
  plain.url = "http://127.0.0.1:" + std::to_string(s.process.port()) + "/api/ingest";
  CHECK(testing::http_send(plain).status != 200);

  testing::HttpRequest count;
  count.url = s.url("/api/costs");
  count.ca_file = certs.sub("ca.pem");
  count.headers = {"x-api-key: " + s.key};
  CHECK(testing::http_send(count).json()["eventCount"] == 2);
  CHECK(s.process.stop() == 0);
}

TEST_CASE("unusable TLS files are refused at start-up") {
  testing::TempDir dir;
  std::ofstream(dir.sub("junk.pem")) << "not a certificate";
  for (auto files :
       {std::pair<std::string, std::string>{dir.sub("missing.pem"), dir.sub("junk.pem")},
        {dir.sub("junk.pem"), dir.sub("junk.pem")}}) {
    auto r = testing::run_process({AGENTBURN_SERVER_PATH, "--data", dir.sub("data"), "--api-key",
                                   "k", "--listen", "127.0.0.1:0", "--tls-cert", files.first,
                                   "--tls-key", files.second});
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(".pem") != std::string::npos);
  }
}

TEST_SUITE_END();
