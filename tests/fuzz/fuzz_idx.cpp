// libFuzzer target: the IDX reader (raw and gzip: the input decides by its first bytes).
// Any input must give data or rbm::Error; anything else (a crash, another exception, a
// huge allocation for a small file) is a finding. Checks what a good read promises:
// values in [0, 1], the shape the probe announced, labels as many as their header says.
#include <cmath>
#include <cstdlib>

#include "fuzz_common.hpp"
#include "io/dataset.hpp"
#include "util/check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = rbm::fuzz::scratch_path(".idx");
    rbm::fuzz::write_file(path, data, size);
    try {
        const rbm::SourceInfo info = rbm::probe_source(path);
        const rbm::Dataset all = rbm::read_rows(path);
        if (all.n_rows != info.n_rows || all.n_cols != info.n_cols || all.values.size() != all.n_rows * all.n_cols)
            std::abort();
        for (float v : all.values)
            if (!(v >= 0.0f && v <= 1.0f)) std::abort();
        // A shard, as a rank reads it: the same values as the whole file's rows.
        const std::size_t begin = info.n_rows / 3, end = info.n_rows - info.n_rows / 4;
        const rbm::Dataset part = rbm::read_rows(path, {begin, end});
        for (std::size_t e = 0; e < part.values.size(); ++e)
            if (part.values[e] != all.values[begin * all.n_cols + e]) std::abort();
    } catch (const rbm::Error&) {
    }
    try {
        const std::vector<uint8_t> labels = rbm::read_idx_labels(path);
        rbm::check_labels_match(path, labels.size(), path, labels.size());
        try {
            rbm::check_labels_match(path, labels.size() + 1, path, labels.size());
            std::abort();  // counts that disagree must be refused
        } catch (const rbm::Error&) {
        }
    } catch (const rbm::Error&) {
    }
    return 0;
}
