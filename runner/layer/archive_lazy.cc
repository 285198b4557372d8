// libarchive, loaded on first use. Linking libarchive.so made every dfrun
// process load it and what it links (xml2, ICU, nettle, lzma, lz4, bz2, acl):
// ~0.8 ms of the loader and their initialisers, a fifth of a cache-hit
// `dfrun step`, which never opens an archive (bench/analysis.md). These
// definitions stand in for the libarchive functions the project calls (same
// names and signatures as archive.h and archive_entry.h: callers use the
// library as usual) and forward to the real ones, dlopen()ed by the first
// call. Nothing links libarchive itself, so the executable exports none of
// these names and libarchive's calls to its own functions stay inside it. A
// function the code starts to use is added below (the link fails until it
// is). Without libarchive.so.13 the first call says so and exits: there is
// no error value all of these could return.
#include "runner/layer/archive_lazy.h"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

struct Library {
  void* handle = nullptr;
  std::string error;   // dlerror() when it could not be loaded
};

// Loaded once, from whichever thread asks first.
const Library& library() {
  static const Library lib = [] {
    Library l;
    l.handle = ::dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!l.handle) l.error = ::dlerror();
    return l;
  }();
  return lib;
}

// Exits on failure, on the thread of the first real call (never on the
// preloading one, where exit() would race the step's own thread).
void* archive_symbol(const char* name) {
  const Library& lib = library();
  if (!lib.handle) {
    std::fprintf(stderr, "dfrun: cannot load libarchive: %s (install libarchive13)\n", lib.error.c_str());
    std::exit(1);
  }
  void* f = ::dlsym(lib.handle, name);
  if (!f) {
    std::fprintf(stderr, "dfrun: libarchive has no %s\n", name);
    std::exit(1);
  }
  return f;
}

}  // namespace

namespace dfgen::layer {
void preload_archive() { (void)library(); }
}  // namespace dfgen::layer

#define DFGEN_ARCHIVE_FORWARD(ret, name, params, args)                                   \
  extern "C" ret name params {                                                           \
    static const auto real = reinterpret_cast<decltype(&::name)>(archive_symbol(#name)); \
    return real args;                                                                    \
  }

DFGEN_ARCHIVE_FORWARD(__LA_MODE_T, archive_entry_filetype, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_free, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(la_int64_t, archive_entry_gid, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(const char *, archive_entry_hardlink, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(time_t, archive_entry_mtime, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(long, archive_entry_mtime_nsec, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(struct archive_entry *, archive_entry_new, (), ())
DFGEN_ARCHIVE_FORWARD(const char *, archive_entry_pathname, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(__LA_MODE_T, archive_entry_perm, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(dev_t, archive_entry_rdevmajor, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(dev_t, archive_entry_rdevminor, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_filetype, (struct archive_entry * a0, unsigned int a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_gid, (struct archive_entry * a0, la_int64_t a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_hardlink, (struct archive_entry * a0, const char * a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_mtime, (struct archive_entry * a0, time_t a1, long a2), (a0, a1, a2))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_pathname, (struct archive_entry * a0, const char * a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_perm, (struct archive_entry * a0, __LA_MODE_T a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_rdevmajor, (struct archive_entry * a0, dev_t a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_rdevminor, (struct archive_entry * a0, dev_t a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_size, (struct archive_entry * a0, la_int64_t a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_symlink, (struct archive_entry * a0, const char * a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_set_uid, (struct archive_entry * a0, la_int64_t a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(la_int64_t, archive_entry_size, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(const char *, archive_entry_symlink, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(la_int64_t, archive_entry_uid, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(void, archive_entry_xattr_add_entry, (struct archive_entry * a0, const char * a1, const void * a2, size_t a3), (a0, a1, a2, a3))
DFGEN_ARCHIVE_FORWARD(int, archive_entry_xattr_next, (struct archive_entry * a0, const char ** a1, const void ** a2, size_t * a3), (a0, a1, a2, a3))
DFGEN_ARCHIVE_FORWARD(int, archive_entry_xattr_reset, (struct archive_entry * a0), (a0))
DFGEN_ARCHIVE_FORWARD(const char *, archive_error_string, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(la_ssize_t, archive_read_data, (struct archive * a0, void * a1, size_t a2), (a0, a1, a2))
DFGEN_ARCHIVE_FORWARD(int, archive_read_data_block, (struct archive * a0, const void ** a1, size_t * a2, la_int64_t * a3), (a0, a1, a2, a3))
DFGEN_ARCHIVE_FORWARD(int, archive_read_data_skip, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_read_free, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(struct archive *, archive_read_new, (), ())
DFGEN_ARCHIVE_FORWARD(int, archive_read_next_header, (struct archive * a0, struct archive_entry ** a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(int, archive_read_open, (struct archive * a0, void * a1, archive_open_callback * a2, archive_read_callback * a3, archive_close_callback * a4), (a0, a1, a2, a3, a4))
DFGEN_ARCHIVE_FORWARD(int, archive_read_open_fd, (struct archive * a0, int a1, size_t a2), (a0, a1, a2))
DFGEN_ARCHIVE_FORWARD(int, archive_read_open_filename, (struct archive * a0, const char * a1, size_t a2), (a0, a1, a2))
DFGEN_ARCHIVE_FORWARD(int, archive_read_open_memory, (struct archive * a0, const void * a1, size_t a2), (a0, a1, a2))
DFGEN_ARCHIVE_FORWARD(int, archive_read_support_filter_all, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_read_support_filter_gzip, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_read_support_filter_none, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_read_support_filter_zstd, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_read_support_format_gnutar, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_read_support_format_raw, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_read_support_format_tar, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_write_add_filter_gzip, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_write_add_filter_none, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_write_close, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(la_ssize_t, archive_write_data, (struct archive * a0, const void * a1, size_t a2), (a0, a1, a2))
DFGEN_ARCHIVE_FORWARD(int, archive_write_finish_entry, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_write_free, (struct archive * a0), (a0))
DFGEN_ARCHIVE_FORWARD(int, archive_write_header, (struct archive * a0, struct archive_entry * a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(struct archive *, archive_write_new, (), ())
DFGEN_ARCHIVE_FORWARD(int, archive_write_open, (struct archive * a0, void * a1, archive_open_callback * a2, archive_write_callback * a3, archive_close_callback * a4), (a0, a1, a2, a3, a4))
DFGEN_ARCHIVE_FORWARD(int, archive_write_open2, (struct archive * a0, void * a1, archive_open_callback * a2, archive_write_callback * a3, archive_close_callback * a4, archive_free_callback * a5), (a0, a1, a2, a3, a4, a5))
DFGEN_ARCHIVE_FORWARD(int, archive_write_open_fd, (struct archive * a0, int a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(int, archive_write_set_bytes_in_last_block, (struct archive * a0, int a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(int, archive_write_set_bytes_per_block, (struct archive * a0, int a1), (a0, a1))
DFGEN_ARCHIVE_FORWARD(int, archive_write_set_format_pax_restricted, (struct archive * a0), (a0))

// Variadic: formatted here, passed on as "%s".
extern "C" void archive_set_error(struct archive* a, int err, const char* fmt, ...) {
  static const auto real = reinterpret_cast<decltype(&::archive_set_error)>(archive_symbol("archive_set_error"));
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  real(a, err, "%s", message);
}
