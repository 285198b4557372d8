// libarchive is loaded on first use (archive_lazy.cc): include <archive.h>
// and call it as usual.
#pragma once

namespace dfgen::layer {

// Loads libarchive now (say on another thread while a container runs), so
// the first archive call later does not wait for it.
void preload_archive();

}  // namespace dfgen::layer
