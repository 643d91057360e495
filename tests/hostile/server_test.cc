// Hostile requests to agentburn-server, beyond what tests/server covers (a 16 MiB body, the
// 64 MiB gzip bomb on ingest, 100,000 nested arrays, 1,001 events, random bytes): 10 MB
// bodies under the cap, more bombs and encodings, invalid UTF-8 wherever it can go, deep
// nesting of every kind, huge batches, wrong content types, and raw requests no client
// library sends (header floods, smuggling framings, bodies without the key, control bytes
// in the path). Slow and idle connections are in tests/server/hardening_test.cc.
//
// Each must get a 4xx answer whose body is a JSON object with an "error" text (UTF-8), the
// server must stay up, and what it stored before must still be there, alone.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "harness.hpp"
#include "support/raw_http.hpp"

using nlohmann::json;
using testing::HttpRequest;
using testing::HttpResponse;
using testing::make_event;
using testing::TestServer;

namespace {

std::string zlib_compress(const std::string& data) {
  uLongf size = compressBound(static_cast<uLong>(data.size()));
  std::string out(size, '\0');
  compress2(reinterpret_cast<Bytef*>(out.data()), &size,
            reinterpret_cast<const Bytef*>(data.data()), static_cast<uLong>(data.size()),
            Z_BEST_COMPRESSION);
  out.resize(size);
  return out;
}

struct Hostile {
  std::string name;
  std::string path;
  std::string body;
  std::vector<std::string> headers;  // Content-Type included when wanted
  int status = 0;                    // the status wanted; 0: any 4xx
  std::string field;                 // for ingest, the field errors[0] must name
};

class Target {
 public:
  Target() {
    agent = s.register_agent("hostile");
    json first = s.ingest_ok(
        json::array({make_event(agent, 1.5, "kept-1"), make_event(agent, 2, "kept-2")}));
    REQUIRE(first["ingested"] == 2);
  }

  HttpResponse send(const std::string& path, const std::string& body,
                    const std::vector<std::string>& headers) {
    HttpRequest req;
    req.method = "POST";
    req.url = s.url(path);
    req.body = body;
    req.headers = headers;
    req.headers.push_back("x-api-key: " + s.key);
    req.timeout_ms = 120000;
    return s.client.send(req);
  }

  // The server is alive and holds exactly the two events stored at the start.
  void still_up() {
    int status = 0;
    REQUIRE(waitpid(s.process.pid(), &status, WNOHANG) == 0);
    HttpResponse events = s.get("/api/events?limit=100");
    REQUIRE(events.status == 200);
    json list = events.json();
    REQUIRE(list.is_array());
    CHECK(list.size() == 2);
    HttpResponse costs = s.get("/api/costs");
    REQUIRE(costs.status == 200);
    CHECK(costs.json()["totalCost"].get<double>() == doctest::Approx(3.5));
  }

  void refused(const Hostile& h) {
    INFO("request: ", h.name);
    HttpResponse res = send(h.path, h.body, h.headers);
    INFO("answer: ", res.status, " ", res.body.substr(0, 300), " ", res.error);
    REQUIRE(res.status != 0);
    if (h.status) {
      CHECK(res.status == h.status);
    } else {
      CHECK(res.status >= 400);
      CHECK(res.status < 500);
    }
    CHECK(res.headers["content-type"].find("application/json") == 0);
    CHECK(hostile_utf8(res.body));
    json answer = res.json();
    REQUIRE(answer.is_object());
    REQUIRE(answer["error"].is_string());
    CHECK(!answer["error"].get<std::string>().empty());
    if (!h.field.empty()) {
      REQUIRE(answer["errors"].is_array());
      CHECK(answer["errors"][0]["field"] == h.field);
    }
    still_up();
  }

  static bool hostile_utf8(const std::string& body) {
    return !json::parse(body, nullptr, false).is_discarded();  // the parser checks UTF-8
  }

