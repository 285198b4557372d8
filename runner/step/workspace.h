// A writable root file system for one step: the overlay of a result's layer
// snapshots with a fresh upper dir in a store temp dir. The upper dir is the
// step's diff; commit() turns it into a layer and a snapshot without copying.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/store.h"
#include "runner/layer/layer.h"
#include "runner/snapshot/overlay.h"
#include "runner/step/step.h"

namespace dfgen::step {

class Workspace {
 public:
  static Result<Workspace> open(Store& store, const std::vector<Layer>& layers);
  Workspace(Workspace&&) = default;

  const std::string& root() const { return merged_; }   // the mounted root
  const std::string& scratch() const { return tmp_.path(); }  // free space for the step

  // Unmounts and turns the upper dir into a layer; nullopt when nothing changed.
  Result<std::optional<Layer>> commit(Store& store, const layer::WriteOptions& opts);
  // commit() with regular files taken from outside the upper dir (COPY's
  // context files: layer::ExternalFile). The upper dir then is not the step's
  // whole diff, so it is not kept as a snapshot: a later step that needs one
  // extracts the layer (layer::ensure_snapshot); an image export never does.
  Result<std::optional<Layer>> commit(Store& store, const layer::WriteOptions& opts,
                                      const std::vector<layer::ExternalFile>& files);

 private:
  Workspace(TempDir tmp, std::string upper, std::string merged)
      : tmp_(std::move(tmp)), upper_(std::move(upper)), merged_(std::move(merged)) {}
  TempDir tmp_;                                 // declared first: removed last
  std::string upper_, merged_;
  std::optional<snapshot::OverlayMount> mount_;
};

}  // namespace dfgen::step
