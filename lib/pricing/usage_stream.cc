// Reading usage out of a streamed answer: the Server-Sent Events transcript, event by event,
// keeping the usage each provider sends last; a stream cut before it is an error.
#include <string>

#include "pricing/usage_internal.hpp"

namespace agentburn::pricing::detail {
namespace {

using C = DocFields::Count;

struct StreamState {
  bool have_shape = false;
  ResponseShape shape = ResponseShape::kOpenAIChat;
  DocFields usage;           // the counts kept so far
  std::string model;
  bool usage_seen = false;   // chat: a usage chunk; Anthropic: a message_delta; Responses:
                             // response.completed; Gemini: usageMetadata
  bool start_seen = false;   // Anthropic: message_start
  bool finish_seen = false;  // Gemini: a candidate's finishReason
  size_t events = 0;
};

bool anthropic_event(std::string_view type) {
  return type == "message_start" || type == "message_delta" || type == "message_stop" ||
         type == "content_block_start" || type == "content_block_delta" ||
         type == "content_block_stop" || type == "ping";
}

// Replaces the kept counts by `f`'s (all of them), or overlays only those `f` gives.
void take_counts(const DocFields& f, DocFields* kept, bool overlay) {
  if (!overlay) {
    kept->present = 0;
  }
  for (int i = 0; i < C::kCountKinds; ++i)
    if (f.present & (1u << i)) {
      kept->count[i] = f.count[i];
      kept->present |= 1u << i;
    }
}

Status on_event(std::string_view data, StreamState* st) {
  if (data == "[DONE]") return Status();
  ++st->events;
  const std::string where = "stream event " + std::to_string(st->events) + ": ";
  DocFields f;
  std::string error;
  if (!scan_fields(data, 0, &f, &error))
    return Status::invalid(where + "its data is not valid JSON (" + error + ")");
  if (!f.bad.empty()) return Status::invalid(where + f.bad);
  std::optional<ResponseShape> shape;
  if (anthropic_event(f.type)) shape = ResponseShape::kAnthropicMessages;
  else if (starts_with(f.type, "response.")) shape = ResponseShape::kOpenAIResponses;
  else if (f.type != "error") shape = shape_of(f);
  if (!f.error.empty() && (f.type == "error" || !shape || f.present == 0))
    return Status::invalid("the stream reported an error: " + f.error);
  if (!shape) return Status();  // an event of no shape we know, e.g. a keep-alive
  if (st->have_shape && *shape != st->shape)
    return Status::invalid(where + "a " + response_shape_name(*shape) + " event in a " +
                           response_shape_name(st->shape) + " stream");
  st->have_shape = true;
  st->shape = *shape;
  if (!f.model.empty()) st->model = f.model;
  switch (*shape) {
    case ResponseShape::kOpenAIChat:
      if (f.has(C::kPromptTokens) || f.has(C::kCompletionTokens)) {
        take_counts(f, &st->usage, false);
        st->usage_seen = true;
      }
      break;
    case ResponseShape::kAnthropicMessages:
      if (f.type == "message_start") {
        take_counts(f, &st->usage, false);
        st->start_seen = true;
      } else if (f.type == "message_delta" && f.has(C::kOutputTokens)) {
        take_counts(f, &st->usage, true);  // cumulative; may restate the input counts
        st->usage_seen = true;
      }
      break;
    case ResponseShape::kOpenAIResponses:
      if ((f.type == "response.completed" || f.type == "response.incomplete" ||
           f.type == "response.failed") &&
          f.has(C::kInputTokens)) {
        take_counts(f, &st->usage, false);
        st->usage_seen = true;
      }
      break;
    case ResponseShape::kGemini:
      if (f.has_usage_metadata && f.present != 0) {
        take_counts(f, &st->usage, false);
        st->usage_seen = true;
      }
      if (f.finish_reason) st->finish_seen = true;
      break;
  }
  return Status();
}

Status finish(const StreamState& st, Usage* out) {
  if (!st.have_shape)
    return Status::invalid(std::string("a stream with no event from ") + kExpected);
  switch (st.shape) {
    case ResponseShape::kOpenAIChat:
      if (!st.usage_seen)
        return Status::invalid(
            "an OpenAI chat stream without its usage chunk: the stream was cut before its end, "
            "or the request did not ask for usage (stream_options: {\"include_usage\": true})");
      break;
    case ResponseShape::kAnthropicMessages:
      if (!st.start_seen)
        return Status::invalid("an Anthropic stream without its message_start event (which "
                               "holds the input tokens)");
      if (!st.usage_seen)
        return Status::invalid("an Anthropic stream cut before its message_delta event (which "
                               "holds the output tokens)");
      break;
    case ResponseShape::kOpenAIResponses:
      if (!st.usage_seen)
        return Status::invalid("a Responses stream cut before its response.completed event "
                               "(which holds the usage)");
      break;
    case ResponseShape::kGemini:
      if (!st.usage_seen) return Status::invalid("a Gemini stream without usageMetadata");
      if (!st.finish_seen)
        return Status::invalid("a Gemini stream cut before its last chunk (no candidate has a "
                               "finishReason, so the usage is not final)");
      break;
  }
  out->shape = st.shape;
  out->model = st.model;
  out->streamed = true;
  return fill_tokens(st.shape, st.usage, &out->tokens);
}

}  // namespace

Status usage_from_stream(std::string_view body, bool json_array, Usage* out) {
  StreamState st;
  if (json_array) {
    // streamGenerateContent without alt=sse: one JSON array of Gemini chunks.
    DocFields f;
    std::string error;
    if (!scan_fields(body, 1, &f, &error))
      return Status::invalid("the response body is not valid JSON (" + error + ")");
    if (!f.bad.empty()) return Status::invalid("the response's " + f.bad);
    if (!f.error.empty()) return Status::invalid("the stream reported an error: " + f.error);
    if (!f.has_usage_metadata && !f.has_candidates)
      return Status::invalid("a JSON array that is not a Gemini stream (no usageMetadata)");
    st.have_shape = true;
    st.shape = ResponseShape::kGemini;
    st.model = f.model;
    st.usage = f;
    st.usage_seen = f.present != 0;
    st.finish_seen = f.finish_reason;
    return finish(st, out);
  }
  std::string joined;          // the data of an event written over several lines
  std::string_view data;       // the current event's data
  int data_lines = 0;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t nl = body.find('\n', pos);
    const bool last = nl == std::string_view::npos;
    std::string_view line = body.substr(pos, last ? std::string_view::npos : nl - pos);
    pos = last ? body.size() + 1 : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      if (data_lines > 0)
        if (Status s = on_event(data, &st); !s.ok()) return s;
      data_lines = 0;
      continue;
    }
    if (line[0] == ':') continue;  // a comment
    const size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    if (field != "data") continue;  // event:, id:, retry:
    if (data_lines == 0) {
      data = value;
    } else {
      if (data_lines == 1) joined.assign(data);
      joined += '\n';
      joined += value;
      data = joined;
    }
    ++data_lines;
  }
  if (data_lines > 0)
    if (Status s = on_event(data, &st); !s.ok()) return s;
  return finish(st, out);
}

}  // namespace agentburn::pricing::detail
