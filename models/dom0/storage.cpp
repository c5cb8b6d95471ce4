// Storage images, service-time models and the write-cached disk; see storage.h for the design.
#include "models/dom0/storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <iterator>
#include <stdexcept>

namespace xensim {

namespace {
__extension__ using u128 = unsigned __int128;
constexpr std::uint64_t kPsPerSecond = 1'000'000'000'000ull;
}  // namespace

const char* storage_op_name(StorageOp op) {
    switch (op) {
        case StorageOp::read:
            return "read";
        case StorageOp::write:
            return "write";
        case StorageOp::flush:
            return "flush";
        case StorageOp::discard:
            return "discard";
    }
    return "unknown";
}

const char* storage_error_name(StorageError e) {
    switch (e) {
        case StorageError::none:
            return "none";
        case StorageError::read_only:
            return "read_only";
        case StorageError::out_of_range:
            return "out_of_range";
        case StorageError::bad_request:
            return "bad_request";
    }
    return "unknown";
}

std::uint64_t transfer_ps(std::uint64_t bytes, std::uint64_t bytes_per_s) {
    if (bytes_per_s == 0) return 0;  // an infinitely fast path
    return static_cast<std::uint64_t>(u128{bytes} * kPsPerSecond / bytes_per_s);
}

// ---- Images -------------------------------------------------------------------------------------

DiskImage::~DiskImage() = default;

MemoryImage::MemoryImage(std::uint64_t sectors) : sectors_(sectors) {}

void MemoryImage::read(std::uint64_t sector, std::uint32_t n, std::uint8_t* out) {
    std::uint64_t off = sector * kSectorSize, end = off + std::uint64_t{n} * kSectorSize;
    while (off < end) {
        std::uint64_t in = off % kPageBytes, len = std::min<std::uint64_t>(kPageBytes - in, end - off);
        auto it = pages_.find(off / kPageBytes);
        if (it == pages_.end()) {
            std::memset(out, 0, len);
        } else {
            std::memcpy(out, it->second.data() + in, len);
        }
        out += len;
        off += len;
    }
}

void MemoryImage::write(std::uint64_t sector, std::uint32_t n, const std::uint8_t* in_data) {
    std::uint64_t off = sector * kSectorSize, end = off + std::uint64_t{n} * kSectorSize;
    while (off < end) {
        std::uint64_t in = off % kPageBytes, len = std::min<std::uint64_t>(kPageBytes - in, end - off);
        Page& page = pages_[off / kPageBytes];
        if (page.empty()) page.assign(kPageBytes, 0);
        std::memcpy(page.data() + in, in_data, len);
        in_data += len;
        off += len;
    }
}

void MemoryImage::discard(std::uint64_t sector, std::uint64_t n) {
    if (n == 0) return;
    const std::uint64_t off = sector * kSectorSize, end = off + n * kSectorSize;
    const std::uint64_t first = off / kPageBytes, last = (end - 1) / kPageBytes;
    // Zero the part of page `index` inside [off, end); a page wholly inside is freed.
    auto clear = [&](std::uint64_t index) {
        auto it = pages_.find(index);
        if (it == pages_.end()) return;
        const std::uint64_t p0 = index * kPageBytes;
        const std::uint64_t lo = std::max(off, p0), hi = std::min(end, p0 + kPageBytes);
        if (lo == p0 && hi == p0 + kPageBytes) {
            pages_.erase(it);
        } else {
            std::memset(it->second.data() + (lo - p0), 0, hi - lo);
        }
    };
    if (last - first < pages_.size()) {
        for (std::uint64_t i = first; i <= last; ++i) clear(i);
        return;
    }
    // A range larger than what is held (a discard of the whole disk): walk the pages held instead.
    std::vector<std::uint64_t> held;
    for (const auto& [index, page] : pages_)
        if (index >= first && index <= last) held.push_back(index);
    for (std::uint64_t i : held) clear(i);
}

FileImage::FileImage(const std::string& path, std::uint64_t size_bytes, bool read_only) : path_(path) {
    auto bad = [&](const std::string& why) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        throw std::runtime_error("disk image '" + path_ + "': " + why);
    };
    auto sys = [&](const char* what) { bad(std::string(what) + ": " + std::strerror(errno)); };
    if (path_.empty() || path_[0] != '/') bad("the image path must be absolute");
    if (size_bytes % kSectorSize != 0)
        bad("size " + std::to_string(size_bytes) + " is not a multiple of 512");
    fd_ = ::open(path_.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd_ < 0 && errno == ENOENT && !read_only) {
        if (size_bytes == 0) bad("file does not exist and no size was given to create it");
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd_ < 0) sys("cannot create");
        if (::ftruncate(fd_, static_cast<off_t>(size_bytes)) != 0) sys("cannot set size");
    }
    if (fd_ < 0) sys("cannot open");
    struct stat st;
    if (::fstat(fd_, &st) != 0) sys("cannot stat");
    if (!S_ISREG(st.st_mode)) bad("not a regular file");
    auto have = static_cast<std::uint64_t>(st.st_size);
    if (size_bytes != 0 && have != size_bytes)
        bad("existing file has " + std::to_string(have) + " bytes, the scenario asks for " +
            std::to_string(size_bytes));
    if (have == 0 || have % kSectorSize != 0)
        bad("file size " + std::to_string(have) + " is not a nonzero multiple of 512");
    sectors_ = have / kSectorSize;
}

