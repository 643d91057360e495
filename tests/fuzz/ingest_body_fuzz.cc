// Fuzz target: the body of POST /api/ingest as agentburn-server reads it (parse_body and
// validate_items of tools/server/batch.cc).
//
// Properties: a refused body has an error text; a parsed one has 1 item (an object body) or
// at most kMaxBatchEvents, each either valid or named by exactly one error, in order; every
// valid event's wire form is an event the library accepts, within the size limit; and a lone
// event is judged as the library's track_json judges it (the server promises the library's
// rules), an item of a batch as the library judges its text. And the fast path: parse_body
// (which tries parse_body_fast first) and parse_body_dom alone, each followed by
// validate_items, give the same result (the same refusal, the same Event per item, the same
// accepted wire forms, the same errors with the same index, field and message), and the fast
// path takes only bodies the DOM path reads with no problem in any item
// (tests/server/body_equivalence.hpp).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "../server/body_equivalence.hpp"
#include "batch.hpp"
#include "event/codec.hpp"
#include "fuzz_support.hpp"

using agentburn::Event;
using agentburn::kMaxEventBytes;
using agentburn::detail::FieldError;
using agentburn::detail::Normalized;
namespace codec = agentburn::detail;
namespace server = agentburn::server;
namespace eq = agentburn::server::equivalence;
using agentburn_fuzz::show;

namespace {

// The library's verdict on one event's text: "" when track_json would take it.
std::string library_verdict(std::string_view text) {
  Event e;
  FieldError err;
  Normalized norm;
  if (!codec::parse_event_json(text, &e, &err) ||
      !codec::validate_event(e, true, true, &norm, &err)) {
    return err.message.empty() ? "(refused without a message)" : err.message;
  }
  std::string wire;
  codec::encode_event(e, norm, false, &wire);
  if (wire.size() > kMaxEventBytes) return "too large encoded";
  return "";
}

// The item's timestamp is later than 9999-12-31T23:59:59.999Z, which four-digit years
// cannot write.
bool past_year_9999(const nlohmann::json& item) {
  std::int64_t ms = 0;
  return item.is_object() && item.contains("timestamp") && item["timestamp"].is_string() &&
         codec::parse_timestamp(item["timestamp"].get_ref<const std::string&>(), &ms) &&
         ms > 253402300799999;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  // Both ways of reading the body, compared; the checks below are on the DOM path's result,
  // which the server's answer always equals.
  eq::Judged dom = eq::judge(body, /*dom_only=*/true);
  eq::Judged combined = eq::judge(body, /*dom_only=*/false);
  {
    std::string both = "body: " + show(body);
    std::string diff = eq::difference(combined, dom);
    FUZZ_CHECK(diff.empty(), both + "\nfast path vs DOM path: " + diff);
    std::string unsound = eq::fast_path_soundness(combined, dom);
    FUZZ_CHECK(unsound.empty(), both + "\n" + unsound);
    server::ParsedBody fast_only;
    FUZZ_CHECK(server::parse_body_fast(body, &fast_only) == (combined.ok && combined.parsed.fast),
               both);
  }
  const server::ParsedBody& parsed = dom.parsed;
  if (!dom.ok) {
    FUZZ_CHECK(!dom.error.empty(), "body: " + show(body));
    return 0;
  }
  std::string ctx = "body: " + show(body);
  // A raw NUL is never JSON, but the parser takes it for the end of the body and ignores what
  // follows (README.md, known issues).
  if (FUZZ_KNOWN_ISSUE(body.find('\0') != std::string_view::npos, "nul-ends-input", ctx)) return 0;
  FUZZ_CHECK(nlohmann::json::accept(body), ctx);
  FUZZ_CHECK(!parsed.fast, ctx);
  FUZZ_CHECK(parsed.items.size() == parsed.item_problems.size(), ctx);
  FUZZ_CHECK(parsed.items.size() <= server::kMaxBatchEvents, ctx);
  if (!parsed.is_array) FUZZ_CHECK(parsed.items.size() == 1, ctx);

  const std::vector<server::IncomingEvent>& valid = dom.valid;
  const std::vector<std::size_t>& valid_indexes = dom.valid_indexes;
  const std::vector<server::EventError>& errors = dom.errors;
  FUZZ_CHECK(valid.size() == valid_indexes.size(), ctx);
  FUZZ_CHECK(valid.size() + errors.size() == parsed.items.size(), ctx);
  std::vector<std::size_t> seen = valid_indexes;
  for (const auto& e : errors) {
    FUZZ_CHECK(!e.message.empty(), ctx + "\nitem " + std::to_string(e.index));
    seen.push_back(e.index);
  }
  std::sort(seen.begin(), seen.end());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    FUZZ_CHECK(seen[i] == i, ctx + "\nan item is judged twice or not at all");
  }

  for (std::size_t j = 0; j < valid.size(); ++j) {
    const auto& in = valid[j];
    std::string item = ctx + "\nwire: " + show(in.wire);
    FUZZ_CHECK(in.wire.size() <= kMaxEventBytes, item);
    std::string verdict = library_verdict(in.wire);
    // README.md, known issues: a timestamp past 9999-12-31 UTC is accepted, and its
    // normalised form is then refused.
    if (FUZZ_KNOWN_ISSUE(!verdict.empty() && verdict.rfind("timestamp: ", 0) == 0 &&
                             past_year_9999(parsed.items[valid_indexes[j]]),
                         "timestamp-past-year-9999", item + "\nlibrary: " + verdict))
      return 0;
    FUZZ_CHECK(verdict.empty(), item + "\nlibrary: " + verdict);
    FUZZ_CHECK(!in.idempotency_key.empty() && in.idempotency_key.size() <= agentburn::kMaxKeyBytes,
               item);
    // The item's own text, as a client would have sent it alone, is accepted by the library.
    std::string text = parsed.items[valid_indexes[j]].dump();
    if (text.size() <= kMaxEventBytes) {
      FUZZ_CHECK(library_verdict(text).empty(),
                 item + "\nitem: " + show(text) + "\nlibrary: " + library_verdict(text));
    }
  }

  // A lone event: the same verdict as the library's, on the same bytes.
  if (!parsed.is_array && body.size() <= kMaxEventBytes) {
    std::string lib = library_verdict(body);
    bool server_ok = errors.empty() || errors[0].unknown_agent;
    FUZZ_CHECK(lib.empty() == server_ok,
               ctx + "\nlibrary: " + (lib.empty() ? "accepted" : lib) +
                   "\nserver: " + (errors.empty() ? "accepted" : errors[0].message));
  }
  return 0;
}
