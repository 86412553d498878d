// Strict option parsing shared by `rbm train`, `rbm sample` and stored configurations.
#include "cli/options.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/checkpoint.hpp"
#include "util/check.hpp"
#include "util/choices.hpp"

namespace rbm::cli {

po::options_description train_config_options() {
    po::options_description d("Training configuration (also INI keys of --config)");
    auto text = [] { return po::value<std::string>(); };
    d.add_options()
        ("data", text(), "training data: IDX file (raw or .gz) or FILE.h5:/dataset")
        ("test-data", text(), "validation data, same forms as --data")
        ("validation-fraction", text(), "hold out this last fraction of the training rows for validation (default 0)")
        ("limit", text(), "use only the first N training examples (default 0: all)")
        ("binarize", text(), "none | threshold | stochastic | dynamic (default none: pixels x/255 in [0,1]; dynamic redraws the training rows every epoch)")
        ("binarize-threshold", text(), "threshold binarisation: x >= T is 1 (default 0.5)")
        ("binarize-seed", text(), "stochastic or dynamic binarisation: seed of the Philox draws (default 0)")
        ("hidden", text(), "hidden units (default 500)")
        ("method", text(), "cd | pcd | pt (default pcd; pt: parallel tempering, PCD's chains plus tempered ones)")
        ("k", text(), "Gibbs steps per update (default 15)")
        ("batch-size", text(), "examples per step PER RANK; the global batch is ranks x batch-size (default 20)")
        ("chains", text(), "persistent chains per rank (default 0: the batch size); pt: per temperature")
        ("temperatures", text(), "pt: inverse temperatures, the model's included, evenly spaced from 1 to "
                                 "--beta-min (default 5)")
        ("beta-min", text(), "pt: the hottest chains' inverse temperature, from 0 to 0.999 (default 0.8)")
        ("epochs", text(), "passes over the training data (default 15)")
        ("lr", text(), "learning rate (default 0.1)")
        ("momentum", text(), "momentum in [0, 1) (default 0)")
        ("weight-decay", text(), "L2 weight decay on W (default 0)")
        ("lr-final", text(), "let the learning rate fall linearly from --lr to this by the last step "
                             "(default: constant)")
        ("momentum-warmup", text(), "epochs at --initial-momentum before --momentum applies (default 0)")
        ("initial-momentum", text(), "momentum of the --momentum-warmup epochs (default 0.5)")
        ("centering", text(), "centered gradient (Melchior, Fischer & Wiskott 2016): offsets at the data's "
                              "visible means and a moving average of its hidden means: true | false (default false)")
        ("offset-rate", text(), "centering: rate of the hidden offsets' moving average (default 0.01)")
        ("vbias-init", text(), "initial visible biases: zero (the tutorial's) | data (log p / (1 - p) of the "
                               "training data's means) (default zero)")
        ("init-from", text(), "start from the parameters and persistent chains of this checkpoint (or a run "
                              "directory's newest) instead of a fresh initialisation: a new run, with its own "
                              "settings, from where another stopped (default: none)")
        ("seed", text(), "seed of every random stream (default 123)")
        ("out", text(), "run directory (default runs/mnist)")
        ("checkpoint-every", text(), "also checkpoint every N steps (default 0: every epoch only)")
        ("keep-checkpoints", text(), "keep the newest K checkpoints, 0 keeps all (default 3)")
        ("monitor-every", text(), "also write a metrics row every N steps (default 0: every epoch)")
        ("monitor-examples", text(), "examples used for the free-energy gap (default 1000)")
        ("sample-every", text(), "write the persistent chains' samples every N epochs (default 0: never)")
        ("filters", text(), "write filters as PNG every epoch: true | false (default true)")
        ("max-hours", text(), "stop this process after this many hours as on SIGUSR1 (checkpoint, exit 75; "
                              "--resume continues, without the limit unless given again), e.g. a little under a "
                              "batch job's time limit (default 0: none)")
        ("progress-every", text(), "seconds between progress lines when the output is not a terminal "
                                   "(a batch log); on a terminal a bar is redrawn instead (default 30; 0: none)")
        ("threads", text(), "CPU threads per rank (default 0: every core for a single rank, one per rank under MPI)")
        ("device", text(), "auto | cpu | cuda (default auto: a GPU when one is visible, the log says which)")
        ("comm", text(), "gradient allreduce: auto | nccl | mpi (default auto: NCCL on GPUs, none on one rank; "
                         "mpi stages GPU gradients through the host so several ranks can share a GPU)")
        ("tf32", text(), "cuBLAS TF32 tensor-core products on the GPU: true | false (default false: FP32)");
    return d;
}

namespace {
Settings to_settings(const po::variables_map& vm, const po::options_description& options) {
    Settings out;
    for (const auto& opt : options.options()) {
        const std::string& key = opt->long_name();
        if (vm.count(key) && !vm[key].defaulted()) {
            const auto& any = vm[key].value();
            if (const auto* s = boost::any_cast<std::string>(&any)) out[key] = *s;
        }
    }
    return out;
}

// Boost.Program_options 1.74 words its errors by replacing "%name%" placeholders in a
// loop, so an input holding one (an invalid line "%invalid_line%", a value "%value%")
// makes what() loop forever, eating memory. Such text is refused before Boost sees it.
void refuse_placeholders(const std::string& text, const std::string& origin) {
    for (std::size_t open = text.find('%'); open != std::string::npos; open = text.find('%', open + 1)) {
        std::size_t close = open + 1;
        while (close < text.size() && (std::isalnum(static_cast<unsigned char>(text[close])) || text[close] == '_'))
            ++close;
        if (close > open + 1 && close < text.size() && text[close] == '%')
            fail(origin, ": '", text.substr(open, close - open + 1), "' is not allowed (no option or value holds "
                 "a %word% placeholder)");
    }
}

// `--centering --k 3`: Boost takes "--k" as --centering's value and then calls "3" a stray
// word, naming neither the option that lacks its value nor the cause.
void refuse_missing_values(const std::vector<std::string>& args, const po::options_description& options) {
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--") break;  // what follows is no option (and refused as stray words)
        if (arg.rfind("--", 0) != 0 || arg.find('=') != std::string::npos) continue;
        const po::option_description* option = options.find_nothrow(arg.substr(2), /*approx=*/false);
        if (option && option->semantic()->max_tokens() > 0 && args[i + 1].rfind("--", 0) == 0)
            fail("option '", arg, "' needs a value, but the next word is '", args[i + 1], "' (see --help)");
    }
}
}  // namespace

