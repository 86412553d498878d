// Checkpoints are what make a run resumable bit for bit, so writing is atomic (a crash
// leaves the previous checkpoint intact) and reading trusts nothing: every attribute and
// shape is checked, and any failure is an rbm::Error that names the file.
#include "io/checkpoint.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "io/data_rows.hpp"
#include "io/h5.hpp"

namespace rbm {

namespace fs = std::filesystem;
using h5::Handle;

namespace {

void check_consistent(const Checkpoint& c, const std::string& path) {
    const RbmShape& s = c.params.shape;
    RBM_CHECK(s.n_visible > 0 && s.n_hidden > 0, "checkpoint for '" << path << "' has an empty model");
    RBM_CHECK(c.params.values.size() == s.total(), "checkpoint for '" << path << "': params size "
                                                       << c.params.values.size() << " != " << s.total());
    RBM_CHECK(c.velocity.shape == s && c.velocity.values.size() == s.total(),
              "checkpoint for '" << path << "': velocity shape differs from the parameters");
    RBM_CHECK(c.chains_hidden.size() % s.n_hidden == 0,
              "checkpoint for '" << path << "': chains_hidden is not a whole number of rows");
    RBM_CHECK(c.visible_offset.empty() ? c.hidden_offset.empty()
                                       : c.visible_offset.size() == s.n_visible && c.hidden_offset.size() == s.n_hidden,
              "checkpoint for '" << path << "': centering offsets do not fit the model");
    RBM_CHECK(c.tempered_hidden.size() == c.tempered_betas.size() * c.chains_hidden.size(),
              "checkpoint for '" << path << "': " << c.tempered_betas.size() << " tempered levels but "
                                 << c.tempered_hidden.size() << " tempered chain values");
    RBM_CHECK(c.tempered_swaps.empty() || c.tempered_swaps.size() == 4 * c.tempered_betas.size(),
              "checkpoint for '" << path << "': " << c.tempered_swaps.size() << " swap tallies for "
                                 << c.tempered_betas.size() << " tempered levels");
    RBM_CHECK(c.chains_rank.size() == c.n_chains_total(),
              "checkpoint for '" << path << "': " << c.chains_rank.size() << " chain ranks for "
                                 << c.n_chains_total() << " chains");
}

void write_param_blocks(hid_t group, const ParamBuffer& p, const std::string& prefix) {
    hsize_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    h5::write_floats(group, prefix + "W", p.W(), {nv, nh});
    h5::write_floats(group, prefix + "vbias", p.vbias(), {nv});
    h5::write_floats(group, prefix + "hbias", p.hbias(), {nh});
}

void write_contents(hid_t file, const Checkpoint& c) {
    h5::set_kind(file, "checkpoint", kCheckpointFormatVersion);

    Handle model = h5::create_group(file, "model");
    h5::set_attr(model, "n_visible", static_cast<uint64_t>(c.params.shape.n_visible));
    h5::set_attr(model, "n_hidden", static_cast<uint64_t>(c.params.shape.n_hidden));
    h5::set_attr(model, "visible_type", c.visible_type);
    h5::set_attr(model, "hidden_type", c.hidden_type);
    h5::set_attr(model, "image_height", c.image_height);
    h5::set_attr(model, "image_width", c.image_width);
    write_param_blocks(model, c.params, "");

    Handle optimizer = h5::create_group(file, "optimizer");
    write_param_blocks(optimizer, c.velocity, "velocity_");

    Handle chains = h5::create_group(file, "chains");
    hsize_t n_chains = c.n_chains_total(), nh = c.params.shape.n_hidden;
    h5::write_bytes(chains, "hidden", c.chains_hidden.data(), {n_chains, nh});
    h5::write_int32s(chains, "rank", c.chains_rank.data(), {n_chains});
    if (!c.tempered_betas.empty()) {
        const hsize_t levels = c.tempered_betas.size();
        h5::write_bytes(chains, "tempered_hidden", c.tempered_hidden.data(), {levels, n_chains, nh});
        h5::write_floats(chains, "tempered_betas", c.tempered_betas.data(), {levels});
        if (!c.tempered_swaps.empty())
            h5::write_int64s(chains, "tempered_swaps", c.tempered_swaps.data(), {2, 2, levels});
    }

    Handle state = h5::create_group(file, "state");
    h5::set_attr(state, "step", c.step);
    h5::set_attr(state, "epoch", c.epoch);
    h5::set_attr(state, "steps_per_epoch", c.steps_per_epoch);
    h5::set_attr(state, "step_in_epoch", c.step_in_epoch);
    h5::set_attr(state, "seed", static_cast<uint64_t>(c.seed));
    h5::set_attr(state, "world_size", static_cast<uint64_t>(c.world_size));
    h5::set_attr(state, "train_rows", c.train_rows);
    h5::set_attr(state, "data_fingerprint", c.data_fingerprint);
    h5::write_doubles(state, "epoch_metric_sums", c.epoch_metric_sums.data(),
                      {c.epoch_metric_sums.size()});

    if (!c.visible_offset.empty()) {
        Handle centering = h5::create_group(file, "centering");
        h5::write_floats(centering, "visible_offset", c.visible_offset.data(), {hsize_t(c.params.shape.n_visible)});
        h5::write_floats(centering, "hidden_offset", c.hidden_offset.data(), {hsize_t(c.params.shape.n_hidden)});
    }

    Handle config = h5::create_group(file, "config");
    h5::set_attr(config, "ini", c.config_ini);
}

// NaN or Inf: the run had diverged; resuming or sampling from it would only spread them.
void check_finite(const std::vector<float>& v, const std::string& name, const std::string& path) {
    for (std::size_t e = 0; e < v.size(); ++e)
        if (!std::isfinite(v[e]))
            fail("'", path, "': ", name, " holds ", v[e], " at element ", e,
                 ": not a usable checkpoint (the run had diverged); remove it to resume from an earlier one");
}

ParamBuffer read_param_blocks(hid_t group, RbmShape shape, const std::string& prefix,
                              const std::string& path) {
    hsize_t nv = shape.n_visible, nh = shape.n_hidden;
    ParamBuffer p(shape);
    auto W = h5::read_floats(group, prefix + "W", path, {nv, nh});
    auto vb = h5::read_floats(group, prefix + "vbias", path, {nv});
    auto hb = h5::read_floats(group, prefix + "hbias", path, {nh});
    const std::string where = prefix.empty() ? "model/" : "optimizer/";
    check_finite(W, where + prefix + "W", path);
    check_finite(vb, where + prefix + "vbias", path);
    check_finite(hb, where + prefix + "hbias", path);
    std::copy(W.begin(), W.end(), p.W());
    std::copy(vb.begin(), vb.end(), p.vbias());
    std::copy(hb.begin(), hb.end(), p.hbias());
    return p;
}

// The training data's image shape, where the checkpoint keeps it (checkpoints written
// before rbm kept it leave image_shape_stored false).
void read_image_shape(hid_t model, uint64_t nv, Checkpoint& c, const std::string& path) {
    if (!h5::has_attr(model, "image_height") || !h5::has_attr(model, "image_width")) return;
    c.image_height = h5::get_attr_uint(model, "image_height", path);
    c.image_width = h5::get_attr_uint(model, "image_width", path);
    RBM_REQUIRE(data::image_shape_fits(c.image_height, c.image_width, nv),
                "'" << path << "': model attributes say images of " << c.image_height << " x " << c.image_width
                    << ", but the model has " << nv << " visible units");
    c.image_shape_stored = true;
}

uint32_t read_u32_attr(hid_t obj, const std::string& name, const std::string& path) {
    uint64_t v = h5::get_attr_uint(obj, name, path);
    RBM_REQUIRE(v <= UINT32_MAX, "'" << path << "': attribute '" << name << "' = " << v << " is too large");
    return static_cast<uint32_t>(v);
}

RbmShape read_shape(hid_t model, const std::string& path) {
    RbmShape s;
    s.n_visible = h5::get_attr_uint(model, "n_visible", path);
    s.n_hidden = h5::get_attr_uint(model, "n_hidden", path);
    RBM_REQUIRE(s.n_visible > 0 && s.n_hidden > 0,
                "'" << path << "': model has " << s.n_visible << " visible and " << s.n_hidden << " hidden units");
    // The attributes are checked against W's stored shape before anything is allocated by
    // them, and the model against this machine's memory (parameters and optimizer state).
    const std::vector<hsize_t> w = h5::dataset_dims(model, "W", path);
    RBM_REQUIRE(w.size() == 2 && w[0] == s.n_visible && w[1] == s.n_hidden,
                "'" << path << "': model/W has shape " << h5::shape_text(w) << ", but the model's attributes say "
                    << s.n_visible << " x " << s.n_hidden);
    const double bytes = 2.0 * 4.0 * (double(s.n_visible) + 1) * (double(s.n_hidden) + 1);
    RBM_REQUIRE(bytes <= double(data::physical_memory()),
                "'" << path << "': a " << s.n_visible << " x " << s.n_hidden << " model needs "
                    << bytes / double(1ull << 30) << " GiB, more than this machine's memory");
    return s;
}

// Parallel tempering's swap tallies: [2, 2, levels], never negative, no more accepted than
// proposed.
void read_swap_tallies(hid_t chains, Checkpoint& c, const std::string& path) {
    const auto dims = h5::dataset_dims(chains, "tempered_swaps", path);
    const hsize_t levels = c.tempered_betas.size();
    RBM_REQUIRE(dims.size() == 3 && dims[0] == 2 && dims[1] == 2 && dims[2] == levels,
                "'" << path << "': chains/tempered_swaps is " << h5::shape_text(dims) << "; it must be [2, 2, "
                    << levels << "] (epoch and row, proposed and accepted, per pair of neighbouring levels)");
    c.tempered_swaps = h5::read_int64s(chains, "tempered_swaps", path, dims);
    for (std::size_t window = 0; window < 2; ++window)
        for (std::size_t m = 0; m < levels; ++m) {
            const int64_t proposed = c.tempered_swaps[(2 * window) * levels + m],
                          accepted = c.tempered_swaps[(2 * window + 1) * levels + m];
            RBM_REQUIRE(accepted >= 0 && accepted <= proposed,
                        "'" << path << "': chains/tempered_swaps[" << window << ", :, " << m << "] counts " << accepted
                            << " swaps accepted of " << proposed << " proposed");
        }
}

// Parallel tempering's levels: as many rows as /chains/hidden per level, 0s and 1s, and
// inverse temperatures decreasing from below 1 to no less than 0.
void read_tempered(hid_t chains, Checkpoint& c, const std::string& path) {
    const bool has_hidden = h5::exists(chains, "tempered_hidden"), has_betas = h5::exists(chains, "tempered_betas");
    RBM_REQUIRE(has_hidden && has_betas, "'" << path << "': chains/" << (has_betas ? "tempered_betas" : "tempered_hidden")
                                             << " without chains/" << (has_betas ? "tempered_hidden" : "tempered_betas"));
    const auto beta_dims = h5::dataset_dims(chains, "tempered_betas", path);
    const auto dims = h5::dataset_dims(chains, "tempered_hidden", path);
    const hsize_t n_chains = c.n_chains_total(), nh = c.params.shape.n_hidden;
    RBM_REQUIRE(beta_dims.size() == 1 && beta_dims[0] >= 1 && dims.size() == 3 && dims[0] == beta_dims[0] &&
                    dims[1] == n_chains && dims[2] == nh,
                "'" << path << "': chains/tempered_hidden is " << h5::shape_text(dims) << " and chains/tempered_betas "
                    << h5::shape_text(beta_dims) << "; they must be [levels, " << n_chains << ", " << nh
                    << "] and [levels]");
    c.tempered_betas = h5::read_floats(chains, "tempered_betas", path, beta_dims);
    for (std::size_t m = 0; m < c.tempered_betas.size(); ++m) {
        const float beta = c.tempered_betas[m], above = m ? c.tempered_betas[m - 1] : 1.0f;
        RBM_REQUIRE(std::isfinite(beta) && beta >= 0.0f && beta < above,
                    "'" << path << "': chains/tempered_betas[" << m << "] = " << beta
                        << "; inverse temperatures must fall from below 1 to no less than 0");
    }
    c.tempered_hidden = h5::read_bytes(chains, "tempered_hidden", path, dims);
    for (std::size_t e = 0; e < c.tempered_hidden.size(); ++e)
        RBM_REQUIRE(c.tempered_hidden[e] <= 1, "'" << path << "': chains/tempered_hidden holds "
                                                   << int(c.tempered_hidden[e]) << " at element " << e
                                                   << "; hidden states are 0 or 1");
    if (h5::exists(chains, "tempered_swaps")) read_swap_tallies(chains, c, path);
}

void read_chains(hid_t file, Checkpoint& c, const std::string& path) {
    Handle chains = h5::open_group(file, "chains", path);
    auto dims = h5::dataset_dims(chains, "hidden", path);
    RBM_REQUIRE(dims.size() == 2 && dims[1] == c.params.shape.n_hidden,
                "'" << path << "': chains/hidden must be [n_chains, " << c.params.shape.n_hidden << "]");
    auto rank_dims = h5::dataset_dims(chains, "rank", path);
    RBM_REQUIRE(rank_dims.size() == 1 && rank_dims[0] == dims[0],
                "'" << path << "': chains/rank has " << (rank_dims.empty() ? 0 : rank_dims[0])
                    << " entries but chains/hidden has " << dims[0] << " rows");
    c.chains_hidden = h5::read_bytes(chains, "hidden", path, dims);
    c.chains_rank = h5::read_int32s(chains, "rank", path, rank_dims);
    for (std::size_t e = 0; e < c.chains_hidden.size(); ++e)
        RBM_REQUIRE(c.chains_hidden[e] <= 1, "'" << path << "': chains/hidden holds " << int(c.chains_hidden[e])
                                                 << " at element " << e << "; hidden states are 0 or 1");
    for (int32_t r : c.chains_rank)
        RBM_REQUIRE(r >= 0 && static_cast<uint32_t>(r) < c.world_size,
                    "'" << path << "': chains/rank holds rank " << r << " but world_size is " << c.world_size);
    if (h5::exists(chains, "tempered_betas") || h5::exists(chains, "tempered_hidden")) read_tempered(chains, c, path);
}

void read_state(hid_t file, Checkpoint& c, const std::string& path) {
    Handle state = h5::open_group(file, "state", path);
    c.step = h5::get_attr_uint(state, "step", path);
    c.epoch = h5::get_attr_uint(state, "epoch", path);
    c.steps_per_epoch = h5::get_attr_uint(state, "steps_per_epoch", path);
    c.step_in_epoch = h5::get_attr_uint(state, "step_in_epoch", path);
    c.seed = read_u32_attr(state, "seed", path);
    c.world_size = read_u32_attr(state, "world_size", path);
    RBM_REQUIRE(c.world_size >= 1, "'" << path << "': world_size is 0");
    if (h5::has_attr(state, "train_rows")) c.train_rows = h5::get_attr_uint(state, "train_rows", path);
    if (h5::has_attr(state, "data_fingerprint"))
        c.data_fingerprint = h5::get_attr_uint(state, "data_fingerprint", path);
    auto dims = h5::dataset_dims(state, "epoch_metric_sums", path);
    RBM_REQUIRE(dims.size() == 1, "'" << path << "': state/epoch_metric_sums must be one-dimensional");
    c.epoch_metric_sums = h5::read_doubles(state, "epoch_metric_sums", path, dims);
    RBM_REQUIRE(c.steps_per_epoch >= 1 && c.step_in_epoch <= c.steps_per_epoch,
                "'" << path << "': state says step " << c.step_in_epoch << " of an epoch of " << c.steps_per_epoch
                    << " steps");
    for (double x : c.epoch_metric_sums)
        RBM_REQUIRE(std::isfinite(x), "'" << path << "': state/epoch_metric_sums holds " << x);
}

Checkpoint read_contents(hid_t file, const std::string& path) {
    h5::require_kind(file, path, "checkpoint", kCheckpointFormatVersion);
    Checkpoint c;
    Handle model = h5::open_group(file, "model", path);
    RbmShape shape = read_shape(model, path);
    c.visible_type = h5::get_attr_string(model, "visible_type", path);
    c.hidden_type = h5::get_attr_string(model, "hidden_type", path);
    read_image_shape(model, shape.n_visible, c, path);
    c.params = read_param_blocks(model, shape, "", path);
    Handle optimizer = h5::open_group(file, "optimizer", path);
    c.velocity = read_param_blocks(optimizer, shape, "velocity_", path);
    read_state(file, c, path);
    read_chains(file, c, path);
    if (h5::exists(file, "centering")) {
        Handle centering = h5::open_group(file, "centering", path);
        c.visible_offset = h5::read_floats(centering, "visible_offset", path, {hsize_t(shape.n_visible)});
        c.hidden_offset = h5::read_floats(centering, "hidden_offset", path, {hsize_t(shape.n_hidden)});
        for (const auto* part : {&c.visible_offset, &c.hidden_offset})
            for (float x : *part)
                RBM_REQUIRE(std::isfinite(x) && x >= 0.0f && x <= 1.0f,
                            "'" << path << "': centering offset " << x << " is outside [0, 1]");
    }
    Handle config = h5::open_group(file, "config", path);
    c.config_ini = h5::get_attr_string(config, "ini", path);
    return c;
}

// "step-0000001234.h5" -> 1234; anything else (including *.tmp) -> nullopt.
std::optional<uint64_t> parse_checkpoint_name(const std::string& name) {
    const std::string prefix = "step-", suffix = ".h5";
    if (name.size() < prefix.size() + 10 + suffix.size()) return std::nullopt;
    if (!name.starts_with(prefix) || !name.ends_with(suffix)) return std::nullopt;
    const char* first = name.data() + prefix.size();
    const char* last = name.data() + name.size() - suffix.size();
    if (!std::all_of(first, last, [](char ch) { return ch >= '0' && ch <= '9'; })) return std::nullopt;
    uint64_t step = 0;
    auto [end, ec] = std::from_chars(first, last, step);
    if (ec != std::errc() || end != last) return std::nullopt;
    return step;
}

// Complete checkpoints in run_dir/checkpoints by step (a missing directory means none).
std::map<uint64_t, fs::path> list_checkpoints(const std::string& run_dir) {
    std::map<uint64_t, fs::path> found;
    fs::path dir = fs::path(run_dir) / "checkpoints";
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return found;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        std::error_code entry_ec;  // a dangling link is skipped, not an error of the listing
        if (!entry.is_regular_file(entry_ec)) continue;
        if (auto step = parse_checkpoint_name(entry.path().filename().string())) found[*step] = entry.path();
    }
    RBM_CHECK(!ec, "cannot list '" << dir.string() << "': " << ec.message());
    return found;
}

}  // namespace