FileImage::~FileImage() {
    if (fd_ >= 0) ::close(fd_);
}

void FileImage::fail(const char* what) const {
    throw std::runtime_error("disk image '" + path_ + "': " + what + ": " + std::strerror(errno));
}

void FileImage::read(std::uint64_t sector, std::uint32_t n, std::uint8_t* out) {
    std::uint64_t off = sector * kSectorSize, left = std::uint64_t{n} * kSectorSize;
    while (left > 0) {
        ssize_t r = ::pread(fd_, out, left, static_cast<off_t>(off));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) fail("pread");
        if (r == 0) {  // the file shrank under us: what is missing reads as zeros
            std::memset(out, 0, left);
            return;
        }
        out += r;
        off += static_cast<std::uint64_t>(r);
        left -= static_cast<std::uint64_t>(r);
    }
}

void FileImage::write(std::uint64_t sector, std::uint32_t n, const std::uint8_t* in) {
    std::uint64_t off = sector * kSectorSize, left = std::uint64_t{n} * kSectorSize;
    while (left > 0) {
        ssize_t r = ::pwrite(fd_, in, left, static_cast<off_t>(off));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) fail("pwrite");
        in += r;
        off += static_cast<std::uint64_t>(r);
        left -= static_cast<std::uint64_t>(r);
    }
}

void FileImage::discard(std::uint64_t sector, std::uint64_t n) {
    auto off = static_cast<off_t>(sector * kSectorSize);
    auto len = static_cast<off_t>(n * kSectorSize);
    if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0) return;
    if (errno != EOPNOTSUPP && errno != ENOSYS) fail("fallocate(PUNCH_HOLE)");
    static const std::vector<std::uint8_t> zeros(64 * kSectorSize, 0);
    for (std::uint64_t done = 0; done < n;) {
        auto chunk = static_cast<std::uint32_t>(std::min<std::uint64_t>(n - done, 64));
        write(sector + done, chunk, zeros.data());
        done += chunk;
    }
}

void FileImage::flush() {
    while (::fdatasync(fd_) != 0) {
        if (errno != EINTR) fail("fdatasync");
    }
}

// ---- Service-time models ------------------------------------------------------------------------

ServiceModel::~ServiceModel() = default;

std::uint64_t RamdiskModel::complete_at_ps(const StorageRequest& req, std::uint64_t submit_ps) {
    switch (req.op) {
        case StorageOp::flush:
            return submit_ps;
        case StorageOp::discard:
            return submit_ps + p_.latency_ps;
        case StorageOp::read:
        case StorageOp::write:
            return submit_ps + p_.latency_ps +
                   transfer_ps(std::uint64_t{req.sectors} * kSectorSize, p_.bandwidth);
    }
    return submit_ps;
}

SsdModel::SsdModel(SsdParams p) : p_(p), channel_free_(std::max(1u, p.channels), 0) {}

std::uint64_t SsdModel::complete_at_ps(const StorageRequest& req, std::uint64_t submit_ps) {
    if (req.op == StorageOp::flush || req.op == StorageOp::discard) {
        // Non-queued: waits for the device to go idle, and nothing starts before it completes.
        std::uint64_t done = std::max(submit_ps, link_free_);
        for (auto t : channel_free_) done = std::max(done, t);
        link_free_ = done;
        std::fill(channel_free_.begin(), channel_free_.end(), done);
        return done;
    }
    auto ch = std::min_element(channel_free_.begin(), channel_free_.end());  // lowest index on ties
    std::uint64_t xfer = transfer_ps(std::uint64_t{req.sectors} * kSectorSize, p_.bandwidth);
    if (req.op == StorageOp::read) {
        std::uint64_t flash_done = std::max(submit_ps, *ch) + p_.read_latency_ps;
        *ch = flash_done;
        link_free_ = std::max(flash_done, link_free_) + xfer;
        return link_free_;
    }
    link_free_ = std::max(submit_ps, link_free_) + xfer;
    *ch = std::max(link_free_, *ch) + p_.write_latency_ps;
    return *ch;
}

