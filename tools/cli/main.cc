// agentburn: see, report and deliver what the library keeps on this machine.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "agentburn/version.h"
#include "common.hpp"

int main(int argc, char** argv) {
  using namespace agentburn::cli;
  CLI::App app("agentburn: what AI agents on this machine spent, and what is waiting to be sent",
               "agentburn");
  app.require_subcommand(1);
  app.set_version_flag("--version", AB_VERSION_STRING);
  app.footer(
      "Every command takes --root DIR (the buffer root; default $XDG_DATA_HOME/agentburn/buffer\n"
      "or ~/.local/share/agentburn/buffer), --json and --help.\n"
      "Exit codes: 0 ok, 1 failure, 2 usage error, 3 partial (some folders or events could not\n"
      "be handled; the output says which).\n"
      "Reading commands never disturb a running client: its folder is opened read-only. Only\n"
      "sync, dead-letters requeue and dead-letters purge change folders, and only folders no\n"
      "live process holds.");
  Command run;
  add_status(app, &run);
  add_report(app, &run);
  add_events(app, &run);
  add_dead_letters(app, &run);
  add_sync(app, &run);
  add_price(app, &run);
  add_budgets(app, &run);
  add_doctor(app, &run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "agentburn: %s\nRun with --help for usage.\n", e.what());
    return kUsage;
  }
  if (!run) return kUsage;
  return run();
}
