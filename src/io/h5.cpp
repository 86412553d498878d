// The one place that talks to the HDF5 C API directly: every rbm file format is built
// from these checked, RAII-owning helpers, so a failing call always becomes an
// rbm::Error naming the file and the object, and no handle leaks on the error path.
#include "io/h5.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace rbm::h5 {

namespace fs = std::filesystem;

void Handle::close() noexcept {
    if (id_ < 0) return;
    hid_t id = std::exchange(id_, H5I_INVALID_HID);
    if (H5Iis_valid(id) <= 0) return;
    // Closing errors cannot be reported from a destructor; the data was already written
    // (writers flush explicitly) so ignoring them loses nothing.
    switch (H5Iget_type(id)) {
        case H5I_FILE: H5Fclose(id); break;
        case H5I_GROUP: H5Gclose(id); break;
        case H5I_DATASET: H5Dclose(id); break;
        case H5I_DATASPACE: H5Sclose(id); break;
        case H5I_DATATYPE: H5Tclose(id); break;
        case H5I_ATTR: H5Aclose(id); break;
        case H5I_GENPROP_LST: H5Pclose(id); break;
        default: break;
    }
}

void silence_library_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {
// No library shutdown at exit (this runs before main, so before HDF5 starts): after a
// write failed (a full disk), HDF5 1.10's shutdown crashes closing the half-written file
// that H5Fclose could not close. rbm closes every file itself before it exits.
const bool kNoShutdownAtExit = (H5dont_atexit(), true);
}  // namespace

namespace {

herr_t keep_first_message(unsigned n, const H5E_error2_t* err, void* out) {
    if (n == 0 && err->desc) *static_cast<std::string*>(out) = err->desc;
    return 0;
}

// " (detail)" or "" — appended to messages so HDF5's own diagnosis is not lost.
std::string detail_suffix() { return library_error_suffix(); }

// Why a path cannot be opened as an HDF5 file, or "" if it looks openable.
std::string unopenable_reason(const std::string& path) {
    std::error_code ec;
    auto status = fs::status(path, ec);
    if (status.type() == fs::file_type::none) return "cannot read it: " + ec.message();  // e.g. a folder on the way
    if (!fs::exists(status)) return "no such file";
    if (fs::is_directory(status)) return "is a directory";
    // Opening a FIFO would wait for a writer that may never come.
    if (!fs::is_regular_file(status)) return "not a regular file (a pipe, socket or device)";
    if (std::ifstream(path).fail()) return std::string("cannot read it: ") + std::strerror(errno);
    if (fs::file_size(path, ec) == 0) return "not an HDF5 file (it is empty)";
    if (!is_hdf5(path)) return "not an HDF5 file";
    return "";
}

Handle open_file(const std::string& path, unsigned flags, const char* purpose) {
    silence_library_errors();
    std::string reason = unopenable_reason(path);
    RBM_CHECK(reason.empty(), "cannot open '" << path << "' for " << purpose << ": " << reason);
    hid_t id = H5Fopen(path.c_str(), flags, H5P_DEFAULT);
    // The metrics file is written in SWMR mode: while rbm appends to it, or after a writer
    // was killed, only a SWMR reader may open it.
    if (id < 0 && flags == H5F_ACC_RDONLY)
        id = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
    RBM_CHECK(id >= 0, "cannot open '" << path << "' for " << purpose
                                       << ": damaged or truncated HDF5 file" << detail_suffix());
    return Handle(id);
}

}  // namespace

std::string library_error_detail() {
    std::string out;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_first_message, &out);
    return out;
}

std::string library_error_suffix() {
    std::string d = library_error_detail();
    // A failed system call reads "file write failed: time = ..., errno = 28, error message =
    // 'No space left on device', buf = ...": the system's words are the part that helps.
    const std::string key = "error message = '";
    if (const std::size_t at = d.find(key); at != std::string::npos) {
        const std::size_t from = at + key.size(), end = d.find('\'', from);
        d = d.substr(from, end == std::string::npos ? std::string::npos : end - from);
    }
    std::replace(d.begin(), d.end(), '\n', ' ');
    return d.empty() ? d : " (" + d + ")";
}

