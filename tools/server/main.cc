// agentburn-server: start-up, the HTTP server's settings, signals and shutdown.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <thread>

#include "flags.hpp"
#include "routes.hpp"
#include "store.hpp"

namespace agentburn::server {
namespace {

// Debian's compiled cpp-httplib listens with a backlog of 5, so a burst of clients
// connecting at once would see SYNs dropped and retried a second later. Linux applies a
// second listen() on a listening socket as a new backlog.
template <class Base>
class WideBacklog : public Base {
 public:
  using Base::Base;
  void widen_backlog() { ::listen(this->svr_sock_, SOMAXCONN); }
};

struct Listener {
  std::unique_ptr<httplib::Server> server;
  std::function<void()> widen_backlog;
};

bool readable(const std::string& path) {
  return std::ifstream(path).good();
}

bool make_listener(const Flags& flags, Listener* out, std::string* error) {
  if (flags.tls_cert.empty()) {
    auto plain = std::make_unique<WideBacklog<httplib::Server>>();
    out->widen_backlog = [s = plain.get()] { s->widen_backlog(); };
    out->server = std::move(plain);
    return true;
  }
  for (const std::string* path : {&flags.tls_cert, &flags.tls_key}) {
    if (!readable(*path)) {
      *error = "cannot read " + *path;
      return false;
    }
  }
  auto tls = std::make_unique<WideBacklog<httplib::SSLServer>>(flags.tls_cert.c_str(),
                                                               flags.tls_key.c_str());
  if (!tls->is_valid()) {
    *error = "cannot use the TLS certificate " + flags.tls_cert + " with the key " + flags.tls_key +
             " (PEM files of a matching certificate and private key expected)";
    return false;
  }
  out->widen_backlog = [s = tls.get()] { s->widen_backlog(); };
  out->server = std::move(tls);
  return true;
}

void configure(httplib::Server& server, const Flags& flags, Lifecycle& life) {
  int threads = flags.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Without it each keep-alive request waits ~40 ms on Nagle and the client's delayed ACK.
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(100000);
  server.set_keep_alive_timeout(flags.keep_alive_seconds);
  server.set_payload_max_length(kMaxBodyBytes);
  // Not cpp-httplib's default SO_REUSEPORT, which would let a second server bind a busy
  // port and share its connections instead of failing.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  bool verbose = flags.verbose;
  server.set_logger([&life, verbose](const httplib::Request& req, const httplib::Response& res) {
    life.written();
    if (verbose) {
      std::fprintf(stderr, "%s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
    }
  });
}

[[noreturn]] void quit(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  // Threads still parked on idle keep-alive connections or in sigwait are not joined:
  // everything they could touch is closed already.
  std::_Exit(code);
}

int run(int argc, char** argv) {
  Flags flags;
  std::string error;
  switch (parse_flags(argc, argv, std::getenv("AGENTBURN_API_KEY"), &flags, &error)) {
    case FlagsOutcome::kHelp:
      std::fputs(help_text().c_str(), stdout);
      return 0;
    case FlagsOutcome::kError:
      std::fprintf(stderr, "agentburn-server: %s\n", error.c_str());
      return 2;
    case FlagsOutcome::kRun:
      break;
  }

  // Blocked before any thread starts (RocksDB starts some in open), so that only the
  // signal thread below ever takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<Store> store;
  Status s = Store::open(flags.data_dir, &store);
  if (!s.ok()) {
    std::fprintf(stderr, "agentburn-server: cannot use --data %s: %s\n", flags.data_dir.c_str(),
                 s.message().c_str());
    return 1;
  }
  Listener listener;
  if (!make_listener(flags, &listener, &error)) {
    std::fprintf(stderr, "agentburn-server: %s\n", error.c_str());
    return 1;
  }
  httplib::Server& server = *listener.server;
  auto ctx = std::make_unique<ServerContext>(flags, *store);
  configure(server, flags, ctx->life);
  install_routes(server, *ctx);

  int port = flags.port;
  bool bound = port == 0 ? (port = server.bind_to_any_port(flags.host)) > 0
                         : server.bind_to_port(flags.host, port);
  if (!bound) {
    std::fprintf(stderr,
                 "agentburn-server: cannot listen on %s:%d: the address is in use or not "
                 "available\n",
                 flags.host.c_str(), flags.port);
    return 1;
  }
  listener.widen_backlog();

  std::thread([&server, &ctx] {
    server.listen_after_bind();
    ctx->life.listener_ended();
  }).detach();
  std::thread([&stop_signals, &ctx] {
    int sig = 0;
    if (sigwait(&stop_signals, &sig) == 0) ctx->life.request_stop();
  }).detach();
  std::printf("listening on %s\n", base_url(flags, port).c_str());
  std::fflush(stdout);

  if (!ctx->life.wait_for_stop()) {
    std::fprintf(stderr, "agentburn-server: the listener stopped unexpectedly\n");
    quit(1);
  }
  if (!flags.quiet) std::fprintf(stderr, "agentburn-server: stopping\n");
  ctx->faults.shutdown();
  server.stop();
  ctx->life.shut_down(std::chrono::seconds(30), std::chrono::seconds(2));
  store.reset();
  quit(0);
}

}  // namespace
}  // namespace agentburn::server

int main(int argc, char** argv) {
  return agentburn::server::run(argc, argv);
}
