// libFuzzer target: validation of training data in someone else's HDF5 file. The input
// describes a file — where the object is (nested groups, soft, dangling and external
// links, a group instead of a dataset), its rank and dims (some huge), element type
// (uint8, other integers, float16/32/64 in both byte orders, strings, compounds, enums,
// ...), layout (contiguous, chunked with or without data, compact) and its bytes — which
// is written with the HDF5 library, then read through rbm's front door as
// "file.h5:/path". Oracle: a read either throws rbm::Error, or returns exactly the values
// written (uint8 / 255, floats as they are), every one in [0, 1], in the shape probed.
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_common.hpp"
#include "io/dataset.hpp"
#include "util/check.hpp"

namespace {

enum class Kind { u8, i8, u16, i16, i32, i64, f16, f32, f32be, f64, f64be, text, compound, enumeration, count };

hid_t make_type(Kind k) {
    switch (k) {
        case Kind::u8: return H5Tcopy(H5T_STD_U8LE);
        case Kind::i8: return H5Tcopy(H5T_STD_I8LE);
        case Kind::u16: return H5Tcopy(H5T_STD_U16LE);
        case Kind::i16: return H5Tcopy(H5T_STD_I16BE);
        case Kind::i32: return H5Tcopy(H5T_STD_I32LE);
        case Kind::i64: return H5Tcopy(H5T_STD_I64LE);
        case Kind::f16: {
            hid_t t = H5Tcopy(H5T_IEEE_F32LE);  // IEEE half: 1 sign, 5 exponent, 10 mantissa bits
            H5Tset_fields(t, 15, 10, 5, 0, 10);
            H5Tset_size(t, 2);
            H5Tset_ebias(t, 15);
            return t;
        }
        case Kind::f32: return H5Tcopy(H5T_IEEE_F32LE);
        case Kind::f32be: return H5Tcopy(H5T_IEEE_F32BE);
        case Kind::f64: return H5Tcopy(H5T_IEEE_F64LE);
        case Kind::f64be: return H5Tcopy(H5T_IEEE_F64BE);
        case Kind::text: {
            hid_t t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, 3);
            return t;
        }
        case Kind::compound: {
            hid_t t = H5Tcreate(H5T_COMPOUND, 8);
            H5Tinsert(t, "a", 0, H5T_IEEE_F32LE);
            H5Tinsert(t, "b", 4, H5T_IEEE_F32LE);
            return t;
        }
        case Kind::enumeration: {
            hid_t t = H5Tenum_create(H5T_STD_U8LE);
            for (uint8_t v = 0; v < 2; ++v) H5Tenum_insert(t, v ? "yes" : "no", &v);
            return t;
        }
        default: return H5Tcopy(H5T_STD_U8LE);
    }
}