Settings parse_flags(const std::vector<std::string>& args, const po::options_description& options,
                     po::variables_map& vm) {
    for (const std::string& arg : args) refuse_placeholders(arg, "command line");
    refuse_missing_values(args, options);
    try {
        // Whole names only: a guessed prefix (--hid for --hidden) reads as another flag to
        // whatever composes command lines (the job scripts' de-duplication), and a prefix
        // that fits today may become ambiguous when an option is added.
        const po::parsed_options parsed = po::command_line_parser(args)
                                              .options(options)
                                              .style(po::command_line_style::default_style &
                                                     ~po::command_line_style::allow_guessing)
                                              .run();
        // Boost stores no word that is not an option's value; a stray one (`--hidden 4 8`,
        // anything after `--`) would otherwise be dropped without a word.
        for (const po::option& o : parsed.options)
            if (o.position_key >= 0)
                fail("unexpected argument '", o.original_tokens.empty() ? std::string() : o.original_tokens[0],
                     "': every option takes the form --name value (see --help)");
        po::store(parsed, vm);
        po::notify(vm);
    } catch (const po::error& e) {
        fail(e.what(), " (see --help)");
    }
    return to_settings(vm, options);
}

Settings parse_ini(const std::string& text, const std::string& origin, const po::options_description& options) {
    po::variables_map vm;
    refuse_placeholders(text, origin);
    // Boost would end a value at a NUL byte and drop the rest of it without a word.
    if (text.find('\0') != std::string::npos) fail(origin, ": holds a NUL byte: not a text file");
    // INI files also comment with ';' at the start of a line; Boost knows only '#'.
    std::istringstream lines(text);
    std::string line, commented;
    while (std::getline(lines, line)) {
        const std::size_t first = line.find_first_not_of(" \t");
        if (first != std::string::npos && line[first] == ';') line[first] = '#';
        commented += line + "\n";
    }
    std::istringstream in(commented);
    try {
        po::store(po::parse_config_file(in, options, /*allow_unregistered=*/false), vm);
    } catch (const po::error& e) {
        fail(origin, ": ", e.what());
    }
    return to_settings(vm, options);
}

Settings read_ini_file(const std::string& path, const po::options_description& options) {
    std::ifstream in(path);
    if (!in) {
        const int why = errno;
        std::error_code ec;
        const bool relative = std::filesystem::path(path).is_relative();
        fail("cannot read configuration file '", path, "': ", std::strerror(why),
             relative ? " (relative to the current directory, " + std::filesystem::current_path(ec).string() + ")" : "");
    }
    // A directory opens as a stream but reads as nothing: it would pass as an empty file.
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) fail("cannot read configuration file '", path, "': it is a directory");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) fail("cannot read configuration file '", path, "'");
    return parse_ini(text.str(), path, options);
}