Handle create_file(const std::string& path) {
    silence_library_errors();
    // HDF5 1.8 object headers carry checksums, so a garbled file fails to open or read
    // instead of feeding corrupt metadata to the library (any HDF5 >= 1.8 reads these).
    Handle fapl(RBM_H5(H5Pcreate(H5P_FILE_ACCESS), "file access properties for '" << path << "'"));
    RBM_H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18), "format bounds for '" << path << "'");
    hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (id < 0) {
        fs::path parent = fs::path(path).parent_path();
        std::error_code ec;
        bool dir_ok = parent.empty() || fs::is_directory(parent, ec);
        RBM_CHECK(false, "cannot create '" << path << "': "
                                           << (dir_ok ? "not writable" : "its directory does not exist")
                                           << detail_suffix());
    }
    return Handle(id);
}

Handle open_file_read(const std::string& path) { return open_file(path, H5F_ACC_RDONLY, "reading"); }
Handle open_file_write(const std::string& path) { return open_file(path, H5F_ACC_RDWR, "writing"); }

bool is_hdf5(const std::string& path) {
    silence_library_errors();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return false;
    return H5Fis_hdf5(path.c_str()) > 0;
}

Handle create_group(hid_t parent, const std::string& name) {
    return Handle(RBM_H5(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                         "creating group '" << name << "'"));
}

Handle open_group(hid_t parent, const std::string& name, const std::string& file_for_messages) {
    RBM_REQUIRE(exists(parent, name), "'" << file_for_messages << "' has no group '" << name << "'");
    return Handle(RBM_H5(H5Gopen2(parent, name.c_str(), H5P_DEFAULT),
                         "opening group '" << name << "' in '" << file_for_messages << "'"));
}