// What rbm should read back for element e, when the type is one it accepts.
bool expected_value(Kind k, const uint8_t* raw, std::size_t e, float& out) {
    switch (k) {
        case Kind::u8: out = float(raw[e]) / 255.0f; return true;
        case Kind::f32: { float v; std::memcpy(&v, raw + 4 * e, 4); out = v; return true; }
        case Kind::f64: { double v; std::memcpy(&v, raw + 8 * e, 8); out = float(v); return true; }
        default: return false;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = rbm::fuzz::scratch_path(".h5");
    static const bool quiet = (H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr), true);
    (void)quiet;
    rbm::fuzz::Bytes in{data, size};
    const uint8_t where = in.u8() % 8;
    const int rank = in.u8() % 5;
    std::vector<hsize_t> dims(std::size_t(rank), 0);
    bool huge = false;
    for (hsize_t& d : dims) {
        const uint8_t b = in.u8();
        if (b >= 250) { d = hsize_t(in.u32()) << (b - 250) * 6; huge = true; }  // up to ~2^62
        else d = b % 40;
    }
    const Kind kind = Kind(in.u8() % uint8_t(Kind::count));
    const uint8_t layout = in.u8() % 4;  // 0 contiguous, 1 chunked, 2 chunked and never written, 3 compact
    const uint8_t query = in.u8() % 6;

    hsize_t n = 1;
    for (hsize_t d : dims) n = (d && n > (hsize_t(1) << 62) / d) ? (hsize_t(1) << 62) : n * d;
    hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) std::abort();
    hid_t type = make_type(kind);
    const std::size_t elem = H5Tget_size(type);
    std::vector<uint8_t> raw;
    bool written = false;
    {
        hid_t g = H5Gcreate2(file, "/g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Gclose(g);
        hid_t space = rank ? H5Screate_simple(rank, dims.data(), nullptr) : H5Screate(H5S_SCALAR);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (layout == 1 || layout == 2 || huge) {
            std::vector<hsize_t> chunk(dims.size());
            for (std::size_t i = 0; i < dims.size(); ++i) chunk[i] = std::max<hsize_t>(1, std::min<hsize_t>(dims[i], 16));
            if (rank) H5Pset_chunk(dcpl, rank, chunk.data());
        } else if (layout == 3) {
            H5Pset_layout(dcpl, H5D_COMPACT);
        }
        const char* name = where < 4 ? "/x" : where < 6 ? "/g/x" : "/g/h";
        if (where == 7) {
            hid_t h = H5Gcreate2(file, "/g/h", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5Gclose(h);
            name = "/g/h/x";
        }
        hid_t dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (dset >= 0 && layout != 2 && !huge && n * elem <= (1u << 20)) {
            raw.resize(n * elem);
            for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = size ? data[(i * 7 + in.n) % size] ^ uint8_t(i) : 0;
            if (kind == Kind::text) for (auto& c : raw) c = uint8_t('a' + c % 26);
            if (kind == Kind::enumeration) for (auto& c : raw) c &= 1;
            written = n == 0 || H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) >= 0;
        } else if (dset >= 0) {
            written = true;  // never written: reads give the fill value, 0
            raw.assign(std::size_t(std::min<hsize_t>(n, 1u << 20)) * elem, 0);
        }
        if (dset >= 0) H5Dclose(dset);
        H5Pclose(dcpl);
        H5Sclose(space);
        H5Lcreate_soft("/x", file, "/soft", H5P_DEFAULT, H5P_DEFAULT);
        H5Lcreate_soft("/nowhere", file, "/dangling", H5P_DEFAULT, H5P_DEFAULT);
        H5Lcreate_external("missing-file.h5", "/x", file, "/external", H5P_DEFAULT, H5P_DEFAULT);
    }
    H5Tclose(type);
    if (H5Fclose(file) < 0) std::abort();

    static const char* const queries[] = {"/x", "/g/x", "/soft", "/dangling", "/external", "/g"};
    const std::string spec = path + ":" + queries[query];
    const bool same_object = (query == 0 || query == 2) ? where < 4 : query == 1 ? (where == 4 || where == 5) : false;
    try {
        const rbm::SourceInfo info = rbm::probe_source(spec);
        // At most 4M values per read: a dataset of millions of columns (chunked, never
        // written: HDF5 makes every fill-value chunk) is a slow read, not a finding.
        if (info.n_cols > (std::size_t(1) << 22)) return 0;
        const std::size_t rows_wanted = std::min<std::size_t>({info.n_rows, 64, (std::size_t(1) << 22) / info.n_cols});
        const std::size_t first = rows_wanted ? in.u8() % rows_wanted : 0;
        const rbm::Dataset d = rbm::read_rows(spec, {first, first + std::min<std::size_t>(rows_wanted - first, 1 + in.u8())});
        if (d.n_cols != info.n_cols || d.values.size() != d.n_rows * d.n_cols) std::abort();
        for (float v : d.values)
            if (!(v >= 0.0f && v <= 1.0f)) std::abort();
        if (same_object && written) {
            for (std::size_t e = 0; e < d.values.size(); ++e) {
                const std::size_t at = first * d.n_cols + e;
                float want;
                if (at * elem < raw.size() && expected_value(kind, raw.data(), at, want) && d.values[e] != want)
                    std::abort();  // read back something other than what was written
            }
        }
    } catch (const rbm::Error&) {
    }
    return 0;
}
