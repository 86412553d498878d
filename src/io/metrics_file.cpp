// Training curves must survive a crash and be readable while training runs, so the
// metrics file grows one flushed row at a time, written in HDF5's SWMR mode (single
// writer, multiple readers): h5py.File(path, "r", swmr=True) reads a consistent table at
// any moment, even while rank 0 appends. Opening it again (a resumed run) reads the rows,
// drops those written after the checkpoint the run resumes from, and publishes a fresh
// file (written to NAME.tmp and renamed), so the curve has no duplicated or orphaned
// steps, and a file left open by a killed writer, or written by an older rbm in the 1.8
// format, is carried over rather than refused.
#include "io/metrics_file.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>

namespace rbm {

namespace fs = std::filesystem;
using h5::Handle;

namespace {

constexpr int64_t kMetricsFormatVersion = 1;
constexpr hsize_t kRowsPerChunk = 256;

struct Field {
    const char* name;
    std::size_t offset;
    bool in_every_file = true;  // false: a column added later, absent from older files
};

// The compound's fields are exactly MetricsRow's members, in order; step first (uint64).
const Field kDoubleFields[] = {
    {"epoch", offsetof(MetricsRow, epoch)},
    {"pseudo_likelihood", offsetof(MetricsRow, pseudo_likelihood)},
    {"reconstruction_xent", offsetof(MetricsRow, reconstruction_xent)},
    {"free_energy_train", offsetof(MetricsRow, free_energy_train)},
    {"free_energy_valid", offsetof(MetricsRow, free_energy_valid)},
    {"free_energy_gap", offsetof(MetricsRow, free_energy_gap)},
    {"learning_rate", offsetof(MetricsRow, learning_rate)},
    {"examples_per_s", offsetof(MetricsRow, examples_per_s)},
    {"wall_s", offsetof(MetricsRow, wall_s)},
    {"swap_acceptance_min", offsetof(MetricsRow, swap_acceptance_min), false},
    {"ranks", offsetof(MetricsRow, ranks), false},
    {"process", offsetof(MetricsRow, process), false},
};

// In-memory layout (MetricsRow itself) when `packed` is false; the file's packed
// little-endian layout when true, so the file does not depend on this compiler's padding.
Handle make_row_type(bool packed) {
    size_t size = packed ? 8 * (1 + std::size(kDoubleFields)) : sizeof(MetricsRow);
    Handle type(RBM_H5(H5Tcreate(H5T_COMPOUND, size), "metrics row type"));
    RBM_H5(H5Tinsert(type, "step", packed ? 0 : offsetof(MetricsRow, step),
                     packed ? H5T_STD_U64LE : H5T_NATIVE_UINT64), "metrics row type");
    size_t i = 1;
    for (const Field& f : kDoubleFields)
        RBM_H5(H5Tinsert(type, f.name, packed ? 8 * i++ : f.offset,
                         packed ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE), "metrics row type");
    return type;
}

// HDF5 locks files with flock(). Some parallel filesystems refuse it: "not supported"
// (ENOSYS) HDF5 itself ignores, but NFS without lockd says "No locks available" and some
// Lustre or GPFS mounts fail otherwise. Then the message says what to do:
// HDF5_USE_FILE_LOCKING=FALSE turns locking off for every file (README, "On a cluster").
// `otherwise` is the reason given when the failure had nothing to do with locking.
std::string failure_reason(const std::string& otherwise) {
    const std::string detail = h5::library_error_detail(), suffix = h5::library_error_suffix();
    if (detail.find("lock") == std::string::npos) return otherwise + suffix;
    return "HDF5 could not lock it" + suffix +
           ": another process holds it open for writing, or this filesystem does not support "
           "file locking (then set HDF5_USE_FILE_LOCKING=FALSE)";
}

// SWMR needs the newest file format (superblock 3): files are readable by HDF5 >= 1.10.
Handle file_access(const std::string& path) {
    Handle fapl(RBM_H5(H5Pcreate(H5P_FILE_ACCESS), "file access properties for '" << path << "'"));
    RBM_H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST),
           "format bounds for '" << path << "'");
    RBM_H5(H5Pset_file_locking(fapl, true, /*ignore_when_disabled=*/true), "file locking for '" << path << "'");
    return fapl;
}

void fsync_fd(int fd, const std::string& what) {
    RBM_CHECK(::fsync(fd) == 0, "cannot sync '" << what << "': " << std::strerror(errno));
}

