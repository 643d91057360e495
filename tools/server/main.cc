// agentburn-server: start-up, the HTTP server's settings, signals and shutdown.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string_view>
#include <thread>

#include "flags.hpp"
#include "gate.hpp"
#include "log.hpp"
#include "routes.hpp"
#include "store.hpp"

namespace agentburn::server {
namespace {

// What follows relies on cpp-httplib 0.11's listen loop and its protected
// Server::process_request (see gate.hpp): checked here, so that another version fails the
// build instead of misbehaving.
static_assert(std::string_view(CPPHTTPLIB_VERSION).substr(0, 5) == "0.11.",
              "the connection gate is written against cpp-httplib 0.11.x");

// cpp-httplib's accept loop hands each accepted socket to its task queue, which calls
// process_and_close_socket on a pool thread; that is where its own per-connection loop
// would hold the thread. The queue here runs the call on the accept thread itself, and the
// override hands the socket to the gate and returns at once; the gate's workers run one
// request at a time through process_request.
class GateQueue : public httplib::TaskQueue {
 public:
  explicit GateQueue(ConnectionGate* gate) : gate_(gate) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  // On stop(): lets the requests in flight finish (bounded as Lifecycle::shut_down is), so
  // that the listener ends only once they are done.
  void shutdown() override { gate_->shutdown(std::chrono::seconds(32)); }

 private:
  ConnectionGate* gate_;
};

template <class Base>
class GatedServer : public Base {
 public:
  using Base::Base;
  // Debian's compiled cpp-httplib listens with a backlog of 5, so a burst of clients
  // connecting at once would see SYNs dropped and retried a second later. Linux applies a
  // second listen() on a listening socket as a new backlog.
  void widen_backlog() { ::listen(this->svr_sock_, SOMAXCONN); }

  void use_gate(GateOptions options, std::function<void()> after_request) {
    gate_ = std::make_unique<ConnectionGate>(
        std::move(options),
        [this](httplib::Stream& strm, bool close_connection, bool& connection_closed,
               SSL* ssl) {
          std::function<void(httplib::Request&)> setup;
          if (ssl) setup = [ssl](httplib::Request& req) { req.ssl = ssl; };
          return this->process_request(strm, close_connection, connection_closed, setup);
        },
        std::move(after_request));
    this->new_task_queue = [gate = gate_.get()] { return new GateQueue(gate); };
  }

 private:
  bool process_and_close_socket(socket_t sock) override {
    gate_->admit(sock);
    return true;
  }
  std::unique_ptr<ConnectionGate> gate_;
};

struct Listener {
  std::unique_ptr<httplib::Server> server;
  std::function<void()> widen_backlog;
  std::function<void(GateOptions, std::function<void()>)> use_gate;
  SSL_CTX* tls = nullptr;
};

bool readable(const std::string& path) {
  return std::ifstream(path).good();
}

bool make_listener(const Flags& flags, Listener* out, std::string* error) {
  if (flags.tls_cert.empty()) {
    auto plain = std::make_unique<GatedServer<httplib::Server>>();
    out->widen_backlog = [s = plain.get()] { s->widen_backlog(); };
    out->use_gate = [s = plain.get()](GateOptions o, std::function<void()> after) {
      s->use_gate(std::move(o), std::move(after));
    };
    out->server = std::move(plain);
    return true;
  }
  for (const std::string* path : {&flags.tls_cert, &flags.tls_key}) {
    if (!readable(*path)) {
      *error = "cannot read " + *path;
      return false;
    }
  }
  auto tls = std::make_unique<GatedServer<httplib::SSLServer>>(flags.tls_cert.c_str(),
                                                               flags.tls_key.c_str());
  if (!tls->is_valid()) {
    *error = "cannot use the TLS certificate " + flags.tls_cert + " with the key " + flags.tls_key +
             " (PEM files of a matching certificate and private key expected)";
    return false;
  }
  out->widen_backlog = [s = tls.get()] { s->widen_backlog(); };
  out->use_gate = [s = tls.get()](GateOptions o, std::function<void()> after) {
    s->use_gate(std::move(o), std::move(after));
  };
  out->tls = tls->ssl_context();
  out->server = std::move(tls);
  return true;
}

void configure(Listener& listener, const Flags& flags, ServerContext& ctx) {
  httplib::Server& server = *listener.server;
  Lifecycle& life = ctx.life;
  GateOptions gate;
  gate.workers = flags.threads;
  gate.max_connections = flags.max_connections;
  gate.max_per_client = flags.max_connections_per_client;
  gate.header_timeout = std::chrono::seconds(flags.header_timeout_seconds);
  gate.idle_timeout = std::chrono::seconds(flags.keep_alive_seconds);
  gate.tls = listener.tls;
  listener.use_gate(gate, [&ctx] { end_of_request(ctx); });
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
    ConnectionGate::note_answer(res);
    life.written();
    if (verbose) {
      // The method and path are the client's bytes, decoded: escaped, so that they cannot
      // forge log lines or reach a terminal as control sequences.
      std::fprintf(stderr, "%s %s %d\n", log_escape(req.method, 64).c_str(),
                   log_escape(req.path, 1024).c_str(), res.status);
    }
  });
}