  TestServer s;
  std::string agent;
};

const std::vector<std::string> kJson = {"Content-Type: application/json"};

std::string big_event(const std::string& agent, const std::string& key, std::size_t pad) {
  json e = make_event(agent, 0.01, key);
  e["metadata"] = {{"pad", std::string(pad, 'x')}};
  return e.dump();
}

}  // namespace

TEST_SUITE_BEGIN("hostile.server");

TEST_CASE("10 MB bodies under the 16 MiB cap: refused per event or as a whole, never a 5xx") {
  Target t;
  const std::size_t mb10 = 10u << 20;
  std::string one_huge = big_event(t.agent, "huge", mb10);
  std::string huge_agent_id = make_event(std::string(mb10, 'a'), 1, "huge-id").dump();
  // 700 events of 15 KiB: valid each, but the batch is 10 MB.
  std::string batch = "[";
  for (int i = 0; i < 700; ++i)
    batch += (i ? "," : "") + big_event(t.agent, "b" + std::to_string(i), 15000);
  batch += "," + big_event(t.agent, "bad", 17000) + "]";  // one over the metadata limit
  std::vector<Hostile> cases = {
      {"one event with 10 MB of metadata", "/api/ingest", one_huge, kJson, 400, "metadata"},
      {"an agentId of 10 MB", "/api/ingest", huge_agent_id, kJson, 400, "agentId"},
      {"a 10 MB batch with one bad event", "/api/ingest", batch, kJson, 400, "metadata"},
      {"10 MB of spaces", "/api/ingest", std::string(mb10, ' '), kJson, 400, ""},
      {"10 MB of NUL bytes", "/api/ingest", std::string(mb10, '\0'), kJson, 400, ""},
      {"10 MB of 0xFF", "/api/ingest", std::string(mb10, '\xff'), kJson, 400, ""},
      {"10 MB of digits", "/api/ingest", std::string(mb10, '7'), kJson, 400, ""},
      {"an agent of 10 MB", "/api/agents", "{\"name\":\"" + std::string(mb10, 'n') + "\"}", kJson,
       400, ""},
  };
  for (const auto& h : cases) t.refused(h);
}

TEST_CASE("deep nesting of every kind, plain and compressed") {
  Target t;
  std::string deep_objects;
  for (int i = 0; i < 100000; ++i) deep_objects += "{\"a\":";
  std::string deep_in_event = make_event(t.agent, 1, "deep").dump();
  deep_in_event.insert(deep_in_event.size() - 1,
                       ",\"metadata\":" + std::string(1000, '[') + std::string(1000, ']'));
  std::string deep_item = "[" + make_event(t.agent, 1, "d1").dump() + "," +
                          std::string(100000, '[') + std::string(100000, ']') + "]";
  std::string bracket_bomb = testing::gzip_compress(std::string(15u << 20, '['));
  REQUIRE(bracket_bomb.size() < (1u << 20));
  std::vector<Hostile> cases = {
      {"100,000 unclosed objects", "/api/ingest", deep_objects, kJson, 400, ""},
      {"1,000 levels inside an event's metadata", "/api/ingest", deep_in_event, kJson, 400, ""},
      {"100,000 levels as a batch's second item", "/api/ingest", deep_item, kJson, 400, ""},
      {"15 MB of '[' gzipped to under 1 MB",
       "/api/ingest",
       bracket_bomb,
       {"Content-Type: application/json", "Content-Encoding: gzip"},
       400,
       ""},
      {"an agent 100,000 levels deep", "/api/agents", std::string(100000, '['), kJson, 400, ""},
      {"an agent with tags 1,000 levels deep", "/api/agents",
       "{\"name\":\"a\",\"tags\":" + std::string(1000, '[') + std::string(1000, ']') + "}", kJson,
       400, ""},
  };
  for (const auto& h : cases) t.refused(h);
}

