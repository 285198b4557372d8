#include "runner/image/tar_out.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <vector>

#include "core/fs.h"
#include "core/sha256.h"

namespace dfgen::image {

namespace {

struct ArchiveFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryFree>;

EntryPtr make_entry(const std::string& name, mode_t type, mode_t perm, int64_t size) {
  EntryPtr e(archive_entry_new());
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), type);
  archive_entry_set_perm(e.get(), perm);
  archive_entry_set_size(e.get(), size);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_mtime(e.get(), 0, 0);
  return e;
}

}  // namespace

struct TarOut::Impl {
  std::string dest;
  std::string temp;
  UniqueFd fd;
  std::unique_ptr<archive, ArchiveFree> ar;
  bool committed = false;

  ~Impl() {
    ar.reset();
    fd.reset();
    if (!committed && !temp.empty()) ::unlink(temp.c_str());
  }
  Error ar_error(const std::string& what) {
    return Error(what + ": " + (archive_error_string(ar.get()) ? archive_error_string(ar.get())
                                                                 : "unknown libarchive error"));
  }
  Status write_header(archive_entry* e, const std::string& name) {
    if (archive_write_header(ar.get(), e) != ARCHIVE_OK)
      return ar_error("write tar entry " + name + " to " + dest);
    return ok_status();
  }
  Status write_data(const void* data, size_t size, const std::string& name) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      la_ssize_t n = archive_write_data(ar.get(), p, size);
      if (n < 0) return ar_error("write tar entry " + name + " to " + dest);
      p += n;
      size -= static_cast<size_t>(n);
    }
    return ok_status();
  }
};

TarOut::TarOut(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TarOut::TarOut(TarOut&&) noexcept = default;
TarOut& TarOut::operator=(TarOut&&) noexcept = default;
TarOut::~TarOut() = default;

Result<TarOut> TarOut::create(const std::string& dest) {
  auto impl = std::make_unique<Impl>();
  impl->dest = dest;
  DFGEN_CHECK(make_dirs(dirname_of(dest)));
  std::string pattern = path_join(dirname_of(dest), "." + basename_of(dest) + ".tmp-XXXXXX");
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  int fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) return Error::sys("create temp file for " + dest);
  impl->fd.reset(fd);
  impl->temp = buf.data();
  if (::fchmod(fd, 0644) != 0) return Error::sys("chmod " + impl->temp);
  impl->ar.reset(archive_write_new());
  if (!impl->ar) return Error("write " + dest + ": out of memory");
  // 1 MiB writes instead of libarchive's 10 KiB ones (26,000 fewer write
  // calls for a 256 MiB layer); the last block is not padded, so the bytes
  // are the same whatever the block size.
  if (archive_write_set_format_pax_restricted(impl->ar.get()) != ARCHIVE_OK ||
      archive_write_set_bytes_per_block(impl->ar.get(), 1 << 20) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(impl->ar.get(), 1) != ARCHIVE_OK ||
      archive_write_open_fd(impl->ar.get(), fd) != ARCHIVE_OK)
    return impl->ar_error("open tar " + dest);
  return TarOut(std::move(impl));
}

Status TarOut::add_dir(const std::string& name) {
  EntryPtr e = make_entry(name, AE_IFDIR, 0755, 0);
  return impl_->write_header(e.get(), name);
}

Status TarOut::add_bytes(const std::string& name, std::string_view data) {
  EntryPtr e = make_entry(name, AE_IFREG, 0644, static_cast<int64_t>(data.size()));
  DFGEN_CHECK(impl_->write_header(e.get(), name));
  return impl_->write_data(data.data(), data.size(), name);
}

Status TarOut::add_file(const std::string& name, const std::string& path,
                        std::string_view expected_digest) {
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return Error::sys("open " + path);
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return Error::sys("stat " + path);
  if (!S_ISREG(st.st_mode)) return Error("add " + path + " to tar: not a regular file");
  EntryPtr e = make_entry(name, AE_IFREG, 0644, st.st_size);
  DFGEN_CHECK(impl_->write_header(e.get(), name));
  Sha256 hash;
  std::vector<char> buf(1 << 20);
  int64_t total = 0;
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("read " + path);
    if (n == 0) break;
    total += n;
    if (total > st.st_size) return Error("read " + path + ": file grew while being archived");
    hash.update(buf.data(), static_cast<size_t>(n));
    DFGEN_CHECK(impl_->write_data(buf.data(), static_cast<size_t>(n), name));
  }
  if (total != st.st_size) return Error("read " + path + ": file shrank while being archived");
  if (!expected_digest.empty()) {
    std::string got = hash.digest();
    if (got != expected_digest)
      return Error(fmt::format("blob {} is corrupt: content hashes to {}", expected_digest, got));
  }
  return ok_status();
}

Status TarOut::commit() {
  if (archive_write_close(impl_->ar.get()) != ARCHIVE_OK)
    return impl_->ar_error("finish tar " + impl_->dest);
  impl_->ar.reset();
  if (::fsync(impl_->fd.get()) != 0) return Error::sys("fsync " + impl_->temp);
  if (::close(impl_->fd.release()) != 0) return Error::sys("close " + impl_->temp);
  if (::rename(impl_->temp.c_str(), impl_->dest.c_str()) != 0)
    return Error::sys("rename " + impl_->temp + " to " + impl_->dest);
  impl_->committed = true;
  return fsync_dir(dirname_of(impl_->dest));
}

}  // namespace dfgen::image
