// Where an imported archive's files are: a directory on disk, or a tar read
// once from start to end. Files under blobs/ and large files of a tar go
// straight into the store as they are read (one pass, no scratch copy); the
// small ones (manifest.json, index.json, <hex>.json) stay in memory.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/store.h"

namespace dfgen::image {

class Source {
 public:
  virtual ~Source() = default;
  virtual bool has(const std::string& name) const = 0;
  // A small file's bytes (JSON documents).
  virtual Result<std::string> read(const std::string& name) = 0;
  // The file as a store blob; verified against `expected_digest` when given.
  virtual Result<Descriptor> blob(const std::string& name, std::string_view expected_digest) = 0;
};

// "./a/../b" -> "b"; an empty result means the name leaves the archive root.
std::string normalize_entry_name(std::string_view name);

Result<std::unique_ptr<Source>> open_dir_source(Store& store, const std::string& dir);
Result<std::unique_ptr<Source>> open_tar_source(Store& store, const std::string& tar_path);

}  // namespace dfgen::image
