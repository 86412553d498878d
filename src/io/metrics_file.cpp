// Training curves must survive a crash and be readable while training runs, so the
// metrics file grows one flushed row at a time; a resumed run first drops the rows
// written after its checkpoint, so the curve has no duplicated or orphaned steps.
#include "io/metrics_file.hpp"

#include <cstddef>
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

Handle create_metrics(const std::string& path, Handle& dataset) {
    Handle file = h5::create_file(path);
    h5::set_kind(file, "metrics", kMetricsFormatVersion);
    hsize_t dims[1] = {0}, maxdims[1] = {H5S_UNLIMITED}, chunk[1] = {kRowsPerChunk};
    Handle space(RBM_H5(H5Screate_simple(1, dims, maxdims), "metrics dataspace"));
    Handle dcpl(RBM_H5(H5Pcreate(H5P_DATASET_CREATE), "metrics properties"));
    RBM_H5(H5Pset_chunk(dcpl, 1, chunk), "chunking '" << path << "'");
    Handle file_type = make_row_type(true);
    dataset = Handle(RBM_H5(H5Dcreate2(file, "metrics", file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                            "creating /metrics in '" << path << "'"));
    RBM_H5(H5Fflush(file, H5F_SCOPE_LOCAL), "flushing '" << path << "'");
    return file;
}

// Checks the file is an rbm metrics file whose /metrics can be read and extended.
Handle open_metrics_dataset(hid_t file, const std::string& path) {
    h5::require_kind(file, path, "metrics", kMetricsFormatVersion);
    RBM_CHECK(h5::exists(file, "metrics"), "'" << path << "' has no /metrics dataset");
    Handle dset(RBM_H5(H5Dopen2(file, "metrics", H5P_DEFAULT), "opening /metrics in '" << path << "'"));
    Handle type(RBM_H5(H5Dget_type(dset), "type of /metrics in '" << path << "'"));
    RBM_CHECK(H5Tget_class(type) == H5T_COMPOUND, "'" << path << "': /metrics is not a table of rows");
    RBM_CHECK(H5Tget_member_index(type, "step") >= 0, "'" << path << "': /metrics lacks the field 'step'");
    for (const Field& f : kDoubleFields)
        RBM_CHECK(H5Tget_member_index(type, f.name) >= 0,
                  "'" << path << "': /metrics lacks the field '" << f.name << "'");
    Handle space(RBM_H5(H5Dget_space(dset), "dataspace of /metrics in '" << path << "'"));
    RBM_CHECK(H5Sget_simple_extent_ndims(space) == 1, "'" << path << "': /metrics is not one-dimensional");
    return dset;
}

uint64_t row_count(hid_t dset, const std::string& path) {
    Handle space(RBM_H5(H5Dget_space(dset), "dataspace of /metrics in '" << path << "'"));
    hsize_t n = 0;
    RBM_H5(H5Sget_simple_extent_dims(space, &n, nullptr), "rows of /metrics in '" << path << "'");
    return n;
}

std::vector<MetricsRow> read_rows(hid_t dset, const std::string& path) {
    std::vector<MetricsRow> rows(row_count(dset, path));
    if (rows.empty()) return rows;
    Handle mem = make_row_type(false);
    herr_t rc = H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data());
    RBM_CHECK(rc >= 0, "'" << path << "': cannot read /metrics (file truncated or damaged?)");
    return rows;
}

// Writes rows [first, first + n) of the dataset, which must already be that long.
void write_rows(hid_t dset, hid_t mem_type, const MetricsRow* rows, hsize_t first, hsize_t n,
                const std::string& path) {
    Handle file_space(RBM_H5(H5Dget_space(dset), "dataspace of /metrics in '" << path << "'"));
    RBM_H5(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &first, nullptr, &n, nullptr),
           "selecting rows of /metrics in '" << path << "'");
    Handle mem_space(RBM_H5(H5Screate_simple(1, &n, nullptr), "metrics row dataspace"));
    RBM_H5(H5Dwrite(dset, mem_type, mem_space, file_space, H5P_DEFAULT, rows),
           "writing /metrics in '" << path << "'");
}

}  // namespace

MetricsFile::MetricsFile(const std::string& path, uint64_t keep_until_step)
    : path_(path), type_(make_row_type(false)) {
    if (!fs::exists(path)) {
        try {
            file_ = create_metrics(path, dataset_);
        } catch (...) {
            dataset_.close();
            file_.close();
            std::error_code ignored;
            fs::remove(path, ignored);  // a half-made file would fail the next open
            throw;
        }
        return;
    }
    file_ = h5::open_file_write(path);
    dataset_ = open_metrics_dataset(file_, path);
    std::vector<MetricsRow> rows = read_rows(dataset_, path);
    std::erase_if(rows, [&](const MetricsRow& r) { return r.step > keep_until_step; });
    rows_ = rows.size();
    if (rows_ == row_count(dataset_, path)) return;
    hsize_t n = rows_;
    RBM_H5(H5Dset_extent(dataset_, &n), "shrinking /metrics in '" << path << "'");
    if (n > 0) write_rows(dataset_, type_, rows.data(), 0, n, path);
    RBM_H5(H5Fflush(file_, H5F_SCOPE_LOCAL), "flushing '" << path << "'");
}

void MetricsFile::append(const MetricsRow& row) {
    hsize_t n = rows_ + 1;
    RBM_H5(H5Dset_extent(dataset_, &n), "extending /metrics in '" << path_ << "'");
    write_rows(dataset_, type_, &row, rows_, 1, path_);
    // Flushed per row: a crash loses at most the row being written, and readers see it now.
    RBM_H5(H5Fflush(file_, H5F_SCOPE_LOCAL), "flushing '" << path_ << "'");
    rows_ = n;
}

std::vector<MetricsRow> read_metrics(const std::string& path) {
    Handle file = h5::open_file_read(path);
    Handle dset = open_metrics_dataset(file, path);
    return read_rows(dset, path);
}

}  // namespace rbm
