#include "store/agents.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "event/codec.hpp"
#include "store/fork_safety.hpp"

namespace agentburn::detail {

using json = nlohmann::json;

namespace {

// flock on <path>.lock for the life of the object: read-modify-write across processes.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      error_ = errno;
      return;
    }
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      error_ = errno;
      close(fd_);
      fd_ = -1;
      return;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  int error() const { return error_; }

 private:
  int fd_ = -1;
  int error_ = 0;
};

// A string member, or "" when it is missing or not a string (the file may have been edited).
std::string text_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string trim_endpoint(const std::string& endpoint) {
  std::string e = endpoint;
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

bool same_agent(const json& entry, const std::string& name, const std::string& project) {
  return text_of(entry, "name") == name && text_of(entry, "projectId") == project;
}

// An entry of version 2 from one of version 1: {name, projectId, id, provisional, serverId,
// agent}. Its server id was kept for whatever endpoint; "legacyServerId" holds it until the
// first endpoint that asks claims it.
json from_v1(const json& e) {
  json out = {{"name", text_of(e, "name")},
              {"projectId", text_of(e, "projectId")},
              {"aliases", json::array()},
              {"servers", json::object()}};
  if (e.contains("agent")) out["agent"] = e["agent"];
  std::string id = text_of(e, "id"), server = text_of(e, "serverId");
  auto provisional = e.find("provisional");
  if (provisional != e.end() && provisional->is_boolean() && provisional->get<bool>()) {
    if (!id.empty()) out["provisional"] = id;
  } else if (server.empty()) {
    server = id;
  }
  if (!server.empty()) out["legacyServerId"] = server;
  return out;
}

// Reads the registry, in version 2 whatever version the file has. Entries for one agent are
// merged: the first keeps its provisional id, later ones become aliases.
// A file that is there but cannot be read is an error, never replaced: the provisional ids
// in it are what events on disk carry.
Status load(const std::string& path, json* out) {
  json fresh = {{"version", 2}, {"agents", json::array()}};
  errno = 0;
  std::ifstream in(path);
  if (!in) {
    if (errno != ENOENT) {
      return Status::storage("cannot read " + path + ": " + std::strerror(errno));
    }
    *out = std::move(fresh);
    return Status();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  json doc = json::parse(ss.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("agents") ||
      !doc["agents"].is_array()) {
    return Status::storage(path + " is not an agent registry this library can read (not JSON "
                           "with an \"agents\" array); move it aside to start a new one");
  }
  bool v1 = !doc.contains("version") || !doc["version"].is_number_integer() ||
            doc["version"].get<std::int64_t>() < 2;
  json& agents = fresh["agents"];
  for (const auto& raw : doc["agents"]) {
    if (!raw.is_object()) continue;
    json e = v1 ? from_v1(raw) : raw;
    if (e.contains("provisional") && !e["provisional"].is_string()) e.erase("provisional");
    if (!e["aliases"].is_array()) e["aliases"] = json::array();
    if (!e["servers"].is_object()) e["servers"] = json::object();
    json* same = nullptr;
    for (auto& k : agents) {
      if (same_agent(k, text_of(e, "name"), text_of(e, "projectId"))) same = &k;
    }
    if (!same) {
      agents.push_back(std::move(e));
      continue;
    }
    if (e.contains("provisional") && e["provisional"].is_string()) {
      if (!same->contains("provisional")) {
        (*same)["provisional"] = e["provisional"];
      } else if ((*same)["provisional"] != e["provisional"]) {
        (*same)["aliases"].push_back(e["provisional"]);
      }
    }
    for (const auto& a : e["aliases"]) (*same)["aliases"].push_back(a);
    for (const auto& [endpoint, id] : e["servers"].items()) {
      if (!(*same)["servers"].contains(endpoint)) (*same)["servers"][endpoint] = id;
    }
    if (!same->contains("agent") && e.contains("agent")) (*same)["agent"] = e["agent"];
    if (!same->contains("legacyServerId") && e.contains("legacyServerId")) {
      (*same)["legacyServerId"] = e["legacyServerId"];
    }
  }
  *out = std::move(fresh);
  return Status();
}

Status save(const std::string& path, const json& doc) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::storage("cannot write " + tmp + ": " + std::strerror(errno));
  std::string text = doc.dump(1);
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            fsync(fd) == 0;
  int saved_errno = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved_errno = errno;
    return Status::storage("cannot write " + path + ": " + std::strerror(saved_errno));
  }
  return Status();
}

