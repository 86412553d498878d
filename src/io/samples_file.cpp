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
}

void write_contents(hid_t file, const SampleSet& s, const std::string& path) {
    h5::set_kind(file, "samples", kSamplesFormatVersion);
    h5::set_attr(file, "image_height", static_cast<uint64_t>(s.image_height));
    h5::set_attr(file, "image_width", static_cast<uint64_t>(s.image_width));
    h5::write_root_attrs(file, {s.text_attrs, s.number_attrs}, kReservedAttrs, path);
    std::vector<hsize_t> dims = {s.n_samples, s.n_chains, s.n_visible};
    h5::write_floats(file, "mean_field", s.mean_field.data(), dims);
    if (!s.binary.empty()) h5::write_bytes(file, "samples", s.binary.data(), dims);
    if (!s.start_index.empty()) h5::write_int64s(file, "start_index", s.start_index.data(), {s.n_chains});
}

SampleSet read_contents(hid_t file, const std::string& path) {
    h5::require_kind(file, path, "samples", kSamplesFormatVersion);
    SampleSet s;
    auto dims = h5::dataset_dims(file, "mean_field", path);
    RBM_REQUIRE(dims.size() == 3, "'" << path << "': mean_field must be [n_samples, n_chains, n_visible]");
    s.n_samples = dims[0];
    s.n_chains = dims[1];
    s.n_visible = dims[2];
    s.mean_field = h5::read_floats(file, "mean_field", path, dims);
    if (h5::exists(file, "samples")) s.binary = h5::read_bytes(file, "samples", path, dims);
    if (h5::exists(file, "start_index"))
        s.start_index = h5::read_int64s(file, "start_index", path, {dims[1]});
    s.image_height = h5::get_attr_uint(file, "image_height", path);
    s.image_width = h5::get_attr_uint(file, "image_width", path);
    h5::RootAttrs attrs = h5::read_root_attrs(file, path, kReservedAttrs);
    s.text_attrs = std::move(attrs.text);
    s.number_attrs = std::move(attrs.number);
    return s;
}

}  // namespace

void check_samples_destination(const std::string& path) { h5::check_may_replace(path, "samples", "rbm sample"); }

void write_samples(const std::string& path, const SampleSet& set) {
    check_consistent(set, path);
    h5::write_atomically(path, [&](const std::string& tmp) {
        Handle file = h5::create_file(tmp);
        write_contents(file, set, path);
        RBM_H5(H5Fflush(file, H5F_SCOPE_GLOBAL), "flushing '" << tmp << "'");
        file.close();
    });
}

SampleSet read_samples(const std::string& path) {
    Handle file = h5::open_file_read(path);
    return read_contents(file, path);
}

}  // namespace rbm
