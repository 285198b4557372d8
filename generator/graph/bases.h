// Base images: where a FROM (or COPY --from) name comes from, and the pins
// that keep it fixed between dfgen runs (docs/graph.md).
//
// Resolution of a reference as written ("golang:1.21"), in order:
//   1. its source: a --build-context override (docker-image://REF or
//      oci-layout://PATH[:TAG]), else the reference itself in the store;
//   2. a digest in the source ("name@sha256:...") is used as it is;
//   3. else the pin in BUILD_DIR/.dfgen/pins.json, when it was made from the
//      same source and the store still has that manifest (skipped by --pull);
//   4. else the source is resolved: a tag in the store, or an OCI layout
//      imported with `dfrun import` (the generator does not link the runner);
// and the resulting manifest digest is pinned.
//
// pins.json, version 1:
//   { "version": 1,
//     "pins": { "golang:1.21": { "source": "docker-image://docker.io/library/golang:1.21",
//                                "digest": "sha256:..." } } }
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/store.h"

namespace dfgen::graph {

struct BaseSource {
  enum class Kind { kStore, kOciLayout };
  Kind kind = Kind::kStore;
  std::string ref;    // kStore: normalized reference, with tag and/or digest
  std::string path;   // kOciLayout: absolute path of the layout directory
  std::string tag;    // kOciLayout: the image's tag in the layout ("" = its only image)
  // "docker-image://REF" or "oci-layout://PATH[:TAG]": what a pin was made from.
  std::string id() const;
};

// --build-context NAME=SRC values, keyed by the normalized NAME (and by its
// name without tag, so "alpine=..." also covers "alpine:latest").
Result<std::map<std::string, BaseSource>> parse_build_contexts(const std::vector<std::string>& list);

struct Pin {
  std::string source;   // BaseSource::id()
  std::string digest;   // manifest digest
};
using Pins = std::map<std::string, Pin>;   // keyed by the reference as written

std::string pins_path(const std::string& build_dir);
// A missing file is no pins; a malformed one is an error (it names the file).
Result<Pins> read_pins(const std::string& build_dir);
// Written only when it changes.
Status write_pins(const std::string& build_dir, const Pins& pins);

// Brings the image of an OCI layout source into the store; returns its
// manifest digest.
using LayoutImporter = std::function<Result<std::string>(const BaseSource&)>;
// Runs `DFRUN --store STORE import PATH` and picks the image tagged TAG.
LayoutImporter dfrun_importer(std::string dfrun, std::string store_root);
// From `dfrun import` output lines "REF DIGEST": the digest of the image tagged
// `tag` (or the only image when tag is empty).
Result<std::string> pick_imported(const std::string& output, const BaseSource& source);

// The image record and the pin of one reference.
struct Resolved {
  ImageRecord record;
  Pin pin;
};

class BaseResolver {
 public:
  BaseResolver(Store& store, std::map<std::string, BaseSource> overrides, Pins pins, bool pull,
               LayoutImporter importer)
      : store_(store), overrides_(std::move(overrides)), pins_(std::move(pins)), pull_(pull),
        importer_(std::move(importer)) {}

  Result<Resolved> resolve(const std::string& ref_text);

 private:
  Result<BaseSource> source_of(const std::string& ref_text) const;
  Result<ImageRecord> by_digest(const std::string& ref_text, const std::string& digest) const;

  Store& store_;
  std::map<std::string, BaseSource> overrides_;
  Pins pins_;
  bool pull_;
  LayoutImporter importer_;
};

}  // namespace dfgen::graph
