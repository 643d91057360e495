#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a consumer project against it with
# find_package(agentburn CONFIG), and a C program with pkg-config.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/tests/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/consumer_cpp" "$tmp/buffer"
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/consumer/consumer_c"
libdir=$(dirname "$(find "$tmp/prefix" -name agentburn.pc | head -1)")
flags=$(PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs agentburn)
# shellcheck disable=SC2086
cc -std=c99 -pedantic -Wall -Werror "$src/tests/consumer/consumer.c" -o "$tmp/pc_consumer" $flags
# No LD_LIBRARY_PATH: the pkg-config flags carry the run path.
"$tmp/pc_consumer"
# The README's C++ quickstart, exactly as written, builds and runs against the install.
mkdir -p "$tmp/quickstart"
python3 - "$src/README.md" "$tmp/quickstart/main.cc" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index("```cpp\n") + 7
open(sys.argv[2], "w").write(text[start:text.index("```", start)])
PY
cat >"$tmp/quickstart/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(quickstart CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(agentburn CONFIG REQUIRED)
add_executable(my_agent main.cc)
target_link_libraries(my_agent PRIVATE agentburn::agentburn)
CMAKE
cmake -S "$tmp/quickstart" -B "$tmp/quickstart/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/quickstart/b" >/dev/null
rm -rf /tmp/agentburn-quickstart
"$tmp/quickstart/b/my_agent"
# And the C quickstart, with pkg-config.
python3 - "$src/README.md" "$tmp/quickstart/main.c" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index("```c\n") + 5
open(sys.argv[2], "w").write(text[start:text.index("```", start)])
PY
# shellcheck disable=SC2086
cc -std=c99 -pedantic -Wall -Werror "$tmp/quickstart/main.c" -o "$tmp/quickstart/main_c" $flags
rm -rf /tmp/agentburn-quickstart-c
"$tmp/quickstart/main_c"
# The installed server runs from the prefix as it is.
if [[ -x "$tmp/prefix/bin/agentburn-server" ]]; then
  "$tmp/prefix/bin/agentburn-server" --help >/dev/null
fi
echo "install test: ok"
