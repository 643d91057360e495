// Agents: parsing, validation and the wire encoding of an agent (name, description, tags).
#include <string>

#include "event/codec_internal.hpp"

namespace agentburn::detail {

bool parse_agent_value(const void* value, Agent* out, FieldError* err) {
  const json& v = *static_cast<const json*>(value);
  if (!v.is_object()) return fail(err, "", "an agent must be a JSON object, got " + describe(v));
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    const json& f = it.value();
    if (k == "name") {
      if (!get_string(f, "name", &out->name, err)) return false;
    } else if (k == "description" || k == "projectId") {
      if (f.is_null()) continue;
      auto& slot = k == "description" ? out->description : out->project_id;
      slot.emplace();
      if (!get_string(f, k.c_str(), &*slot, err)) return false;
    } else if (k == "tags") {
      if (f.is_null()) continue;
      if (!f.is_array()) return fail(err, "tags", "must be an array of strings, got " + describe(f));
      for (std::size_t i = 0; i < f.size(); ++i) {
        if (!f[i].is_string()) {
          return fail(err, "tags", "element " + std::to_string(i) + " must be a string, got " +
                                       describe(f[i]));
        }
        out->tags.push_back(f[i].get<std::string>());
      }
    } else {
      return fail(err, k, unknown_field_message(k, kAgentFields));
    }
  }
  return validate_agent(*out, err);
}

bool parse_agent_json(std::string_view text, Agent* out, FieldError* err) {
  if (text.size() > kMaxEventBytes) {
    return fail(err, "", "the agent is " + std::to_string(text.size()) +
                             " bytes; the limit is " + std::to_string(kMaxEventBytes));
  }
  json doc;
  return parse_checked(text, &doc, err) && parse_agent_value(&doc, out, err);
}

bool validate_agent(const Agent& a, FieldError* err) {
  if (a.name.empty()) return fail(err, "name", "is required");
  if (!check_text(a.name, "name", kMaxIdBytes, err)) return false;
  if (a.description) {
    if (a.description->size() > kMaxDescriptionBytes) {
      return fail(err, "description", "is " + std::to_string(a.description->size()) +
                                          " bytes; the limit is " +
                                          std::to_string(kMaxDescriptionBytes));
    }
    if (!is_valid_utf8(*a.description)) return fail(err, "description", "is not valid UTF-8");
  }
  if (a.project_id && !check_text(*a.project_id, "projectId", kMaxIdBytes, err)) return false;
  if (a.tags.size() > kMaxTags) {
    return fail(err, "tags", "has " + std::to_string(a.tags.size()) + " tags; the limit is " +
                                 std::to_string(kMaxTags));
  }
  for (const auto& t : a.tags) {
    if (!check_text(t, "tags", kMaxIdBytes, err)) return false;
  }
  return true;
}

std::string encode_agent(const Agent& a) {
  std::string out = "{\"name\":";
  append_json_string(a.name, &out);
  append_opt_string("description", a.description, &out);
  append_opt_string("projectId", a.project_id, &out);
  out.append(",\"tags\":[");
  for (std::size_t i = 0; i < a.tags.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(a.tags[i], &out);
  }
  out.append("]}");
  return out;
}

}  // namespace agentburn::detail
