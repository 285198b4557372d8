#include "core/fs.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <random>

namespace dfgen {

Result<FileLock> FileLock::acquire(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return Error::sys("open lock " + path);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Error::sys("lock " + path);
  }
  return FileLock(std::move(fd));
}

static std::string random_suffix() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  return fmt::format("{}.{}.{:08x}", ::getpid(), counter++, rd());
}

Result<TempDir> TempDir::create(const std::string& parent, const std::string& prefix) {
  DFGEN_CHECK(make_dirs(parent));
  std::string tmpl = path_join(parent, prefix + ".XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) return Error::sys("create temp dir in " + parent);
  return TempDir(std::string(buf.data()));
}

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    if (!path_.empty()) (void)remove_all(path_);
    path_ = std::move(o.path_);
    o.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (!path_.empty()) (void)remove_all(path_);
}

Status read_chunks(int fd, const std::string& what,
                   const std::function<Status(const char* data, size_t size)>& sink) {
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("read " + what);
    }
    if (n == 0) return ok_status();
    DFGEN_CHECK(sink(buf, static_cast<size_t>(n)));
  }
}

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::sys("open " + path);
  std::string out;
  DFGEN_CHECK(read_chunks(fd.get(), path, [&](const char* data, size_t size) {
    out.append(data, size);
    return ok_status();
  }));
  return out;
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

static Status write_all(int fd, std::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("write " + path);
    }
    done += static_cast<size_t>(n);
  }
  return ok_status();
}

Status write_file(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return Error::sys("create " + path);
  DFGEN_CHECK(write_all(fd.get(), data, path));
  if (::fchmod(fd.get(), mode) != 0) return Error::sys("chmod " + path);
  if (::close(fd.release()) != 0) return Error::sys("close " + path);
  return ok_status();
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp." + random_suffix();
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return Error::sys("create " + tmp);
  auto cleanup = [&] { ::unlink(tmp.c_str()); };
  if (auto st = write_all(fd.get(), data, tmp); !st) { cleanup(); return st; }
  if (::fchmod(fd.get(), mode) != 0) { int e = errno; cleanup(); return Error::sys("chmod " + tmp, e); }
  if (::fsync(fd.get()) != 0) { int e = errno; cleanup(); return Error::sys("fsync " + tmp, e); }
  if (::close(fd.release()) != 0) { int e = errno; cleanup(); return Error::sys("close " + tmp, e); }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    cleanup();
    return Error::sys("rename " + tmp + " to " + path, e);
  }
  return ok_status();
}

Result<bool> write_file_if_changed(const std::string& path, std::string_view data, mode_t mode) {
  if (path_exists(path)) {
    auto old = read_file(path);
    if (old.ok() && *old == data) return false;
  }
  DFGEN_CHECK(write_file_atomic(path, data, mode));
  return true;
}

Status make_dirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Error(fmt::format("create directory {}: {}", path, ec.message()));
  return ok_status();
}

Status remove_all(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Error(fmt::format("remove {}: {}", path, ec.message()));
  return ok_status();
}

Status fsync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Error::sys("open " + dir);
  if (::fsync(fd.get()) != 0) return Error::sys("fsync " + dir);
  return ok_status();
}

std::string path_join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  if (b.front() == '/') b.remove_prefix(1);
  std::string out(a);
  if (out.back() != '/') out.push_back('/');
  out.append(b);
  return out;
}

std::string dirname_of(std::string_view path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string_view::npos) return ".";
  if (pos == 0) return "/";
  return std::string(path.substr(0, pos));
}

std::string basename_of(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto pos = path.find_last_of('/');
  return std::string(pos == std::string_view::npos ? path : path.substr(pos + 1));
}

Result<std::string> absolute_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return Error::sys("resolve " + path);
  return std::string(buf);
}

}  // namespace dfgen