// Creates the metrics file holding `rows` and returns it open as its SWMR writer. It is
// built as NAME.tmp, switched to SWMR writing, synced and only then renamed to NAME: a
// reader never finds a half-made file under NAME, and this process never reopens NAME,
// so a reader that has it open (and may hold HDF5's lock) cannot make training fail.
Handle create_swmr_file(const std::string& path, const std::vector<MetricsRow>& rows) {
    const std::string tmp = path + ".tmp";
    h5::silence_library_errors();
    Handle fapl = file_access(tmp);
    hid_t id = H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (id < 0) {
        fs::path parent = fs::path(tmp).parent_path();
        std::error_code ec;
        bool dir_ok = parent.empty() || fs::is_directory(parent, ec);
        RBM_CHECK(false, "cannot create '" << tmp << "': "
                                           << failure_reason(dir_ok ? "not writable" : "its directory does not exist"));
    }
    Handle file(id);
    try {
        h5::set_kind(file, "metrics", kMetricsFormatVersion);
        {
            hsize_t dims[1] = {rows.size()}, maxdims[1] = {H5S_UNLIMITED}, chunk[1] = {kRowsPerChunk};
            Handle space(RBM_H5(H5Screate_simple(1, dims, maxdims), "metrics dataspace"));
            Handle dcpl(RBM_H5(H5Pcreate(H5P_DATASET_CREATE), "metrics properties"));
            RBM_H5(H5Pset_chunk(dcpl, 1, chunk), "chunking '" << tmp << "'");
            Handle file_type = make_row_type(true);
            Handle dset(RBM_H5(H5Dcreate2(file, "metrics", file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                               "creating /metrics in '" << tmp << "'"));
            if (!rows.empty()) {
                Handle mem = make_row_type(false);
                RBM_H5(H5Dwrite(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()),
                       "writing /metrics in '" << tmp << "'");
            }
        }  // SWMR writing starts with no attribute or type open
        RBM_H5(H5Fstart_swmr_write(file), "starting SWMR writing of '" << tmp << "'");
        RBM_H5(H5Fflush(file, H5F_SCOPE_LOCAL), "flushing '" << tmp << "'");
        void* handle = nullptr;
        RBM_H5(H5Fget_vfd_handle(file, fapl, &handle), "file descriptor of '" << tmp << "'");
        fsync_fd(*static_cast<int*>(handle), tmp);
        std::error_code ec;
        fs::rename(tmp, path, ec);
        RBM_CHECK(!ec, "cannot rename '" << tmp << "' to '" << path << "': " << ec.message());
        h5::sync_directory_of(path);
    } catch (...) {
        file.close();
        std::error_code ignored;
        fs::remove(tmp, ignored);
        throw;
    }
    return file;
}

// Opens an existing file for reading, whatever state a writer left it in: as a SWMR
// reader first (works while rbm appends, and after a writer was killed), then plainly
// (a file in the older 1.8 format). `purpose` ("reading"/"writing") words the errors.
Handle open_existing(const std::string& path, const char* purpose) {
    if (!h5::is_hdf5(path))  // not there, a directory, not HDF5: the shared opener says which
        return std::string(purpose) == "writing" ? h5::open_file_write(path) : h5::open_file_read(path);
    h5::silence_library_errors();
    Handle fapl = file_access(path);
    hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
    if (id < 0) id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
    RBM_CHECK(id >= 0, "cannot open '" << path << "' for " << purpose << ": "
                                       << failure_reason("damaged or truncated HDF5 file"));
    return Handle(id);
}

// Checks the file is an rbm metrics file whose /metrics can be read and extended.
Handle open_metrics_dataset(hid_t file, const std::string& path) {
    h5::require_kind(file, path, "metrics", kMetricsFormatVersion);
    RBM_REQUIRE(h5::exists(file, "metrics"), "'" << path << "' has no /metrics dataset");
    Handle dset(RBM_H5(H5Dopen2(file, "metrics", H5P_DEFAULT), "opening /metrics in '" << path << "'"));
    Handle type(RBM_H5(H5Dget_type(dset), "type of /metrics in '" << path << "'"));
    RBM_REQUIRE(H5Tget_class(type) == H5T_COMPOUND, "'" << path << "': /metrics is not a table of rows");
    RBM_REQUIRE(H5Tget_member_index(type, "step") >= 0, "'" << path << "': /metrics lacks the field 'step'");
    for (const Field& f : kDoubleFields)
        RBM_REQUIRE(!f.in_every_file || H5Tget_member_index(type, f.name) >= 0,
                    "'" << path << "': /metrics lacks the field '" << f.name << "'");
    Handle space(RBM_H5(H5Dget_space(dset), "dataspace of /metrics in '" << path << "'"));
    RBM_REQUIRE(H5Sget_simple_extent_ndims(space) == 1, "'" << path << "': /metrics is not one-dimensional");
    return dset;
}

uint64_t row_count(hid_t dset, const std::string& path) {
    Handle space(RBM_H5(H5Dget_space(dset), "dataspace of /metrics in '" << path << "'"));
    hsize_t n = 0;
    RBM_H5(H5Sget_simple_extent_dims(space, &n, nullptr), "rows of /metrics in '" << path << "'");
    return n;
}

// A file written before a column existed lacks it: HDF5 converts the columns the file has
// by name and leaves the others as MetricsRow's defaults (NaN for swap_acceptance_min, ranks, process).
std::vector<MetricsRow> read_rows(hid_t dset, const std::string& path) {
    std::vector<MetricsRow> rows(row_count(dset, path));
    if (rows.empty()) return rows;
    Handle mem = make_row_type(false);
    herr_t rc = H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data());
    RBM_REQUIRE(rc >= 0, "'" << path << "': cannot read /metrics (file truncated or damaged?)");
    return rows;
}

