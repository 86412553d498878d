// Command-line and INI parsing for rbm's subcommands, on Boost.Program_options.
// Every value goes through one strict parser, so a bad value in a flag, a config file
// or a checkpoint's stored configuration gets the same message naming the key.
#pragma once

#include <boost/program_options.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "train/config.hpp"
#include "util/choices.hpp"

namespace rbm::cli {

namespace po = boost::program_options;

// key -> text, as given by the user (flags or INI).
using Settings = std::map<std::string, std::string>;

// The options of `rbm train` that make up a TrainConfig (the INI keys).
po::options_description train_config_options();

// Parses argv (after the subcommand) against `options`; unknown options and bad syntax
// are rbm::Error. Returns the values given, as text.
Settings parse_flags(const std::vector<std::string>& args, const po::options_description& options,
                     po::variables_map& vm);
// Parses INI text against `options`; errors name `origin`.
Settings parse_ini(const std::string& text, const std::string& origin,
                   const po::options_description& options);
Settings read_ini_file(const std::string& path, const po::options_description& options);

// Applies settings to a config, strictly: errors name the key and `origin`.
void apply(const Settings& settings, const std::string& origin, TrainConfig& config);
// Cross-field checks (memory that cannot be had, a validation fraction with test data, ...).
void validate(const TrainConfig& config);

// --binarize of the commands that read data once (eval, transform): dynamic is a training option.
inline constexpr Choice<Binarization> kOnceBinarizations[] = {
    {"none", Binarization::none}, {"threshold", Binarization::threshold}, {"stochastic", Binarization::stochastic}};

// --binarize, --binarize-threshold and --binarize-seed of those commands, over `defaults`.
BinarizeSpec parse_binarize_once(const po::variables_map& vm, BinarizeSpec defaults);

// --checkpoint of sample, eval and transform: a checkpoint file, or a run directory (rbm
// train --out) standing for its newest checkpoint, which is chosen here, once: a run that
// goes on training does not change it under the command. Absent or a directory without
// checkpoints: an error that says so.
std::string checkpoint_option(const po::variables_map& vm);
// The same for any option naming a checkpoint (--init-from): `given` itself when it is not
// a directory (its reader judges the file), else its newest checkpoint.
std::string checkpoint_file(const std::string& option, const std::string& given);

// --binarize-threshold without threshold binarisation, or --binarize-seed without
// stochastic or dynamic, given on the command line: refused, naming the mode
// (`dynamic_exists`: the command has --binarize dynamic, as train has).
void refuse_idle_binarize_flags(bool threshold_given, bool seed_given, Binarization mode, bool dynamic_exists);

// Strict scalar parsers shared by the subcommands.
uint64_t parse_count(const std::string& key, const std::string& text, const std::string& origin,
                     uint64_t min, uint64_t max);
double parse_real(const std::string& key, const std::string& text, const std::string& origin,
                  double min, double max);
bool parse_bool(const std::string& key, const std::string& text, const std::string& origin);

}  // namespace rbm::cli
