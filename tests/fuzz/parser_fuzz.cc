// libFuzzer entry point for the Dockerfile parser: any bytes must either parse
// (and dump) or fail with an error that says where. Built by run.sh with
// clang -fsanitize=fuzzer,address; not part of the CMake build.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "generator/syntax/ast.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ast = dfgen::syntax::parse(text, "Dockerfile");
  if (ast.ok()) {
    std::string out = dfgen::syntax::dump(*ast);
    if (ast->children.empty() || out.empty()) std::abort();  // parse promises one instruction
    for (const auto& node : ast->children) {
      if (node.start_line < 1 || node.end_line < node.start_line) std::abort();
      if (node.end_line > static_cast<int>(ast->lines.size()) + 1) std::abort();
    }
  } else {
    std::string rendered = ast.error().render();
    if (rendered.empty() || !ast.error().where.valid()) std::abort();
  }
  return 0;
}