bool exists(hid_t parent, const std::string& path) {
    // H5Lexists fails (rather than saying no) when an intermediate group is missing, so
    // each prefix is checked in turn.
    std::string prefix = path.starts_with('/') ? "/" : "";
    std::istringstream parts(path);
    std::string part;
    while (std::getline(parts, part, '/')) {
        if (part.empty()) continue;
        prefix += (prefix.empty() || prefix.back() == '/' ? "" : "/") + part;
        if (H5Lexists(parent, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
        if (H5Oexists_by_name(parent, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    return true;
}

namespace {

constexpr hsize_t kChunkThresholdBytes = 64 * 1024;  // compress integers above this
constexpr hsize_t kChunkTargetBytes = 256 * 1024;

hsize_t element_count(const std::vector<hsize_t>& dims) {
    hsize_t n = 1;
    for (hsize_t d : dims) n *= d;
    return n;
}

Handle make_space(const std::vector<hsize_t>& dims) {
    if (dims.empty()) return Handle(RBM_H5(H5Screate(H5S_SCALAR), "creating a scalar dataspace"));
    return Handle(RBM_H5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                         "creating a dataspace"));
}

// Row blocks first (halving the leading dims), so a chunk holds whole rows where it can.
std::vector<hsize_t> chunk_dims(const std::vector<hsize_t>& dims, size_t elem_size) {
    std::vector<hsize_t> chunk = dims;
    for (size_t i = 0; i < chunk.size(); ++i)
        while (element_count(chunk) * elem_size > kChunkTargetBytes && chunk[i] > 1)
            chunk[i] = (chunk[i] + 1) / 2;
    return chunk;
}

// Every non-empty array is chunked so it can carry a Fletcher32 checksum (corruption
// becomes a read error, not silently wrong weights); large integer and byte arrays are
// also shuffled and deflated. Float arrays are not: trained weights shrink by only ~14%
// (velocities ~50%) for ~20 ms of zlib per MB, which made each checkpoint of the
// tutorial's RBM ~50 ms slower, most of an epoch's end and of a checkpoint every N steps.
Handle creation_props(const std::vector<hsize_t>& dims, size_t elem_size, bool compress, const std::string& name) {
    Handle dcpl(RBM_H5(H5Pcreate(H5P_DATASET_CREATE), "dataset properties for '" << name << "'"));
    if (dims.empty() || element_count(dims) == 0) return dcpl;
    std::vector<hsize_t> chunk = chunk_dims(dims, elem_size);
    RBM_H5(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()), "chunking '" << name << "'");
    if (compress && element_count(dims) * elem_size > kChunkThresholdBytes) {
        RBM_H5(H5Pset_shuffle(dcpl), "shuffle filter for '" << name << "'");
        RBM_H5(H5Pset_deflate(dcpl, 4), "deflate filter for '" << name << "'");
    }
    RBM_H5(H5Pset_fletcher32(dcpl), "checksum filter for '" << name << "'");
    return dcpl;
}

void write_dataset(hid_t parent, const std::string& name, hid_t mem_type, hid_t file_type,
                   const void* data, const std::vector<hsize_t>& dims) {
    Handle space = make_space(dims);
    const bool compress = H5Tget_class(file_type) != H5T_FLOAT;
    Handle dcpl = creation_props(dims, H5Tget_size(file_type), compress, name);
    Handle dset(RBM_H5(H5Dcreate2(parent, name.c_str(), file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                       "creating dataset '" << name << "'"));
    if (element_count(dims) == 0) return;  // nothing to write; a null buffer would be refused
    RBM_H5(H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "writing dataset '" << name << "'");
}

// An object's path from the file's root ("/model/W"), for messages; `fallback` if HDF5
// cannot say.
std::string object_path(hid_t obj, const std::string& fallback) {
    const ssize_t length = H5Iget_name(obj, nullptr, 0);
    if (length <= 0) return fallback;
    std::string path(std::size_t(length) + 1, '\0');
    if (H5Iget_name(obj, path.data(), path.size()) <= 0) return fallback;
    path.resize(std::size_t(length));
    return path;
}

// A child's path from the root: "/model" and "W" -> "/model/W".
std::string child_path(hid_t parent, const std::string& name) {
    const std::string base = object_path(parent, "");
    return base.empty() || base == "/" ? "/" + name : base + "/" + name;
}

Handle open_dataset(hid_t parent, const std::string& name, const std::string& file) {
    RBM_REQUIRE(exists(parent, name), "'" << file << "' has no dataset '" << child_path(parent, name) << "'");
    return Handle(RBM_H5(H5Dopen2(parent, name.c_str(), H5P_DEFAULT),
                         "opening dataset '" << name << "' in '" << file << "'"));
}

std::vector<hsize_t> space_dims(hid_t dset, const std::string& name, const std::string& file) {
    Handle space(RBM_H5(H5Dget_space(dset), "dataspace of '" << name << "' in '" << file << "'"));
    int rank = RBM_H5(H5Sget_simple_extent_ndims(space), "rank of '" << name << "' in '" << file << "'");
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    if (rank > 0) RBM_H5(H5Sget_simple_extent_dims(space, dims.data(), nullptr), "shape of '" << name << "'");
    return dims;
}

template <typename T>
std::vector<T> read_dataset(hid_t parent, const std::string& name, const std::string& file,
                            const std::vector<hsize_t>& expected_dims, hid_t mem_type) {
    Handle dset = open_dataset(parent, name, file);
    const std::string where = object_path(dset, name);
    std::vector<hsize_t> dims = space_dims(dset, where, file);
    RBM_REQUIRE(expected_dims.empty() || dims == expected_dims,
                "'" << file << "': dataset '" << where << "' has shape " << shape_text(dims)
                    << ", expected " << shape_text(expected_dims));
    Handle type(RBM_H5(H5Dget_type(dset), "type of '" << name << "' in '" << file << "'"));
    H5T_class_t cls = H5Tget_class(type);
    RBM_REQUIRE(cls == H5T_INTEGER || cls == H5T_FLOAT,
                "'" << file << "': dataset '" << where << "' is not numeric");
    std::vector<T> out(element_count(dims));
    if (out.empty()) return out;
    herr_t rc = H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
    RBM_CHECK(rc >= 0, "'" << file << "': cannot read dataset '" << where
                           << "' (file truncated or damaged?)" << detail_suffix());
    return out;
}

}  // namespace

void write_floats(hid_t parent, const std::string& name, const float* data,
                  const std::vector<hsize_t>& dims) {
    write_dataset(parent, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, data, dims);
}
void write_doubles(hid_t parent, const std::string& name, const double* data,
                   const std::vector<hsize_t>& dims) {
    write_dataset(parent, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, data, dims);
}
void write_bytes(hid_t parent, const std::string& name, const uint8_t* data,
                 const std::vector<hsize_t>& dims) {
    write_dataset(parent, name, H5T_NATIVE_UINT8, H5T_STD_U8LE, data, dims);
}
void write_int32s(hid_t parent, const std::string& name, const int32_t* data,
                  const std::vector<hsize_t>& dims) {
    write_dataset(parent, name, H5T_NATIVE_INT32, H5T_STD_I32LE, data, dims);
}
void write_int64s(hid_t parent, const std::string& name, const int64_t* data,
                  const std::vector<hsize_t>& dims) {
    write_dataset(parent, name, H5T_NATIVE_INT64, H5T_STD_I64LE, data, dims);
}

std::vector<hsize_t> dataset_dims(hid_t parent, const std::string& name, const std::string& file) {
    Handle dset = open_dataset(parent, name, file);
    return space_dims(dset, name, file);
}

std::vector<float> read_floats(hid_t parent, const std::string& name, const std::string& file,
                               const std::vector<hsize_t>& expected_dims) {
    return read_dataset<float>(parent, name, file, expected_dims, H5T_NATIVE_FLOAT);
}
std::vector<double> read_doubles(hid_t parent, const std::string& name, const std::string& file,
                                 const std::vector<hsize_t>& expected_dims) {
    return read_dataset<double>(parent, name, file, expected_dims, H5T_NATIVE_DOUBLE);
}
std::vector<uint8_t> read_bytes(hid_t parent, const std::string& name, const std::string& file,
                                const std::vector<hsize_t>& expected_dims) {
    return read_dataset<uint8_t>(parent, name, file, expected_dims, H5T_NATIVE_UINT8);
}
std::vector<int32_t> read_int32s(hid_t parent, const std::string& name, const std::string& file,
                                 const std::vector<hsize_t>& expected_dims) {
    return read_dataset<int32_t>(parent, name, file, expected_dims, H5T_NATIVE_INT32);
}
std::vector<int64_t> read_int64s(hid_t parent, const std::string& name, const std::string& file,
                                 const std::vector<hsize_t>& expected_dims) {
    return read_dataset<int64_t>(parent, name, file, expected_dims, H5T_NATIVE_INT64);
}

// ---- attributes ----

namespace {

// Replaces any existing attribute, so set_attr means "the value is now this".
void write_attr(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type, const void* value) {
    if (has_attr(obj, name)) RBM_H5(H5Adelete(obj, name.c_str()), "replacing attribute '" << name << "'");
    Handle space(RBM_H5(H5Screate(H5S_SCALAR), "attribute dataspace"));
    Handle attr(RBM_H5(H5Acreate2(obj, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT),
                       "creating attribute '" << name << "'"));
    RBM_H5(H5Awrite(attr, mem_type, value), "writing attribute '" << name << "'");
}

Handle open_attr(hid_t obj, const std::string& name, const std::string& file) {
    RBM_REQUIRE(has_attr(obj, name), "'" << file << "' lacks the attribute '" << name << "'");
    Handle attr(RBM_H5(H5Aopen(obj, name.c_str(), H5P_DEFAULT),
                       "opening attribute '" << name << "' in '" << file << "'"));
    Handle space(RBM_H5(H5Aget_space(attr), "attribute '" << name << "' in '" << file << "'"));
    RBM_REQUIRE(H5Sget_simple_extent_npoints(space) == 1,
                "'" << file << "': attribute '" << name << "' is not a single value");
    return attr;
}

H5T_class_t attr_class(hid_t attr, const std::string& name, const std::string& file) {
    Handle type(RBM_H5(H5Aget_type(attr), "type of attribute '" << name << "' in '" << file << "'"));
    return H5Tget_class(type);
}

template <typename T>
T read_number_attr(hid_t obj, const std::string& name, const std::string& file, hid_t mem_type,
                   bool allow_float) {
    Handle attr = open_attr(obj, name, file);
    H5T_class_t cls = attr_class(attr, name, file);
    RBM_REQUIRE(cls == H5T_INTEGER || (allow_float && cls == H5T_FLOAT),
                "'" << file << "': attribute '" << name << "' is not "
                    << (allow_float ? "a number" : "an integer"));
    T value{};
    RBM_H5(H5Aread(attr, mem_type, &value), "reading attribute '" << name << "' in '" << file << "'");
    return value;
}

}  // namespace

void set_attr(hid_t obj, const std::string& name, const std::string& value) {
    // Fixed-length, not variable-length: variable-length strings live in HDF5's global
    // heap, which has no checksum, and HDF5 1.10 crashes reading a garbled one.
    // (h5py returns these as bytes: .decode() them.)
    Handle type(RBM_H5(H5Tcopy(H5T_C_S1), "string type"));
    RBM_H5(H5Tset_size(type, std::max<size_t>(1, value.size())), "string type");
    RBM_H5(H5Tset_strpad(type, H5T_STR_NULLPAD), "string type");
    RBM_H5(H5Tset_cset(type, H5T_CSET_UTF8), "string type");
    std::string padded = value;
    padded.resize(std::max<size_t>(1, value.size()), '\0');
    write_attr(obj, name, type, type, padded.data());
}
void set_attr(hid_t obj, const std::string& name, int64_t value) {
    write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}
void set_attr(hid_t obj, const std::string& name, uint64_t value) {
    write_attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}
void set_attr(hid_t obj, const std::string& name, double value) {
    write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

std::string get_attr_string(hid_t obj, const std::string& name, const std::string& file) {
    Handle attr = open_attr(obj, name, file);
    Handle type(RBM_H5(H5Aget_type(attr), "type of attribute '" << name << "' in '" << file << "'"));
    RBM_REQUIRE(H5Tget_class(type) == H5T_STRING, "'" << file << "': attribute '" << name << "' is not a string");
    if (H5Tis_variable_str(type) > 0) {
        Handle mem(RBM_H5(H5Tcopy(H5T_C_S1), "string type"));
        RBM_H5(H5Tset_size(mem, H5T_VARIABLE), "string type");
        // HDF5 will not convert between ASCII and UTF-8, so read in the stored charset.
        RBM_H5(H5Tset_cset(mem, H5Tget_cset(type)), "string type");
        char* p = nullptr;
        RBM_H5(H5Aread(attr, mem, &p), "reading attribute '" << name << "' in '" << file << "'");
        std::string out = p ? p : "";
        H5free_memory(p);
        return out;
    }
    // Fixed-length strings (as other tools often write them): read and cut at the first NUL.
    size_t size = H5Tget_size(type);
    std::string buf(size, '\0');
    RBM_H5(H5Aread(attr, type, buf.data()), "reading attribute '" << name << "' in '" << file << "'");
    return buf.substr(0, buf.find('\0'));
}

int64_t get_attr_int(hid_t obj, const std::string& name, const std::string& file) {
    return read_number_attr<int64_t>(obj, name, file, H5T_NATIVE_INT64, false);
}

uint64_t get_attr_uint(hid_t obj, const std::string& name, const std::string& file) {
    Handle attr = open_attr(obj, name, file);
    Handle type(RBM_H5(H5Aget_type(attr), "type of attribute '" << name << "'"));
    bool is_signed = H5Tget_class(type) == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_2;
    if (is_signed) {
        int64_t v = get_attr_int(obj, name, file);
        RBM_REQUIRE(v >= 0, "'" << file << "': attribute '" << name << "' is negative (" << v << ")");
        return static_cast<uint64_t>(v);
    }
    return read_number_attr<uint64_t>(obj, name, file, H5T_NATIVE_UINT64, false);
}

double get_attr_double(hid_t obj, const std::string& name, const std::string& file) {
    return read_number_attr<double>(obj, name, file, H5T_NATIVE_DOUBLE, true);
}

std::string shape_text(const std::vector<hsize_t>& dims) {
    std::ostringstream out;
    out << "[";
    for (std::size_t i = 0; i < dims.size(); ++i) out << (i ? ", " : "") << dims[i];
    out << "]";
    return out.str();
}

// ---- atomic publication ----

namespace {

void fsync_path(const std::string& path, bool directory) {
    int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
    RBM_CHECK(fd >= 0, "cannot open '" << path << "' to sync it: " << std::strerror(errno));
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    RBM_CHECK(rc == 0, "cannot sync '" << path << "' to disk: " << std::strerror(err));
}

}  // namespace

void sync_directory_of(const std::string& path) {
    const std::string dir = fs::path(path).parent_path().string();
    fsync_path(dir.empty() ? "." : dir, true);
}

void write_atomically(const std::string& path,
                      const std::function<void(const std::string& tmp_path)>& write_tmp) {
    const std::string tmp = path + ".tmp";
    try {
        write_tmp(tmp);
        fsync_path(tmp, false);
        std::error_code ec;
        fs::rename(tmp, path, ec);
        RBM_CHECK(!ec, "cannot rename '" << tmp << "' to '" << path << "': " << ec.message());
        sync_directory_of(path);
    } catch (...) {
        std::error_code ignored;
        fs::remove(tmp, ignored);
        throw;
    }
}

}  // namespace rbm::h5

// ---- rbm file identity ----

namespace rbm::h5 {

std::string file_kind(hid_t file, const std::string& path) {
    return has_attr(file, "rbm_file_kind") ? get_attr_string(file, "rbm_file_kind", path) : "";
}

void require_kind(hid_t file, const std::string& path, const std::string& kind, int64_t version) {
    std::string found = file_kind(file, path);
    RBM_REQUIRE(!found.empty(), "'" << path << "' is not an rbm " << kind
                                     << " file (an HDF5 file without the rbm_file_kind attribute)");
    RBM_REQUIRE(found == kind, "'" << path << "' is an rbm " << found << " file, not a " << kind << " file");
    int64_t v = get_attr_int(file, "format_version", path);
    RBM_REQUIRE(v == version, "'" << path << "' was written by format version " << v << ", this rbm reads "
                                  << version);
}

void set_kind(hid_t file, const std::string& kind, int64_t version) {
    set_attr(file, "rbm_file_kind", kind);
    set_attr(file, "format_version", version);
#ifdef RBM_VERSION
    set_attr(file, "rbm_version", std::string(RBM_VERSION));
#endif
}

void check_may_replace(const std::string& path, const std::string& kind, const std::string& command) {
    if (path.empty()) fail("--out must name the ", kind, " file to write");
    // Said before any work, rather than as a failed '.tmp' at the end of it.
    const std::filesystem::path dir = std::filesystem::path(path).parent_path().empty()
                                          ? std::filesystem::path(".")
                                          : std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) fail("--out ", path, ": its directory '", dir.string(), "' does not exist");
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        fail("--out ", path, ": cannot write in '", dir.string(), "': ", std::strerror(errno));
    const std::filesystem::file_status status = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(status)) return;
    const std::string only = "; " + command + " replaces only a " + kind + " file (choose another --out, or remove it)";
    if (!std::filesystem::is_regular_file(status)) fail("'", path, "' exists and is not a file", only);
    if (!is_hdf5(path)) fail("'", path, "' exists and is not an HDF5 file", only);
    std::string found;
    try {
        found = file_kind(open_file_read(path), path);
    } catch (const Error&) {
        fail("'", path, "' exists and is a damaged HDF5 file", only);
    }
    if (found != kind)
        fail("'", path, "' exists and is ", found.empty() ? std::string("an HDF5 file rbm did not write") : "an rbm " + found + " file",
             only);
}

namespace {

struct AttrSink {
    const std::string* path;
    const std::set<std::string>* skip;
    RootAttrs* attrs;
};

// Sorts each attribute into text or number by its stored type.
herr_t collect_attr(hid_t loc, const char* name, const H5A_info_t*, void* data) {
    auto* sink = static_cast<AttrSink*>(data);
    if (sink->skip->count(name)) return 0;
    Handle attr(H5Aopen(loc, name, H5P_DEFAULT));
    if (!attr.valid()) return -1;
    Handle type(H5Aget_type(attr));
    H5T_class_t cls = type.valid() ? H5Tget_class(type) : H5T_NO_CLASS;
    try {
        if (cls == H5T_STRING) sink->attrs->text[name] = get_attr_string(loc, name, *sink->path);
        else if (cls == H5T_INTEGER || cls == H5T_FLOAT) sink->attrs->number[name] = get_attr_double(loc, name, *sink->path);
    } catch (const Error&) {
        return -1;  // an exception must not unwind through HDF5's C frames
    }
    return 0;
}

}  // namespace

RootAttrs read_root_attrs(hid_t file, const std::string& path, const std::set<std::string>& skip) {
    RootAttrs attrs;
    AttrSink sink{&path, &skip, &attrs};
    hsize_t idx = 0;
    RBM_H5(H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect_attr, &sink),
           "reading the attributes of '" << path << "'");
    return attrs;
}

void write_root_attrs(hid_t file, const RootAttrs& attrs, const std::set<std::string>& reserved,
                      const std::string& path) {
    for (const auto& [name, value] : attrs.text) {
        RBM_CHECK(!reserved.count(name), "'" << path << "': attribute name '" << name << "' is reserved");
        set_attr(file, name, value);
    }
    for (const auto& [name, value] : attrs.number) {
        RBM_CHECK(!reserved.count(name) && !attrs.text.count(name),
                  "'" << path << "': attribute name '" << name << "' is reserved or given twice");
        set_attr(file, name, value);
    }
}

}  // namespace rbm::h5
