// Events: the checked parse's fields, validation, the wire encoding, and the entry points.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "event/codec_internal.hpp"

namespace agentburn::detail {

bool get_string(const json& v, const char* field, std::string* out, FieldError* err) {
  if (!v.is_string()) return fail(err, field, "must be a string, got " + describe(v));
  *out = v.get_ref<const std::string&>();
  return true;
}

bool check_text(const std::string& s, const char* field, std::size_t max_bytes, FieldError* err) {
  if (s.empty()) return fail(err, field, "must not be empty (omit an optional field instead)");
  if (s.size() > max_bytes) {
    return fail(err, field,
                "is " + std::to_string(s.size()) + " bytes; the limit is " +
                    std::to_string(max_bytes));
  }
  if (!is_valid_utf8(s)) return fail(err, field, "is not valid UTF-8");
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F) return fail(err, field, "must not contain control characters");
  }
  return true;
}

namespace {

bool get_count(const json& v, const char* field, std::optional<std::int64_t>* out,
               FieldError* err) {
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(kMaxTokens)) {
      return fail(err, field, "must be at most 2^53, got " + describe(v));
    }
    *out = static_cast<std::int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    return fail(err, field, "must be a non-negative integer, got " + describe(v));
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d >= 0 && d <= static_cast<double>(kMaxTokens) && d == std::floor(d)) {
      *out = static_cast<std::int64_t>(d);
      return true;
    }
  }
  return fail(err, field, "must be a non-negative integer, got " + describe(v));
}

bool set_event_field(const std::string& name, const json& v, Event* e, FieldError* err) {
  const char* f = name.c_str();
  // null is absent, for every known field: a required one is then reported as required.
  if (v.is_null() && std::find(kEventFields.begin(), kEventFields.end(), name) != kEventFields.end()) {
    return true;
  }
  auto opt_string = [&](std::optional<std::string>* out) {
    if (v.is_null()) return true;
    out->emplace();
    return get_string(v, f, &**out, err);
  };
  if (name == "agentId") return get_string(v, f, &e->agent_id, err);
  if (name == "provider") return get_string(v, f, &e->provider, err);
  if (name == "operation") return get_string(v, f, &e->operation, err);
  if (name == "costUsd") {
    if (!v.is_number()) return fail(err, f, "must be a number, got " + describe(v));
    e->cost_usd = v.get<double>();
    return true;
  }
  if (name == "model") return opt_string(&e->model);
  if (name == "taskId") return opt_string(&e->task_id);
  if (name == "workflowId") return opt_string(&e->workflow_id);
  if (name == "timestamp") return opt_string(&e->timestamp);
  if (name == "idempotency_key") return opt_string(&e->idempotency_key);
  if (name == "inputTokens") return v.is_null() || get_count(v, f, &e->input_tokens, err);
  if (name == "outputTokens") return v.is_null() || get_count(v, f, &e->output_tokens, err);
  if (name == "cachedInputTokens") {
    return v.is_null() || get_count(v, f, &e->cached_input_tokens, err);
  }
  if (name == "reasoningTokens") return v.is_null() || get_count(v, f, &e->reasoning_tokens, err);
  if (name == "cacheWriteInputTokens") {
    return v.is_null() || get_count(v, f, &e->cache_write_input_tokens, err);
  }
  if (name == "costSource") return opt_string(&e->cost_source);
  if (name == "priceKey") return opt_string(&e->price_key);
  if (name == "pricesVersion") return opt_string(&e->prices_version);
  if (name == "metadata") {
    if (v.is_null()) return true;
    if (!v.is_object()) return fail(err, f, "must be a JSON object, got " + describe(v));
    e->metadata_json = v.dump(-1, ' ', false, json::error_handler_t::strict);
    return true;
  }
  return fail(err, name, unknown_field_message(name, kEventFields));
}

bool check_opt_text(const std::optional<std::string>& s, const char* field, FieldError* err) {
  return !s || check_text(*s, field, kMaxIdBytes, err);
}

bool check_count(const std::optional<std::int64_t>& v, const char* field, FieldError* err) {
  if (v && (*v < 0 || *v > kMaxTokens)) {
    return fail(err, field, "must be an integer in [0, 2^53], got " + std::to_string(*v));
  }
  return true;
}

