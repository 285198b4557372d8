#include "generator/graph/bases.h"

#include <sys/wait.h>

#include <cstdio>
#include <sstream>

#include "core/fs.h"
#include "core/json.h"
#include "core/reference.h"
#include "core/sha256.h"
#include "generator/ninja/ninja.h"

namespace dfgen::graph {
namespace {

constexpr const char* kDockerImage = "docker-image://";
constexpr const char* kOciLayout = "oci-layout://";

Result<BaseSource> parse_source(const std::string& flag, const std::string& src) {
  if (src.starts_with(kDockerImage)) {
    auto ref = parse_reference(src.substr(std::string_view(kDockerImage).size()));
    if (!ref) return std::move(ref).error().context("--build-context " + flag);
    return BaseSource{.kind = BaseSource::Kind::kStore, .ref = ref->str()};
  }
  if (src.starts_with(kOciLayout)) {
    std::string rest = src.substr(std::string_view(kOciLayout).size());
    std::string tag;
    size_t slash = rest.rfind('/');
    size_t colon = rest.rfind(':');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
      tag = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    }
    auto path = absolute_path(rest);
    if (!path || !is_directory(*path))
      return Error(fmt::format("invalid --build-context {}: {} is not an OCI layout directory", flag, rest));
    return BaseSource{.kind = BaseSource::Kind::kOciLayout, .path = *path, .tag = tag};
  }
  return Error(fmt::format("invalid --build-context {}: the source must be docker-image://REF or "
                           "oci-layout://PATH[:TAG] (local directories are not supported yet)",
                           flag));
}

}  // namespace

std::string BaseSource::id() const {
  if (kind == Kind::kStore) return kDockerImage + ref;
  return kOciLayout + path + (tag.empty() ? "" : ":" + tag);
}

Result<std::map<std::string, BaseSource>> parse_build_contexts(const std::vector<std::string>& list) {
  std::map<std::string, BaseSource> out;
  for (const auto& c : list) {
    auto eq = c.find('=');
    if (eq == std::string::npos)
      return Error(fmt::format("invalid --build-context \"{}\": expected NAME=SOURCE", c));
    std::string name = c.substr(0, eq);
    DFGEN_TRY(BaseSource src, parse_source(c, c.substr(eq + 1)));
    auto ref = parse_reference(name);
    out[ref.ok() ? ref->str() : name] = src;
    if (ref.ok() && !out.count(ref->name())) out[ref->name()] = src;
  }
  return out;
}

std::string pins_path(const std::string& build_dir) { return path_join(build_dir, ".dfgen/pins.json"); }

Result<Pins> read_pins(const std::string& build_dir) {
  std::string path = pins_path(build_dir);
  Pins pins;
  if (!path_exists(path)) return pins;
  DFGEN_TRY(Json j, read_json_file(path));
  if (!j.is_object() || j.value("version", 0) != 1 || !j.contains("pins") || !j["pins"].is_object())
    return Error(fmt::format("{}: not a version 1 pins file (delete it, or run dfgen --pull)", path));
  for (const auto& [ref, p] : j["pins"].items()) {
    if (!p.is_object() || !is_sha256_digest(p.value("digest", "")))
      return Error(fmt::format("{}: bad pin for {} (delete it, or run dfgen --pull)", path, ref));
    pins[ref] = Pin{p.value("source", ""), p.value("digest", "")};
  }
  return pins;
}

Status write_pins(const std::string& build_dir, const Pins& pins) {
  Json all = Json::object();
  for (const auto& [ref, p] : pins) all[ref] = Json{{"source", p.source}, {"digest", p.digest}};
  std::string path = pins_path(build_dir);
  DFGEN_CHECK(make_dirs(dirname_of(path)));
  auto wrote = write_file_if_changed(path, Json{{"version", 1}, {"pins", all}}.dump(2) + "\n");
  if (!wrote) return std::move(wrote).error();
  return ok_status();
}

