#include "store/agents.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "event/codec.hpp"

namespace agentburn::detail {

using json = nlohmann::json;

namespace {

// flock on <path>.lock for the life of the object: read-modify-write across processes.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

json load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return json{{"version", 1}, {"agents", json::array()}};
  std::stringstream ss;
  ss << in.rdbuf();
  json doc = json::parse(ss.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("agents") ||
      !doc["agents"].is_array()) {
    return json{{"version", 1}, {"agents", json::array()}};
  }
  return doc;
}

Status save(const std::string& path, const json& doc) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::storage("cannot write " + tmp + ": " + std::strerror(errno));
  std::string text = doc.dump(1);
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::storage("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status();
}

bool same_agent(const json& entry, const Agent& a) {
  return entry.value("name", "") == a.name &&
         entry.value("projectId", "") == a.project_id.value_or("");
}

}  // namespace

std::optional<AgentRecord> AgentRegistry::lookup(const Agent& agent) const {
  std::lock_guard<std::mutex> g(mu_);
  FileLock lock(path_);
  json doc = load(path_);
  for (const auto& e : doc["agents"]) {
    if (!e.is_object() || !same_agent(e, agent)) continue;
    AgentRecord r;
    r.id = e.value("id", "");
    r.provisional = e.value("provisional", false);
    r.server_id = e.value("serverId", "");
    if (!r.id.empty()) return r;
  }
  return std::nullopt;
}

Status AgentRegistry::remember(const Agent& agent, const AgentRecord& record) {
  std::lock_guard<std::mutex> g(mu_);
  FileLock lock(path_);
  if (!lock.ok()) return Status::storage("cannot lock " + path_ + ".lock");
  json doc = load(path_);
  json entry = {{"name", agent.name},
                {"projectId", agent.project_id.value_or("")},
                {"id", record.id},
                {"provisional", record.provisional},
                {"agent", json::parse(encode_agent(agent))}};
  if (!record.server_id.empty()) entry["serverId"] = record.server_id;
  json& list = doc["agents"];
  for (auto& e : list) {
    if (e.is_object() && same_agent(e, agent)) {
      // Keep the provisional id: events on disk may still carry it.
      if (e.value("provisional", false) && !record.provisional) {
        e["serverId"] = record.id;
      } else {
        e = entry;
      }
      return save(path_, doc);
    }
  }
  list.push_back(entry);
  return save(path_, doc);
}

std::optional<std::string> AgentRegistry::resolve(const std::string& provisional_id) const {
  std::lock_guard<std::mutex> g(mu_);
  FileLock lock(path_);
  json doc = load(path_);
  for (const auto& e : doc["agents"]) {
    if (e.is_object() && e.value("id", "") == provisional_id && e.contains("serverId")) {
      return e.value("serverId", "");
    }
  }
  return std::nullopt;
}

std::optional<Agent> AgentRegistry::agent_of(const std::string& provisional_id) const {
  std::lock_guard<std::mutex> g(mu_);
  FileLock lock(path_);
  json doc = load(path_);
  for (const auto& e : doc["agents"]) {
    if (!e.is_object() || e.value("id", "") != provisional_id || !e.contains("agent")) continue;
    Agent a;
    FieldError err;
    if (parse_agent_value(&e["agent"], &a, &err)) return a;
  }
  return std::nullopt;
}

Status AgentRegistry::set_server_id(const std::string& provisional_id,
                                    const std::string& server_id) {
  std::lock_guard<std::mutex> g(mu_);
  FileLock lock(path_);
  if (!lock.ok()) return Status::storage("cannot lock " + path_ + ".lock");
  json doc = load(path_);
  for (auto& e : doc["agents"]) {
    if (e.is_object() && e.value("id", "") == provisional_id) {
      e["serverId"] = server_id;
      return save(path_, doc);
    }
  }
  return Status::storage("no agent with provisional id " + provisional_id + " in " + path_);
}

}  // namespace agentburn::detail
