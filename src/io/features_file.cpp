// The features file (see features_file.hpp): written once, published atomically, so a
// reader never sees half of one.
#include "io/features_file.hpp"

#include <set>

namespace rbm {
namespace {

constexpr int64_t kFeaturesFormatVersion = 1;
const std::set<std::string> kReservedAttrs = {"rbm_file_kind", "format_version", "rbm_version"};

void check_consistent(const FeatureSet& s, const std::string& path) {
    RBM_CHECK(s.features.size() == s.n_examples * s.n_hidden,
              "features for '" << path << "': " << s.features.size() << " values, shape needs "
                               << s.n_examples * s.n_hidden);
    RBM_CHECK(s.labels.empty() || s.labels.size() == s.n_examples,
              "features for '" << path << "': " << s.labels.size() << " labels for " << s.n_examples << " examples");
}

}  // namespace

void check_features_destination(const std::string& path) { h5::check_may_replace(path, "features", "rbm transform"); }

void write_features(const std::string& path, const FeatureSet& set) {
    check_consistent(set, path);
    h5::write_atomically(path, [&](const std::string& tmp) {
        h5::Handle file = h5::create_file(tmp);
        h5::set_kind(file, "features", kFeaturesFormatVersion);
        h5::write_root_attrs(file, set.attrs, kReservedAttrs, path);
        h5::write_floats(file, "features", set.features.data(), {set.n_examples, set.n_hidden});
        if (!set.labels.empty()) h5::write_bytes(file, "labels", set.labels.data(), {set.n_examples});
        RBM_H5(H5Fflush(file, H5F_SCOPE_GLOBAL), "flushing '" << tmp << "'");
        file.close();
    });
}

FeatureSet read_features(const std::string& path) {
    h5::Handle file = h5::open_file_read(path);
    h5::require_kind(file, path, "features", kFeaturesFormatVersion);
    FeatureSet s;
    const auto dims = h5::dataset_dims(file, "features", path);
    RBM_REQUIRE(dims.size() == 2, "'" << path << "': features must be [n_examples, n_hidden]");
    s.n_examples = dims[0];
    s.n_hidden = dims[1];
    s.features = h5::read_floats(file, "features", path, dims);
    if (h5::exists(file, "labels")) s.labels = h5::read_bytes(file, "labels", path, {dims[0]});
    s.attrs = h5::read_root_attrs(file, path, kReservedAttrs);
    return s;
}

}  // namespace rbm
