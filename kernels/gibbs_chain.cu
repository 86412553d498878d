// The whole-chain Gibbs kernel (see gibbs_chain.cuh): one thread-block cluster per
// group of chain rows, W's columns split over the cluster's blocks and kept in shared
// memory for all k sweeps. The phases and their order are in gibbs_step_phases.hpp; this
// file runs that program with real barriers, maps the cluster's shared memory, plans and
// launches.
#include "kernels/gibbs_chain.cuh"

#include <cooperative_groups.h>

#include <algorithm>
#include <utility>

#include "engine/cuda/cuda_check.hpp"
#include "kernels/gibbs_step_phases.hpp"

namespace rbm::kernels {
namespace {

namespace cg = cooperative_groups;

// Thread-block clusters exist from sm_90 on. A build that also targets older GPUs
// (-DCMAKE_CUDA_ARCHITECTURES="80;90") compiles the kernel there as a trap, which
// plan_gibbs_chain never launches (it asks for compute capability 9 first).
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
#define RBM_CLUSTERS 1
#else
#define RBM_CLUSTERS 0
#endif

#if RBM_CLUSTERS
// A peer block's copy of a shared-memory address (distributed shared memory).
struct ClusterPeer {
    cg::cluster_group cluster;
    template <class T>
    __device__ T* operator()(T* p, int rank) const {
        return cluster.map_shared_rank(p, rank);
    }
};
#endif

// R: the most rows (chain or batch) of any cluster; CS: blocks per cluster. The phases
// and their barriers are chain::step_program's.
template <int R, int CS>
__global__ void __launch_bounds__(chain::kThreads, 1) gibbs_chain_kernel(chain::Args a) {
#if !RBM_CLUSTERS
    (void)a;
    __trap();
#else
    const ClusterPeer peer{cg::this_cluster()};
    extern __shared__ chain::Quad shared_quads[];
    const chain::Block b = chain::block_at<R>(a, reinterpret_cast<float*>(shared_quads), int(blockIdx.x) / CS,
                                              int(peer.cluster.block_rank()));
    const int t = int(threadIdx.x);
    const uint64_t step = *a.step_ptr;  // once: the phases take it by reference
    chain::step_program<R, CS>(a, step, [&](chain::Barrier after, auto&& work) {
        work(b, t, peer);
        if (after == chain::Barrier::cluster)
            peer.cluster.sync();
        else
            __syncthreads();
    });
#endif
}

using ChainKernel = void (*)(chain::Args);

template <int CS, int... Rs>
ChainKernel kernel_for_rows(int rows, std::integer_sequence<int, Rs...>) {
    const ChainKernel table[] = {gibbs_chain_kernel<Rs + 1, CS>...};
    return table[rows - 1];
}

ChainKernel chain_kernel(int cluster_size, int rows) {
    const auto one_to_max = std::make_integer_sequence<int, chain::kMaxRows>{};
    return cluster_size == 16 ? kernel_for_rows<16>(rows, one_to_max) : kernel_for_rows<8>(rows, one_to_max);
}

cudaLaunchConfig_t launch_config(const GibbsChainPlan& plan, cudaLaunchAttribute& cluster_dim, cudaStream_t stream) {
    cluster_dim.id = cudaLaunchAttributeClusterDimension;
    cluster_dim.val.clusterDim.x = unsigned(plan.cluster_size);
    cluster_dim.val.clusterDim.y = 1;
    cluster_dim.val.clusterDim.z = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(unsigned(plan.clusters * plan.cluster_size));
    config.blockDim = dim3(chain::kThreads);
    config.dynamicSmemBytes = plan.shared_bytes;
    config.stream = stream;
    config.attrs = &cluster_dim;
    config.numAttrs = 1;
    return config;
}

int device_attribute(cudaDeviceAttr what, int device) {
    int value = 0;
    RBM_CUDA(cudaDeviceGetAttribute(&value, what, device));
    return value;
}

}  // namespace

GibbsChainPlan plan_gibbs_chain(std::size_t n_visible, std::size_t n_hidden, std::size_t rows, int device) {
    // The kernel's attributes and the occupancy query act on the current device.
    int current = -1;
    RBM_CUDA(cudaGetDevice(&current));
    RBM_CHECK(current == device, "plan_gibbs_chain: device " << device << " is not the current device " << current);
    // Cluster launches need compute capability 9 and a device that allows them (a
    // virtualised or partitioned one may not): else the cuBLAS sweeps run.
    if (rows == 0 || device_attribute(cudaDevAttrComputeCapabilityMajor, device) < 9 ||
        device_attribute(cudaDevAttrClusterLaunch, device) == 0)
        return {};
    const int sms = device_attribute(cudaDevAttrMultiProcessorCount, device);
    const std::size_t shared_limit = std::size_t(device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    for (int cluster_size : {16, 8}) {
        const chain::Args l = chain::layout(int(n_visible), int(n_hidden), cluster_size);
        int clusters = int(std::min<std::size_t>(rows, std::size_t(sms / cluster_size)));
        // Fewer clusters may be resident than there are SMs for (shared memory, GPC
        // sizes): then each takes more rows.
        while (clusters > 0) {
            GibbsChainPlan plan;
            plan.cluster_size = cluster_size;
            plan.clusters = clusters;
            plan.rows_per_cluster = int((rows + std::size_t(clusters) - 1) / std::size_t(clusters));
            plan.shared_bytes = chain::shared_floats(l, plan.rows_per_cluster) * sizeof(float);
            if (plan.rows_per_cluster > chain::kMaxRows || plan.shared_bytes > shared_limit) break;
            const ChainKernel kernel = chain_kernel(cluster_size, plan.rows_per_cluster);
            // The device's limit, not this shape's need: an instantiation is shared by every
            // engine of the process, and a smaller shape must not lower another's limit.
            RBM_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_limit)));
            if (cluster_size > 8 &&
                cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) {
                cudaGetLastError();  // this device does not schedule clusters of 16
                break;
            }
            cudaLaunchAttribute cluster_dim{};
            const cudaLaunchConfig_t config = launch_config(plan, cluster_dim, nullptr);
            int resident = 0;
            if (cudaOccupancyMaxActiveClusters(&resident, kernel, &config) != cudaSuccess) {
                cudaGetLastError();
                break;
            }
            if (resident >= clusters) return plan;
            clusters = std::min(clusters - 1, resident);
        }
    }
    return {};
}

