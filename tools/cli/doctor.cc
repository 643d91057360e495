// agentburn doctor: can this machine deliver? One line per check, OK or what to fix.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "http_get.hpp"
#include "output.hpp"
#include "store/root.hpp"

namespace agentburn::cli {

namespace {

struct DoctorOptions {
  Common common;
  std::string endpoint, key_file, ca_bundle;
  int max_skew_s = 60;
};

struct Check {
  std::string name;
  bool ok = false;
  std::string detail;
  bool skipped = false;  // could not be checked; not a failure
};

Check check_root(const std::string& root) {
  Check c{"buffer root", false, ""};
  struct stat st;
  if (stat(root.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      c.detail = "cannot read " + root + ": " + std::strerror(errno);
      return c;
    }
    c.ok = true;
    c.detail = root + " does not exist yet; the first client creates it (mode 0700)";
    return c;
  }
  Status s = detail::check_private_folder("the buffer root", root, st);
  if (!s.ok()) {
    c.detail = s.message();
    return c;
  }
  if (access(root.c_str(), W_OK | X_OK) != 0) {
    c.detail = root + " is not writable by this user: " + std::strerror(errno);
    return c;
  }
  struct statvfs fs;
  if (statvfs(root.c_str(), &fs) != 0) {
    c.detail = "cannot read the free space of " + root + ": " + std::strerror(errno);
    return c;
  }
  const std::uint64_t free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  c.detail = root + ": private to this user, writable, " + bytes(free_bytes) + " free";
  c.ok = free_bytes >= (256u << 20);
  if (!c.ok) c.detail += "; free some space: under 256 MiB, clients soon refuse events";
  return c;
}

bool host_and_port(const std::string& url, std::string* host, std::string* port) {
  CURLU* u = curl_url();
  bool ok = curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK;
  char* h = nullptr;
  char* p = nullptr;
  ok = ok && curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
       curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK;
  if (ok) {
    *host = h;
    *port = p;
    if (host->size() > 2 && host->front() == '[') *host = host->substr(1, host->size() - 2);
  }
  curl_free(h);
  curl_free(p);
  curl_url_cleanup(u);
  return ok;
}

std::string address_text(const addrinfo* a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  const void* where =
      a->ai_family == AF_INET
          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
  inet_ntop(a->ai_family, where, buf, sizeof buf);
  return buf;
}

// Connects to the first address that answers within 5 s each.
Check check_tcp(const addrinfo* list, const std::string& port) {
  Check c{"tcp", false, ""};
  for (const addrinfo* a = list; a; a = a->ai_next) {
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    int err = rc == 0 ? 0 : errno;
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      socklen_t len = sizeof err;
      err = poll(&p, 1, 5000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0
                ? err
                : ETIMEDOUT;
    }
    close(fd);
    if (err == 0) {
      c.ok = true;
      c.detail = "connected to " + address_text(a) + " port " + port;
      return c;
    }
    c.detail += (c.detail.empty() ? "" : "; ") + address_text(a) + " port " + port + ": " +
                std::strerror(err);
  }
  c.detail += "; is the server running and the port open to this machine?";
  return c;
}

void add_server_checks(const DoctorOptions& o, std::vector<Check>* checks) {
  std::string base;
  Status s = server_url("--endpoint", o.endpoint, &base);
  if (!s.ok()) return checks->push_back({"endpoint", false, s.message()});
  std::string host, port;
  if (!host_and_port(base, &host, &port)) {
    return checks->push_back({"endpoint", false, "cannot read the host of " + base});
  }
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    return checks->push_back({"dns", false, host + " does not resolve: " + gai_strerror(rc)});
  }
  checks->push_back({"dns", true, host + " -> " + address_text(list)});
  Check tcp = check_tcp(list, port);
  freeaddrinfo(list);
  checks->push_back(tcp);
  if (!tcp.ok) return;
  std::string key;
  s = api_key(o.key_file, &key);
  if (!s.ok()) return checks->push_back({"key", false, s.message()});
  GetOptions g;
  g.api_key = key;
  g.cert_info = base.rfind("https://", 0) == 0;
  g.ca_bundle = o.ca_bundle;
  GetResult r = http_get(base + "/api/agents", g);
  if (g.cert_info) {
    if (r.status == 0) return checks->push_back({"tls", false, r.error});
    std::time_t expires = curl_getdate(r.cert_expiry.c_str(), nullptr);
    long days = expires > 0 ? static_cast<long>((expires - std::time(nullptr)) / 86400) : -1;
    checks->push_back({"tls", days >= 14,
                       "certificate" + r.cert_subject + " trusted, expires" + r.cert_expiry +
                           (days >= 14 ? "" : " (in under 14 days: renew it)")});
  } else if (r.status == 0) {
    return checks->push_back({"http", false, r.error});
  } else {
    checks->push_back({"tls", true, "plain http to a loopback address: no TLS needed"});
  }
  if (key.empty()) {
    checks->push_back({"key", false, "no API key: set AGENTBURN_API_KEY or give --api-key-file"});
  } else if (r.status == 200) {
    checks->push_back({"key", true, "GET /api/agents accepted the key"});
  } else {
    checks->push_back(
        {"key", false,
         "GET /api/agents answered HTTP " + std::to_string(r.status) +
             (r.status == 401 || r.status == 403 ? ": the server refused the key; check it"
                                                 : ": " + r.body.substr(0, 200))});
  }
  std::time_t server_time = r.date.empty() ? -1 : curl_getdate(r.date.c_str(), nullptr);
  if (server_time <= 0) {
    checks->push_back({"clock", true,
                       "not checked: the server sent no Date header to compare clocks with", true});
  } else {
    long skew = static_cast<long>(std::time(nullptr) - server_time);
    checks->push_back(
        {"clock", std::labs(skew) <= o.max_skew_s,
         "this machine's clock is " + std::to_string(skew) + " s off the server's" +
             (std::labs(skew) <= o.max_skew_s
                  ? ""
                  : "; fix it (NTP): events' timestamps and day totals depend on it")});
  }
}

int run_doctor(const DoctorOptions& o) {
  std::vector<Check> checks;
  checks.push_back(check_root(o.common.resolved_root()));
  if (!o.endpoint.empty()) add_server_checks(o, &checks);
  bool all = true;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : checks) {
    all = all && c.ok;
    if (o.common.json) {
      out.push_back(
          {{"check", c.name}, {"ok", c.ok}, {"skipped", c.skipped}, {"detail", c.detail}});
    } else {
      std::printf("%-4s  %-11s  %s\n",
                  c.skipped ? "SKIP"
                  : c.ok    ? "OK"
                            : "FAIL",
                  c.name.c_str(), c.detail.c_str());
    }
  }
  if (o.common.json) std::printf("%s\n", out.dump(2).c_str());
  return all ? kOk : kFailure;
}

}  // namespace

void add_doctor(CLI::App& app, Command* run) {
  auto o = std::make_shared<DoctorOptions>();
  CLI::App* cmd = add_command(app, run, "doctor",
                              "Checks the buffer root and, with --endpoint, name resolution, "
                              "TCP, TLS, the API key and the clock against the server",
                              o, run_doctor);
  cmd->add_option("--endpoint", o->endpoint, "Base URL of the AgentBurn server");
  add_key_file(cmd, &o->key_file);
  add_ca_bundle(cmd, &o->ca_bundle);
  cmd->add_option("--max-clock-skew", o->max_skew_s, "Seconds of clock difference allowed (60)")
      ->check(CLI::NonNegativeNumber);
  set_examples(
      cmd,
      "  agentburn doctor\n"
      "  AGENTBURN_API_KEY=... agentburn doctor --endpoint https://agentburn.example.com\n");
}

}  // namespace agentburn::cli
