// The renderings of an EvalReport (see eval_report.hpp): text lines for a person, and a
// JSON object through nlohmann::json, keys in the order docs/evaluation.md lists them.
#include "cli/eval_report.hpp"
#include "cli/options.hpp"

#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "util/paths.hpp"

namespace rbm::cli {
namespace {

using Json = nlohmann::ordered_json;

// JSON has no NaN or infinities: a measure not taken, or a bound at -inf, is null.
Json number(double x) { return std::isfinite(x) ? Json(x) : Json(nullptr); }

Json exact_json(const EvalReport& r) {
    if (!r.exact.done) return nullptr;
    return {{"log_z", number(r.exact.log_z)},
            {"mean_log_likelihood", number(r.log_likelihood(r.exact.log_z))},
            {"enumerated_units", r.exact.enumerated_units},
            {"wall_s", number(r.exact.wall_s)}};
}

Json ais_json(const EvalReport& r) {
    const AisLogZ& a = r.ais;
    if (!a.done()) return nullptr;
    Json per_seed = Json::array();
    for (std::size_t s = 0; s < a.per_seed.size(); ++s)
        per_seed.push_back({{"seed_index", s},
                            {"log_z", number(a.log_z_base + a.per_seed[s].log_mean)},
                            {"log_z_lower", number(a.log_z_base + a.per_seed[s].log_lower)},
                            {"log_z_upper", number(a.log_z_base + a.per_seed[s].log_upper)},
                            {"ess", number(a.per_seed[s].ess)}});
    return {{"log_z", number(a.log_z)},
            {"log_z_lower", number(a.lower)},
            {"log_z_upper", number(a.upper)},
            {"mean_log_likelihood", number(r.log_likelihood(a.log_z))},
            {"ess", number(a.pooled.ess)},
            {"ess_fraction", number(a.pooled.ess / double(a.log_weights.size()))},
            {"runs_per_seed", r.request.runs},
            {"seeds", r.request.seeds},
            {"runs_total", a.log_weights.size()},
            {"seed", r.request.seed},
            {"intervals", r.request.intervals},
            {"seed_spread", number(a.seed_spread)},
            {"log_z_base", number(a.log_z_base)},
            {"base_smoothing", number(r.request.smoothing)},
            {"wall_s", number(a.wall_s)},
            {"per_seed", per_seed}};
}

Json reverse_json(const EvalReport& r) {
    const RaiseLogZ& v = r.raise;
    if (v.examples == 0) return nullptr;
    return {{"method", "raise"},
            {"examples", v.examples},
            {"chains_per_example", r.request.raise_chains},
            {"log_z", number(v.log_z)},
            {"log_z_lower", number(v.lower)},
            {"log_z_upper", number(v.upper)},
            {"log_z_sd_across_examples", number(v.sd_across_examples)},
            {"mean_log_likelihood", number(r.log_likelihood(v.log_z))},
            {"mean_log_likelihood_lower", number(r.log_likelihood(v.upper))},
            {"mean_log_likelihood_upper", number(r.log_likelihood(v.lower))},
            {"subset_mean_log_likelihood", number(-v.subset_free_energy - v.log_z)},
            {"subset_mean_log_likelihood_ais", number(-v.subset_free_energy - r.ais.log_z)},
            {"wall_s", number(v.wall_s)}};
}

}  // namespace

void print_json(std::ostream& out, const EvalReport& r) {
    const DataMeasures& d = r.data;
    Json j;
    j["checkpoint"] = absolute_path(r.request.checkpoint);
    j["checkpoint_step"] = r.checkpoint_step;
    j["data"] = absolute_path(r.request.data);
    if (!r.request.train_data.empty()) j["train_data"] = absolute_path(r.request.train_data);
    j["n_visible"] = r.n_visible;
    j["n_hidden"] = r.n_hidden;
    j["n_examples"] = d.examples;
    j["binarize"] = choice_name(r.request.binarize.mode, kOnceBinarizations);
    j["binarize_seed"] = r.request.binarize.seed;
    j["binarize_threshold"] = r.request.binarize.threshold;
    j["ranks"] = r.ranks;
    j["annealing_device"] = r.annealing_device;
    j["method"] = r.method;
    j["log_z"] = number(r.log_z);
    j["log_z_lower"] = number(r.log_z_lower);
    j["log_z_upper"] = number(r.log_z_upper);
    j["mean_log_likelihood"] = number(r.log_likelihood(r.log_z));
    j["mean_log_likelihood_lower"] = number(r.log_likelihood(r.log_z_upper));
    j["mean_log_likelihood_upper"] = number(r.log_likelihood(r.log_z_lower));
    j["ess"] = r.ais.done() ? number(r.ais.pooled.ess) : Json(nullptr);
    j["mean_free_energy"] = number(d.free_energy);
    j["exact"] = exact_json(r);
    j["ais"] = ais_json(r);
    j["reverse"] = reverse_json(r);
    j["pseudo_likelihood"] = {{"per_example", number(d.pseudo_likelihood)},
                              {"per_pixel", number(d.pseudo_likelihood / double(r.n_visible))},
                              {"bits", "all"}};
    j["reconstruction_xent"] = number(d.reconstruction_xent);
    j["free_energy"] = {{"data", number(d.free_energy)},
                        {"train", number(d.train_free_energy)},
                        {"gap", number(d.free_energy - d.train_free_energy)},
                        {"train_examples", d.train_examples}};
    j["mean_log_likelihood_train"] = number(-d.train_free_energy - r.log_z);
    j["warnings"] = r.warnings;
    j["wall_s"] = number(r.wall_s);
    // The checkpoint's path is the user's bytes, not always UTF-8: replace what is not.
    out << j.dump(2, ' ', false, Json::error_handler_t::replace) << std::endl;
}

void print_text(std::ostream& o, const EvalReport& r) {
    const EvalRequest& q = r.request;
    const DataMeasures& d = r.data;
    const AisLogZ& ais = r.ais;
    o << "rbm eval: " << q.checkpoint << " (" << r.n_visible << " x " << r.n_hidden << ", step " << r.checkpoint_step
      << ")\n";
    o << "data: " << q.data << ", " << d.examples << " examples, binarised "
      << choice_name(q.binarize.mode, kOnceBinarizations);
    if (q.binarize.mode == Binarization::stochastic) o << " (seed " << q.binarize.seed << ")";
    if (q.binarize.mode == Binarization::threshold) o << " (x >= " << q.binarize.threshold << ")";
    o << ", " << r.ranks << " rank(s)\n\n";
    if (ais.done()) {
        o << "log Z, AIS        " << fixed(ais.log_z) << "  [" << fixed(ais.lower) << ", " << fixed(ais.upper)
          << "] (+-3 sigma)  ESS " << fixed(ais.pooled.ess, 1) << " of " << ais.log_weights.size() << " runs ("
          << q.seeds << " seed(s) x " << q.runs << ", " << q.intervals << " steps)\n";
        if (ais.per_seed.size() > 1) {
            o << "  per seed         ";
            for (const auto& ps : ais.per_seed)
                o << fixed(ais.log_z_base + ps.log_mean) << " (ESS " << fixed(ps.ess, 1) << ")  ";
            o << "spread " << fixed(ais.seed_spread) << "\n";
        }
    }
    if (r.raise.examples > 0)
        o << "log Z, RAISE      " << fixed(r.raise.log_z) << "  [" << fixed(r.raise.lower) << ", "
          << fixed(r.raise.upper) << "] (+-3 s.e. over " << r.raise.examples
          << " examples; conservative: an upper estimate)\n";
    if (r.exact.done)
        o << "log Z, exact      " << fixed(r.exact.log_z) << "  (2^" << r.exact.enumerated_units
          << " states enumerated)\n";
    if (r.method == "none")
        o << "\nmean log-likelihood: not estimated (no log Z: --runs 0 and no exact enumeration)";
    else
        o << "\nmean log-likelihood per example (nats), method " << r.method << ": " << fixed(r.log_likelihood(r.log_z));
    if (r.method == "ais")
        o << "  [" << fixed(r.log_likelihood(r.log_z_upper)) << ", " << fixed(r.log_likelihood(r.log_z_lower)) << "]";
    o << "\n";
    if (ais.done() && r.method != "ais") o << "  with AIS's log Z   " << fixed(r.log_likelihood(ais.log_z)) << "\n";
    if (r.raise.examples > 0) o << "  with RAISE's log Z " << fixed(r.log_likelihood(r.raise.log_z)) << "  (conservative)\n";
    if (!std::isnan(d.train_free_energy))
        o << "  on the training data " << fixed(-d.train_free_energy - r.log_z) << " (" << d.train_examples
          << " examples)\n";
    o << "pseudo-likelihood (all " << r.n_visible << " bits): " << fixed(d.pseudo_likelihood) << " per example, "
      << fixed(d.pseudo_likelihood / double(r.n_visible), 5) << " per pixel\n";
    o << "reconstruction cross-entropy: " << fixed(d.reconstruction_xent) << " per example\n";
    o << "mean free energy: " << fixed(d.free_energy);
    if (!std::isnan(d.train_free_energy))
        o << "; training " << fixed(d.train_free_energy) << "; gap (data - training) "
          << fixed(d.free_energy - d.train_free_energy);
    o << "\n";
    for (const auto& w : r.warnings) o << "warning: " << w << "\n";
    o << "wall time " << fixed(r.wall_s, 1) << " s (AIS " << fixed(ais.wall_s, 1) << " s, RAISE "
      << fixed(r.raise.wall_s, 1) << " s, exact " << fixed(r.exact.wall_s, 1) << " s, data " << fixed(d.wall_s, 1)
      << " s)\n";
}

}  // namespace rbm::cli