Result<std::string> pick_imported(const std::string& output, const BaseSource& source) {
  std::vector<std::pair<std::string, std::string>> images;   // ref, digest
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    auto sp = line.find(' ');
    if (sp == std::string::npos || !is_sha256_digest(line.substr(sp + 1))) continue;
    images.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  std::string listed;
  for (const auto& [ref, d] : images) listed += (listed.empty() ? "" : ", ") + ref;
  if (source.tag.empty()) {
    if (images.size() == 1) return images[0].second;
    return Error(fmt::format("{}: the layout holds {} images ({}): name one with :TAG", source.id(),
                             images.size(), listed));
  }
  for (const auto& [ref, digest] : images) {
    auto r = parse_reference(ref);
    if (r.ok() && r->tag == source.tag) return digest;
  }
  return Error(fmt::format("{}: no image tagged \"{}\" in the layout (it holds: {})", source.id(), source.tag,
                           listed.empty() ? "no tagged image" : listed));
}

LayoutImporter dfrun_importer(std::string dfrun, std::string store_root) {
  return [dfrun = std::move(dfrun), store_root = std::move(store_root)](const BaseSource& src) -> Result<std::string> {
    std::string cmd = ninja::shell_quote(dfrun) + " --store " + ninja::shell_quote(store_root) + " import " +
                      ninja::shell_quote(src.path) + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return Error::sys("run " + dfrun);
    std::string output;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
    int status = ::pclose(p);
    if (status != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return Error(fmt::format("import {}: dfrun import failed:\n{}", src.id(), output));
    return pick_imported(output, src);
  };
}

Result<BaseSource> BaseResolver::source_of(const std::string& ref_text) const {
  DFGEN_TRY(Reference ref, parse_reference(ref_text));
  for (const auto& key : {ref.str(), ref.name(), ref_text}) {
    auto it = overrides_.find(key);
    if (it != overrides_.end()) return it->second;
  }
  return BaseSource{.kind = BaseSource::Kind::kStore, .ref = ref.str()};
}

Result<ImageRecord> BaseResolver::by_digest(const std::string& ref_text, const std::string& digest) const {
  if (!store_.has_blob(digest))
    return Error(fmt::format("base image {}: manifest {} is not in the store {}", ref_text, digest, store_.root()),
                 SourceRange{}, "load it with `dfrun import FILE` or `dfrun pull " + ref_text + "`");
  auto rec = load_image(store_, Descriptor{.digest = digest});
  if (!rec) return std::move(rec).error().context("base image " + ref_text);
  return std::move(rec).value();
}

Result<Resolved> BaseResolver::resolve(const std::string& ref_text) {
  DFGEN_TRY(BaseSource src, source_of(ref_text));
  Pin pin{src.id(), ""};
  if (src.kind == BaseSource::Kind::kStore) {
    DFGEN_TRY(Reference ref, parse_reference(src.ref));
    if (!ref.digest.empty()) pin.digest = ref.digest;
  }
  auto old = pins_.find(ref_text);
  if (pin.digest.empty() && !pull_ && old != pins_.end() && old->second.source == pin.source &&
      store_.has_blob(old->second.digest))
    pin.digest = old->second.digest;
  if (pin.digest.empty() && src.kind == BaseSource::Kind::kOciLayout) {
    if (!importer_) return Error(fmt::format("base image {}: cannot import {}", ref_text, src.id()));
    DFGEN_TRY(pin.digest, importer_(src));
  }
  if (pin.digest.empty()) {
    DFGEN_TRY(auto desc, store_.resolve_tag(src.ref));
    if (!desc)
      return Error(fmt::format("base image {} ({}) is not in the store {}", ref_text, src.ref, store_.root()),
                   SourceRange{},
                   "load it with `dfrun import FILE` (a docker save or OCI archive), or point the name "
                   "elsewhere with --build-context " + ref_text + "=docker-image://REF");
    pin.digest = desc->digest;
  }
  DFGEN_TRY(ImageRecord rec, by_digest(ref_text, pin.digest));
  return Resolved{std::move(rec), std::move(pin)};
}

}  // namespace dfgen::graph
