// gzip on several threads, pigz style: the input is cut into blocks, each
// compressed by its own raw deflate stream (primed with the last 32 KiB of
// the block before it) that ends on a byte boundary (Z_SYNC_FLUSH; the last
// block with Z_FINISH). The blocks are concatenated in order into ONE gzip
// member, whose CRC-32 is combined from the blocks' (crc32_combine) and whose
// ISIZE is the total length. Every block's bytes depend only on its input,
// the dictionary and the level, so the output is the same whatever the thread
// count and the timing: a layer digest never depends on the machine. The
// header carries no name and mtime 0. A block that does not compress (its
// first 64 KiB, deflated alone at level 1, keep 99 % of their size: random or
// already compressed data) is written as stored deflate blocks, at memory
// speed; at the default level, one that compresses poorly (75 %) is deflated
// with runs only (Z_RLE): decided from its bytes alone.
//
// Where blocks are cut. Fixed blocks (Options::min_block == 0): every
// block_size bytes. Content-defined (min_block > 0, what layers use): the
// writer calls entry_boundary(name) after each tar entry; a block ends there
// once it holds min_block bytes and a hash of the name says "cut" (with a
// probability of entry bytes / cut_target, so blocks average about
// min_block + cut_target whatever the entry sizes); inside an entry, a block
// that holds min_block bytes ends at every chunk bytes from the entry's start
// (a big file is cut at the same offsets wherever it lands); block_size is
// the hard limit. So a file that changes size moves no boundary outside its own
// block (and at most the next one): the other blocks have the same input and
// dictionary as before.
//
// Volatile entries. A directory's header carries its mtime, which moves when
// a file is added or removed in it, and which a COPY sets to the build time:
// between two builds of the same tree every directory header differs. The
// writer calls begin_volatile_entry() before such an entry; when at least
// isolate_min bytes were written since the last volatile entry, the entry
// gets a block of its own (without a dictionary: it is small, and never
// the same twice) and the block after it starts without a dictionary (its
// back references could reach into the entry), so the blocks around it keep
// their keys. A volatile entry after fewer bytes stays in its block: a tree
// of tiny folders keeps its dictionaries, and its ratio.
//
// Reuse. With a GzipBlockCache, each block's key (SHA-256 over a format version,
// zlib's version, the level, whether it is the last block, the dictionary and
// the input; hashed on the worker threads) is looked up before deflating it;
// a hit's stored compressed bytes are used as they are: they are exactly what
// deflating would give, so the output is the same with or without a cache.
// Blocks under 16 KiB, and blocks whose first 4 KiB do not compress at all
// (random or compressed data: storing them costs less than hashing them),
// are not looked up or recorded.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace dfgen::layer {

// Bytes whose resize() leaves new bytes uninitialised: compressed blocks are
// sized to deflate's bound, or read from a file, and then overwritten, so
// zero-filling them first would only cost a pass over every byte.
template <typename T>
struct UninitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <typename U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using ByteBuffer = std::vector<unsigned char, UninitAllocator<unsigned char>>;

// One block of a gzip stream as written: where its compressed bytes are.
struct GzipBlock {
  std::string key;           // 64 hex digits (see above)
  uint64_t offset = 0;       // of its compressed bytes in the stream (the gzip header counts)
  uint64_t size = 0;         // compressed bytes
  uint32_t crc = 0;          // CRC-32 of the input
  uint64_t input_size = 0;
  uint32_t output_crc = 0;   // CRC-32 of the compressed bytes
  bool reused = false;       // taken from the cache, not deflated
};

// Compressed blocks seen before. find() is called on worker threads, at the
// same time for several keys: it must be thread-safe.
class GzipBlockCache {
 public:
  struct Hit {
    ByteBuffer bytes;                   // the compressed bytes, as deflate gave them
    uint32_t crc = 0;                   // CRC-32 of the input
    uint32_t output_crc = 0;            // CRC-32 of `bytes`
  };
  virtual ~GzipBlockCache() = default;
  // The block with this key and input length, or nullopt (unknown, or its
  // bytes are gone or do not check out).
  virtual std::optional<Hit> find(const std::string& key, uint64_t input_size) = 0;
};

class ParallelGzip {
 public:
  // Receives the compressed stream, in order, one call at a time: on a
  // writer thread of the compressor's (the caller's thread with threads == 1),
  // so the caller may not use what the sink writes to before finish().
  using Sink = std::function<Status(const void* data, size_t size)>;

  static constexpr size_t kDefaultBlock = 1 << 20;

  struct Options {
    // <= 0: one per CPU (at most 8). 1 compresses on the caller's thread, same bytes.
    int threads = 0;
    int level = -1;
    size_t block_size = kDefaultBlock;   // fixed blocks; the hard limit when content-defined
    size_t min_block = 0;                // 0: fixed blocks; else content-defined (see above)
    size_t cut_target = 1 << 20;
    size_t chunk = 1 << 20;
    size_t isolate_min = 64 << 10;
    bool hash_input = false;             // SHA-256 of the input: input_digest()
    GzipBlockCache* cache = nullptr;     // not owned; must outlive the compressor
  };
  // What layers use: content-defined blocks of 1 to 4 MiB, the input
  // hashed (the diff_id) on the writer thread.
  static Options layer_options(int level, GzipBlockCache* cache);

  explicit ParallelGzip(Sink sink, int threads = 0, size_t block_size = kDefaultBlock, int level = -1);
  ParallelGzip(Sink sink, const Options& opts);
  ~ParallelGzip();
  ParallelGzip(const ParallelGzip&) = delete;
  ParallelGzip& operator=(const ParallelGzip&) = delete;

  Status write(const void* data, size_t size);
  // The bytes written so far end an entry named `name` (content-defined
  // blocks may end here; ignored with fixed blocks).
  Status entry_boundary(std::string_view name);
  // The next entry's bytes change between otherwise equal layers (see above).
  Status begin_volatile_entry();
  // Ends the member (last block, trailer). No write() after it.
  Status finish();

  int threads() const;
  // After finish(): every block written, in order; with hash_input, the
  // input's digest ("sha256:...").
  const std::vector<GzipBlock>& blocks() const;
  const std::string& input_digest() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfgen::layer
