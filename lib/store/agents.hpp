// The agent registry: (name, projectId) -> id, kept in <buffer root>/agents.json so that
// every process on the root registers an agent once, and provisional ids handed out offline
// map to the server's ids once the server has registered them.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "agentburn/event.hpp"
#include "agentburn/status.hpp"

namespace agentburn::detail {

inline constexpr const char* kProvisionalPrefix = "ab-local-";

struct AgentRecord {
  std::string id;         // the server's id, or a provisional one
  bool provisional = false;
  std::string server_id;  // for a provisional record, once registered
};

class AgentRegistry {
 public:
  explicit AgentRegistry(std::string root) : path_(std::move(root) + "/agents.json") {}

  std::optional<AgentRecord> lookup(const Agent& agent) const;
  // Adds or replaces the record of `agent`.
  Status remember(const Agent& agent, const AgentRecord& record);
  // The server's id for a provisional id, once known.
  std::optional<std::string> resolve(const std::string& provisional_id) const;
  // The agent a provisional id was handed out for.
  std::optional<Agent> agent_of(const std::string& provisional_id) const;
  Status set_server_id(const std::string& provisional_id, const std::string& server_id);

 private:
  std::string path_;
  mutable std::mutex mu_;
};

}  // namespace agentburn::detail
