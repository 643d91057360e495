#include "store/agents.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "event/codec.hpp"
#include "store/fork_safety.hpp"
#include "store/root.hpp"

namespace agentburn::detail {

using json = nlohmann::json;

namespace {

// The root's directory descriptor, checked (owner, mode) by open_root(): the registry's files
// are opened relative to it and never through a link.
class RootDir {
 public:
  explicit RootDir(const std::string& root) { status_ = open_root(root, &fd_); }
  ~RootDir() {
    if (fd_ >= 0) close(fd_);
  }
  const Status& status() const { return status_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  Status status_;
};

// Opens `name` in the root without following a link, and checks that it is a regular file
// of the current user (a file planted by another user is never read or written).
int open_in_root(const RootDir& root, const std::string& name, int flags, mode_t mode,
                 const std::string& path, Status* error) {
  int fd = openat(root.fd(), name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    int e = errno;
    *error = Status::storage("cannot open " + path + ": " +
                             (e == ELOOP ? std::string("it is a symbolic link, and links in the "
                                                       "buffer root are never followed")
                                         : std::string(std::strerror(e))));
    errno = e;
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
    close(fd);
    *error = Status::storage("cannot use " + path +
                             ": not a regular file of the current user; move it aside");
    errno = EPERM;
    return -1;
  }
  return fd;
}

// flock on agents.json.lock for the life of the object: read-modify-write across processes.
class FileLock {
 public:
  FileLock(const RootDir& root, const std::string& path) {
    fd_ = open_in_root(root, "agents.json.lock", O_RDWR | O_CREAT, 0600, path + ".lock",
                       &error_);
    if (fd_ < 0) return;
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      error_ = Status::storage("cannot lock " + path + ".lock: " + std::strerror(errno));
      close(fd_);
      fd_ = -1;
      return;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  const Status& error() const { return error_; }

 private:
  int fd_ = -1;
  Status error_;
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
Status load(const RootDir& root, const std::string& path, json* out) {
  json fresh = {{"version", 2}, {"agents", json::array()}};
  Status error;
  int fd = open_in_root(root, "agents.json", O_RDONLY, 0, path, &error);
  if (fd < 0) {
    if (errno != ENOENT) return error;
    *out = std::move(fresh);
    return Status();
  }
  std::string text;
  char chunk[65536];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return Status::storage("cannot read " + path + ": " + std::strerror(e));
    }
    text.append(chunk, static_cast<std::size_t>(n));
  }
  close(fd);
  json doc = json::parse(text, nullptr, false);
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

// Written to agents.json.tmp, made anew (O_EXCL: never an existing file or a link planted in
// its place), then renamed over agents.json. Called with the registry locked, so a .tmp found
// there is a leftover of a writer that died, and is removed.
Status save(const RootDir& root, const std::string& path, const json& doc) {
  const char* tmp_name = "agents.json.tmp";
  std::string tmp = path + ".tmp";
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 2; ++attempt) {
    fd = openat(root.fd(), tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                0600);
    if (fd < 0 && errno == EEXIST && attempt == 0) {
      unlinkat(root.fd(), tmp_name, 0);  // a link is removed, never followed
      continue;
    }
    if (fd < 0) return Status::storage("cannot write " + tmp + ": " + std::strerror(errno));
  }
  std::string text = doc.dump(1);
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            fsync(fd) == 0;
  int saved_errno = errno;
  close(fd);
  if (!ok || renameat(root.fd(), tmp_name, root.fd(), "agents.json") != 0) {
    if (ok) saved_errno = errno;
    unlinkat(root.fd(), tmp_name, 0);
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
Status transact(const std::string& root_path, const std::string& path, std::mutex& mu,
                const std::function<Status(json&, bool*)>& step) {
  ForkSection section;  // a child after fork() finds neither lock held
  std::lock_guard<std::mutex> g(mu);
  RootDir root(root_path);
  if (!root.status().ok()) return root.status();
  FileLock lock(root, path);
  if (!lock.ok()) return lock.error();
  json doc;
  Status s = load(root, path, &doc);
  if (!s.ok()) return s;
  bool changed = false;
  s = step(doc, &changed);
  if (s.ok() && changed) s = save(root, path, doc);
  return s;
}

}  // namespace

Status AgentRegistry::server_id(const Agent& agent, const std::string& endpoint,
                                std::optional<std::string>* id) {
  const std::string ep = trim_endpoint(endpoint);
  *id = std::nullopt;
  return transact(root_, path_, mu_, [&](json& doc, bool* changed) {
    if (json* e = find_agent(doc, agent)) *id = id_at(*e, ep, changed);
    return Status();
  });
}

Status AgentRegistry::remember_server_id(const Agent& agent, const std::string& endpoint,
                                         const std::string& id, std::string* kept) {
  const std::string ep = trim_endpoint(endpoint);
  return transact(root_, path_, mu_, [&](json& doc, bool* changed) {
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
  return transact(root_, path_, mu_, [&](json& doc, bool* changed) {
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
  return transact(root_, path_, mu_, [&](json& doc, bool* changed) {
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
  return transact(root_, path_, mu_, [&](json& doc, bool* changed) {
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
