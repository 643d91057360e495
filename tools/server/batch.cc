#include "batch.hpp"

#include <algorithm>
#include <unordered_set>

#include "agentburn/event.hpp"
#include "event/codec.hpp"

namespace agentburn::server {

using json = nlohmann::json;

namespace {

// nlohmann's DOM builder, plus what the body's rules add: a bound on nesting and on the
// number of events (checked while parsing, so a huge body never becomes a huge DOM), and,
// per top-level item, duplicate keys and per-event depth, which make that event invalid
// without failing the others.
class BodyParser {
 public:
  explicit BodyParser(ParsedBody* out) : out_(out), dom_(root_, false) {}

  json root_;
  std::string error;

  bool null() { return scalar() && dom_.null(); }
  bool boolean(bool v) { return scalar() && dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return scalar() && dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return scalar() && dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return scalar() && dom_.number_float(v, s);
  }
  bool string(json::string_t& v) { return scalar() && dom_.string(v); }
  bool binary(json::binary_t& v) { return scalar() && dom_.binary(v); }
  bool start_object(std::size_t n) {
    if (!enter(false)) return false;
    keys_.emplace_back();
    return dom_.start_object(n);
  }
  bool key(json::string_t& k) {
    if (depth_ == item_base() + 1) field_ = k.substr(0, 64);
    if (!keys_.back().insert(k).second) note("duplicate key \"" + k.substr(0, 64) + "\"");
    return dom_.key(k);
  }
  bool end_object() {
    keys_.pop_back();
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return enter(true) && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (error.empty()) {
      std::string what = ex.what();
      auto close = what.find("] ");
      error = "not valid JSON: " + (close == std::string::npos ? what : what.substr(close + 2));
    }
    return false;
  }

 private:
  // depth_ outside an item: 1 in a batch's array, 0 for a lone event.
  int item_base() const { return out_->is_array ? 1 : 0; }
  // A value starts at depth_ (before entering it).
  bool begin_value() {
    if (depth_ == 1 && out_->is_array) {
      if (out_->item_problems.size() == kMaxBatchEvents) {
        error = "a batch holds at most " + std::to_string(kMaxBatchEvents) + " events";
        return false;
      }
      out_->item_problems.emplace_back();
      field_.clear();
    }
    return true;
  }
  bool scalar() { return begin_value(); }
  bool enter(bool array) {
    if (depth_ == 0) {
      out_->is_array = array;
      if (!array) out_->item_problems.emplace_back();
    } else if (!begin_value()) {
      return false;
    }
    if (++depth_ > kMaxBodyDepth) {
      error = "not valid JSON: nested deeper than " + std::to_string(kMaxBodyDepth) + " levels";
      return false;
    }
    if (depth_ - item_base() > kMaxEventDepth) {
      note("nested deeper than " + std::to_string(kMaxEventDepth - 1) + " levels");
    }
    return true;
  }
  void note(const std::string& problem) {
    if (out_->item_problems.empty()) return;
    ItemProblem& slot = out_->item_problems.back();
    if (!slot.empty()) return;
    slot.field = field_;
    slot.message = field_.empty() ? problem : field_ + ": " + problem;
  }