HddModel::HddModel(HddParams p, std::uint64_t image_sectors) : p_(p), image_sectors_(image_sectors) {
    if (p_.rpm == 0 || p_.media_rate == 0 || p_.cylinders == 0 || image_sectors_ == 0)
        throw std::invalid_argument("HddModel: rpm, media_rate, cylinders and image size must be nonzero");
    std::uint64_t nominal_rotation = 60 * kPsPerSecond / p_.rpm;
    sectors_per_track_ =
        std::max<std::uint64_t>(1, p_.media_rate * 60 / (std::uint64_t{p_.rpm} * kSectorSize));
    sector_ps_ = nominal_rotation / sectors_per_track_;
    rotation_ps_ = sector_ps_ * sectors_per_track_;
    double t2t = static_cast<double>(p_.track_to_track_seek_ps);
    double full = static_cast<double>(p_.full_stroke_seek_ps);
    if (p_.cylinders > 2) {
        seek_b_ps_ = (full - t2t) / (std::sqrt(static_cast<double>(p_.cylinders - 1)) - 1.0);
    }
    seek_a_ps_ = t2t - seek_b_ps_;
}

std::uint64_t HddModel::seek_ps(std::uint64_t distance) const {
    if (distance == 0) return 0;
    return static_cast<std::uint64_t>(std::llround(seek_a_ps_ + seek_b_ps_ * std::sqrt(double(distance))));
}

std::uint64_t HddModel::average_seek_ps() const {
    // Hitachi's definition: sum over n = 1..max of (max + 1 - n) * seek(n), over the sum of weights.
    const std::uint64_t max = p_.cylinders - 1;
    if (max == 0) return 0;
    double sum = 0, weights = 0;
    for (std::uint64_t n = 1; n <= max; ++n) {
        double w = static_cast<double>(max + 1 - n);
        sum += w * static_cast<double>(seek_ps(n));
        weights += w;
    }
    return static_cast<std::uint64_t>(std::llround(sum / weights));
}

std::uint64_t HddModel::cylinder_of(std::uint64_t sector) const {
    return static_cast<std::uint64_t>(u128{sector} * p_.cylinders / image_sectors_);
}

std::uint64_t HddModel::complete_at_ps(const StorageRequest& req, std::uint64_t submit_ps) {
    std::uint64_t t = std::max(submit_ps, busy_until_);
    if (req.op == StorageOp::read || req.op == StorageOp::write) {
        std::uint64_t cyl = cylinder_of(req.sector);
        t += seek_ps(cyl > head_cylinder_ ? cyl - head_cylinder_ : head_cylinder_ - cyl);
        std::uint64_t angle = (req.sector % sectors_per_track_) * sector_ps_;
        t += (angle + rotation_ps_ - t % rotation_ps_) % rotation_ps_;
        t += std::uint64_t{req.sectors} * sector_ps_;
        head_cylinder_ = cylinder_of(req.sector + req.sectors - 1);
    }
    // flush and discard: the drive finishes what it has, and costs nothing more (no media access).
    busy_until_ = t;
    return t;
}

// ---- The disk -----------------------------------------------------------------------------------

Disk::Stats::Stats(StatsGroup& g)
    : reads(g, "reads", "requests", "read requests completed"),
      writes(g, "writes", "requests", "write requests completed"),
      flushes(g, "flushes", "requests", "flush requests completed"),
      discards(g, "discards", "requests", "discard requests completed"),
      bytes_read(g, "bytes_read", "bytes", "bytes returned by reads"),
      bytes_written(g, "bytes_written", "bytes", "bytes accepted by writes"),
      cache_hits(g, "cache_hits", "requests", "reads served wholly from the write cache"),
      destaged_writes(g, "destaged_writes", "requests", "cached writes made durable by a destage"),
      errors(g, "errors", "requests", "requests refused (read-only, out of range, malformed)") {}

Disk::Disk(std::unique_ptr<DiskImage> image, std::unique_ptr<ServiceModel> model, DiskConfig config,
           StatsGroup& stats)
    : image_(std::move(image)), model_(std::move(model)), config_(config), stats_(stats) {
    if (!image_ || !model_) throw std::invalid_argument("Disk: an image and a service model are required");
}

Disk::Result Disk::fail(StorageError e, std::uint64_t submit_ps) {
    stats_.errors.inc();
    return Result{false, submit_ps, e};
}

void Disk::drop_cached(std::uint64_t sector, std::uint64_t n) {
    if (dirty_.size() < n) {  // a large discard: walk the cache, not the range
        for (auto it = dirty_.begin(); it != dirty_.end();) {
            it = (it->first >= sector && it->first - sector < n) ? dirty_.erase(it) : std::next(it);
        }
        return;
    }
    for (std::uint64_t s = sector; s < sector + n; ++s) dirty_.erase(s);
}

