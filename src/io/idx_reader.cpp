// Reads IDX files (the MNIST format), raw or gzip-compressed. Every byte count is
// checked against the header, because a truncated download otherwise trains silently
// on garbage; raw files are seeked to the wanted rows, gzip files are read through.
#include "io/idx_reader.hpp"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <utility>
#include <vector>

#include "io/data_rows.hpp"
#include "util/check.hpp"

namespace rbm::idx {
namespace {

constexpr uint32_t kHdf5Signature = 0x89484446;  // "\x89HDF": a common wrong input
constexpr std::size_t kChunk = std::size_t{1} << 20;  // bytes per read: bounds the scratch buffer

std::string hex(uint32_t v, int width) {
    std::ostringstream out;
    out << "0x" << std::hex << std::setw(width) << std::setfill('0') << v;
    return out.str();
}

// zlib's own diagnosis, less the "path: " it puts in front (our messages name the file).
std::string zlib_message(gzFile gz, const std::string& path, int& err) {
    const char* text = gzerror(gz, &err);
    std::string msg = text ? text : "unknown error";
    return msg.starts_with(path + ": ") ? msg.substr(path.size() + 2) : msg;
}

// One open IDX file. Raw files go through stdio so a reader can seek straight to its
// rows; gzip files (known by their magic bytes 1f 8b, not by name) go through zlib.
class ByteReader {
public:
    explicit ByteReader(const std::string& path);
    ~ByteReader();
    ByteReader(const ByteReader&) = delete;
    ByteReader& operator=(const ByteReader&) = delete;

    bool gzip() const { return gz_ != nullptr; }
    uint64_t raw_size() const { return raw_size_; }
    // True when all n bytes came; false when the data ended first. Stream errors throw.
    bool read_full(void* buf, std::size_t n);
    bool skip(std::size_t n);
    void seek(uint64_t offset);
    bool at_end();
    void close();  // checked, so a gzip stream cut short is reported

private:
    void open(const std::string& path);
    void release() noexcept;
    std::size_t read_gz(unsigned char* p, std::size_t n);
    void open_gzip();

    std::string path_;
    std::FILE* raw_ = nullptr;
    gzFile gz_ = nullptr;
    uint64_t raw_size_ = 0;
};

ByteReader::ByteReader(const std::string& path) : path_(path) {
    try {
        open(path);
    } catch (...) {
        release();  // no destructor runs for an object whose constructor threw
        throw;
    }
}

void ByteReader::open(const std::string& path) {
    std::error_code ec;
    // exists() is false also when a folder on the way cannot be searched: say which.
    if (!std::filesystem::exists(path, ec)) {
        // "data.h5:" or "data.h5:dataset": an HDF5 file whose dataset path is missing or lacks its '/'.
        const std::size_t colon = path.rfind(':');
        if (!ec && colon != std::string::npos && std::filesystem::is_regular_file(path.substr(0, colon)))
            fail("cannot read '", path, "': no such file; for a dataset in the HDF5 file '", path.substr(0, colon),
                 "' name it from the root, as FILE.h5:/group/dataset");
        fail("cannot read '", path, "': ", ec ? ec.message() : std::string("no such file"));
    }
    if (std::filesystem::is_directory(path, ec)) fail("cannot read '", path, "': it is a directory");
    // A pipe would block the open until a writer comes, and rbm reads a file more than once.
    if (!std::filesystem::is_regular_file(path, ec))
        fail("cannot read '", path, "': not a regular file (a pipe, socket or device)");
    raw_ = std::fopen(path.c_str(), "rb");
    if (!raw_) fail("cannot open '", path, "': ", std::strerror(errno));
    unsigned char magic[2] = {0, 0};
    std::size_t got = std::fread(magic, 1, 2, raw_);
    if (std::ferror(raw_)) fail("cannot read '", path, "': ", std::strerror(errno));
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        std::fclose(raw_);  // read-only: nothing to flush, so its result carries no news
        raw_ = nullptr;
        open_gzip();
        return;
    }
    struct stat st {};
    if (fstat(fileno(raw_), &st) != 0) fail("cannot stat '", path, "': ", std::strerror(errno));
    raw_size_ = static_cast<uint64_t>(st.st_size);
    seek(0);
}

// Error paths only: close() already ran (and was checked) on the normal path.
void ByteReader::release() noexcept {
    if (raw_) std::fclose(std::exchange(raw_, nullptr));
    if (gz_) gzclose(std::exchange(gz_, nullptr));
}

ByteReader::~ByteReader() { release(); }

void ByteReader::open_gzip() {
    errno = 0;
    gz_ = gzopen(path_.c_str(), "rb");
    if (!gz_) fail("cannot open '", path_, "' (gzip): ", errno ? std::strerror(errno) : "out of memory");
    // A larger buffer than zlib's 8 KiB default: MNIST-sized files decompress ~2x faster.
    if (gzbuffer(gz_, 1u << 18) != 0) fail("cannot set up gzip reading of '", path_, "'");
}

std::size_t ByteReader::read_gz(unsigned char* p, std::size_t n) {
    std::size_t total = 0;
    while (total < n) {
        unsigned want = static_cast<unsigned>(std::min(n - total, kChunk));
        int got = gzread(gz_, p + total, want);
        int err = Z_OK;
        std::string msg = zlib_message(gz_, path_, err);
        if (got < 0 || (err != Z_OK && err != Z_BUF_ERROR))
            fail("'", path_, "': corrupt gzip stream (zlib: ", msg, ")");
        total += static_cast<std::size_t>(got);
        if (err == Z_BUF_ERROR)
            fail("'", path_, "': truncated gzip stream (zlib: ", msg, ")");
        if (static_cast<unsigned>(got) < want) break;  // clean end of the data
    }
    return total;
}

bool ByteReader::read_full(void* buf, std::size_t n) {
    auto* p = static_cast<unsigned char*>(buf);
    if (gz_) return read_gz(p, n) == n;
    std::size_t got = std::fread(p, 1, n, raw_);
    if (std::ferror(raw_)) fail("cannot read '", path_, "': ", std::strerror(errno));
    return got == n;
}

bool ByteReader::skip(std::size_t n) {
    if (!gz_) {
        seek(static_cast<uint64_t>(ftello(raw_)) + n);
        return true;
    }
    std::vector<unsigned char> scratch(std::min(n, kChunk));
    for (std::size_t left = n; left > 0;) {
        std::size_t step = std::min(left, kChunk);
        if (!read_full(scratch.data(), step)) return false;
        left -= step;
    }
    return true;
}

void ByteReader::seek(uint64_t offset) {
    RBM_CHECK(!gz_, "seek on a gzip stream");
    if (fseeko(raw_, static_cast<off_t>(offset), SEEK_SET) != 0)
        fail("cannot seek in '", path_, "': ", std::strerror(errno));
}

bool ByteReader::at_end() {
    unsigned char byte;
    return !read_full(&byte, 1);
}

void ByteReader::close() {
    if (raw_) {
        std::FILE* f = std::exchange(raw_, nullptr);
        if (std::fclose(f) != 0) fail("cannot close '", path_, "': ", std::strerror(errno));
    }
    if (gz_) {
        int rc = gzclose(std::exchange(gz_, nullptr));
        if (rc == Z_BUF_ERROR) fail("'", path_, "': truncated gzip stream");
        if (rc != Z_OK) fail("'", path_, "': corrupt gzip stream (closing it failed, code ", rc, ")");
    }
}

// The parsed header: dims[0] items of item_bytes bytes each, after header_bytes.
struct Header {
    uint32_t magic = 0;
    std::vector<std::size_t> dims;
    std::size_t item_bytes = 1;
    std::size_t data_bytes = 0;
    std::size_t header_bytes = 0;

