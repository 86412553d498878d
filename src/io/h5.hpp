// Thin RAII and checking over the HDF5 C API, shared by every reader and writer of
// rbm's files: a handle closes itself, and every call that can fail is checked with
// a message naming the file and what was being done.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "util/check.hpp"

namespace rbm::h5 {

// Checks an HDF5 return value (negative means failure); `what` names the file/object.
#define RBM_H5(call, what)                                                       \
    ([&]() {                                                                     \
        auto rbm_h5_result_ = (call);                                            \
        RBM_CHECK(rbm_h5_result_ >= 0, "HDF5: " << what << ": " #call " failed"      \
                                        << ::rbm::h5::library_error_suffix());   \
        return rbm_h5_result_;                                                   \
    }())

// Owns one hid_t and closes it with the right H5?close.
class Handle {
public:
    Handle() = default;
    explicit Handle(hid_t id) : id_(id) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) {
            close();
            id_ = std::exchange(o.id_, H5I_INVALID_HID);
        }
        return *this;
    }
    ~Handle() { close(); }

    hid_t get() const { return id_; }
    operator hid_t() const { return id_; }
    bool valid() const { return id_ >= 0; }
    void close() noexcept;

private:
    hid_t id_ = H5I_INVALID_HID;
};

// Turns HDF5's own error stack printing off: rbm reports errors itself.
void silence_library_errors();

// Files. create_file truncates; open_* fail with a message naming the path.
Handle create_file(const std::string& path);
Handle open_file_read(const std::string& path);
Handle open_file_write(const std::string& path);
bool is_hdf5(const std::string& path);

Handle create_group(hid_t parent, const std::string& name);
Handle open_group(hid_t parent, const std::string& name, const std::string& file_for_messages);
bool exists(hid_t parent, const std::string& path);

// Whole-dataset writes, chunked with a checksum (integer and byte arrays over 64 KiB also
// deflated). dims: row-major shape.
void write_floats(hid_t parent, const std::string& name, const float* data,
                  const std::vector<hsize_t>& dims);
void write_doubles(hid_t parent, const std::string& name, const double* data,
                   const std::vector<hsize_t>& dims);
void write_bytes(hid_t parent, const std::string& name, const uint8_t* data,
                 const std::vector<hsize_t>& dims);
void write_int32s(hid_t parent, const std::string& name, const int32_t* data,
                  const std::vector<hsize_t>& dims);
void write_int64s(hid_t parent, const std::string& name, const int64_t* data,
                  const std::vector<hsize_t>& dims);

// Shape of a dataset (empty for a scalar).
std::vector<hsize_t> dataset_dims(hid_t parent, const std::string& name, const std::string& file);
// "[60000, 784]": dims as messages name them.
std::string shape_text(const std::vector<hsize_t>& dims);

// Whole-dataset reads converting to the requested type; `file` names the file in errors.
// expected_dims, when non-empty, must match exactly.
std::vector<float> read_floats(hid_t parent, const std::string& name, const std::string& file,
                               const std::vector<hsize_t>& expected_dims = {});
std::vector<double> read_doubles(hid_t parent, const std::string& name, const std::string& file,
                                 const std::vector<hsize_t>& expected_dims = {});
std::vector<uint8_t> read_bytes(hid_t parent, const std::string& name, const std::string& file,
                                const std::vector<hsize_t>& expected_dims = {});
std::vector<int32_t> read_int32s(hid_t parent, const std::string& name, const std::string& file,
                                 const std::vector<hsize_t>& expected_dims = {});
std::vector<int64_t> read_int64s(hid_t parent, const std::string& name, const std::string& file,
                                 const std::vector<hsize_t>& expected_dims = {});

// Scalar attributes on any object.
void set_attr(hid_t obj, const std::string& name, const std::string& value);
void set_attr(hid_t obj, const std::string& name, int64_t value);
void set_attr(hid_t obj, const std::string& name, uint64_t value);
void set_attr(hid_t obj, const std::string& name, double value);
bool has_attr(hid_t obj, const std::string& name);
std::string get_attr_string(hid_t obj, const std::string& name, const std::string& file);
int64_t get_attr_int(hid_t obj, const std::string& name, const std::string& file);
uint64_t get_attr_uint(hid_t obj, const std::string& name, const std::string& file);
double get_attr_double(hid_t obj, const std::string& name, const std::string& file);

// rbm's own files say what they are in root attributes rbm_file_kind and format_version.
// file_kind returns "" when the attribute is absent. require_kind fails, naming `path`, when
// the file is another kind (or no rbm file) or another format version than `version`.
std::string file_kind(hid_t file, const std::string& path);
void require_kind(hid_t file, const std::string& path, const std::string& kind, int64_t version);
// Root attributes every rbm file gets: rbm_file_kind, format_version, rbm_version.
void set_kind(hid_t file, const std::string& kind, int64_t version);

// Fails, naming `path`, unless writing a `kind` file there would replace nothing or only
// another `kind` file: never a checkpoint, the run's metrics or a file rbm did not write.
// `command` ("rbm sample") is named in the advice.
void check_may_replace(const std::string& path, const std::string& kind, const std::string& command);

// A file's own root attributes, saying how its contents were made (checkpoint, seed, ...).
struct RootAttrs {
    std::map<std::string, std::string> text;
    std::map<std::string, double> number;
};
// Every root attribute not named in `skip` (the format's own), by stored type.
RootAttrs read_root_attrs(hid_t file, const std::string& path, const std::set<std::string>& skip);
// Writes them; a name in `reserved` or given twice is refused, naming `path`.
void write_root_attrs(hid_t file, const RootAttrs& attrs, const std::set<std::string>& reserved,
                      const std::string& path);

// The innermost message on HDF5's error stack (e.g. "truncated file: eof = ..."), or "".
std::string library_error_detail();
// " (that message)", or "" (RBM_H5 appends it: a full disk shows as "No space left on device").
std::string library_error_suffix();

// Atomic publication for any file rbm writes (HDF5 or PNG): write_tmp(path + ".tmp") must
// write and close the file; it is then fsynced, renamed over `path`, and the directory
// fsynced. On any failure the .tmp is removed and the error rethrown.
void write_atomically(const std::string& path,
                      const std::function<void(const std::string& tmp_path)>& write_tmp);
// fsyncs the directory that holds `path`: without it a rename into it may not survive a crash.
void sync_directory_of(const std::string& path);

}  // namespace rbm::h5
