#include "runner/layer/pgzip.h"

#include <zlib.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/sha256.h"

namespace dfgen::layer {

namespace {

constexpr size_t kDictSize = 32 * 1024;

struct Block {
  std::vector<unsigned char> input;
  std::vector<unsigned char> dict;   // last bytes of the block before (empty for the first)
  bool last = false;
  // Results.
  ByteBuffer output;
  uLong crc = 0;
  std::string key;        // set when there is a cache
  uint32_t output_crc = 0;   // with a key: CRC-32 of the output
  bool reused = false;
  std::string error;
  bool done = false;
};

// Bump when what a block's bytes are made from changes (the probe, the
// strategies, the flush): cached blocks of an older writer are then unknown.
constexpr const char* kBlockFormat = "dfgen-gzblock/1";

// The block's cache key: everything its compressed bytes depend on.
std::string block_key(const Block& b, int level) {
  Sha256 h;
  h.update(fmt::format("{} zlib={} level={} last={} dict={} input={}\n", kBlockFormat, zlibVersion(), level,
                       b.last ? 1 : 0, b.dict.size(), b.input.size()));
  h.update(b.dict.data(), b.dict.size());
  h.update(b.input.data(), b.input.size());
  return h.hex();
}

// Each block's first kProbe bytes (all of a shorter one's, from kMinProbe
// up) are deflated alone at level 1 first. When they come out at least kStoredRatio of their size (random or already
// compressed data) the block is written as stored deflate blocks: deflating
// it would cost the most CPU of any input and gain nothing. At the default
// level, a block that compresses poorly (at least kFastRatio: say small
// compressed or random files between tar headers) is deflated with runs
// only (Z_RLE: the zeros of tar headers and padding go, no match search),
// about 3x faster than level 6 or 1 there for ~3 % more bytes; one that
// compresses well (text, binaries, zeros) gets level 6. The choice depends
// only on the block's bytes, so the output still depends only on the input.
constexpr size_t kProbe = 64 << 10;
constexpr size_t kMinProbe = 4 << 10;
constexpr double kStoredRatio = 0.99;
constexpr double kFastRatio = 0.75;

// Smaller blocks are deflated without a cache lookup: it would cost more
// than it saves (and a volatile entry's block never matches).
constexpr size_t kMinCachedBlock = 16 << 10;

// At most this many blocks in flight, however small.
constexpr size_t kMaxInFlight = 64;

// Raw deflate streams, reset per block: one at the level asked for, one
// storing (level 0), one of runs only (the default level's poorly
// compressible blocks), one probing (level 1).
class Deflater {
 public:
  explicit Deflater(int level) : level_(level), adaptive_(level == Z_DEFAULT_COMPRESSION) {
    ok_ = deflateInit2(&z_, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK &&
          deflateInit2(&stored_, 0, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK &&
          deflateInit2(&fast_, 1, Z_DEFLATED, -15, 8, Z_RLE) == Z_OK &&
          deflateInit2(&probe_, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~Deflater() {
    deflateEnd(&z_);
    deflateEnd(&stored_);
    deflateEnd(&fast_);
    deflateEnd(&probe_);
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  void run(Block& b, GzipBlockCache* cache) {
    if (cache && b.input.size() >= kMinCachedBlock && !incompressible_head(b)) {
      b.key = block_key(b, level_);
      if (auto hit = cache->find(b.key, b.input.size())) {
        b.output = std::move(hit->bytes);
        b.crc = hit->crc;
        b.output_crc = hit->output_crc;
        b.reused = true;
        return;
      }
    }
    b.crc = crc32(0L, b.input.data(), static_cast<uInt>(b.input.size()));
    if (!ok_) {
      b.error = "gzip: deflateInit2 failed";
      return;
    }
    double ratio = probe_ratio(b);
    z_stream& z = ratio >= kStoredRatio ? stored_ : adaptive_ && ratio >= kFastRatio ? fast_ : z_;
    if (deflateReset(&z) != Z_OK) {
      b.error = "gzip: deflateReset failed";
      return;
    }
    if (!b.dict.empty() &&
        deflateSetDictionary(&z, b.dict.data(), static_cast<uInt>(b.dict.size())) != Z_OK) {
      b.error = "gzip: deflateSetDictionary failed";
      return;
    }
    b.output.resize(deflateBound(&z, b.input.size()) + 64);
    z.next_in = b.input.data();
    z.avail_in = static_cast<uInt>(b.input.size());
    size_t produced = 0;
    int flush = b.last ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
      if (produced == b.output.size()) b.output.resize(b.output.size() * 2);
      z.next_out = b.output.data() + produced;
      z.avail_out = static_cast<uInt>(b.output.size() - produced);
      int rc = deflate(&z, flush);
      produced = b.output.size() - z.avail_out;
      if (rc == Z_STREAM_ERROR) {
        b.error = "gzip: deflate failed";
        return;
      }
      // Done when all input is in and the flush completed (room left over).
      if (b.last ? rc == Z_STREAM_END : (z.avail_in == 0 && z.avail_out != 0)) break;
    }
    b.output.resize(produced);
    if (!b.key.empty()) b.output_crc = static_cast<uint32_t>(crc32(0L, b.output.data(), static_cast<uInt>(produced)));
  }

 private:
  // Whether the block's first kMinProbe bytes do not compress at all
  // (random or compressed data). Such a block is not worth a key: it will
  // most likely be stored, which costs less than hashing it.
  bool incompressible_head(const Block& b) { return ratio_of(b, kMinProbe) >= kStoredRatio; }

  // Compressed size / size of the block's first kProbe bytes (all of a
  // shorter block's) at level 1; 0 (compress as asked) for a block shorter
  // than kMinProbe (a directory's header, say).
  double probe_ratio(const Block& b) { return ratio_of(b, kProbe); }

  // Compressed size / size of the block's first `limit` bytes at level 1
  // (0 when fewer than kMinProbe).
  double ratio_of(const Block& b, size_t limit) {
    size_t n = std::min(b.input.size(), limit);
    if (n < kMinProbe || deflateReset(&probe_) != Z_OK) return 0;
    probe_out_.resize(deflateBound(&probe_, n));
    probe_.next_in = const_cast<Bytef*>(b.input.data());
    probe_.avail_in = static_cast<uInt>(n);
    probe_.next_out = probe_out_.data();
    probe_.avail_out = static_cast<uInt>(probe_out_.size());
    if (deflate(&probe_, Z_FINISH) != Z_STREAM_END) return 0;
    return static_cast<double>(probe_out_.size() - probe_.avail_out) / static_cast<double>(n);
  }

  int level_;
  bool adaptive_;
  z_stream z_{}, stored_{}, fast_{}, probe_{};
  ByteBuffer probe_out_;
  bool ok_ = false;
};

}  // namespace

// A 64-bit hash of an entry's name (FNV-1a, then a finalizer that spreads
// its bits): fixed here, never std::hash, whose values may change with the
// library.
uint64_t name_hash(std::string_view name) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

// The caller's thread cuts blocks and queues them; workers compress them
// (any order); one writer thread takes them in order and does what must be
// sequential: the input's SHA-256, the CRC, the sink (which hashes and writes
// the blob). The caller only fills blocks.
struct ParallelGzip::Impl {
  Sink sink;
  Options opts;

  // Caller's side.
  std::vector<unsigned char> current;   // the block being filled
  std::vector<unsigned char> dict;      // tail of the last submitted block
  uint64_t entry_bytes = 0;             // since the last entry boundary
  uint64_t run_bytes = 0;               // since the last volatile entry
  bool isolating = false;               // the current block holds just a volatile entry
  bool current_without_dict = false;    // the current block starts at or after a volatile entry
  bool finished = false;
  Status status = ok_status();          // the caller's first error

  // Writer's side (the caller's thread with threads == 1); read by the
  // caller only after the writer is joined.
  uLong crc = 0;
  uint64_t total = 0;
  uint64_t out_pos = 0;                 // bytes handed to the sink
  std::vector<GzipBlock> written;
  std::optional<Sha256> input_hash;
  std::string input_digest;
  bool header_written = false;

  // Inline mode (threads == 1).
  std::unique_ptr<Deflater> inline_deflater;

  // Thread mode.
  std::mutex mu;
  std::condition_variable work_cv;    // workers wait for blocks
  std::condition_variable done_cv;    // the writer waits for the oldest block
  std::condition_variable space_cv;   // the caller waits for room in flight
  std::deque<std::shared_ptr<Block>> todo;       // not yet taken by a worker
  std::deque<std::shared_ptr<Block>> in_order;   // submitted, not yet written out
  size_t in_flight = 0;                           // their input bytes
  bool stopping = false;                // workers and writer: leave
  bool closed = false;                  // writer: no more blocks will come
  Status writer_status = ok_status();   // the writer's first error
  std::vector<std::thread> workers;
  std::thread writer;

  ~Impl() { stop(); }

  void stop() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    work_cv.notify_all();
    done_cv.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
    if (writer.joinable()) writer.join();
  }

  bool content_defined() const { return opts.min_block > 0; }

  void start() {
    if (opts.threads == 1) {
      inline_deflater = std::make_unique<Deflater>(opts.level);
      return;
    }
    for (int i = 0; i < opts.threads; ++i)
      workers.emplace_back([this] { worker(); });
    writer = std::thread([this] { write_loop(); });
  }

  void worker() {
    Deflater d(opts.level);
    for (;;) {
      std::shared_ptr<Block> b;
      {
        std::unique_lock lock(mu);
        work_cv.wait(lock, [&] { return stopping || !todo.empty(); });
        if (stopping) return;
        b = std::move(todo.front());
        todo.pop_front();
      }
      d.run(*b, opts.cache);
      {
        std::lock_guard lock(mu);
        b->done = true;
      }
      done_cv.notify_all();
    }
  }

  // Writes blocks in order as they are done; after an error, drops them
  // (the caller sees writer_status).
  void write_loop() {
    for (;;) {
      std::shared_ptr<Block> b;
      {
        std::unique_lock lock(mu);
        done_cv.wait(lock, [&] { return stopping || (in_order.empty() ? closed : in_order.front()->done); });
        if (stopping || in_order.empty()) return;
        b = in_order.front();
      }
      Status st = writer_status.ok() ? write_block(*b) : ok_status();
      {
        std::lock_guard lock(mu);
        if (!st.ok()) writer_status = std::move(st);
        in_flight -= b->input.size();
        in_order.pop_front();
      }
      space_cv.notify_all();
    }
  }

  Status emit(const void* data, size_t size) {
    if (!size) return ok_status();
    out_pos += size;
    return sink(data, size);
  }

  Status write_header() {
    if (header_written) return ok_status();
    header_written = true;
    // ID1 ID2 CM FLG MTIME(4) XFL OS: no name, mtime 0, OS "Unix" as zlib writes.
    int xfl = opts.level == 9 ? 2 : (opts.level == 1 ? 4 : 0);
    const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, static_cast<unsigned char>(xfl), 3};
    return emit(header, sizeof header);
  }

  // A block's output goes out; its CRC joins the member's (writer's side).
  Status write_block(Block& b) {
    if (!b.error.empty()) return Error(b.error);
    DFGEN_CHECK(write_header());
    if (input_hash) input_hash->update(b.input.data(), b.input.size());
    crc = crc32_combine(crc, b.crc, static_cast<z_off_t>(b.input.size()));
    total += b.input.size();
    GzipBlock rec;
    rec.key = std::move(b.key);
    rec.offset = out_pos;
    rec.size = b.output.size();
    rec.crc = static_cast<uint32_t>(b.crc);
    rec.input_size = b.input.size();
    rec.output_crc = b.output_crc;
    rec.reused = b.reused;
    written.push_back(std::move(rec));
    return emit(b.output.data(), b.output.size());
  }

  Status submit(bool last) {
    auto b = std::make_shared<Block>();
    b->input.swap(current);
    if (!current_without_dict) b->dict = dict;
    current_without_dict = false;
    b->last = last;
    if (!last) {
      size_t n = std::min(kDictSize, b->input.size());
      dict.assign(b->input.end() - static_cast<std::ptrdiff_t>(n), b->input.end());
    }
    current.clear();
    current.reserve(content_defined() ? std::min(opts.block_size, opts.min_block + 2 * opts.cut_target)
                                      : opts.block_size);
    if (inline_deflater) {
      inline_deflater->run(*b, opts.cache);
      return write_block(*b);
    }
    // Keep a few blocks' worth of input per thread in flight: bounded
    // memory, and the workers never starve behind a run of small blocks
    // (directories' own), which a count of blocks would allow.
    size_t budget = static_cast<size_t>(opts.threads) * (content_defined() ? 3 * opts.min_block : 2 * opts.block_size);
    std::unique_lock lock(mu);
    space_cv.wait(lock, [&] {
      return !writer_status.ok() || in_order.empty() ||
             (in_flight + b->input.size() <= budget && in_order.size() < kMaxInFlight);
    });
    if (!writer_status.ok()) return writer_status;
    in_flight += b->input.size();
    todo.push_back(b);
    in_order.push_back(b);
    lock.unlock();
    work_cv.notify_one();
    return ok_status();
  }

  // Waits for the writer to write every block and leave (thread mode).
  Status close() {
    if (inline_deflater) return ok_status();
    {
      std::lock_guard lock(mu);
      closed = true;
    }
    done_cv.notify_all();
    writer.join();
    std::lock_guard lock(mu);
    return writer_status;
  }

  // Whether a block ends after an entry of `entry_bytes` named `name`: with a
  // probability of entry_bytes / cut_target, decided by the name's hash.
  bool cut_after(std::string_view name) const {
    if (entry_bytes >= opts.cut_target) return true;
    uint64_t u = name_hash(name) >> 32;   // uniform in [0, 2^32)
    return u * opts.cut_target < (entry_bytes << 32);
  }

  Status write(const unsigned char* p, size_t size) {
    while (size > 0) {
      size_t n = std::min(size, opts.block_size - current.size());
      if (content_defined()) n = std::min<uint64_t>(n, opts.chunk - entry_bytes % opts.chunk);
      current.insert(current.end(), p, p + n);
      p += n;
      size -= n;
      entry_bytes += n;
      run_bytes += n;
      bool full = current.size() == opts.block_size;
      bool chunk_end = content_defined() && entry_bytes % opts.chunk == 0 && current.size() >= opts.min_block;
      if (full || chunk_end) DFGEN_CHECK(submit(false));
    }
    return ok_status();
  }

  Status entry_boundary(std::string_view name) {
    if (isolating) {
      isolating = false;
      entry_bytes = 0;
      run_bytes = 0;
      DFGEN_CHECK(submit(false));
      current_without_dict = true;
      return ok_status();
    }
    bool cut = content_defined() && current.size() >= opts.min_block && cut_after(name);
    entry_bytes = 0;
    return cut ? submit(false) : ok_status();
  }

  Status begin_volatile_entry() {
    if (!content_defined() || run_bytes < opts.isolate_min) return ok_status();
    if (!current.empty()) DFGEN_CHECK(submit(false));
    // Its block needs no dictionary: it is small and never reused.
    isolating = true;
    current_without_dict = true;
    return ok_status();
  }

  // Runs one step of the caller's; its first error sticks.
  template <typename F>
  Status guarded(const char* what, F&& f) {
    if (finished) return Error(fmt::format("gzip: {} after finish", what));
    DFGEN_CHECK(status);
    Status st = f();
    if (!st.ok()) status = st;
    return st;
  }
};

ParallelGzip::Options ParallelGzip::layer_options(int level, GzipBlockCache* cache) {
  Options o;
  o.level = level;
  // Every block costs ~0.7 ms of set-up (its probe, its dictionary):
  // smaller ones would cost a cold layer more than they save a warm one.
  o.block_size = 4 << 20;
  o.min_block = 1 << 20;
  o.cut_target = 1 << 20;
  o.chunk = 1 << 20;
  o.hash_input = true;
  o.cache = cache;
  return o;
}

ParallelGzip::ParallelGzip(Sink sink, int threads, size_t block_size, int level)
    : ParallelGzip(std::move(sink), Options{.threads = threads, .level = level, .block_size = block_size}) {}

ParallelGzip::ParallelGzip(Sink sink, const Options& opts) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.sink = std::move(sink);
  s.opts = opts;
  if (s.opts.threads <= 0)
    s.opts.threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  s.opts.block_size = std::max<size_t>(s.opts.block_size, kDictSize);
  if (s.content_defined()) {
    s.opts.min_block = std::min(s.opts.min_block, s.opts.block_size);
    s.opts.cut_target = std::max<size_t>(s.opts.cut_target, 1);
    s.opts.chunk = std::max<size_t>(s.opts.chunk, kDictSize);
  }
  if (s.opts.hash_input) s.input_hash.emplace();
  s.current.reserve(s.opts.block_size);
  s.run_bytes = s.opts.isolate_min;   // a volatile first entry is isolated
  s.start();
}

ParallelGzip::~ParallelGzip() = default;

int ParallelGzip::threads() const { return impl_->opts.threads; }

const std::vector<GzipBlock>& ParallelGzip::blocks() const { return impl_->written; }

const std::string& ParallelGzip::input_digest() const { return impl_->input_digest; }

Status ParallelGzip::write(const void* data, size_t size) {
  Impl& s = *impl_;
  return s.guarded("write", [&] { return s.write(static_cast<const unsigned char*>(data), size); });
}

Status ParallelGzip::entry_boundary(std::string_view name) {
  Impl& s = *impl_;
  return s.guarded("entry boundary", [&] { return s.entry_boundary(name); });
}

Status ParallelGzip::begin_volatile_entry() {
  Impl& s = *impl_;
  return s.guarded("entry", [&] { return s.begin_volatile_entry(); });
}

Status ParallelGzip::finish() {
  Impl& s = *impl_;
  return s.guarded("finish", [&]() -> Status {
    s.finished = true;
    DFGEN_CHECK(s.submit(true));
    DFGEN_CHECK(s.close());
    if (s.input_hash) s.input_digest = s.input_hash->digest();
    unsigned char trailer[8];
    for (int i = 0; i < 4; ++i) trailer[i] = static_cast<unsigned char>(s.crc >> (8 * i));
    for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<unsigned char>(s.total >> (8 * i));
    return s.emit(trailer, sizeof trailer);
  });
}

}  // namespace dfgen::layer
