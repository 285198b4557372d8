#include "runner/step/workspace.h"

#include "core/fs.h"

namespace dfgen::step {

Result<Workspace> Workspace::open(Store& store, const std::vector<Layer>& layers) {
  std::vector<std::string> lowers;
  for (const auto& l : layers) {
    DFGEN_CHECK(layer::ensure_snapshot(store, l.blob, l.diff_id));
    lowers.push_back(store.snapshot_path(l.diff_id));
  }
  DFGEN_TRY(TempDir tmp, store.make_temp_dir("step"));
  std::string upper = path_join(tmp.path(), "upper");
  std::string work = path_join(tmp.path(), "work");
  std::string merged = path_join(tmp.path(), "root");
  for (const auto& d : {upper, work, merged}) DFGEN_CHECK(make_dirs(d));
  Workspace ws(std::move(tmp), upper, merged);
  DFGEN_TRY(auto mount, snapshot::OverlayMount::mount(lowers, upper, work, merged));
  ws.mount_.emplace(std::move(mount));
  return ws;
}

Result<std::optional<Layer>> Workspace::commit(Store& store, const layer::WriteOptions& opts) {
  if (mount_) {
    DFGEN_CHECK(mount_->unmount());
    mount_.reset();
  }
  DFGEN_TRY(layer::LayerInfo info, layer::commit_dir(store, upper_, opts));
  if (info.empty) return std::optional<Layer>();
  return std::optional<Layer>(Layer{info.blob, info.diff_id});
}

Result<std::optional<Layer>> Workspace::commit(Store& store, const layer::WriteOptions& opts,
                                               const std::vector<layer::ExternalFile>& files) {
  if (files.empty()) return commit(store, opts);
  if (mount_) {
    DFGEN_CHECK(mount_->unmount());
    mount_.reset();
  }
  DFGEN_TRY(layer::LayerInfo info, layer::write_layer(store, upper_, opts, files));
  if (info.empty) return std::optional<Layer>();
  return std::optional<Layer>(Layer{info.blob, info.diff_id});
}

}  // namespace dfgen::step