std::vector<MetricsRow> read_existing(const std::string& path, const char* purpose) {
    Handle file = open_existing(path, purpose);
    Handle dset = open_metrics_dataset(file, path);
    return read_rows(dset, path);
}

}  // namespace

MetricsFile::MetricsFile(const std::string& path, std::optional<uint64_t> keep_until_step)
    : path_(path), type_(make_row_type(false)) {
    std::vector<MetricsRow> rows;
    if (fs::exists(path)) {
        rows = read_existing(path, "writing");  // also when none are kept: a file of another kind is refused
        std::erase_if(rows, [&](const MetricsRow& r) { return !keep_until_step || r.step > *keep_until_step; });
    }
    // From here on this process is the file's single SWMR writer: it holds no lock, and
    // readers that open the file with SWMR see every flushed row.
    file_ = create_swmr_file(path, rows);
    dataset_ = Handle(RBM_H5(H5Dopen2(file_, "metrics", H5P_DEFAULT), "opening /metrics in '" << path << "'"));
    rows_ = rows.size();
    double before = rows.empty() ? 0 : 1;
    for (const MetricsRow& r : rows)
        if (std::isfinite(r.process)) before = std::max(before, r.process);
    process_ = before + 1;
}

void MetricsFile::append(const MetricsRow& row) {
    hsize_t n = rows_ + 1;
    RBM_H5(H5Dset_extent(dataset_, &n), "extending /metrics in '" << path_ << "'");
    try {
        write_last_row(row);
    } catch (...) {
        // The row could not be written (a full disk): take the extent back, or closing the
        // file would store it and leave a row of zeros. Best effort: the first error goes on.
        hsize_t back = rows_;
        if (H5Dset_extent(dataset_, &back) >= 0) H5Fflush(file_, H5F_SCOPE_LOCAL);
        throw;
    }
    rows_ = n;
}

void MetricsFile::write_last_row(const MetricsRow& row) {
    hsize_t first = rows_, one = 1;
    Handle file_space(RBM_H5(H5Dget_space(dataset_), "dataspace of /metrics in '" << path_ << "'"));
    RBM_H5(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &first, nullptr, &one, nullptr),
           "selecting a row of /metrics in '" << path_ << "'");
    Handle mem_space(RBM_H5(H5Screate_simple(1, &one, nullptr), "metrics row dataspace"));
    RBM_H5(H5Dwrite(dataset_, type_, mem_space, file_space, H5P_DEFAULT, &row),
           "writing /metrics in '" << path_ << "'");
    // Flushed per row: a crash loses at most the row being written, and SWMR readers see it now.
    RBM_H5(H5Fflush(file_, H5F_SCOPE_LOCAL), "flushing '" << path_ << "'");
}

std::vector<MetricsRow> read_metrics(const std::string& path) { return read_existing(path, "reading"); }

void check_metrics_writable(const std::string& path) {
    if (fs::exists(path)) read_existing(path, "writing");
}

}  // namespace rbm
