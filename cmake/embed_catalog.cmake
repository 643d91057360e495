# Writes a C++ source holding a text file as chunks of raw string literals:
#   cmake -DINPUT=data/prices.json -DOUTPUT=builtin_catalog.cc -P cmake/embed_catalog.cmake
# The source defines agentburn::pricing::builtin_catalog_text() (lib/pricing/builtin_catalog.hpp).
# Chunks stay under the 16 KB a single literal may hold on every compiler.
file(READ "${INPUT}" whole)
string(LENGTH "${whole}" size)
if(size EQUAL 0)
  message(FATAL_ERROR "${INPUT} is empty")
endif()
string(FIND "${whole}" ")abcatalog\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} holds the raw string delimiter )abcatalog\"")
endif()
set(tmp "${OUTPUT}.tmp")
file(WRITE "${tmp}" "// Generated from data/prices.json by cmake/embed_catalog.cmake: do not edit.\n"
  "#include \"pricing/builtin_catalog.hpp\"\n\n"
  "namespace agentburn::pricing {\nnamespace {\nconstexpr char kCatalog[] =\n")
set(offset 0)
set(chunk 8000)
while(offset LESS size)
  # (file(READ ... OFFSET LIMIT) is not byte-exact around newlines: cut the text in memory.)
  string(SUBSTRING "${whole}" ${offset} ${chunk} part)
  file(APPEND "${tmp}" "R\"abcatalog(${part})abcatalog\"\n")
  math(EXPR offset "${offset} + ${chunk}")
endwhile()
file(APPEND "${tmp}" ";\n}  // namespace\n\n"
  "std::string_view builtin_catalog_text() { return {kCatalog, sizeof(kCatalog) - 1}; }\n\n"
  "}  // namespace agentburn::pricing\n")
file(RENAME "${tmp}" "${OUTPUT}")