void gibbs_chain(const GibbsChainPlan& plan, const float* W, const float* vbias, const float* hbias, float* h,
                 float* vk, float* phk, std::size_t chains, std::size_t n_visible, std::size_t n_hidden, int k,
                 Stream key, const uint64_t* step_ptr, cudaStream_t stream, const GibbsStepBatch* batch) {
    const std::size_t rows = batch ? std::max(chains, batch->batch) : chains;
    RBM_CHECK(plan.usable() && k > 0, "gibbs_chain: no usable plan for this shape");
    RBM_CHECK(plan.rows_per_cluster >= 1 && plan.rows_per_cluster <= chain::kMaxRows &&
                  (rows + std::size_t(plan.clusters) - 1) / std::size_t(plan.clusters) <=
                      std::size_t(plan.rows_per_cluster),
              "gibbs_chain: the plan for " << plan.clusters << " clusters of " << plan.rows_per_cluster
                                           << " rows does not hold " << rows << " rows");
    chain::Args a = chain::layout(int(n_visible), int(n_hidden), plan.cluster_size);
    a.W = W;
    a.vbias = vbias;
    a.hbias = hbias;
    a.h = h;
    a.vk = vk;
    a.phk = phk;
    a.chains = int(chains);
    a.k = k;
    a.clusters = plan.clusters;
    a.key = key;
    a.step_ptr = step_ptr;
    if (batch) {
        RBM_CHECK(batch->batch > 0 && (!batch->cd || batch->batch == chains),
                  "gibbs_chain: CD's chains are the batch's rows");
        a.shard = batch->shard;
        a.order = batch->order;
        a.cursor_ptr = batch->cursor;
        a.v0 = batch->v0;
        a.ph0 = batch->ph0;
        a.sums = batch->sums;
        a.batch = int(batch->batch);
        a.ph0_scale = 1.0f / float(batch->batch);
        a.phk_scale = -1.0f / float(chains);
        a.cd = batch->cd;
        a.measure = batch->measure;
        a.binary = batch->binary;
    }
    cudaLaunchAttribute cluster_dim{};
    const cudaLaunchConfig_t config = launch_config(plan, cluster_dim, stream);
    RBM_CUDA(cudaLaunchKernelEx(&config, chain_kernel(plan.cluster_size, plan.rows_per_cluster), a));
}

}  // namespace rbm::kernels