  ParsedBody* out_;
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::vector<std::unordered_set<std::string>> keys_;
  int depth_ = 0;
  std::string field_;  // the current item's field being parsed
};

// The fast path's scanner. Whitespace is what nlohmann skips between tokens.
bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

const char* skip_ws(const char* p, const char* end) {
  while (p != end && is_ws(*p)) ++p;
  return p;
}

// The end of the object that starts at `p` (a '{'): just past the bracket that closes it,
// counting brackets outside strings (a backslash in a string escapes the next byte), or null
// when the text ends first or the nesting passes `max_depth`. It does not check the JSON
// inside: parse_event_json_fast does, and a text it takes is one JSON object, whose end is
// exactly where this count returns to zero.
const char* object_end(const char* p, const char* end, int max_depth) {
  int depth = 0;
  for (; p != end; ++p) {
    switch (*p) {
      case '"':
        for (++p;; ++p) {
          if (p == end) return nullptr;
          if (*p == '"') break;
          if (*p == '\\' && ++p == end) return nullptr;
        }
        break;
      case '{':
      case '[':
        if (++depth > max_depth) return nullptr;
        break;
      case '}':
      case ']':
        if (--depth == 0) return p + 1;
        break;
      default:
        break;
    }
  }
  return nullptr;
}

// The per-item rule of the DOM path: an item nests at most kMaxEventDepth levels (the
// event's object is one); with the batch's array, the body's depth is then at most
// kMaxEventDepth + 1, within kMaxBodyDepth.
static_assert(kMaxEventDepth + 1 <= kMaxBodyDepth);
// parse_event_json_fast's own limit is metadata of kMaxJsonDepth levels, the event's object
// one more: no looser than the per-item rule, which object_end checks on its own anyway.
static_assert(kMaxEventDepth == kMaxJsonDepth + 1);

// Reads the object at `*p` into a new Event at the end of `events`; moves `*p` past it.
bool read_item(const char** p, const char* end, std::vector<Event>* events) {
  if (*p == end || **p != '{') return false;
  const char* item_end = object_end(*p, end, kMaxEventDepth);
  if (!item_end) return false;
  Event& event = events->emplace_back();
  if (!detail::parse_event_json_fast(
          std::string_view(*p, static_cast<std::size_t>(item_end - *p)), &event)) {
    return false;
  }
  *p = item_end;
  return true;
}

}  // namespace

bool parse_body(std::string_view body, ParsedBody* out, std::string* error) {
  return parse_body_fast(body, out) || parse_body_dom(body, out, error);
}

bool parse_body_fast(std::string_view body, ParsedBody* out) {
  *out = ParsedBody();
  // nlohmann would take a NUL for the end of the body: the DOM path says so.
  if (body.find('\0') != std::string_view::npos) return false;
  const char* p = skip_ws(body.data(), body.data() + body.size());
  const char* const end = body.data() + body.size();
  if (p == end) return false;
  if (*p == '[') {
    out->is_array = true;
    p = skip_ws(p + 1, end);
    if (p == end || *p == ']') return false;  // empty or cut: the DOM path's error
    // An item is rarely under 100 bytes: reserve for the usual batch without overshooting.
    out->events.reserve(std::min(kMaxBatchEvents, body.size() / 100 + 1));
    for (;;) {
      if (out->events.size() == kMaxBatchEvents) return false;  // a 1,001st item
      if (!read_item(&p, end, &out->events)) return false;
      p = skip_ws(p, end);
      if (p == end) return false;
      if (*p == ']') break;
      if (*p != ',') return false;
      p = skip_ws(p + 1, end);
    }
    ++p;
  } else if (!read_item(&p, end, &out->events)) {
    return false;
  }
  if (skip_ws(p, end) != end) return false;  // trailing text
  out->fast = true;
  return true;
}

bool parse_body_dom(std::string_view body, ParsedBody* out, std::string* error) {
  *out = ParsedBody();
  // nlohmann's parser would take a NUL byte for the end of the body; JSON never holds one.
  if (auto nul = body.find('\0'); nul != std::string_view::npos) {
    *error = "not valid JSON: a NUL byte at offset " + std::to_string(nul);
    return false;
  }
  BodyParser sax(out);
  bool ok =
      json::sax_parse(body.begin(), body.end(), &sax, json::input_format_t::json, true, false);
  if (!ok) {
    *error = sax.error.empty() ? "not valid JSON" : sax.error;
    return false;
  }
  if (out->is_array) {
    out->items = std::move(sax.root_.get_ref<json::array_t&>());
  } else {
    out->items.push_back(std::move(sax.root_));
    out->item_problems.resize(1);
  }
  return true;
}

namespace {

// Everything after reading an item into an Event: the value rules, the wire form and its
// size, the agent, the idempotency key. One result per item: in `valid` or in `errors`.
class ItemJudge {
 public:
  ItemJudge(const std::function<bool(const std::string&)>& agent_exists,
            std::vector<IncomingEvent>* valid, std::vector<std::size_t>* valid_indexes,
            std::vector<EventError>* errors)
      : agent_exists_(agent_exists), valid_(valid), valid_indexes_(valid_indexes),
        errors_(errors) {}

  void reject(std::size_t i, std::string field, std::string message, bool unknown_agent = false) {
    errors_->push_back(EventError{i, std::move(field), std::move(message), unknown_agent});
  }

  void judge(std::size_t i, const Event& event) {
    detail::FieldError err;
    if (!detail::validate_event(event, /*fill_defaults=*/true, /*metadata_trusted=*/true, &norm_,
                                &err)) {
      reject(i, err.field, err.message);
      return;
    }
    IncomingEvent in;
    detail::encode_event(event, norm_, /*seed_fields_only=*/false, &in.wire);
    if (in.wire.size() > kMaxEventBytes) {
      reject(i, "", "the event is " + std::to_string(in.wire.size()) +
                        " bytes encoded; the limit is " + std::to_string(kMaxEventBytes));
      return;
    }
    if (!agent_exists_(event.agent_id)) {
      reject(i, "agentId",
             "agentId: no agent \"" + event.agent_id.substr(0, 64) +
                 "\" is registered (register it with POST /api/agents first)",
             true);
      return;
    }
    in.facts = facts_of_event(event, norm_);
    in.idempotency_key =
        norm_.idempotency_key.empty() ? *event.idempotency_key : std::move(norm_.idempotency_key);
    valid_->push_back(std::move(in));
    valid_indexes_->push_back(i);
  }

 private:
  const std::function<bool(const std::string&)>& agent_exists_;
  std::vector<IncomingEvent>* valid_;
  std::vector<std::size_t>* valid_indexes_;
  std::vector<EventError>* errors_;
  detail::Normalized norm_;
};

}  // namespace

void validate_items(const ParsedBody& body,
                    const std::function<bool(const std::string&)>& agent_exists,
                    std::vector<IncomingEvent>* valid, std::vector<std::size_t>* valid_indexes,
                    std::vector<EventError>* errors) {
  ItemJudge judge(agent_exists, valid, valid_indexes, errors);
  valid->reserve(valid->size() + body.size());
  valid_indexes->reserve(valid_indexes->size() + body.size());
  if (body.fast) {
    for (std::size_t i = 0; i < body.events.size(); ++i) judge.judge(i, body.events[i]);
    return;
  }
  for (std::size_t i = 0; i < body.items.size(); ++i) {
    if (!body.item_problems[i].empty()) {
      judge.reject(i, body.item_problems[i].field, body.item_problems[i].message);
      continue;
    }
    Event event;
    detail::FieldError err;
    if (!detail::parse_event_value(&body.items[i], &event, &err)) {
      judge.reject(i, err.field, err.message);
      continue;
    }
    judge.judge(i, event);
  }
}

}  // namespace agentburn::server
