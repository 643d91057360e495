// Reading usage out of one response body: a single pass of the JSON scanner gathers every
// field any shape needs, then the shape is decided from what was found.
#include "pricing/usage.hpp"

#include "pricing/json_scan.hpp"
#include "pricing/usage_internal.hpp"

namespace agentburn::pricing {
namespace detail {
namespace {

using C = DocFields::Count;
constexpr int kNoCount = -1;

int usage_key(std::string_view b, std::string_view c, int rel) {
  if (rel == 2) {
    if (b == "prompt_tokens") return C::kPromptTokens;
    if (b == "completion_tokens") return C::kCompletionTokens;
    if (b == "input_tokens") return C::kInputTokens;
    if (b == "output_tokens") return C::kOutputTokens;
    if (b == "cache_read_input_tokens") return C::kCacheRead;
    if (b == "cache_creation_input_tokens") return C::kCacheCreation;
    if (b == "prompt_cache_hit_tokens") return C::kPromptCacheHit;
  } else if (rel == 3) {
    if (b == "prompt_tokens_details" && c == "cached_tokens") return C::kPromptCached;
    if (b == "completion_tokens_details" && c == "reasoning_tokens") return C::kCompletionReasoning;
    if (b == "input_tokens_details" && c == "cached_tokens") return C::kInputCached;
    if (b == "output_tokens_details" && c == "reasoning_tokens") return C::kOutputReasoning;
    if (b == "cache_creation" && c == "ephemeral_1h_input_tokens") return C::kCacheCreation1h;
  }
  return kNoCount;
}

int metadata_key(std::string_view b) {
  if (b == "promptTokenCount") return C::kGPrompt;
  if (b == "candidatesTokenCount") return C::kGCandidates;
  if (b == "thoughtsTokenCount") return C::kGThoughts;
  if (b == "cachedContentTokenCount") return C::kGCached;
  if (b == "toolUsePromptTokenCount") return C::kGToolUse;
  return kNoCount;
}

std::string path_text(const JsonPath& p, int from) {
  std::string s;
  for (int i = from; i < p.depth; ++i) {
    if (!s.empty()) s += '.';
    s += p.at(i);
  }
  return s;
}

}  // namespace

bool scan_fields(std::string_view json, int skip, DocFields* f, std::string* error) {
  auto visit = [f, skip](const JsonPath& p, const JsonScalar& v) {
    const int d = p.depth - skip;
    if (d <= 0) return true;
    auto key = [&](int i) { return p.at(skip + i); };
    const bool str = v.kind == JsonScalar::kString;
    const std::string_view k0 = key(0);
    if (d == 1) {
      if (k0 == "object" && str) f->object = v.raw;
      else if (k0 == "type" && str) f->type = v.raw;
      else if ((k0 == "model" || k0 == "modelVersion") && str && !v.raw.empty())
        decode_json_string(v.raw, &f->model);
      else if (k0 == "error" && v.kind != JsonScalar::kNull && f->error.empty())
        f->error = str ? std::string(v.raw.substr(0, 200)) : "error";
      return true;
    }
    if (k0 == "choices") {
      f->has_choices = true;
      return true;
    }
    if (k0 == "candidates") {
      f->has_candidates = true;
      if (d == 3 && key(2) == "finishReason" && str && !v.raw.empty()) f->finish_reason = true;
      return true;
    }
    int o = 0;  // fields of "message" (Anthropic's message_start) and "response" (Responses)
    if (k0 == "message" || k0 == "response") {
      o = 1;
      if (d == 2 && key(1) == "model" && str && !v.raw.empty()) decode_json_string(v.raw, &f->model);
    }
    const std::string_view a = key(o);
    if (a == "error") {
      if (v.kind == JsonScalar::kNull) return true;
      if (d == o + 2 && key(o + 1) == "message" && str) {
        if (!decode_json_string(v.raw.substr(0, 300), &f->error)) f->error = "error";
      } else if (f->error.empty()) {
        f->error = "error";
      }
      return true;
    }
    int id = kNoCount;
    if (a == "usage") {
      id = usage_key(key(o + 1), key(o + 2), d - o);
    } else if (a == "usageMetadata" && o == 0) {
      f->has_usage_metadata = true;
      if (d == 2) id = metadata_key(key(1));
    }
    if (id == kNoCount || v.kind == JsonScalar::kNull) return true;
    uint64_t n = 0;
    if (!json_count(v, &n)) {
      if (f->bad.empty())
        f->bad = path_text(p, skip) + ": must be a whole number of tokens from 0 to 10^12, got " +
                 shown_scalar(v);
      return true;
    }
    f->count[id] = n;
    f->present |= 1u << id;
    return true;
  };
  return scan_json(json, visit, error);
}

Status fill_tokens(ResponseShape shape, const DocFields& f, Tokens* t) {
  auto n = [&f](C c) { return f.count[c]; };
  auto need = [&f](C a, C b, const char* what) -> Status {
    if (f.has(a) && f.has(b)) return Status();
    return Status::invalid(std::string(what));
  };
  switch (shape) {
    case ResponseShape::kOpenAIChat:
      if (Status s = need(C::kPromptTokens, C::kCompletionTokens,
                          "an OpenAI chat completion without usage.prompt_tokens and "
                          "usage.completion_tokens");
          !s.ok())
        return s;
      t->input = n(C::kPromptTokens);
      t->cached = f.has(C::kPromptCached) ? n(C::kPromptCached) : n(C::kPromptCacheHit);
      t->output = n(C::kCompletionTokens);
      t->reasoning = n(C::kCompletionReasoning);
      break;
    case ResponseShape::kOpenAIResponses:
      if (Status s = need(C::kInputTokens, C::kOutputTokens,
                          "an OpenAI Responses answer without usage.input_tokens and "
                          "usage.output_tokens");
          !s.ok())
        return s;
      t->input = n(C::kInputTokens);
      t->cached = n(C::kInputCached);
      t->output = n(C::kOutputTokens);
      t->reasoning = n(C::kOutputReasoning);
      break;
    case ResponseShape::kAnthropicMessages:
      if (Status s = need(C::kInputTokens, C::kOutputTokens,
                          "an Anthropic message without usage.input_tokens and "
                          "usage.output_tokens");
          !s.ok())
        return s;
      t->cached = n(C::kCacheRead);
      t->cache_write = n(C::kCacheCreation);
      t->cache_write_1h = n(C::kCacheCreation1h);
      t->input = n(C::kInputTokens) + t->cached + t->cache_write;
      t->output = n(C::kOutputTokens);
      break;
    case ResponseShape::kGemini:
      if (!f.has(C::kGPrompt))
        return Status::invalid("a Gemini answer without usageMetadata.promptTokenCount");
      t->input = n(C::kGPrompt) + n(C::kGToolUse);
      t->cached = n(C::kGCached);
      t->reasoning = n(C::kGThoughts);
      t->output = n(C::kGCandidates) + t->reasoning;
      break;
  }
  if (Status s = validate_tokens(*t); !s.ok())
    return Status::invalid("the response's usage does not add up: " + s.message());
  return Status();
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::optional<ResponseShape> shape_of(const DocFields& f) {
  if (f.has_usage_metadata || f.has_candidates) return ResponseShape::kGemini;
  if (f.type == "message" || ((f.has(C::kCacheRead) || f.has(C::kCacheCreation)) &&
                              f.has(C::kInputTokens) && f.object != "response"))
    return ResponseShape::kAnthropicMessages;
  if (f.object == "response" || f.has(C::kInputTokens)) return ResponseShape::kOpenAIResponses;
  if (f.has_choices || f.has(C::kPromptTokens) || starts_with(f.object, "chat.completion") ||
      starts_with(f.object, "text_completion"))
    return ResponseShape::kOpenAIChat;
  return std::nullopt;
}

Status usage_from_fields(const DocFields& f, Usage* out) {
  if (!f.bad.empty()) return Status::invalid("the response's " + f.bad);
  const auto shape = shape_of(f);
  if (!f.error.empty() && (!shape || f.present == 0))
    return Status::invalid("the body is an error response, not an answer: " + f.error);
  if (!shape)
    return Status::invalid(std::string("expected a response from ") + kExpected +
                           "; this JSON has none of their fields (usage, usageMetadata, choices)");
  out->shape = *shape;
  out->model = f.model;
  return fill_tokens(*shape, f, &out->tokens);
}

}  // namespace detail

const char* response_shape_name(ResponseShape shape) {
  switch (shape) {
    case ResponseShape::kOpenAIChat: return "openai_chat";
    case ResponseShape::kOpenAIResponses: return "openai_responses";
    case ResponseShape::kAnthropicMessages: return "anthropic_messages";
    case ResponseShape::kGemini: return "gemini";
  }
  return "unknown";
}

Result<Usage> usage_from_response(std::string_view provider, std::string_view body) {
  using namespace detail;
  if (body.size() > kMaxResponseBytes)
    return Status::invalid("the response body is " + std::to_string(body.size()) +
                           " bytes, more than the 16 MiB limit");
  std::string_view rest = body;
  if (starts_with(rest, "\xEF\xBB\xBF")) rest.remove_prefix(3);
  while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\n' || rest[0] == '\r' || rest[0] == '\t'))
    rest.remove_prefix(1);
  Usage u;
  Status s;
  if (rest.empty()) {
    return Status::invalid(std::string("the response body is empty; expected a response from ") +
                           kExpected);
  } else if (rest[0] == '{') {
    DocFields f;
    std::string error;
    if (!scan_fields(rest, 0, &f, &error))
      return Status::invalid("the response body is not valid JSON (" + error +
                             "); expected a response from " + kExpected);
    s = usage_from_fields(f, &u);
  } else if (rest[0] == '[') {
    s = usage_from_stream(rest, true, &u);
  } else if (starts_with(rest, "data:") || starts_with(rest, "event:") || rest[0] == ':' ||
             starts_with(rest, "id:") || starts_with(rest, "retry:")) {
    s = usage_from_stream(rest, false, &u);
  } else {
    JsonScalar head{JsonScalar::kString, rest.substr(0, 40), false};
    return Status::invalid(std::string("expected a JSON response body or an SSE stream from ") +
                           kExpected + ", got " + shown_scalar(head));
  }
  if (!s.ok()) return s;
  if (!provider.empty()) {
    u.provider = std::string(provider);
  } else {
    static constexpr const char* kOwn[] = {"openai", "openai", "anthropic", "gemini"};
    u.provider = kOwn[static_cast<size_t>(u.shape)];
  }
  return u;
}

}  // namespace agentburn::pricing
