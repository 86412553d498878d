// Reads training data from a dataset in an arbitrary HDF5 file. Such files come from
// other tools, so everything is checked (rank, type, NaN/Inf, range) and each rank
// reads only its own rows through a hyperslab instead of loading the whole dataset.
#include "io/hdf5_input.hpp"

#include <cmath>
#include <sstream>
#include <vector>

#include "io/data_rows.hpp"
#include "io/h5.hpp"
#include "util/check.hpp"

namespace rbm::h5in {
namespace {

enum class Element { u8, floating };

// An open dataset with its shape and element kind.
struct Source {
    h5::Handle file;
    h5::Handle dset;
    std::vector<hsize_t> dims;
    Element element = Element::u8;
    SourceInfo info;
};

// Plain words for an HDF5 type, for the "unsupported type" message.
std::string type_words(hid_t type, H5T_class_t cls, std::size_t size) {
    std::ostringstream out;
    switch (cls) {
        case H5T_INTEGER:
            out << 8 * size << "-bit " << (H5Tget_sign(type) == H5T_SGN_NONE ? "unsigned" : "signed")
                << " integer";
            break;
        case H5T_FLOAT: out << 8 * size << "-bit float"; break;
        case H5T_STRING: out << "string"; break;
        case H5T_COMPOUND: out << "compound"; break;
        case H5T_ENUM: out << "enum"; break;
        case H5T_ARRAY: out << "array"; break;
        case H5T_VLEN: out << "variable-length"; break;
        case H5T_BITFIELD: out << "bitfield"; break;
        case H5T_OPAQUE: out << "opaque"; break;
        case H5T_REFERENCE: out << "reference"; break;
        default: out << "unknown"; break;
    }
    return out.str();
}

// uint8 or float32/float64 only: other integers are refused rather than converted,
// because their scale (0..255? 0..65535? 0/1?) cannot be guessed.
Element element_of(hid_t dset, const std::string& spec) {
    h5::Handle type(RBM_H5(H5Dget_type(dset), "type of " << spec));
    H5T_class_t cls = H5Tget_class(type);
    RBM_CHECK(cls != H5T_NO_CLASS, "HDF5: " << spec << ": H5Tget_class failed");
    std::size_t size = H5Tget_size(type);
    RBM_CHECK(size > 0, "HDF5: " << spec << ": H5Tget_size failed");
    if (cls == H5T_INTEGER) {
        H5T_sign_t sign = H5Tget_sign(type);
        RBM_CHECK(sign != H5T_SGN_ERROR, "HDF5: " << spec << ": H5Tget_sign failed");
        if (size == 1 && sign == H5T_SGN_NONE) return Element::u8;
    }
    if (cls == H5T_FLOAT && (size == 4 || size == 8)) return Element::floating;
    fail("'", spec, "': unsupported type ", type_words(type, cls, size),
         "; rbm reads uint8 (scaled by 1/255) or float32/float64 (taken as they are) and refuses "
         "other types rather than convert them");
}

std::vector<hsize_t> dims_of(hid_t dset, const std::string& spec) {
    h5::Handle space(RBM_H5(H5Dget_space(dset), "dataspace of " << spec));
    int rank = RBM_H5(H5Sget_simple_extent_ndims(space), "rank of " << spec);
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    if (rank > 0) RBM_H5(H5Sget_simple_extent_dims(space, dims.data(), nullptr), "shape of " << spec);
    if (rank != 2 && rank != 3)
        fail("'", spec, "': wrong rank: the dataset has shape ", h5::shape_text(dims), " (", rank,
             " dimensions), expected 2-D [N, n_visible] or 3-D [N, height, width]");
    return dims;
}

SourceInfo info_of(const std::vector<hsize_t>& dims, const std::string& spec) {
    SourceInfo info;
    info.n_rows = dims[0];
    if (dims.size() == 3) {
        info.n_cols = data::checked_mul(spec, dims[1], dims[2], h5::shape_text(dims));
        info.image_height = dims[1];
        info.image_width = dims[2];
    } else {
        info.n_cols = dims[1];
        info.image_height = info.image_width = data::square_side(info.n_cols);
    }
    data::checked_mul(spec, info.n_rows, info.n_cols, h5::shape_text(dims));
    data::check_not_empty(spec, info.n_rows, info.n_cols);
    return info;
}

h5::Handle open_dataset(hid_t file, const Spec& s, const std::string& spec) {
    if (!h5::exists(file, s.dataset)) fail("'", spec, "': no such dataset '", s.dataset, "' in ", s.file);
    h5::Handle obj(RBM_H5(H5Oopen(file, s.dataset.c_str(), H5P_DEFAULT), "opening " << spec));
    H5I_type_t kind = H5Iget_type(obj);
    RBM_CHECK(kind != H5I_BADID, "HDF5: " << spec << ": H5Iget_type failed");
    if (kind != H5I_DATASET)
        fail("'", spec, "': '", s.dataset, "' is not a dataset", kind == H5I_GROUP ? " (it is a group)" : "");
    return obj;
}

// A 2-D dataset's image shape: its own `image_height` and `image_width` attributes when it
// has them (0 and 0: not images), none for rbm transform's features (hidden units, not
// pixels, even when their count is a square), else a square column count's guess.
void apply_image_attrs(Source& src, const std::string& spec) {
    if (src.dims.size() != 2) return;  // [N, height, width] says it itself
    const bool has_h = h5::has_attr(src.dset, "image_height"), has_w = h5::has_attr(src.dset, "image_width");
    if (has_h != has_w)
        fail("'", spec, "': the dataset has attribute '", has_h ? "image_height" : "image_width",
             "' but not '", has_h ? "image_width" : "image_height", "': give both, or neither");
    if (has_h) {
        const uint64_t h = h5::get_attr_uint(src.dset, "image_height", spec);
        const uint64_t w = h5::get_attr_uint(src.dset, "image_width", spec);
        if (!data::image_shape_fits(h, w, src.info.n_cols))
            fail("'", spec, "': its attributes say images of ", h, " x ", w, ", but each example has ",
                 src.info.n_cols, " values (use 0 and 0 for data that are not images)");
        src.info.image_height = h;
        src.info.image_width = w;
    } else if (h5::file_kind(src.file, spec) == "features") {
        src.info.image_height = src.info.image_width = 0;
    }
}

Source open_source(const std::string& spec) {
    std::optional<Spec> s = split_spec(spec);
    RBM_CHECK(s, "not an HDF5 dataset spec: " << spec);
    Source src;
    src.file = h5::open_file_read(s->file);  // refuses missing and non-HDF5 files by name
    src.dset = open_dataset(src.file, *s, spec);
    src.dims = dims_of(src.dset, spec);
    src.element = element_of(src.dset, spec);
    src.info = info_of(src.dims, spec);
    apply_image_attrs(src, spec);
    return src;
}

// Reads rows [r.begin, r.end) into `out` as `mem_type` through a hyperslab.
void read_slab(const Source& src, RowRange r, hid_t mem_type, void* out, const std::string& spec) {
    h5::Handle file_space(RBM_H5(H5Dget_space(src.dset), "dataspace of " << spec));
    std::vector<hsize_t> start(src.dims.size(), 0), count = src.dims;
    start[0] = r.begin;
    count[0] = r.end - r.begin;
    RBM_H5(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
           "selecting rows " << r.begin << ".." << r.end << " of " << spec);
    hsize_t n = count[0] * src.info.n_cols;
    h5::Handle mem_space(RBM_H5(H5Screate_simple(1, &n, nullptr), "memory dataspace for " << spec));
    herr_t rc = H5Dread(src.dset, mem_type, mem_space, file_space, H5P_DEFAULT, out);
    if (rc < 0) {
        std::string detail = h5::library_error_detail();
        fail("'", spec, "': cannot read rows ", r.begin, "..", r.end,
             " (file truncated or damaged?)", detail.empty() ? "" : " (" + detail + ")");
    }
}

// Floats from other tools are taken as they are, so they must already be in [0, 1].
void check_values(const Dataset& d, const std::string& spec) {
    for (std::size_t i = 0; i < d.n_rows; ++i) {
        const float* row = d.row(i);
        for (std::size_t c = 0; c < d.n_cols; ++c) {
            float v = row[c];
            if (!std::isfinite(v))
                fail("'", spec, "': ", std::isnan(v) ? "NaN" : "Inf", " at row ", d.first_row + i,
                     ", column ", c, " (counting from 0)");
            if (v < 0.0f || v > 1.0f)
                fail("'", spec, "': value ", v, " at row ", d.first_row + i, ", column ", c,
                     " (counting from 0) is outside [0, 1]");
        }
    }
}

void fill_values(const Source& src, RowRange r, Dataset& d, const std::string& spec) {
    if (d.values.empty()) return;  // an empty range: HDF5 refuses a zero-sized selection
    if (src.element == Element::floating) {
        read_slab(src, r, H5T_NATIVE_FLOAT, d.values.data(), spec);
        check_values(d, spec);
        return;
    }
    std::vector<uint8_t> bytes(d.values.size());
    read_slab(src, r, H5T_NATIVE_UINT8, bytes.data(), spec);
    for (std::size_t i = 0; i < bytes.size(); ++i) d.values[i] = static_cast<float>(bytes[i]) / 255.0f;
    data::refuse_zero_one_bytes(d);
}

}  // namespace

std::optional<Spec> split_spec(const std::string& spec) {
    std::size_t colon = spec.rfind(":/");
    if (colon == std::string::npos) return std::nullopt;
    return Spec{spec.substr(0, colon), spec.substr(colon + 1)};
}

SourceInfo probe(const std::string& spec) { return open_source(spec).info; }

Dataset read(const std::string& spec, RowRange rows) {
    Source src = open_source(spec);
    RowRange r = data::resolve_rows(spec, src.info.n_rows, rows);
    Dataset d;
    d.source = spec;
    d.n_rows = r.end - r.begin;
    d.n_cols = src.info.n_cols;
    d.image_height = src.info.image_height;
    d.image_width = src.info.image_width;
    d.first_row = r.begin;
    data::check_fits_in_memory(spec, d.n_rows, d.n_cols);
    d.values.resize(d.n_rows * d.n_cols);
    fill_values(src, r, d, spec);
    return d;
}

}  // namespace rbm::h5in
