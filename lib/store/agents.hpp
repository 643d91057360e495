// The agent registry: what each (name, projectId) is called on each server, kept in
// <buffer root>/agents.json so that every process on the root registers an agent once per
// server, and the provisional ids handed out offline map to each server's id once that
// server has registered the agent.
//
// The files live in the root and are opened relative to its directory descriptor, without
// following links, after the root's owner and mode were checked (see open_root()).
//
// Every lookup-or-change is one step under the registry file's lock (flock on
// agents.json.lock), across threads and processes: two processes registering the same agent
// offline at once get the same provisional id.
//
// agents.json, version 2:
//   {"version": 2, "agents": [
//     {"name": "...", "projectId": "...", "agent": {the agent as registered},
//      "provisional": "ab-local-...",          the root's provisional id, once one was needed
//      "aliases": ["ab-local-...", ...],       other provisional ids once issued for it
//      "servers": {"<endpoint>": "<id>", ...}  the id each server gave it
//     }]}
// Version 1 files (one id for whatever endpoint) are read too: their server ids belong to
// the first endpoint that asks for one, as they did before.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "agentburn/event.hpp"
#include "agentburn/status.hpp"

namespace agentburn::detail {

inline constexpr const char* kProvisionalPrefix = "ab-local-";

class AgentRegistry {
 public:
  explicit AgentRegistry(std::string root) : root_(std::move(root)), path_(root_ + "/agents.json") {}

  // The id the server at `endpoint` gave `agent`, if it did.
  Status server_id(const Agent& agent, const std::string& endpoint,
                   std::optional<std::string>* id);
  // Records the id the server at `endpoint` gave `agent`. When another process recorded one
  // first, that one stands: *kept is the id to use either way.
  Status remember_server_id(const Agent& agent, const std::string& endpoint,
                            const std::string& id, std::string* kept);
  // The root's provisional id for `agent`, created if it has none, in one step.
  Status provisional_id(const Agent& agent, const std::string& new_id, std::string* id);

  // For delivery: the agent a provisional id (or an alias of one) was handed out for, and the
  // id the server at `endpoint` gave it, if any.
  Status resolve(const std::string& provisional_id, const std::string& endpoint,
                 std::optional<Agent>* agent, std::optional<std::string>* server_id);
  // Records the id the server at `endpoint` gave the agent of `provisional_id`; *kept as in
  // remember_server_id.
  Status set_server_id(const std::string& provisional_id, const std::string& endpoint,
                       const std::string& server_id, std::string* kept);

 private:
  std::string root_;
  std::string path_;
  std::mutex mu_;  // the file lock excludes other processes, this mutex other threads
};

}  // namespace agentburn::detail