TEST_CASE("compression bombs and mislabelled encodings") {
  Target t;
  std::string zeros(200u << 20, '\0');
  std::string gzip_bomb = testing::gzip_compress(zeros);
  std::string deflate_bomb = zlib_compress(zeros);
  zeros = std::string();
  REQUIRE(gzip_bomb.size() < (1u << 20));
  std::string events = json::array({make_event(t.agent, 1, "enc")}).dump();
  std::string double_gzip = testing::gzip_compress(testing::gzip_compress(events));
  std::vector<Hostile> cases = {
      {"a 200 MiB gzip bomb on /api/agents",
       "/api/agents",
       gzip_bomb,
       {"Content-Type: application/json", "Content-Encoding: gzip"},
       413,
       ""},
      {"a 200 MiB deflate bomb",
       "/api/ingest",
       deflate_bomb,
       {"Content-Type: application/json", "Content-Encoding: deflate"},
       413,
       ""},
      {"gzip inside gzip, declared once",
       "/api/ingest",
       double_gzip,
       {"Content-Type: application/json", "Content-Encoding: gzip"},
       400,
       ""},
      {"plain JSON declared as gzip",
       "/api/ingest",
       events,
       {"Content-Type: application/json", "Content-Encoding: gzip"},
       400,
       ""},
      {"gzip declared as brotli",
       "/api/ingest",
       testing::gzip_compress(events),
       {"Content-Type: application/json", "Content-Encoding: br"},
       400,
       ""},
      {"an encoding list",
       "/api/ingest",
       events,
       {"Content-Type: application/json", "Content-Encoding: gzip, identity"},
       415,
       ""},
  };
  for (const auto& h : cases) t.refused(h);
}

TEST_CASE("invalid UTF-8 wherever it can go, and answers that stay UTF-8") {
  Target t;
  auto event_with = [&](const std::string& field, const std::string& raw) {
    std::string e = make_event(t.agent, 1, "u8").dump();
    e.insert(e.size() - 1, ",\"" + field + "\":" + raw);
    return e;
  };
  std::string bad_key = make_event(t.agent, 1, "k").dump();
  bad_key.insert(bad_key.size() - 1, ",\"\xff\xfe\":1");
  std::vector<Hostile> cases = {
      {"0xFF in model", "/api/ingest", event_with("model", "\"m\xff\""), kJson, 400, ""},
      {"an overlong sequence in taskId", "/api/ingest", event_with("taskId", "\"\xc0\xaf\""), kJson,
       400, ""},
      {"a raw surrogate in metadata", "/api/ingest",
       event_with("metadata", "{\"a\":\"\xed\xa0\x80\"}"), kJson, 400, ""},
      {"a lone surrogate escape in model", "/api/ingest",
       "[" + make_event(t.agent, 1, "s").dump().insert(1, "\"model\":\"\\udc00\",") + "]", kJson,
       400, ""},
      {"invalid UTF-8 in a field name", "/api/ingest", bad_key, kJson, 400, ""},
      {"\\u0000 in agentId", "/api/ingest",
       R"({"agentId":"a\u0000","provider":"p","operation":"compute","costUsd":1})", kJson, 400,
       "agentId"},
      {"a duplicate field name that the message cuts mid-character", "/api/ingest",
       "[" +
           make_event(t.agent, 1, "x")
               .dump()
               .insert(1,
                       [] {
                         std::string name = "a";
                         for (int i = 0; i < 40; ++i) name += "\xc3\xa9";
                         return "\"" + name + "\":1,\"" + name + "\":2,";
                       }()) +
           "]",
       kJson, 400, ""},
      {"invalid UTF-8 in an agent's name", "/api/agents", "{\"name\":\"\xff\"}", kJson, 400, ""},
      {"invalid UTF-8 in an agent's tags", "/api/agents", "{\"name\":\"a\",\"tags\":[\"\xc3\"]}",
       kJson, 400, ""},
  };
  for (const auto& h : cases) t.refused(h);
}

