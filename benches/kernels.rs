//! Criterion benchmarks of the dispatched matvec / GEMM per SIMD weight type.
//!
//! Shapes 4096x4096, 14336x4096, 1536x576; batch 1 (matvec, throughput in weight bytes),
//! 32 and 512 (GEMM, throughput in 2*rows*cols*batch operations); 1 and 2 threads.
//! Small sample counts keep a full run to minutes: `cargo bench --bench kernels -- Q4_0`
//! filters as usual. Benchmark ids start with the kernel level (`avx512/Q4_0/4096x4096/...`),
//! so runs of several levels on one machine (`TRAMONTANE_KERNELS=avx2 cargo bench ...`, then
//! the default) sit side by side instead of overwriting each other.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tramontane_kernels::matmul::{
    matmul_quantized, Parallelism::CurrentPool, QuantizedActivations,
};
use tramontane_kernels::{reference, GgmlType};

const TYPES: &[GgmlType] = &[
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
];
const SHAPES: &[(usize, usize)] = &[(4096, 4096), (14336, 4096), (1536, 576)];
const BATCHES: &[usize] = &[1, 32, 512];
const THREADS: &[usize] = &[1, 2];

/// Random codes with finite f16 scales at each block's scale offsets.
fn weights(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let row = reference::row_bytes(ty, cols).expect("benchmark shape fits the type");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut w: Vec<u8> = (0..row * rows)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    let halves: &[usize] = match ty {
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        _ => &[0],
    };
    for block in w.chunks_exact_mut(ty.block_bytes()) {
        for &off in halves {
            block[off..off + 2].copy_from_slice(&half::f16::from_f32(0.01).to_le_bytes());
        }
    }
    w
}

fn bench(c: &mut Criterion) {
    let pools: Vec<rayon::ThreadPool> = THREADS
        .iter()
        .map(|&t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .expect("a benchmark pool")
        })
        .collect();
    let level = tramontane_kernels::active_kernels();
    for &(rows, cols) in SHAPES {
        for &ty in TYPES {
            let w = weights(ty, rows, cols);
            let mut group = c.benchmark_group(format!("{level}/{ty}/{rows}x{cols}"));
            group.sample_size(10);
            group.warm_up_time(Duration::from_millis(300));
            group.measurement_time(Duration::from_secs(1));
            for &batch in BATCHES {
                let x: Vec<f32> = (0..cols * batch)
                    .map(|i| ((i % 29) as f32 - 14.0) * 0.03)
                    .collect();
                let acts = QuantizedActivations::new(reference::vec_dot_type(ty), &x, cols, batch)
                    .expect("benchmark activations");
                let mut y = vec![0f32; rows * batch];
                if batch == 1 {
                    group.throughput(Throughput::Bytes(w.len() as u64));
                } else {
                    group.throughput(Throughput::Elements(2 * (rows * cols * batch) as u64));
                }
                for (&threads, pool) in THREADS.iter().zip(&pools) {
                    let id = BenchmarkId::new(format!("batch{batch}"), format!("{threads}t"));
                    group.bench_function(id, |b| {
                        b.iter(|| {
                            pool.install(|| {
                                matmul_quantized(&w, ty, rows, cols, &acts, &mut y, CurrentPool)
                            })
                        })
                    });
                }
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
