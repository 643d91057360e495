// Delivery, one stage at a time. The sender's loop per batch is: Buffer::read_next, build the
// body, POST it (libcurl), wait for the server (read body, parse, validate, store, answer),
// then Buffer::remove. Each stage is timed here on the same 1,000-event batches:
//
// - read:     detail::Buffer::read_next(1000, 1 MiB) on a buffer holding the backlog;
// - build:    the body as Sender::build_body makes it for events whose agent id is the
//             server's: the stored JSON texts joined into an array (replicated here, since
//             build_body is private to the sender);
// - HTTP:     detail::Transport (the sender's libcurl transport) POSTing the body to a
//             cpp-httplib server on loopback that reads it and answers a canned 200 of the
//             real answer's size, without parsing and without compressing it: the cost of
//             moving the bytes both ways;
// - server parse / validate / store / answer: the reference server's own functions
//             (parse_body, validate_items, Store::ingest, the answer's dump), in-process;
//             parse_body takes its fast path on these bodies (the label says for how many),
//             and the DOM path alone (parse_body_dom) is timed on the same bodies for
//             comparison, outside the sum;
// - (no answer compression: the sender sends no Accept-Encoding, so the server answers plain;
//             when it did, brotli at quality 11 was three quarters of the round trip);
// - ack:      detail::Buffer::remove (one DeleteRange per batch);
// - and the real round trip: the same bodies POSTed to a real agentburn-server.
#include "stages.hpp"

#include <curl/curl.h>
#include <httplib.h>

#include <cstdio>
#include <memory>
#include <thread>

#include "batch.hpp"
#include "common.hpp"
#include "event/codec.hpp"
#include "store.hpp"
#include "store/agents.hpp"
#include "store/buffer.hpp"
#include "transport/http.hpp"

namespace bench {

using nlohmann::json;
namespace detail = agentburn::detail;

namespace {

struct Timer {
  double total_s = 0;
  template <class F>
  void run(F&& f) {
    auto t0 = Clock::now();
    f();
    total_s += seconds_since(t0);
  }
};

std::string build_body(const std::vector<detail::StoredEvent>& events) {
  static const std::string kProvisional = std::string("{\"agentId\":\"") + detail::kProvisionalPrefix;
  std::size_t total = 2;
  for (const auto& e : events) total += e.json.size() + 1;
  std::string body;
  body.reserve(total + 64);
  body.push_back('[');
  for (const auto& e : events) {
    bool provisional = e.json.compare(0, kProvisional.size(), kProvisional) == 0;
    if (provisional) die("unexpected provisional agent id in the stage benchmark");
    if (body.size() > 1) body.push_back(',');
    body.append(e.json);
  }
  body.push_back(']');
  return body;
}

// POSTs `body` with the sender's transport and waits for the answer; dies unless 200.
void post(detail::Transport& t, const std::string& body) {
  t.start("/api/ingest", body, 1);
  std::vector<std::pair<std::uint64_t, detail::HttpResult>> done;
  while (done.empty()) t.poll(std::chrono::milliseconds(1000), &done);
  if (done[0].second.status != 200) {
    die("POST /api/ingest answered " + std::to_string(done[0].second.status) + " " +
        done[0].second.error + " " + done[0].second.body.substr(0, 200));
  }
}

std::string canned_answer(std::size_t n) {
  nlohmann::ordered_json ids = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < n; ++i) ids.push_back("evt_" + detail::new_uuid_v7());
  return nlohmann::ordered_json{{"ingested", n}, {"duplicates", 0}, {"ids", ids}}.dump();
}

}  // namespace