TEST_CASE("huge batches: refused at the 1,001st item, whatever the items") {
  Target t;
  std::string tiny = "[";
  for (int i = 0; i < 100000; ++i) tiny += i ? ",{}" : "{}";
  tiny += "]";
  std::string nulls = "[null";
  for (int i = 1; i < 100000; ++i) nulls += ",null";
  nulls += "]";
  std::string unclosed = "[";
  for (int i = 0; i < 5000; ++i) unclosed += "{},";
  std::vector<Hostile> cases = {
      {"100,000 empty objects", "/api/ingest", tiny, kJson, 400, ""},
      {"100,000 nulls", "/api/ingest", nulls, kJson, 400, ""},
      {"5,000 items and no end", "/api/ingest", unclosed, kJson, 400, ""},
  };
  for (const auto& h : cases) t.refused(h);
}

TEST_CASE("wrong content types: a valid body is stored or refused with 415, never a 5xx") {
  Target t;
  const std::vector<std::string> types = {
      "Content-Type: text/plain",      "Content-Type: application/x-www-form-urlencoded",
      "Content-Type: application/xml", "Content-Type: application/json; charset=latin1",
      "Content-Type: image/png",       "Content-Type:"};
  int stored = 0;
  for (std::size_t i = 0; i < types.size(); ++i) {
    INFO("header: ", types[i]);
    std::string body = json::array({make_event(t.agent, 0, "ct-" + std::to_string(i))}).dump();
    HttpResponse res = t.send("/api/ingest", body, {types[i]});
    INFO("answer: ", res.status, " ", res.body);
    CHECK((res.status == 200 || res.status == 415));
    CHECK(res.json().is_object());
    stored += res.status == 200;
    // An invalid body under the same header: a 4xx with a JSON error.
    HttpResponse bad = t.send("/api/ingest", "{\"agentId\":", {types[i]});
    CHECK(bad.status >= 400);
    CHECK(bad.status < 500);
    CHECK(bad.json()["error"].is_string());
  }
  // Multipart labels on a JSON body.
  for (const char* type :
       {"Content-Type: multipart/form-data; boundary=xyz", "Content-Type: multipart/form-data"}) {
    INFO("header: ", type);
    HttpResponse res =
        t.send("/api/ingest", json::array({make_event(t.agent, 0, "mp")}).dump(), {type});
    CHECK(res.status >= 400);
    CHECK(res.status < 500);
    CHECK(res.json()["error"].is_string());
  }
  HttpResponse events = t.s.get("/api/events?limit=100");
  CHECK(events.json().size() == 2u + static_cast<std::size_t>(stored));
}

TEST_CASE("fixed issue: a multipart/form-data body is answered 500 (bad_function_call)") {
  Target t;
  const std::string boundary = "agentburnboundary";
  std::string body = "--" + boundary +
                     "\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\n" +
                     make_event(t.agent, 1, "mp").dump() + "\r\n--" + boundary + "--\r\n";
  for (std::string path : {"/api/ingest", "/api/agents"}) {
    INFO("path: ", path);
    HttpResponse res =
        t.send(path, body, {"Content-Type: multipart/form-data; boundary=" + boundary});
    INFO("answer: ", res.status, " ", res.body);
    CHECK(res.status >= 400);
    CHECK(res.status < 500);
  }
}

TEST_CASE("fixed issue: a NUL byte ends the body; what follows is ignored and the events stored") {
  Target t;
  std::string events = json::array({make_event(t.agent, 1, "nul-1")}).dump();
  std::string agent = json{{"name", "nul"}}.dump();
  for (const auto& [path, body] :
       {std::pair<std::string, std::string>{"/api/ingest", events + std::string("\0garbage", 8)},
        {"/api/agents", agent + std::string("\0{]", 3)}}) {
    INFO("path: ", path);
    HttpResponse res = t.send(path, body, kJson);
    INFO("answer: ", res.status, " ", res.body);
    CHECK(res.status == 400);
  }
  t.still_up();
}

