# Writes OUTPUT, a C++ source defining agentburn::server::dashboard_page() as the bytes of
# INPUT, so that the page is part of the binary. Run by the build whenever INPUT changes.
file(READ "${INPUT}" bytes HEX)
string(LENGTH "${bytes}" hex_length)
math(EXPR length "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," array "${bytes}")
string(REGEX REPLACE "(([^,]*,){16})" "\\1\n    " array "${array}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${NAME} by embed.cmake; do not edit.\n"
  "#include \"dashboard.hpp\"\n\n"
  "namespace agentburn::server {\n\n"
  "namespace {\nconst char kPage[] = {\n    ${array}'\\0'};\n}  // namespace\n\n"
  "std::string_view dashboard_page() { return std::string_view(kPage, ${length}); }\n\n"
  "}  // namespace agentburn::server\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