uint64_t parse_count(const std::string& key, const std::string& text, const std::string& origin,
                     uint64_t min, uint64_t max) {
    const char* s = text.c_str();
    char* end = nullptr;
    errno = 0;
    const bool negative = text.find('-') != std::string::npos;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (text.empty() || negative || *end != '\0' || errno == ERANGE || v < min || v > max)
        fail(origin, ": ", key, " must be a whole number from ", min, " to ", max, ", got '", text, "'");
    return v;
}

double parse_real(const std::string& key, const std::string& text, const std::string& origin,
                  double min, double max) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(v) || v < min || v > max)
        fail(origin, ": ", key, " must be a number from ", min, " to ", max, ", got '", text, "'");
    return v;
}

bool parse_bool(const std::string& key, const std::string& text, const std::string& origin) {
    if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "0" || text == "no" || text == "off") return false;
    fail(origin, ": ", key, " must be true or false, got '", text, "'");
}

void apply(const Settings& settings, const std::string& origin, TrainConfig& c) {
    auto count = [&](const std::string& key, const std::string& v, uint64_t lo, uint64_t hi) {
        return parse_count("--" + key, v, origin, lo, hi);
    };
    // Paths are stored in the checkpoint's INI text, which cannot hold a '#' (a comment),
    // a line break (it would add keys) or spaces at either end (trimmed): refused, so that
    // a resumed run reads back the very paths it was given.
    auto path = [&](const std::string& key, const std::string& v) {
        const bool control = std::any_of(v.begin(), v.end(), [](char ch) { return (unsigned char)ch < 0x20 || ch == 0x7f; });
        if (v.find('#') != std::string::npos || control || (!v.empty() && (v.front() == ' ' || v.back() == ' ')))
            fail(origin, ": --", key, " '", v, "': a path with '#', a control character or spaces at either end "
                 "cannot be stored in the run's configuration; rename it");
        return v;
    };
    auto real = [&](const std::string& key, const std::string& v, double lo, double hi) {
        return parse_real("--" + key, v, origin, lo, hi);
    };
    constexpr uint64_t big = 1ull << 40;
    for (const auto& [key, v] : settings) {
        if (key == "data") c.data = path(key, v);
        else if (key == "test-data") c.test_data = path(key, v);
        else if (key == "validation-fraction") c.validation_fraction = real(key, v, 0, 0.99);
        else if (key == "limit") c.limit = count(key, v, 0, big);
        else if (key == "binarize") c.binarize.mode = parse_binarization(v, origin + ": --binarize");
        else if (key == "binarize-threshold") c.binarize.threshold = float(real(key, v, 0, 1));
        else if (key == "binarize-seed") c.binarize.seed = uint32_t(count(key, v, 0, UINT32_MAX));
        else if (key == "hidden") c.hidden = count(key, v, 1, 1u << 24);
        else if (key == "method") c.method = parse_method(v, origin + ": --method");
        else if (key == "k") c.k = int(count(key, v, 1, 100000));
        else if (key == "batch-size") c.batch_size = count(key, v, 1, 1u << 24);
        else if (key == "chains") c.chains = count(key, v, 0, 1u << 24);
        else if (key == "temperatures") c.temperatures = count(key, v, 2, 1024);
        else if (key == "beta-min") c.beta_min = float(real(key, v, 0, 0.999));
        else if (key == "epochs") c.epochs = count(key, v, 1, 1u << 30);
        else if (key == "lr") c.update.learning_rate = float(real(key, v, 1e-12, 1e6));
        else if (key == "momentum") c.update.momentum = float(real(key, v, 0, 0.999999));
        else if (key == "weight-decay") c.update.weight_decay = float(real(key, v, 0, 1e3));
        else if (key == "lr-final") c.lr_final = float(real(key, v, 0, 1e6));
        else if (key == "momentum-warmup") c.momentum_warmup = count(key, v, 0, 1u << 30);
        else if (key == "initial-momentum") c.initial_momentum = float(real(key, v, 0, 0.999999));
        else if (key == "centering") c.centering = parse_bool("--centering", v, origin);
        else if (key == "offset-rate") c.update.offset_rate = float(real(key, v, 0, 1));
        else if (key == "vbias-init") c.vbias_from_data = parse_choice(v, origin + ": --vbias-init", kVbiasInits);
        else if (key == "init-from") {
            if (v.empty()) fail(origin, ": --init-from needs a checkpoint file or a run directory");
            c.init_from = path(key, v);
        }
        else if (key == "seed") c.seed = uint32_t(count(key, v, 0, UINT32_MAX));
        else if (key == "out") c.out = path(key, v);
        else if (key == "checkpoint-every") c.checkpoint_every = count(key, v, 0, big);
        else if (key == "keep-checkpoints") c.keep_checkpoints = count(key, v, 0, 1u << 20);
        else if (key == "monitor-every") c.monitor_every = count(key, v, 0, big);
        else if (key == "monitor-examples") c.monitor_examples = count(key, v, 1, big);
        else if (key == "sample-every") c.sample_every = count(key, v, 0, 1u << 30);
        else if (key == "filters") c.filters = parse_bool("--filters", v, origin);
        else if (key == "max-hours") c.max_hours = real(key, v, 0, 1e6);
        else if (key == "progress-every") c.progress_every = real(key, v, 0, 1e7);
        else if (key == "threads") c.threads = int(count(key, v, 0, 1024));
        else if (key == "device") c.device = parse_device(v, origin + ": --device");
        else if (key == "comm") c.comm = parse_comm(v, origin + ": --comm");
        else if (key == "tf32") c.tf32 = parse_bool("--tf32", v, origin);
        else fail(origin, ": unknown key '", key, "'");
    }
}