bool check_metadata(const std::string& given, bool trusted, std::optional<std::string>* canonical,
                    FieldError* err) {
  const std::string* text = &given;
  if (!trusted) {
    if (json_depth(*text, kMaxJsonDepth) > kMaxJsonDepth) {
      return fail(err, "metadata", "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    json doc;
    FieldError inner;
    if (!parse_checked(*text, &doc, &inner)) return fail(err, "metadata", inner.message);
    if (!doc.is_object()) return fail(err, "metadata", "must be a JSON object, got " + describe(doc));
    *canonical = doc.dump();
    text = &**canonical;
  }
  if (text->size() > kMaxMetadataBytes) {
    return fail(err, "metadata",
                "is " + std::to_string(text->size()) + " bytes encoded; the limit is " +
                    std::to_string(kMaxMetadataBytes));
  }
  return true;
}

bool validate_event_impl(const Event* e, bool fill_defaults, bool metadata_trusted, Normalized* norm,
                         FieldError* err, bool cost_optional) {
  if (e->agent_id.empty()) return fail(err, "agentId", "is required (the id of a registered agent)");
  if (!check_text(e->agent_id, "agentId", kMaxIdBytes, err)) return false;
  if (e->provider.empty()) return fail(err, "provider", "is required (openai, anthropic, e2b, ...)");
  if (!check_text(e->provider, "provider", kMaxIdBytes, err)) return false;
  const std::string& op = e->operation;
  if (op.empty()) {
    return fail(err, "operation", "is required: llm_call, tool_call, compute or api_call");
  }
  if (op != "llm_call" && op != "tool_call" && op != "compute" && op != "api_call") {
    std::string shown = is_valid_utf8(op) ? op.substr(0, 64) : std::string("(not UTF-8)");
    return fail(err, "operation",
                "must be llm_call, tool_call, compute or api_call, got \"" + shown + "\"");
  }
  if (!e->cost_usd && !cost_optional) {
    return fail(err, "costUsd", "is required (the cost in USD, a number)");
  }
  double cost = e->cost_usd.value_or(0.0);
  if (!std::isfinite(cost) || cost < 0 || cost > kMaxCostUsd) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, cost);
    return fail(err, "costUsd",
                "must be a finite number in [0, 1e9], got " + std::string(buf, r.ptr));
  }
  if (!check_opt_text(e->model, "model", err) || !check_opt_text(e->task_id, "taskId", err) ||
      !check_opt_text(e->workflow_id, "workflowId", err) ||
      !check_count(e->input_tokens, "inputTokens", err) ||
      !check_count(e->output_tokens, "outputTokens", err) ||
      !check_count(e->cached_input_tokens, "cachedInputTokens", err) ||
      !check_count(e->cache_write_input_tokens, "cacheWriteInputTokens", err) ||
      !check_count(e->reasoning_tokens, "reasoningTokens", err) ||
      !check_opt_text(e->price_key, "priceKey", err) ||
      !check_opt_text(e->prices_version, "pricesVersion", err)) {
    return false;
  }
  // Parts of a whole, as OpenTelemetry's GenAI convention counts them.
  if (e->input_tokens) {
    std::int64_t parts = e->cached_input_tokens.value_or(0) + e->cache_write_input_tokens.value_or(0);
    if (parts > *e->input_tokens) {
      return fail(err, "cachedInputTokens",
                  "cachedInputTokens + cacheWriteInputTokens (" + std::to_string(parts) +
                      ") is more than inputTokens (" + std::to_string(*e->input_tokens) +
                      "): inputTokens counts all input, cache reads and writes included");
    }
  }
  if (e->output_tokens && e->reasoning_tokens && *e->reasoning_tokens > *e->output_tokens) {
    return fail(err, "reasoningTokens",
                "reasoningTokens (" + std::to_string(*e->reasoning_tokens) +
                    ") is more than outputTokens (" + std::to_string(*e->output_tokens) +
                    "): outputTokens counts all output, reasoning included");
  }
  if (e->cost_source && *e->cost_source != "reported" && *e->cost_source != "computed" &&
      *e->cost_source != "unpriced") {
    return fail(err, "costSource", "must be reported, computed or unpriced");
  }
  if (e->metadata_json &&
      !check_metadata(*e->metadata_json, metadata_trusted, &norm->metadata_json, err)) {
    return false;
  }
  if (e->idempotency_key) {
    const std::string& k = *e->idempotency_key;
    if (k.empty() || k.size() > kMaxKeyBytes) {
      return fail(err, "idempotency_key", "must be 1 to 128 bytes, got " + std::to_string(k.size()));
    }
    for (unsigned char c : k) {
      if (c < 0x21 || c > 0x7E) {
        return fail(err, "idempotency_key", "must be printable ASCII without spaces");
      }
    }
  } else if (fill_defaults) {
    norm->idempotency_key = new_uuid_v7();
  }
  if (e->timestamp) {
    std::int64_t ms;
    if (!parse_timestamp(*e->timestamp, &ms)) {
      std::string shown = is_valid_utf8(*e->timestamp) ? e->timestamp->substr(0, 64) : "(not UTF-8)";
      return fail(err, "timestamp",
                  "must be ISO 8601 with a date, a time and a UTC offset, such as "
                  "2026-01-02T03:04:05Z or 2026-01-02T05:04:05.250+02:00; got \"" + shown + "\"");
    }
    norm->timestamp = format_timestamp_ms(ms);
    norm->timestamp_ms = ms;
  } else if (fill_defaults) {
    norm->timestamp_ms = now_unix_ms();
    norm->timestamp = format_timestamp_ms(norm->timestamp_ms);
  }
  return true;
}