std::uint64_t Disk::destage(std::uint64_t at) {
    std::uint64_t done = at;
    for (StorageRequest r : pending_) {
        r.fua = false;
        done = std::max(done, model_->complete_at_ps(r, at));
    }
    // The newest data of every cached sector, in sector order, in runs of consecutive sectors.
    std::vector<std::uint64_t> keys;
    keys.reserve(dirty_.size());
    for (const auto& kv : dirty_) keys.push_back(kv.first);
    std::sort(keys.begin(), keys.end());
    std::vector<std::uint8_t> run;
    for (std::size_t i = 0; i < keys.size();) {
        std::size_t j = i;
        run.clear();
        while (j < keys.size() && keys[j] == keys[i] + (j - i) && j - i < 2048) {
            const SectorData& d = dirty_[keys[j]];
            run.insert(run.end(), d.begin(), d.end());
            ++j;
        }
        image_->write(keys[i], static_cast<std::uint32_t>(j - i), run.data());
        i = j;
    }
    stats_.destaged_writes.inc(pending_.size());
    durable_writes_ += pending_.size();
    pending_.clear();
    pending_sectors_ = 0;
    dirty_.clear();
    return done;
}

void Disk::power_loss() {
    pending_.clear();
    pending_sectors_ = 0;
    dirty_.clear();
}

void Disk::peek(std::uint64_t sector, std::uint32_t n, std::uint8_t* out) const {
    image_->read(sector, n, out);
    for (std::uint32_t i = 0; i < n && !dirty_.empty(); ++i) {
        auto it = dirty_.find(sector + i);
        if (it != dirty_.end())
            std::memcpy(out + std::uint64_t{i} * kSectorSize, it->second.data(), kSectorSize);
    }
}

Disk::Result Disk::submit(const StorageRequest& req, std::uint64_t submit_ps, std::uint8_t* data) {
    const bool mutates = req.op != StorageOp::read;
    if (mutates && config_.read_only) return fail(StorageError::read_only, submit_ps);
    if (req.op != StorageOp::flush) {
        std::uint64_t total = image_->sectors();
        if (req.sectors == 0) return fail(StorageError::bad_request, submit_ps);
        if (req.sector >= total || req.sectors > total - req.sector)
            return fail(StorageError::out_of_range, submit_ps);
    }
    if ((req.op == StorageOp::read || req.op == StorageOp::write) &&
        (data == nullptr || req.sectors > UINT32_MAX))
        return fail(StorageError::bad_request, submit_ps);
    const auto rw_sectors = static_cast<std::uint32_t>(req.sectors);  // read / write only

    const std::uint64_t bytes = std::uint64_t{req.sectors} * kSectorSize;
    std::uint64_t done = submit_ps;
    switch (req.op) {
        case StorageOp::read: {
            image_->read(req.sector, rw_sectors, data);
            bool all_cached = !dirty_.empty();
            for (std::uint32_t i = 0; i < rw_sectors && !dirty_.empty(); ++i) {
                auto it = dirty_.find(req.sector + i);
                if (it == dirty_.end()) {
                    all_cached = false;
                } else {
                    std::memcpy(data + std::uint64_t{i} * kSectorSize, it->second.data(), kSectorSize);
                }
            }
            if (all_cached) {
                stats_.cache_hits.inc();
                done = submit_ps + transfer_ps(bytes, config_.cache_bandwidth);
            } else {
                done = model_->complete_at_ps(req, submit_ps);
            }
            stats_.reads.inc();
            stats_.bytes_read.inc(bytes);
            break;
        }
        case StorageOp::write: {
            if (!config_.write_cache || req.fua || req.sectors > config_.cache_capacity_sectors) {
                done = model_->complete_at_ps(req, submit_ps);
                drop_cached(req.sector, req.sectors);
                image_->write(req.sector, rw_sectors, data);
                ++durable_writes_;
            } else {
                if (pending_sectors_ + req.sectors > config_.cache_capacity_sectors)
                    done = destage(submit_ps);
                for (std::uint32_t i = 0; i < rw_sectors; ++i) {
                    const std::uint8_t* src = data + std::uint64_t{i} * kSectorSize;
                    dirty_[req.sector + i].assign(src, src + kSectorSize);
                }
                pending_.push_back(req);
                pending_sectors_ += req.sectors;
                done += transfer_ps(bytes, config_.cache_bandwidth);
            }
            stats_.writes.inc();
            stats_.bytes_written.inc(bytes);
            break;
        }
        case StorageOp::flush: {
            done = destage(submit_ps);
            image_->flush();
            done = std::max(done, model_->complete_at_ps(req, submit_ps));
            stats_.flushes.inc();
            break;
        }
        case StorageOp::discard: {
            drop_cached(req.sector, req.sectors);
            image_->discard(req.sector, req.sectors);
            done = model_->complete_at_ps(req, submit_ps);
            stats_.discards.inc();
            break;
        }
    }
    return Result{true, done, StorageError::none};
}

}  // namespace xensim
