// File system helpers that own their resources and write atomically.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace dfgen {

// Owns a file descriptor; closes it on destruction. release() gives it up.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) { reset(); fd_ = o.release(); }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { int fd = fd_; fd_ = -1; return fd; }
  void reset(int fd = -1) { if (fd_ >= 0) ::close(fd_); fd_ = fd; }

 private:
  int fd_ = -1;
};

// An exclusive flock(2) on a lock file, held until destruction.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::string& path);   // blocks
  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;
 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// A directory removed recursively on destruction unless release()d.
class TempDir {
 public:
  static Result<TempDir> create(const std::string& parent, const std::string& prefix = "tmp");
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  TempDir& operator=(TempDir&& o) noexcept;
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string release() { std::string p = std::move(path_); path_.clear(); return p; }
 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

Result<std::string> read_file(const std::string& path);
// Reads `fd` to its end in chunks, handing each to `sink` (which may fail).
// `what` names the file in errors. Does not close `fd`.
Status read_chunks(int fd, const std::string& what,
                   const std::function<Status(const char* data, size_t size)>& sink);
bool path_exists(const std::string& path);
bool is_directory(const std::string& path);

// Writes `data` to path (created or truncated, then `mode`), with no fsync:
// for scratch files that die with the step, such as a container's bundle.
Status write_file(const std::string& path, std::string_view data, mode_t mode = 0644);
// Writes `data` to path via temp file + fsync + rename. Parent must exist.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);
// Like write_file_atomic, but leaves the file (and its mtime) alone when it
// already holds exactly `data`. Returns true when it wrote.
Result<bool> write_file_if_changed(const std::string& path, std::string_view data,
                                   mode_t mode = 0644);

Status make_dirs(const std::string& path, mode_t mode = 0755);   // mkdir -p
Status remove_all(const std::string& path);                      // rm -rf, no error if absent
Status fsync_dir(const std::string& dir);

std::string path_join(std::string_view a, std::string_view b);
std::string dirname_of(std::string_view path);
std::string basename_of(std::string_view path);
Result<std::string> absolute_path(const std::string& path);     // realpath(3)

}  // namespace dfgen
