// Samples are written once and looked at later (PNG tiles, notebooks), so the file
// records, beside the tensors, how they were drawn; it is published atomically so a
// reader never sees half of one.
#include "io/samples_file.hpp"

#include <filesystem>
#include <set>

#include "io/h5.hpp"

namespace rbm {

using h5::Handle;

namespace {

constexpr int64_t kSamplesFormatVersion = 1;

// Root attributes the format itself owns; the caller's attrs may not reuse these names.
const std::set<std::string> kReservedAttrs = {"rbm_file_kind", "format_version", "rbm_version",
                                              "image_height", "image_width"};

void check_consistent(const SampleSet& s, const std::string& path) {
    std::size_t n = s.n_samples * s.n_chains * s.n_visible;
    RBM_CHECK(s.mean_field.size() == n, "samples for '" << path << "': mean_field has "
                                            << s.mean_field.size() << " values, shape needs " << n);
    RBM_CHECK(s.binary.empty() || s.binary.size() == n,
              "samples for '" << path << "': binary has " << s.binary.size() << " values, shape needs " << n);
    RBM_CHECK(s.start_index.empty() || s.start_index.size() == s.n_chains,
              "samples for '" << path << "': " << s.start_index.size() << " start indices for "
                              << s.n_chains << " chains");
    for (const auto& [name, value] : s.text_attrs)
        RBM_CHECK(!kReservedAttrs.count(name), "samples attribute name '" << name << "' is reserved");
    for (const auto& [name, value] : s.number_attrs)
        RBM_CHECK(!kReservedAttrs.count(name) && !s.text_attrs.count(name),
                  "samples attribute name '" << name << "' is reserved or given twice");
}

void write_contents(hid_t file, const SampleSet& s) {
    h5::set_kind(file, "samples", kSamplesFormatVersion);
    h5::set_attr(file, "image_height", static_cast<uint64_t>(s.image_height));
    h5::set_attr(file, "image_width", static_cast<uint64_t>(s.image_width));
    for (const auto& [name, value] : s.text_attrs) h5::set_attr(file, name, value);
    for (const auto& [name, value] : s.number_attrs) h5::set_attr(file, name, value);
    std::vector<hsize_t> dims = {s.n_samples, s.n_chains, s.n_visible};
    h5::write_floats(file, "mean_field", s.mean_field.data(), dims);
    if (!s.binary.empty()) h5::write_bytes(file, "samples", s.binary.data(), dims);
    if (!s.start_index.empty()) h5::write_int64s(file, "start_index", s.start_index.data(), {s.n_chains});
}

struct AttrSink {
    hid_t file;
    const std::string* path;
    SampleSet* set;
};

// Sorts each caller attribute into text or number by its stored type.
herr_t collect_attr(hid_t loc, const char* name, const H5A_info_t*, void* data) {
    auto* sink = static_cast<AttrSink*>(data);
    if (kReservedAttrs.count(name)) return 0;
    Handle attr(H5Aopen(loc, name, H5P_DEFAULT));
    if (!attr.valid()) return -1;
    Handle type(H5Aget_type(attr));
    H5T_class_t cls = type.valid() ? H5Tget_class(type) : H5T_NO_CLASS;
    try {
        if (cls == H5T_STRING) sink->set->text_attrs[name] = h5::get_attr_string(loc, name, *sink->path);
        else if (cls == H5T_INTEGER || cls == H5T_FLOAT)
            sink->set->number_attrs[name] = h5::get_attr_double(loc, name, *sink->path);
    } catch (const Error&) {
        return -1;  // an exception must not unwind through HDF5's C frames
    }
    return 0;
}

void read_attrs(hid_t file, const std::string& path, SampleSet& s) {
    s.image_height = h5::get_attr_uint(file, "image_height", path);
    s.image_width = h5::get_attr_uint(file, "image_width", path);
    AttrSink sink{file, &path, &s};
    hsize_t idx = 0;
    RBM_H5(H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect_attr, &sink),
           "reading the attributes of '" << path << "'");
}

SampleSet read_contents(hid_t file, const std::string& path) {
    h5::require_kind(file, path, "samples", kSamplesFormatVersion);
    SampleSet s;
    auto dims = h5::dataset_dims(file, "mean_field", path);
    RBM_CHECK(dims.size() == 3, "'" << path << "': mean_field must be [n_samples, n_chains, n_visible]");
    s.n_samples = dims[0];
    s.n_chains = dims[1];
    s.n_visible = dims[2];
    s.mean_field = h5::read_floats(file, "mean_field", path, dims);
    if (h5::exists(file, "samples")) s.binary = h5::read_bytes(file, "samples", path, dims);
    if (h5::exists(file, "start_index"))
        s.start_index = h5::read_int64s(file, "start_index", path, {dims[1]});
    read_attrs(file, path, s);
    return s;
}

}  // namespace

void check_samples_destination(const std::string& path) {
    RBM_CHECK(!path.empty(), "--out must name the samples file to write");
    std::error_code ec;
    const std::filesystem::file_status status = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(status)) return;
    const char* only = "; rbm sample replaces only a samples file (choose another --out, or remove it)";
    RBM_CHECK(std::filesystem::is_regular_file(status), "'" << path << "' exists and is not a file" << only);
    RBM_CHECK(h5::is_hdf5(path), "'" << path << "' exists and is not an HDF5 file" << only);
    const h5::Handle file = h5::open_file_read(path);
    const std::string kind = h5::file_kind(file, path);
    RBM_CHECK(kind == "samples", "'" << path << "' exists and is "
                                     << (kind.empty() ? std::string("an HDF5 file rbm did not write") : "an rbm " + kind + " file")
                                     << only);
}

void write_samples(const std::string& path, const SampleSet& set) {
    check_consistent(set, path);
    h5::write_atomically(path, [&](const std::string& tmp) {
        Handle file = h5::create_file(tmp);
        write_contents(file, set);
        RBM_H5(H5Fflush(file, H5F_SCOPE_GLOBAL), "flushing '" << tmp << "'");
        file.close();
    });
}

SampleSet read_samples(const std::string& path) {
    Handle file = h5::open_file_read(path);
    return read_contents(file, path);
}

}  // namespace rbm
