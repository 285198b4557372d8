// libFuzzer entry point for what `dfrun step` reads: the step spec and the
// step result files it names (runner/step/step.h). The input is split at its
// first NUL into a spec and a result file. Every path the spec names is
// redirected into a scratch dir (parent and from -> the fuzzed result file,
// context -> a small fixed context, result -> a scratch file), so a spec only
// ever reads the input and writes into a scratch store (image outputs and
// cache imports/exports are dropped). `run` ops are read
// but not executed (they would start containers). execute_spec must return
// an error or succeed; its readers type-check every spec field
// (runner/step/spec_field.h), and a json type error that still escaped one
// would be reported by dfrun as "malformed step spec" (counted here, not a
// crash). read_result on the result bytes must return. Built by run.sh;
// replayed by runner/step/step_corpus_test.cc.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "core/fs.h"
#include "core/json.h"
#include "core/store.h"
#include "runner/step/step.h"

namespace {

namespace fs = std::filesystem;

struct Scratch {
  std::string root;
  std::optional<dfgen::Store> store;
};

Scratch& scratch() {
  static Scratch* s = [] {   // never destroyed: the atexit cleanup reads it
    auto tmp = dfgen::TempDir::create(fs::temp_directory_path().string(), "step-fuzz");
    if (!tmp.ok()) __builtin_trap();
    auto* s = new Scratch{tmp->release(), std::nullopt};
    fs::create_directories(s->root + "/ctx/dir");
    if (!dfgen::write_file_atomic(s->root + "/ctx/a", "a\n").ok()) __builtin_trap();
    if (!dfgen::write_file_atomic(s->root + "/ctx/dir/b", "b\n").ok()) __builtin_trap();
    fs::create_symlink("/etc/passwd", s->root + "/ctx/out");
    auto store = dfgen::Store::open(s->root + "/store");
    if (!store.ok()) __builtin_trap();
    s->store.emplace(std::move(*store));
    std::atexit([] { (void)dfgen::remove_all(scratch().root); });
    return s;
  }();
  return *s;
}

// Points every path of the spec into the scratch dir, and drops what would
// reach outside it (image outputs, which write to any path or push to a
// registry; --cache-from/--cache-to sources); false for specs that must not
// be executed here.
bool confine(dfgen::Json& spec, const std::string& root) {
  if (!spec.is_object()) return true;
  spec.erase("cache");
  auto op = spec.find("op");
  if (op != spec.end() && op->is_object()) {
    op->erase("outputs");
    auto kind = op->find("kind");
    if (kind != op->end() && kind->is_string() && *kind != "copy" && *kind != "add" && *kind != "workdir" &&
        *kind != "image")
      return false;   // run (containers) and unknown kinds (an error either way)
  }
  auto io = spec.find("io");
  if (io == spec.end() || !io->is_object()) return true;
  if (io->contains("parent")) (*io)["parent"] = root + "/in.result";
  if (io->contains("context")) (*io)["context"] = root + "/ctx";
  if (io->contains("result")) (*io)["result"] = root + "/out/step.result";
  auto from = io->find("from");
  if (from != io->end() && from->is_object())
    for (auto& [name, file] : from->items()) file = root + "/in.result";
  return true;
}

// Specs whose readers threw a json type error (see below).
int json_type_errors = 0;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Scratch& s = scratch();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view spec_text = in.substr(0, nul);
  std::string_view result_text = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);

  std::string result_path = s.root + "/in.result";
  if (!dfgen::write_file_atomic(result_path, result_text).ok()) __builtin_trap();
  auto result = dfgen::step::read_result(result_path);
  if (!result.ok() && result.error().render().empty()) __builtin_trap();

  std::string spec_bytes(spec_text);
  auto json = dfgen::parse_json(spec_text, "spec");
  if (json.ok()) {
    if (!confine(*json, s.root)) return 0;
    spec_bytes = json->dump();
  }
  std::string spec_path = s.root + "/step.json";
  if (!dfgen::write_file_atomic(spec_path, spec_bytes).ok()) __builtin_trap();
  // dfrun's cmd_step turns a json type error thrown by the spec readers into
  // an error message (runner/app/main.cc); anything else escaping is a crash.
  try {
    auto st = dfgen::step::execute_spec(*s.store, spec_path);
    if (!st.ok() && st.error().render().empty()) __builtin_trap();
  } catch (const dfgen::Json::exception&) {
    ++json_type_errors;
  }
  return 0;
}
