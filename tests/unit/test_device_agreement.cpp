// --device resolved alike on every rank: a job whose ranks see GPUs on some nodes only
// must not split into GPU and CPU ranks (they would wait in different collectives); and
// the environment switch of the CUDA engine's small-batch kernel.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "dist/device_binding.hpp"
#include "engine/engine_factory.hpp"
#include "util/check.hpp"

using namespace rbm;

TEST(DeviceAgreement, AutoTakesTheGpuOnlyWhenEveryRankSeesOne) {
    EXPECT_EQ(agreed_device(DeviceKind::auto_select, 0, 4, 0), DeviceKind::cpu);
    EXPECT_EQ(agreed_device(DeviceKind::auto_select, 4, 4, 4), DeviceKind::cuda);
    EXPECT_EQ(agreed_device(DeviceKind::auto_select, 1, 1, 1), DeviceKind::cuda);
}

TEST(DeviceAgreement, ExplicitDevicesAreKept) {
    EXPECT_EQ(agreed_device(DeviceKind::cpu, 3, 4, 2), DeviceKind::cpu);
    EXPECT_EQ(agreed_device(DeviceKind::cuda, 0, 4, 0), DeviceKind::cuda);  // ranks without one fail on their own
}

TEST(DeviceAgreement, MixedAutoIsAnErrorNamingTheRank) {
    try {
        agreed_device(DeviceKind::auto_select, 2, 4, 2);
        ADD_FAILURE() << "no error for ranks that disagree";
    } catch (const Error& e) {
        const std::string text = e.what();
        EXPECT_NE(text.find("--device auto"), std::string::npos) << text;
        EXPECT_NE(text.find("2 of 4 ranks"), std::string::npos) << text;
        EXPECT_NE(text.find("rank 2 sees none"), std::string::npos) << text;
        EXPECT_NE(text.find("--device cpu"), std::string::npos) << text;
    }
}

// RBM_CUDA_CHAIN_KERNEL picks the small-batch kernel; a value it does not know is an
// error naming the variable, not a silent default.
TEST(ChainKernelRequest, ReadsTheEnvironment) {
    const char* before = std::getenv("RBM_CUDA_CHAIN_KERNEL");
    const std::string saved = before ? before : "";
    const std::pair<const char*, ChainKernel> cases[] = {
        {"", ChainKernel::off}, {"0", ChainKernel::off}, {"1", ChainKernel::sweeps}, {"2", ChainKernel::step}};
    for (const auto& [value, mode] : cases) {
        setenv("RBM_CUDA_CHAIN_KERNEL", value, 1);
        EXPECT_EQ(chain_kernel_requested(), mode) << value;
    }
    setenv("RBM_CUDA_CHAIN_KERNEL", "yes", 1);
    try {
        chain_kernel_requested();
        ADD_FAILURE() << "no error for RBM_CUDA_CHAIN_KERNEL=yes";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("RBM_CUDA_CHAIN_KERNEL=yes"), std::string::npos) << e.what();
    }
    if (before)
        setenv("RBM_CUDA_CHAIN_KERNEL", saved.c_str(), 1);
    else
        unsetenv("RBM_CUDA_CHAIN_KERNEL");
}
