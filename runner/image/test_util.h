// Helpers shared by the image tests: a scratch store, small layers, commands.
#pragma once

#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "core/fs.h"
#include "core/store.h"
#include "runner/image/image.h"
#include "runner/layer/layer.h"

namespace dfgen::image::testing {

// Runs a shell command; returns its exit status and stdout (stderr goes to the log).
struct CommandResult {
  int status = -1;
  std::string out;
};
inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline void write_tree(const std::string& root, const std::map<std::string, std::string>& files) {
  for (const auto& [rel, content] : files) {
    std::string path = path_join(root, rel);
    ASSERT_TRUE(make_dirs(dirname_of(path)).ok());
    ASSERT_TRUE(write_file_atomic(path, content).ok()) << path;
  }
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("/tmp", "dfgen-image-test");
    ASSERT_TRUE(dir.ok()) << dir.error().render();
    tmp_.emplace(std::move(*dir));
    auto store = Store::open(path("store"));
    ASSERT_TRUE(store.ok()) << store.error().render();
    store_.emplace(std::move(*store));
  }
  std::string path(const std::string& rel) const { return path_join(tmp_->path(), rel); }
  Store& store() { return *store_; }

  // A layer made from a small tree of files (rel path -> content).
  LayerRef make_layer(const std::map<std::string, std::string>& files,
                      layer::Compression c = layer::Compression::Gzip) {
    std::string dir = path("tree-" + std::to_string(counter_++));
    EXPECT_TRUE(make_dirs(dir).ok());
    write_tree(dir, files);
    return layer_from_dir(dir, c);
  }
  LayerRef layer_from_dir(const std::string& dir, layer::Compression c = layer::Compression::Gzip) {
    layer::WriteOptions opts;
    opts.compression = c;
    opts.source_date_epoch = 1700000000;
    auto info = layer::write_layer(store(), dir, opts);
    EXPECT_TRUE(info.ok()) << info.error().render();
    return info.ok() ? LayerRef{info->blob, info->diff_id} : LayerRef{};
  }

  std::optional<TempDir> tmp_;
  std::optional<Store> store_;
  int counter_ = 0;
};

}  // namespace dfgen::image::testing