std::vector<uint8_t> tempered_chains_by_level(const std::vector<uint8_t>& gathered, std::size_t levels,
                                              std::size_t ranks) {
    RBM_CHECK(levels && ranks && gathered.size() % (levels * ranks) == 0,
              gathered.size() << " bytes of tempered chains are not " << ranks << " ranks x " << levels << " levels");
    const std::size_t block = gathered.size() / (levels * ranks);
    std::vector<uint8_t> by_level(gathered.size());
    for (std::size_t r = 0; r < ranks; ++r)
        for (std::size_t m = 0; m < levels; ++m)
            std::copy_n(gathered.begin() + long((r * levels + m) * block), block,
                        by_level.begin() + long((m * ranks + r) * block));
    return by_level;
}

void write_checkpoint(const std::string& path, const Checkpoint& ckpt) {
    check_consistent(ckpt, path);
    fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
    RBM_CHECK(!ec, "cannot create directory '" << parent.string() << "': " << ec.message());
    h5::write_atomically(path, [&](const std::string& tmp) {
        Handle file = h5::create_file(tmp);
        write_contents(file, ckpt);
        RBM_H5(H5Fflush(file, H5F_SCOPE_GLOBAL), "flushing '" << tmp << "'");
        file.close();
    });
}

Checkpoint read_checkpoint(const std::string& path) {
    try {
        Handle file = h5::open_file_read(path);
        return read_contents(file, path);
    } catch (const Error& e) {
        // Low-level messages name the object; make sure every one also names the file.
        std::string what = e.what();
        if (what.find(path) != std::string::npos) throw;
        throw Error("'" + path + "': " + what);
    }
}

std::string checkpoint_path(const std::string& run_dir, uint64_t step) {
    char name[40];
    std::snprintf(name, sizeof name, "step-%010llu.h5", static_cast<unsigned long long>(step));
    return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::optional<std::string> find_newest_checkpoint(const std::string& run_dir) {
    auto found = list_checkpoints(run_dir);
    if (found.empty()) return std::nullopt;
    return found.rbegin()->second.string();
}

void prune_checkpoints(const std::string& run_dir, std::size_t keep) {
    if (keep == 0) return;
    auto found = list_checkpoints(run_dir);
    std::size_t excess = found.size() > keep ? found.size() - keep : 0;
    for (auto it = found.begin(); excess > 0; ++it, --excess) {
        std::error_code ec;
        fs::remove(it->second, ec);
        RBM_CHECK(!ec, "cannot remove old checkpoint '" << it->second.string() << "': " << ec.message());
    }
}

}  // namespace rbm