void validate(const TrainConfig& c) {
    if (c.data.empty()) fail("--data is required (an IDX file, IDX.gz, or FILE.h5:/dataset)");
    if (c.out.empty()) fail("--out must name a run directory");
    if (!c.test_data.empty() && c.validation_fraction > 0)
        fail("give either --test-data or --validation-fraction, not both");
    if (c.method == Method::cd && c.chains != 0 && c.chains != c.batch_size)
        fail("--chains applies to pcd and pt only: CD starts one chain per example of the batch");
    if (c.method != Method::pt && (c.temperatures != 0 || c.beta_min))
        fail("--", c.temperatures ? "temperatures" : "beta-min", " applies to --method pt (parallel tempering), and the method here is ",
             method_name(c.method));
    if (c.method == Method::pt && c.device == DeviceKind::cuda)
        fail("--method pt: parallel tempering runs on the CPU engine only (the CUDA engine has none yet); "
             "use --device cpu or auto");
    // The engine holds W, its gradient and velocity, and per-chain workspaces.
    const double bytes = 4.0 * double(c.hidden) * 4096.0 * 3.0;
    if (bytes > 64e9) fail("--hidden ", c.hidden, " asks for more memory than this machine can give");
}

std::string checkpoint_file(const std::string& option, const std::string& given) {
    std::error_code ec;
    if (!std::filesystem::exists(given, ec) && !ec)
        fail("--", option, " ", given, " does not exist (a checkpoint file, or a run directory, is expected)");
    if (!std::filesystem::is_directory(given, ec)) return given;  // a file: its reader says what is wrong with it
    const std::optional<std::string> newest = find_newest_checkpoint(given);
    if (!newest) fail("--", option, " ", given, " is a directory without checkpoints (", given, "/checkpoints/step-*.h5)");
    return *newest;
}

std::string checkpoint_option(const po::variables_map& vm) {
    if (!vm.count("checkpoint"))
        fail("--checkpoint is required (a checkpoint file written by rbm train, or its run directory)");
    return checkpoint_file("checkpoint", vm["checkpoint"].as<std::string>());
}

BinarizeSpec parse_binarize_once(const po::variables_map& vm, BinarizeSpec spec) {
    const std::string origin = "command line";
    auto text = [&](const char* key) { return vm[key].as<std::string>(); };
    if (vm.count("binarize")) spec.mode = parse_choice(text("binarize"), origin + ": --binarize", kOnceBinarizations);
    if (vm.count("binarize-threshold"))
        spec.threshold = float(parse_real("--binarize-threshold", text("binarize-threshold"), origin, 0, 1));
    if (vm.count("binarize-seed"))
        spec.seed = uint32_t(parse_count("--binarize-seed", text("binarize-seed"), origin, 0, UINT32_MAX));
    refuse_idle_binarize_flags(vm.count("binarize-threshold") > 0, vm.count("binarize-seed") > 0, spec.mode,
                               /*dynamic_exists=*/false);
    return spec;
}

// An option that would change nothing is a mistaken command, not one to run quietly.
void refuse_idle_binarize_flags(bool threshold_given, bool seed_given, Binarization mode, bool dynamic_exists) {
    const std::string here = ", and the binarisation here is " + binarize_name(mode);
    if (threshold_given && mode != Binarization::threshold)
        fail("--binarize-threshold applies to --binarize threshold", here);
    if (seed_given && mode != Binarization::stochastic && mode != Binarization::dynamic)
        fail("--binarize-seed applies to --binarize stochastic", dynamic_exists ? " or dynamic" : "", here);
}

}  // namespace rbm::cli
