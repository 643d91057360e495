// Fuzz target: an agent in JSON ({"name", "description", "projectId", "tags"}), as the
// library reads it for register_agent_json and the server for POST /api/agents.
//
// Properties: a refusal has a UTF-8 message starting with the field it names; what is
// accepted is JSON and validates; encode_agent's text parses back to the same agent and
// encodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "event/codec.hpp"
#include "fuzz_support.hpp"

using agentburn::Agent;
using agentburn::detail::FieldError;
namespace codec = agentburn::detail;
using agentburn_fuzz::show;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Agent agent;
  FieldError err;
  if (!codec::parse_agent_json(input, &agent, &err)) {
    std::string ctx =
        "input: " + show(input) + "\nfield: " + show(err.field) + "\nmessage: " + show(err.message);
    FUZZ_CHECK(!err.message.empty(), ctx);
    FUZZ_CHECK(codec::is_valid_utf8(err.message) && codec::is_valid_utf8(err.field), ctx);
    if (!err.field.empty()) FUZZ_CHECK(err.message.rfind(err.field + ": ", 0) == 0, ctx);
    return 0;
  }
  // A raw NUL is never JSON, but the parser takes it for the end of the input and ignores
  // what follows (README.md, known issues).
  if (FUZZ_KNOWN_ISSUE(input.find('\0') != std::string_view::npos, "nul-ends-input",
                       "accepted: " + show(input)))
    return 0;
  FUZZ_CHECK(nlohmann::json::accept(input), "accepted: " + show(input));
  FUZZ_CHECK(codec::validate_agent(agent, &err), "input: " + show(input) + "\n" + err.message);

  const std::string text = codec::encode_agent(agent);
  std::string ctx = "input: " + show(input) + "\nencoded: " + show(text);
  FUZZ_CHECK(codec::is_valid_utf8(text), ctx);
  Agent back;
  FUZZ_CHECK(codec::parse_agent_json(text, &back, &err), ctx + "\nerror: " + err.message);
  FUZZ_CHECK(back.name == agent.name && back.description == agent.description &&
                 back.project_id == agent.project_id && back.tags == agent.tags,
             ctx);
  FUZZ_CHECK(codec::encode_agent(back) == text, ctx);
  return 0;
}