void append_key(const char* name, std::string* out) {
  out->push_back(',');
  out->push_back('"');
  out->append(name);
  out->append("\":");
}

void append_opt_count(const char* name, const std::optional<std::int64_t>& v, std::string* out) {
  if (!v) return;
  append_key(name, out);
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, *v);
  out->append(buf, r.ptr);
}

// The texts over the event's size limit that are read anyway, to name a field that is over
// its own limit or wrong: a big metadata, more often than not.
constexpr std::size_t kMaxTextToExplain = 16u << 20;

// Whether an event over the size limit has a field-level error, the first one validation
// finds, into `err`. Read by the fast path alone, with no DOM: the memory it takes is in
// proportion to the text, whatever its shape. What the fast path declines (an unusual form,
// a wrong type, anything not JSON) has no field named.
bool field_over_limit(std::string_view text, FieldError* err) {
  if (text.size() > kMaxTextToExplain) return false;
  Event e;
  if (!read_event_fast(text, &e)) return false;
  Normalized norm;
  return !validate_event(e, false, true, &norm, err) && !err->field.empty();
}

}  // namespace

void append_opt_string(const char* name, const std::optional<std::string>& v, std::string* out) {
  if (!v) return;
  append_key(name, out);
  append_json_string(*v, out);
}

bool parse_event_value(const void* value, Event* out, FieldError* err) {
  const json& v = *static_cast<const json*>(value);
  if (!v.is_object()) return fail(err, "", "an event must be a JSON object, got " + describe(v));
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!set_event_field(it.key(), it.value(), out, err)) return false;
  }
  return true;
}

bool parse_event_json_checked(std::string_view text, Event* out, FieldError* err) {
  if (text.size() > kMaxEventBytes) {
    std::string size = "the event is " + std::to_string(text.size()) + " bytes; the limit is " +
                       std::to_string(kMaxEventBytes);
    FieldError first;
    if (field_over_limit(text, &first)) {  // "metadata: is ... bytes encoded; ... (the event...)"
      err->field = std::move(first.field);
      err->message = first.message + " (" + size + ")";
      return false;
    }
    return fail(err, "", size);
  }
  json doc;
  if (!parse_checked(text, &doc, err)) return false;
  return parse_event_value(&doc, out, err);
}

bool parse_event_json(std::string_view text, Event* out, FieldError* err) {
  return parse_event_json_fast(text, out) || parse_event_json_checked(text, out, err);
}

bool validate_event(const Event& event, bool fill_defaults, bool metadata_trusted,
                    Normalized* norm, FieldError* err, bool cost_optional) {
  *norm = Normalized();
  return validate_event_impl(&event, fill_defaults, metadata_trusted, norm, err, cost_optional);
}