// An existing data folder that other users can enter or read is tightened to 0700 (a
// folder made by an earlier version, or by hand under umask 022): what is inside, RocksDB's
// files included, is then out of their reach whatever the files' own modes. One that cannot
// be tightened (not ours) is refused.
bool private_data_dir(const Flags& flags, std::string* error) {
  struct stat st {};
  if (stat(flags.data_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return true;  // new
  mode_t mode = st.st_mode & 07777;
  if ((mode & 077) == 0) return true;
  if (chmod(flags.data_dir.c_str(), mode & ~static_cast<mode_t>(077)) != 0) {
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    *error = "--data " + flags.data_dir + " can be read by other users (mode " + octal +
             ") and cannot be made private: " + std::strerror(errno) +
             "; use a folder of your own with mode 0700";
    return false;
  }
  if (!flags.quiet) {
    std::fprintf(stderr, "agentburn-server: --data %s was open to other users (mode %04o); now 0700\n",
                 flags.data_dir.c_str(), static_cast<unsigned>(mode));
  }
  return true;
}

// Each connection is a file descriptor, and RocksDB keeps up to 512 open: the soft limit is
// raised to the hard one when it is lower than that needs.
void raise_file_limit(const Flags& flags) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  rlim_t want = static_cast<rlim_t>(flags.max_connections) + 1024;
  if (lim.rlim_cur >= want || lim.rlim_cur == RLIM_INFINITY) return;
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
  setrlimit(RLIMIT_NOFILE, &lim);
}

[[noreturn]] void quit(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  // The gate's threads (and workers still in a request past the drain bound) and the one in
  // sigwait are not joined: everything they could touch is closed already.
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

  // Everything the server creates (the data folder, RocksDB's files) is its user's alone.
  umask(077);
  if (!private_data_dir(flags, &error)) {
    std::fprintf(stderr, "agentburn-server: %s\n", error.c_str());
    return 1;
  }
  raise_file_limit(flags);

  std::unique_ptr<Store> store;
  Status s = Store::open(flags.data_dir, &store, flags.aggregates);
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
  configure(listener, flags, *ctx);
  install_routes(server, *ctx);

  int port = flags.port;
  bool bound = port == 0 ? (port = server.bind_to_any_port(flags.host)) > 0
                         : server.bind_to_port(flags.host, port);
  if (!bound) {
    std::fprintf(stderr,
                 "agentburn-server: cannot listen on %s:%d: the address is in use or not "
                 "available\n",
                 flags.host.c_str(), flags.port);
    // The connection gate's threads are running already: leave without destroying what
    // they use, as the normal exit does.
    quit(1);
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
