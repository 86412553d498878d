// The subcommands of `rbm`. Each takes the arguments after its name and returns the
// process exit code; failures are thrown as rbm::Error and reported by main().
#pragma once

#include <string>
#include <vector>

namespace rbm::cli {

int run_train(const std::vector<std::string>& args);
int run_sample(const std::vector<std::string>& args);
int run_info(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_transform(const std::vector<std::string>& args);

// OpenBLAS threads per process: `requested`, or 1 when 0.
void set_blas_threads(int requested);

}  // namespace rbm::cli
