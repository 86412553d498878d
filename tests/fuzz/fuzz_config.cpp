// libFuzzer target: the configuration parser — INI text (as --config and checkpoints
// store it) or a command line (NUL-separated words) — through the same strict parsers
// `rbm train` uses. Any input must give a configuration or rbm::Error. Oracle: an
// accepted configuration written back as INI (what a checkpoint stores) reads back to
// exactly the same configuration, so a resumed run trains the run it resumes.
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "util/check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace cli = rbm::cli;
    static const cli::po::options_description options = cli::train_config_options();
    if (size == 0) return 0;
    const bool command_line = data[0] & 1;
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    rbm::TrainConfig config;
    try {
        cli::Settings settings;
        if (command_line) {
            std::vector<std::string> args;
            std::size_t start = 0;
            for (std::size_t i = 0; i <= text.size(); ++i)
                if (i == text.size() || text[i] == '\0') {
                    args.push_back(text.substr(start, i - start));
                    start = i + 1;
                }
            cli::po::variables_map vm;
            settings = cli::parse_flags(args, options, vm);
        } else {
            settings = cli::parse_ini(text, "fuzz.ini", options);
        }
        cli::apply(settings, "fuzz", config);
        cli::validate(config);
    } catch (const rbm::Error&) {
        return 0;
    }
    // Round trip: INI of the config -> parse -> apply -> the same INI.
    const std::string ini = rbm::to_ini(config);
    rbm::TrainConfig again;
    try {
        cli::apply(cli::parse_ini(ini, "round trip", options), "round trip", again);
    } catch (const rbm::Error& e) {
        std::fprintf(stderr, "accepted configuration does not read back: %s\n--- ini:\n%s\n", e.what(), ini.c_str());
        std::abort();
    }
    if (rbm::to_ini(again) != ini) {
        std::fprintf(stderr, "round trip changed the configuration:\n%s\n--- became:\n%s\n", ini.c_str(),
                     rbm::to_ini(again).c_str());
        std::abort();
    }
    return 0;
}