// The server id of an entry at `endpoint`; a version 1 id is claimed by the first endpoint
// that asks (`*changed` then).
std::optional<std::string> id_at(json& entry, const std::string& endpoint, bool* changed) {
  json& servers = entry["servers"];
  auto it = servers.find(endpoint);
  if (it != servers.end() && it->is_string()) return it->get<std::string>();
  if (entry.contains("legacyServerId") && entry["legacyServerId"].is_string()) {
    std::string id = entry["legacyServerId"].get<std::string>();
    servers[endpoint] = id;
    entry.erase("legacyServerId");
    *changed = true;
    return id;
  }
  return std::nullopt;
}

json* find_agent(json& doc, const Agent& a) {
  for (auto& e : doc["agents"]) {
    if (same_agent(e, a.name, a.project_id.value_or(""))) return &e;
  }
  return nullptr;
}

json* find_provisional(json& doc, const std::string& id) {
  for (auto& e : doc["agents"]) {
    if (text_of(e, "provisional") == id) return &e;
    for (const auto& a : e["aliases"]) {
      if (a == id) return &e;
    }
  }
  return nullptr;
}

json& add_agent(json& doc, const Agent& a) {
  doc["agents"].push_back({{"name", a.name},
                           {"projectId", a.project_id.value_or("")},
                           {"agent", json::parse(encode_agent(a))},
                           {"aliases", json::array()},
                           {"servers", json::object()}});
  return doc["agents"].back();
}

// Runs `step` on the registry with the file locked, and saves it when the step changed it.
Status transact(const std::string& path, std::mutex& mu,
                const std::function<Status(json&, bool*)>& step) {
  ForkSection section;  // a child after fork() finds neither lock held
  std::lock_guard<std::mutex> g(mu);
  FileLock lock(path);
  if (!lock.ok()) {
    return Status::storage("cannot lock " + path + ".lock: " + std::strerror(lock.error()));
  }
  json doc;
  Status s = load(path, &doc);
  if (!s.ok()) return s;
  bool changed = false;
  s = step(doc, &changed);
  if (s.ok() && changed) s = save(path, doc);
  return s;
}

}  // namespace

Status AgentRegistry::server_id(const Agent& agent, const std::string& endpoint,
                                std::optional<std::string>* id) {
  const std::string ep = trim_endpoint(endpoint);
  *id = std::nullopt;
  return transact(path_, mu_, [&](json& doc, bool* changed) {
    if (json* e = find_agent(doc, agent)) *id = id_at(*e, ep, changed);
    return Status();
  });
}

Status AgentRegistry::remember_server_id(const Agent& agent, const std::string& endpoint,
                                         const std::string& id, std::string* kept) {
  const std::string ep = trim_endpoint(endpoint);
  return transact(path_, mu_, [&](json& doc, bool* changed) {
    json* e = find_agent(doc, agent);
    if (!e) e = &add_agent(doc, agent);
    if (auto known = id_at(*e, ep, changed)) {
      *kept = *known;
      return Status();
    }
    (*e)["servers"][ep] = id;
    *kept = id;
    *changed = true;
    return Status();
  });
}

Status AgentRegistry::provisional_id(const Agent& agent, const std::string& new_id,
                                     std::string* id) {
  return transact(path_, mu_, [&](json& doc, bool* changed) {
    json* e = find_agent(doc, agent);
    if (!e) e = &add_agent(doc, agent);
    if (e->contains("provisional") && (*e)["provisional"].is_string()) {
      *id = (*e)["provisional"].get<std::string>();
      return Status();
    }
    (*e)["provisional"] = new_id;
    *id = new_id;
    *changed = true;
    return Status();
  });
}

Status AgentRegistry::resolve(const std::string& provisional_id, const std::string& endpoint,
                              std::optional<Agent>* agent, std::optional<std::string>* server_id) {
  const std::string ep = trim_endpoint(endpoint);
  *agent = std::nullopt;
  *server_id = std::nullopt;
  return transact(path_, mu_, [&](json& doc, bool* changed) {
    json* e = find_provisional(doc, provisional_id);
    if (!e) return Status();
    *server_id = id_at(*e, ep, changed);
    if (e->contains("agent")) {
      Agent a;
      FieldError err;
      if (parse_agent_value(&(*e)["agent"], &a, &err)) *agent = std::move(a);
    }
    return Status();
  });
}

Status AgentRegistry::set_server_id(const std::string& provisional_id,
                                    const std::string& endpoint, const std::string& server_id,
                                    std::string* kept) {
  const std::string ep = trim_endpoint(endpoint);
  return transact(path_, mu_, [&](json& doc, bool* changed) {
    json* e = find_provisional(doc, provisional_id);
    if (!e) {
      return Status::storage("no agent with provisional id " + provisional_id + " in " + path_);
    }
    if (auto known = id_at(*e, ep, changed)) {
      *kept = *known;
      return Status();
    }
    (*e)["servers"][ep] = server_id;
    *kept = server_id;
    *changed = true;
    return Status();
  });
}

}  // namespace agentburn::detail
