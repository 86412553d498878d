// --device resolved alike on every rank: a job whose ranks see GPUs on some nodes only
// must not split into GPU and CPU ranks (they would wait in different collectives).
#include <gtest/gtest.h>

#include "dist/device_binding.hpp"
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
