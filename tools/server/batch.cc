#include "batch.hpp"

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

}  // namespace

bool parse_body(std::string_view body, ParsedBody* out, std::string* error) {
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

void validate_items(const ParsedBody& body,
                    const std::function<bool(const std::string&)>& agent_exists,
                    std::vector<IncomingEvent>* valid, std::vector<std::size_t>* valid_indexes,
                    std::vector<EventError>* errors) {
  for (std::size_t i = 0; i < body.items.size(); ++i) {
    auto reject = [&](std::string field, std::string message, bool unknown_agent = false) {
      errors->push_back(EventError{i, std::move(field), std::move(message), unknown_agent});
    };
    if (!body.item_problems[i].empty()) {
      reject(body.item_problems[i].field, body.item_problems[i].message);
      continue;
    }
    Event event;
    detail::FieldError err;
    detail::Normalized norm;
    if (!detail::parse_event_value(&body.items[i], &event, &err) ||
        !detail::validate_event(event, /*fill_defaults=*/true, /*metadata_trusted=*/true, &norm,
                                &err)) {
      reject(err.field, err.message);
      continue;
    }
    IncomingEvent in;
    detail::encode_event(event, norm, /*seed_fields_only=*/false, &in.wire);
    if (in.wire.size() > kMaxEventBytes) {
      reject("", "the event is " + std::to_string(in.wire.size()) +
                     " bytes encoded; the limit is " + std::to_string(kMaxEventBytes));
      continue;
    }
    if (!agent_exists(event.agent_id)) {
      reject("agentId",
             "agentId: no agent \"" + event.agent_id.substr(0, 64) +
                 "\" is registered (register it with POST /api/agents first)",
             true);
      continue;
    }
    in.idempotency_key =
        norm.idempotency_key.empty() ? *event.idempotency_key : norm.idempotency_key;
    valid->push_back(std::move(in));
    valid_indexes->push_back(i);
  }
}

}  // namespace agentburn::server