TEST_CASE("raw requests: header floods, smuggling framings, bodies without the key") {
  Target t;
  struct Raw {
    std::string name;
    std::string bytes;
    int status;
    bool closes;  // the server closes the connection after answering
  };
  auto head = [](const std::string& first, const std::vector<std::string>& headers) {
    std::string out = first + "\r\nHost: 127.0.0.1\r\n";
    for (const auto& h : headers) out += h + "\r\n";
    return out + "\r\n";
  };
  const std::string key = "x-api-key: " + t.s.key;
  std::vector<std::string> lines = {key};
  for (int i = 0; i < 100; ++i) lines.push_back("X-Line-" + std::to_string(i) + ": v");
  std::string bomb = testing::gzip_compress(std::string((16u << 20) - 1024, '['));
  std::string events = json::array({make_event(t.agent, 1, "raw")}).dump();
  std::vector<Raw> cases = {
      {"101 header lines", head("GET /api/costs HTTP/1.1", lines), 431, true},
      {"70 KB in one header line",
       head("GET /api/costs HTTP/1.1", {key, "X-Big: " + std::string(70000, 'b')}), 431, true},
      {"Content-Length and Transfer-Encoding",
       head("POST /api/ingest HTTP/1.1", {key, "Content-Type: application/json",
                                          "Content-Length: " + std::to_string(events.size()),
                                          "Transfer-Encoding: chunked"}) +
           events,
       400, true},
      {"two Content-Lengths",
       head("POST /api/ingest HTTP/1.1", {key, "Content-Type: application/json",
                                          "Content-Length: " + std::to_string(events.size()),
                                          "Content-Length: 2"}) +
           events,
       400, true},
      {"a gzip body inflating to 16 MiB, without a key",
       head("POST /api/ingest HTTP/1.1", {"Content-Type: application/json", "Content-Encoding: gzip",
                                          "Content-Length: " + std::to_string(bomb.size())}) +
           bomb,
       401, true},
      {"the same with a wrong key, to /api/agents",
       head("POST /api/agents HTTP/1.1", {"x-api-key: wrong", "Content-Type: application/json",
                                          "Content-Encoding: gzip",
                                          "Content-Length: " + std::to_string(bomb.size())}) +
           bomb,
       401, true},
      {"10 MB declared, never sent, without a key",
       head("POST /api/ingest HTTP/1.1", {"Content-Type: application/json",
                                          "Content-Length: 10000000"}),
       401, true},
      {"control bytes in the path",
       head("GET /api/x%0aGET%20/forged%20200%1b[2J HTTP/1.1", {key}), 404, false},
  };
  for (const auto& r : cases) {
    INFO("request: ", r.name);
    testing::RawConnection c(t.s.process.port(), "127.0.0.2");
    REQUIRE(c.connected());
    c.send_all(r.bytes);
    std::string answer = c.read_answer(std::chrono::seconds(10));
    INFO("answer: ", answer.substr(0, 300));
    CHECK(testing::answer_status(answer) == r.status);
    CHECK(testing::answer_header(answer, "Content-Type").find("application/json") == 0);
    json error = json::parse(answer.substr(std::min(answer.size(), answer.find("\r\n\r\n") + 4)),
                             nullptr, false);
    CHECK((error.is_object() && error["error"].is_string()));
    if (r.closes) {
      CHECK(testing::answer_header(answer, "Connection") == "close");
      CHECK(c.closed_within(std::chrono::seconds(5)));
    }
    t.still_up();
  }
}

TEST_CASE("after all of it the server stops cleanly") {
  Target t;
  t.refused({"100,000 nested arrays", "/api/ingest",
             std::string(100000, '[') + std::string(100000, ']'), kJson, 400, ""});
  CHECK(t.s.process.stop() == 0);
}

TEST_SUITE_END();