void encode_event(const Event& e, const Normalized& norm, bool seed_fields_only,
                  std::string* out) {
  // How the cost was found: the client's pricing step (norm) replaces what the event says.
  // Null: absent.
  struct Text {
    const char* data = nullptr;
    std::size_t size = 0;
    Text() = default;
    Text(std::string_view v) : data(v.empty() ? nullptr : v.data()), size(v.size()) {}
    Text(const std::optional<std::string>& v) : data(v ? v->data() : nullptr), size(v ? v->size() : 0) {}
    explicit operator bool() const { return data != nullptr; }
    std::string_view view() const { return {data, size}; }
  };
  Text cost_source = e.cost_source, price_key = e.price_key, prices_version = e.prices_version;
  if (norm.cost_source) {
    cost_source = std::string_view(norm.cost_source);
    price_key = norm.price_key;
    prices_version = norm.prices_version;
  }
  auto append_text = [out](const char* name, Text v) {
    if (!v) return;
    append_key(name, out);
    append_json_string(v.view(), out);
  };
  out->append("{\"agentId\":");
  append_json_string(e.agent_id, out);
  append_key("provider", out);
  append_json_string(e.provider, out);
  append_key("operation", out);
  append_json_string(e.operation, out);
  append_key("costUsd", out);
  char buf[32];
  double cost = norm.cost_usd ? *norm.cost_usd : e.cost_usd.value_or(0.0);
  if (cost == 0) cost = 0;  // -0 would read back as 0 and encode differently
  auto r = std::to_chars(buf, buf + sizeof buf, cost);
  out->append(buf, r.ptr);
  append_opt_string("model", e.model, out);
  append_opt_count("inputTokens", e.input_tokens, out);
  append_opt_count("outputTokens", e.output_tokens, out);
  if (!seed_fields_only) {
    append_opt_count("cachedInputTokens", e.cached_input_tokens, out);
    append_opt_count("cacheWriteInputTokens", e.cache_write_input_tokens, out);
    append_opt_count("reasoningTokens", e.reasoning_tokens, out);
    append_text("costSource", cost_source);
    append_text("priceKey", price_key);
    append_text("pricesVersion", prices_version);
  }
  append_opt_string("taskId", e.task_id, out);
  append_opt_string("workflowId", e.workflow_id, out);
  const std::string* metadata =
      norm.metadata_json ? &*norm.metadata_json : e.metadata_json ? &*e.metadata_json : nullptr;
  if (seed_fields_only && cost_source) {
    // A server that takes the seed's fields only gets how the cost was found in metadata,
    // beside the caller's own keys (which win).
    append_key("metadata", out);
    std::string pricing;
    append_json_string("costSource", &pricing);
    pricing += ':';
    append_json_string(cost_source.view(), &pricing);
    for (auto [name, value] : {std::pair{"priceKey", price_key},
                               std::pair{"pricesVersion", prices_version}}) {
      if (!value) continue;
      pricing += ',';
      append_json_string(name, &pricing);
      pricing += ':';
      append_json_string(value.view(), &pricing);
    }
    json own = metadata ? json::parse(*metadata, nullptr, false) : json::object();
    if (!own.is_object()) own = json::object();
    json merged = json::parse("{" + pricing + "}");
    for (auto it = own.begin(); it != own.end(); ++it) merged[it.key()] = it.value();
    out->append(merged.dump());
  } else if (metadata) {
    append_key("metadata", out);
    out->append(*metadata);
  }
  if (!norm.timestamp.empty()) {
    append_key("timestamp", out);
    append_json_string(norm.timestamp, out);
  } else {
    append_opt_string("timestamp", e.timestamp, out);
  }
  if (!seed_fields_only) {
    if (!norm.idempotency_key.empty()) {
      append_key("idempotency_key", out);
      append_json_string(norm.idempotency_key, out);
    } else {
      append_opt_string("idempotency_key", e.idempotency_key, out);
    }
  }
  out->push_back('}');
}

Status to_status(const FieldError& err) { return Status::invalid(err.message); }

}  // namespace agentburn::detail