json stage_costs(const StageConfig& cfg) {
  const std::string key = "bench-key";
  Server server(cfg.server_binary, make_temp_dir(cfg.tmp, "stage-server-"), key);
  const std::string agent = register_agent(server.url(), "stage-agent");

  // The events as track() stores them: validated (a fresh key and timestamp each) and encoded.
  agentburn::Event e = sample_event(agent);
  std::vector<std::string> stored(cfg.events);
  Timer validate_encode;
  validate_encode.run([&] {
    for (auto& s : stored) s = stored_form(e);
  });

  detail::BufferOptions bo;
  bo.root = make_temp_dir(cfg.tmp, "stage-buffer-");
  bo.durability = agentburn::Durability::kProcess;
  std::unique_ptr<detail::Buffer> buffer;
  agentburn::Status s = detail::Buffer::open(bo, &buffer);
  if (!s.ok()) die(s.to_string());
  Timer append;
  append.run([&] {
    for (const auto& ev : stored) {
      agentburn::Status a = buffer->append(ev);
      if (!a.ok()) die(a.to_string());
    }
  });

  // read
  std::vector<std::vector<detail::StoredEvent>> batches;
  Timer read;
  for (;;) {
    std::vector<detail::StoredEvent> b;
    read.run([&] {
      agentburn::Status r = buffer->read_next(cfg.batch, 1 << 20, &b);
      if (!r.ok()) die(r.to_string());
    });
    if (b.empty()) break;
    batches.push_back(std::move(b));
  }
  std::size_t n = 0;
  for (const auto& b : batches) n += b.size();
  if (n != cfg.events) die("read back " + std::to_string(n) + " events of " + std::to_string(cfg.events));

  // build
  std::vector<std::string> bodies;
  Timer build;
  for (const auto& b : batches) {
    std::string body;
    build.run([&] { body = build_body(b); });
    bodies.push_back(std::move(body));
  }

  // HTTP only: a server that reads the body and answers without looking at it. The answer's
  // type is one cpp-httplib never compresses, so that compression is timed apart below.
  httplib::Server sink;
  const std::string answer = canned_answer(cfg.batch);
  sink.set_tcp_nodelay(true);
  sink.set_keep_alive_max_count(100000);
  sink.Post("/api/ingest", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(answer, "application/octet-stream");
  });
  int port = sink.bind_to_any_port("127.0.0.1");
  if (port <= 0) die("cannot bind the sink server");
  std::thread sink_thread([&] { sink.listen_after_bind(); });
  Timer http;
  {
    detail::TransportConfig tc;
    tc.endpoint = "http://127.0.0.1:" + std::to_string(port);
    tc.api_key = key;
    detail::Transport t(tc);
    post(t, bodies[0]);  // connect
    for (const auto& body : bodies) http.run([&] { post(t, body); });
  }
  sink.stop();
  sink_thread.join();

  // The server's stages, in-process.
  std::unique_ptr<agentburn::server::Store> store;
  s = agentburn::server::Store::open(make_temp_dir(cfg.tmp, "stage-store-"), &store);
  if (!s.ok()) die(s.to_string());
  Timer parse, parse_dom, validate, ingest, reply;
  std::size_t answer_bytes = 0, fast_batches = 0;
  for (const auto& body : bodies) {
    agentburn::server::ParsedBody parsed;
    std::string error;
    // The DOM path alone on the same body, for comparison (not a stage of the sum).
    parse_dom.run([&] {
      if (!agentburn::server::parse_body_dom(body, &parsed, &error)) die(error);
    });
    parse.run([&] {
      if (!agentburn::server::parse_body(body, &parsed, &error)) die(error);
    });
    fast_batches += parsed.fast;
    std::vector<agentburn::server::IncomingEvent> valid;
    std::vector<std::size_t> indexes;
    std::vector<agentburn::server::EventError> errors;
    validate.run([&] {
      agentburn::server::validate_items(
          parsed, [](const std::string&) { return true; }, &valid, &indexes, &errors);
    });
    if (!errors.empty()) die("the server refused an event: " + errors[0].message);
    agentburn::server::IngestOutcome outcome;
    std::string text;
    ingest.run([&] {
      agentburn::Status st = store->ingest(valid, true, &outcome);
      if (!st.ok()) die(st.to_string());
    });
    reply.run([&] {
      nlohmann::ordered_json a{{"ingested", outcome.stored},
                               {"duplicates", outcome.duplicates},
                               {"ids", outcome.ids}};
      text = a.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    });
    answer_bytes = text.size();
  }
  store.reset();

  // ack
  Timer ack;
  for (const auto& b : batches) {
    ack.run([&] {
      agentburn::Status r = buffer->remove(b, true);  // each batch is a whole read
      if (!r.ok()) die(r.to_string());
    });
  }
  buffer->close().ok();

  // The real round trip, same bodies, to the real server.
  Timer real;
  {
    detail::TransportConfig tc;
    tc.endpoint = server.url();
    tc.api_key = key;
    detail::Transport t(tc);
    for (const auto& body : bodies) real.run([&] { post(t, body); });
  }
  std::uint64_t stored_at_server = server_events_stored(server.url(), key);
  if (stored_at_server != cfg.events) {
    die("the server stored " + std::to_string(stored_at_server) + " events of " +
        std::to_string(cfg.events));
  }
  server.stop();

  auto per_event = [&](const Timer& t) { return t.total_s * 1e6 / static_cast<double>(n); };
  auto per_batch = [&](const Timer& t) {
    return t.total_s * 1e3 / static_cast<double>(batches.size());
  };
  json out;
  out["events"] = n;
  out["batch"] = cfg.batch;
  out["body_bytes_per_batch"] = bodies.empty() ? 0 : bodies[0].size();
  out["answer_bytes_per_batch"] = answer_bytes;
  auto add = [&](const char* group, const char* stage, const Timer& t) {
    out["stages"].push_back(
        {{"group", group}, {"stage", stage}, {"us_per_event", per_event(t)}, {"ms_per_batch", per_batch(t)}});
  };
  add("client", "read from RocksDB (Buffer::read_next, 1,000 at a time)", read);
  add("client", "encode: build the request body (join stored JSON)", build);
  add("network", "HTTP: libcurl POST + answer over loopback, no server work", http);
  char dom_us[32];
  std::snprintf(dom_us, sizeof dom_us, "%.3f", per_event(parse_dom));
  const std::string parse_label =
      "server parse: parse_body, fast path (item spans + parse_event_json_fast; took " +
      std::to_string(fast_batches) + " of " + std::to_string(bodies.size()) +
      " batches; the DOM path alone: " + dom_us + " us/event)";
  add("server", parse_label.c_str(), parse);
  add("server", "server validate + re-encode: validate_items (from the fast path's Events)",
      validate);
  add("server", "server store: Store::ingest (one MultiGet for the batch's keys + WriteBatch)",
      ingest);
  add("server", "server answer: ids JSON dump", reply);
  add("client", "ack: Buffer::remove (DeleteRange)", ack);
  out["sum_us_per_event"] = per_event(read) + per_event(build) + per_event(http) +
                            per_event(parse) + per_event(validate) + per_event(ingest) +
                            per_event(reply) + per_event(ack);
  out["real_round_trip_us_per_event"] = per_event(real);
  out["real_round_trip_ms_per_batch"] = per_batch(real);
  out["track_validate_encode_us_per_event"] = validate_encode.total_s * 1e6 / static_cast<double>(n);
  out["track_buffer_append_us_per_event"] = append.total_s * 1e6 / static_cast<double>(n);
  return out;
}

}  // namespace bench
