// Fuzz target: one event in the AgentBurn JSON form, as the library reads it.
//
// parse_event_json + validate_event + encode_event, and the properties that must hold:
// - a refusal has a message, in UTF-8, that starts with the field it names;
// - nothing that is not JSON is accepted;
// - an event that validates encodes to UTF-8 JSON within the size limit, which parses back
//   to an event that validates again and encodes to the same bytes (the wire form is a
//   fixed point), also in the seed-only form;
// - validating with defaults fills exactly the key and the timestamp; metadata checked as
//   untrusted text (the typed path) gives the same canonical text as the JSON path;
// - parse_event_json's fast path, wherever it takes an input, gives the same event as the
//   checked parse, and parse_event_json answers as the checked parse does (the same
//   verdict, the same message).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "event/codec.hpp"
#include "fuzz_support.hpp"
#include "support/event_compare.hpp"

using agentburn::Event;
using agentburn::kMaxEventBytes;
using agentburn::detail::FieldError;
using agentburn::detail::Normalized;
namespace codec = agentburn::detail;
using agentburn_fuzz::show;

namespace {

void check_refusal(const FieldError& err, std::string_view input) {
  std::string ctx =
      "input: " + show(input) + "\nfield: " + show(err.field) + "\nmessage: " + show(err.message);
  FUZZ_CHECK(!err.message.empty(), ctx);
  FUZZ_CHECK(codec::is_valid_utf8(err.message), ctx);
  FUZZ_CHECK(codec::is_valid_utf8(err.field), ctx);
  if (!err.field.empty()) FUZZ_CHECK(err.message.rfind(err.field + ": ", 0) == 0, ctx);
}

// Later than 9999-12-31T23:59:59.999Z, which four-digit years cannot write.
bool past_year_9999(const std::optional<std::string>& timestamp) {
  std::int64_t ms = 0;
  return timestamp && codec::parse_timestamp(*timestamp, &ms) && ms > 253402300799999;
}

std::string show_opt(const std::optional<std::string>& s) { return s ? show(*s) : "(none)"; }

template <typename T>
std::string show_opt(const std::optional<T>& v) {
  return v ? std::to_string(*v) : "(none)";
}

// Every field, for a report; the cost's bits tell -0 from 0.
std::string show_event(const Event& e) {
  std::string cost = "(none)";
  if (e.cost_usd) {
    std::uint64_t bits;
    std::memcpy(&bits, &*e.cost_usd, sizeof bits);
    cost = std::to_string(*e.cost_usd) + " (bits " + std::to_string(bits) + ")";
  }
  return "agentId " + show(e.agent_id) + "\nprovider " + show(e.provider) + "\noperation " +
         show(e.operation) + "\ncostUsd " + cost + "\nmodel " + show_opt(e.model) +
         "\ninputTokens " + show_opt(e.input_tokens) + "\noutputTokens " +
         show_opt(e.output_tokens) + "\ncachedInputTokens " + show_opt(e.cached_input_tokens) +
         "\nreasoningTokens " + show_opt(e.reasoning_tokens) + "\ntaskId " + show_opt(e.task_id) +
         "\nworkflowId " + show_opt(e.workflow_id) + "\nmetadata " + show_opt(e.metadata_json) +
         "\ntimestamp " + show_opt(e.timestamp) + "\nidempotency_key " +
         show_opt(e.idempotency_key);
}

using testing::same_event;

// The fast path and the checked parse agree: parse_event_json answers as the checked parse
// does (verdict, event, field and message), and where the fast path takes an input, the
// checked parse accepts it as the same event.
void check_fast_path(std::string_view input, bool accepted, const Event& e,
                     const FieldError& err) {
  Event checked;
  FieldError checked_err;
  bool checked_ok = codec::parse_event_json_checked(input, &checked, &checked_err);
  auto ctx = [&] {
    return "input: " + show(input) + "\nparse_event_json: " +
           (accepted ? "accepted\n" + show_event(e) : show(err.message)) + "\nchecked: " +
           (checked_ok ? "accepted\n" + show_event(checked) : show(checked_err.message));
  };
  FUZZ_CHECK(checked_ok == accepted, ctx());
  if (accepted) {
    FUZZ_CHECK(same_event(e, checked), ctx());
  } else {
    FUZZ_CHECK(checked_err.message == err.message && checked_err.field == err.field, ctx());
  }
  Event fast;
  if (!codec::parse_event_json_fast(input, &fast)) return;
  FUZZ_CHECK(checked_ok && same_event(fast, checked), ctx() + "\nfast:\n" + show_event(fast));
}

std::string encode(const Event& e, const Normalized& n, bool seed_only = false) {
  std::string out;
  codec::encode_event(e, n, seed_only, &out);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Event e;
  FieldError err;
  bool accepted = codec::parse_event_json(input, &e, &err);
  check_fast_path(input, accepted, e, err);
  if (!accepted) {
    check_refusal(err, input);
    return 0;
  }
  // What the library accepted is JSON. A raw NUL is never JSON, but the parser takes it for
  // the end of the input and ignores what follows (README.md, known issues).
  if (FUZZ_KNOWN_ISSUE(input.find('\0') != std::string_view::npos, "nul-ends-input",
                       "parsed: " + show(input)))
    return 0;
  FUZZ_CHECK(nlohmann::json::accept(input), "accepted: " + show(input));

  Normalized norm;
  if (!codec::validate_event(e, /*fill_defaults=*/false, /*metadata_trusted=*/true, &norm, &err)) {
    check_refusal(err, input);
    Normalized n2;
    FieldError err2;
    FUZZ_CHECK(!codec::validate_event(e, true, true, &n2, &err2) && err2.message == err.message,
               "defaults change the verdict: " + show(input));
    return 0;
  }

  const std::string wire = encode(e, norm);
  std::string ctx = "input: " + show(input) + "\nwire: " + show(wire);
  FUZZ_CHECK(codec::is_valid_utf8(wire), ctx);
  FUZZ_CHECK(wire.size() <= kMaxEventBytes, ctx);

  Event back;
  FieldError back_err;
  FUZZ_CHECK(codec::parse_event_json(wire, &back, &back_err), ctx + "\nerror: " + back_err.message);
  Normalized back_norm;
  if (!codec::validate_event(back, false, true, &back_norm, &back_err)) {
    // A timestamp whose offset moves it past 9999-12-31 UTC is accepted, and its normalised
    // form is then refused (README.md, known issues).
    if (FUZZ_KNOWN_ISSUE(back_err.field == "timestamp" && past_year_9999(e.timestamp),
                         "timestamp-past-year-9999", ctx + "\nerror: " + back_err.message))
      return 0;
    FUZZ_CHECK(false, ctx + "\nthe wire form does not validate: " + back_err.message);
  }
  const std::string wire2 = encode(back, back_norm);
  if (wire2 != wire) {
    // costUsd -0.0 is accepted and encoded as "-0", which parses back as the integer 0 and
    // encodes as "0" (README.md, known issues).
    if (FUZZ_KNOWN_ISSUE(e.cost_usd && *e.cost_usd == 0 && std::signbit(*e.cost_usd),
                         "negative-zero-cost", ctx + "\nagain: " + show(wire2)))
      return 0;
    FUZZ_CHECK(wire2 == wire, ctx + "\nagain: " + show(wire2));
  }

  // The seed-only form is an event too.
  const std::string seed = encode(e, norm, true);
  Event seed_event;
  Normalized seed_norm;
  FUZZ_CHECK(codec::parse_event_json(seed, &seed_event, &back_err) &&
                 codec::validate_event(seed_event, false, true, &seed_norm, &back_err),
             ctx + "\nseed form: " + show(seed) + "\nerror: " + back_err.message);

  // Defaults: a key exactly when none was given, a timestamp always.
  Normalized filled;
  FUZZ_CHECK(codec::validate_event(e, true, true, &filled, &err), ctx);
  FUZZ_CHECK(filled.idempotency_key.empty() == e.idempotency_key.has_value(), ctx);
  FUZZ_CHECK(e.idempotency_key || filled.idempotency_key.size() == 36, ctx);
  FUZZ_CHECK(!filled.timestamp.empty(), ctx);

  // The typed path (metadata as untrusted text) agrees with the JSON path.
  Normalized typed;
  FUZZ_CHECK(codec::validate_event(e, false, false, &typed, &err), ctx + "\nerror: " + err.message);
  if (e.metadata_json) {
    FUZZ_CHECK(typed.metadata_json && *typed.metadata_json == *e.metadata_json,
               ctx + "\ncanonical: " + show(typed.metadata_json.value_or("(none)")));
  }
  FUZZ_CHECK(encode(e, typed) == wire, ctx);
  return 0;
}
