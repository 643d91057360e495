// Runs files through a fuzz target's LLVMFuzzerTestOneInput without libFuzzer: the corpus
// replay that ctest runs in every build (g++ included), and a way to rerun a crash file.
//
//   replay_<target> PATH...   each PATH a file, or a folder whose files (recursively) are run
//
// Exits 0 when every input ran. An input that breaks an invariant (abort) or crashes the
// target makes it print the input's name and exit with 128 + the signal.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

char g_current[4096] = "";

void write_text(const char* s) {
  (void)!write(2, s, std::strlen(s));
}

// Names the input and exits with 128 + the signal: an exit status, which ctest reads the
// same way whatever the signal (async-signal-safe calls only).
void on_fatal_signal(int sig) {
  char num[4] = {static_cast<char>('0' + sig / 10 % 10), static_cast<char>('0' + sig % 10), 0};
  write_text("\n*** signal ");
  write_text(num);
  write_text(" on the input: ");
  write_text(g_current);
  write_text("\n");
  _exit(128 + sig);
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_FOLDER...\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (const auto& entry : fs::recursive_directory_iterator(p)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "%s: not a file or folder\n", argv[i]);
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "no inputs under the paths given\n");
    return 2;
  }
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(sig, on_fatal_signal);

  std::size_t bytes = 0;
  for (const auto& f : files) {
    std::snprintf(g_current, sizeof g_current, "%s", f.c_str());
    std::ifstream in(f, std::ios::binary);
    std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "%s: cannot read\n", f.c_str());
      return 2;
    }
    bytes += data.size();
    // A copy of exactly the input's size, so that reading past it is caught by sanitizers.
    std::unique_ptr<std::uint8_t[]> copy(new std::uint8_t[data.size()]);
    if (!data.empty()) std::memcpy(copy.get(), data.data(), data.size());
    LLVMFuzzerTestOneInput(copy.get(), data.size());
  }
  std::printf("replayed %zu inputs (%zu bytes)\n", files.size(), bytes);
  return 0;
}
