// A tar file written deterministically and atomically: entries in the order
// they are added, owner 0:0, mtime 0, modes 0644/0755, PAX only where needed.
// The tar is written to a temp file beside `dest` (its folder made if
// missing) and renamed into place by commit(); dropped uncommitted, the temp
// file is removed.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace dfgen::image {

class TarOut {
 public:
  static Result<TarOut> create(const std::string& dest);
  TarOut(TarOut&&) noexcept;
  TarOut& operator=(TarOut&&) noexcept;
  ~TarOut();

  Status add_dir(const std::string& name);
  Status add_bytes(const std::string& name, std::string_view data);
  // Streams the file at `path`; when `expected_digest` is given, the bytes
  // read must hash to it (a store blob changed on disk is an error).
  Status add_file(const std::string& name, const std::string& path,
                  std::string_view expected_digest = {});
  // Finishes the archive, fsyncs and renames it to `dest`.
  Status commit();

 private:
  struct Impl;
  explicit TarOut(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfgen::image