    std::size_t n_items() const { return dims[0]; }
    std::string shape() const {
        std::ostringstream out;
        for (std::size_t i = 0; i < dims.size(); ++i) out << (i ? " x " : "") << dims[i];
        return out.str();
    }
};

const char* idx_type_name(unsigned type) {
    switch (type) {
        case 0x08: return "unsigned byte";
        case 0x09: return "signed byte";
        case 0x0B: return "int16";
        case 0x0C: return "int32";
        case 0x0D: return "float32";
        case 0x0E: return "float64";
        default: return "not an IDX type";
    }
}

[[noreturn]] void wrong_magic(const std::string& path, uint32_t magic, bool labels) {
    const char* expected = labels ? "IDX labels 0x00000801" : "IDX images 0x00000803 or 0x00000802";
    const char* hint = magic == kHdf5Signature ? " (it is an HDF5 file: name the dataset as file.h5:/dataset)" : "";
    fail("'", path, "': wrong magic number ", hex(magic, 8), ", expected ", expected, hint);
}

uint32_t big_endian(const unsigned char* b) {
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

// Checks the magic number: zero bytes, then the element type, then the rank.
void check_magic(const std::string& path, uint32_t magic, bool labels) {
    if ((magic >> 16) != 0) wrong_magic(path, magic, labels);
    unsigned type = (magic >> 8) & 0xff;
    if (type != 0x08)
        fail("'", path, "': unsupported IDX element type ", hex(type, 2), " (", idx_type_name(type),
             "); rbm reads only unsigned bytes (0x08)");
    unsigned rank = magic & 0xff;
    bool ok = labels ? rank == 1 : (rank == 2 || rank == 3);
    if (!ok) wrong_magic(path, magic, labels);
}

// Sizes from the dims, refusing overflow and emptiness before anything is allocated.
void size_header(const std::string& path, Header& h) {
    h.header_bytes = 4 + 4 * h.dims.size();
    for (std::size_t i = 1; i < h.dims.size(); ++i)
        h.item_bytes = data::checked_mul(path, h.item_bytes, h.dims[i], h.shape());
    h.data_bytes = data::checked_mul(path, h.n_items(), h.item_bytes, h.shape());
    if (h.data_bytes > SIZE_MAX - h.header_bytes)
        fail("'", path, "': dimensions ", h.shape(), " overflow the size type: too large to be real data");
    data::check_not_empty(path, h.n_items(), h.item_bytes);
}

Header read_header(ByteReader& in, const std::string& path, bool labels) {
    unsigned char b[4];
    if (!in.read_full(b, 4)) fail("'", path, "': truncated: too short for an IDX header");
    Header h;
    h.magic = big_endian(b);
    check_magic(path, h.magic, labels);
    for (unsigned i = 0; i < (h.magic & 0xff); ++i) {
        if (!in.read_full(b, 4)) fail("'", path, "': truncated: the IDX header ends early");
        h.dims.push_back(big_endian(b));
    }
    size_header(path, h);
    return h;
}

// Raw files: the size on disk must be exactly header + data, checked before any seek.
void check_raw_size(const ByteReader& in, const Header& h, const std::string& path) {
    if (in.gzip()) return;
    uint64_t expected = h.header_bytes + static_cast<uint64_t>(h.data_bytes);
    if (in.raw_size() < expected)
        fail("'", path, "': truncated: the header says ", h.shape(), ", so ", expected,
             " bytes with the header, but the file has only ", in.raw_size());
    if (in.raw_size() > expected)
        fail("'", path, "': dimensions ", h.shape(), " disagree with the file size (",
             in.raw_size(), " bytes, expected ", expected, ")");
}

// Gzip files: after the data the header describes, the stream must end.
void check_gz_end(ByteReader& in, const Header& h, const std::string& path) {
    if (in.gzip() && !in.at_end())
        fail("'", path, "': dimensions ", h.shape(),
             " disagree with the file size (more data follows what the header describes)");
}

[[noreturn]] void truncated_data(const Header& h, const std::string& path) {
    fail("'", path, "': truncated: fewer bytes than the header's ", h.shape(), " promises");
}

// Reads `n` bytes into floats scaled to [0, 1], a chunk at a time (no full byte copy).
void read_scaled(ByteReader& in, const Header& h, const std::string& path, float* out, std::size_t n) {
    std::vector<unsigned char> buf(std::min(n, kChunk));
    for (std::size_t done = 0; done < n;) {
        std::size_t step = std::min(n - done, kChunk);
        if (!in.read_full(buf.data(), step)) truncated_data(h, path);
        for (std::size_t i = 0; i < step; ++i) out[done + i] = static_cast<float>(buf[i]) / 255.0f;
        done += step;
    }
}

SourceInfo info_of(const Header& h) {
    SourceInfo info;
    info.n_rows = h.n_items();
    info.n_cols = h.item_bytes;
    if (h.dims.size() == 3) {
        info.image_height = h.dims[1];
        info.image_width = h.dims[2];
    } else {
        info.image_height = info.image_width = data::square_side(info.n_cols);
    }
    return info;
}

Dataset empty_dataset(const std::string& path, const SourceInfo& info, RowRange r) {
    Dataset d;
    d.source = path;
    d.n_rows = r.end - r.begin;
    d.n_cols = info.n_cols;
    d.image_height = info.image_height;
    d.image_width = info.image_width;
    d.first_row = r.begin;
    data::check_fits_in_memory(path, d.n_rows, d.n_cols);
    d.values.resize(d.n_rows * d.n_cols);
    return d;
}

}  // namespace

SourceInfo probe_images(const std::string& path) {
    ByteReader in(path);
    Header h = read_header(in, path, false);
    check_raw_size(in, h, path);  // cheap for raw files (a stat); gzip would need a full read
    return info_of(h);
}

Dataset read_images(const std::string& path, RowRange rows) {
    ByteReader in(path);
    Header h = read_header(in, path, false);
    check_raw_size(in, h, path);
    RowRange r = data::resolve_rows(path, h.n_items(), rows);
    Dataset d = empty_dataset(path, info_of(h), r);
    if (in.gzip()) {
        if (!in.skip(r.begin * h.item_bytes)) truncated_data(h, path);
    } else {
        in.seek(h.header_bytes + static_cast<uint64_t>(r.begin) * h.item_bytes);
    }
    read_scaled(in, h, path, d.values.data(), d.values.size());
    data::refuse_zero_one_bytes(d);
    // Gzip: read through to the end too, so a truncated or corrupt file fails on every
    // rank, not only on the rank whose rows happen to reach the damage.
    if (in.gzip() && !in.skip((h.n_items() - r.end) * h.item_bytes)) truncated_data(h, path);
    check_gz_end(in, h, path);
    in.close();
    return d;
}

std::vector<uint8_t> read_labels(const std::string& path) {
    ByteReader in(path);
    Header h = read_header(in, path, true);
    check_raw_size(in, h, path);
    std::vector<uint8_t> labels(h.n_items());
    if (!in.read_full(labels.data(), labels.size())) truncated_data(h, path);
    check_gz_end(in, h, path);
    in.close();
    return labels;
}

}  // namespace rbm::idx
