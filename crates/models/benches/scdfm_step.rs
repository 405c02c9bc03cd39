//! Speed of scDFM on the CPU: one training step (forward + backward of CFM + γ·MMD + Adam update) on 48
//! target cells of one perturbation and one sampling step of the 3/8-rule RK4 (4 velocity evaluations) on 48
//! cells, at the `small` preset and at the `paper` shape (d 512, 8 heads, 4 layers), with a vocabulary of
//! `genes + 4` tokens and a random graph mask.
//!
//! Run: `cargo bench -p cellshift-models --bench scdfm_step -- [small|paper] [--genes G] [--threads N]
//! [--iters N] [--warmup N] [--skip-train] [--skip-sample] [--recompute]`; `--recompute` trains with activation
//! checkpointing (`scdfm::recompute`), which the paper shape at 1,000 genes needs on a 23 GiB machine. The
//! peak resident memory of the process is printed after each shape (run one shape per process to read it
//! for that shape). GFLOP/s counts 2·MACs of matrix products and attention (`scdfm::model::forward_flops`);
//! a training step is counted as 3× the forward, a sampling step as 4 forwards.

use std::time::Instant;

use cellshift_models::scdfm::loss::flow_loss;
use cellshift_models::scdfm::model::{forward_flops, VelocityInputs};
use cellshift_models::scdfm::recompute;
use cellshift_models::scdfm::{ScdfmConfig, ScdfmNet};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let threads = value("--threads", 2);
    let iters = value("--iters", 3);
    let warmup = value("--warmup", 1);
    // Sampling only (no training step): the paper shape's training step at 1,000 genes needs more memory
    // than the 23 GiB dev box has.
    let skip_train = args.iter().any(|a| a == "--skip-train");
    let genes = value("--genes", 1000);
    let recompute = args.iter().any(|a| a == "--recompute");
    let skip_sample = args.iter().any(|a| a == "--skip-sample");
    tch::set_num_threads(threads as i32);
    tch::manual_seed(0);
    let shapes: Vec<&str> = ["small", "paper"]
        .into_iter()
        .filter(|s| {
            args.iter().any(|a| a == s) || !args.iter().any(|a| a == "small" || a == "paper")
        })
        .collect();
    println!(
        "scDFM CPU speed: {threads} threads, {genes} genes, 48 cells, {iters} timed iterations (after {warmup} warm-up){}",
        if recompute { ", training with activation checkpointing" } else { "" }
    );
    for name in shapes {
        let tokens = genes + 4;
        let config = ScdfmConfig::preset(name, tokens).expect("preset");
        let vs = nn::VarStore::new(Device::Cpu);
        let mask =
            Tensor::rand([tokens as i64, tokens as i64], (Kind::Float, Device::Cpu)).gt(0.99);
        let mask =
            mask.logical_and(&Tensor::eye(tokens as i64, (Kind::Bool, Device::Cpu)).logical_not());
        let net = ScdfmNet::new(vs.root(), &config, &mask, 0).expect("net");
        let mut opt = nn::Adam::default().build(&vs, 5e-5).expect("adam");
        let n = 48i64;
        let g = genes as i64;
        let ids = (Tensor::arange(g, (Kind::Int64, Device::Cpu)) + 4)
            .unsqueeze(0)
            .repeat([n, 1]);
        let pert = Tensor::from_slice(&[4i64, 5]).unsqueeze(0).repeat([n, 1]);
        let x1 = Tensor::rand([n, g], (Kind::Float, Device::Cpu));
        let xc = Tensor::rand([n, g], (Kind::Float, Device::Cpu));
        // Forward + backward of CFM + γ·MMD (gradients accumulated into the parameters).
        let forward_backward = || {
            let t = Tensor::rand([n], (Kind::Float, Device::Cpu));
            let x0 = Tensor::randn([n, g], (Kind::Float, Device::Cpu));
            let x_t = (-&t + 1.0).unsqueeze(-1) * &x0 + t.unsqueeze(-1) * &x1;
            let loss_of = |v| flow_loss(v, &x0, &x1, &x_t, &t, 0.5, &config.mmd_scales).total;
            if recompute {
                let inputs = VelocityInputs {
                    genes: &ids,
                    x_t: &x_t,
                    t: &t,
                    x_c: &xc,
                    pert: &pert,
                };
                let _ = recompute::forward_backward(&net, &inputs, true, |v| (loss_of(v), ()))
                    .expect("forward/backward");
            } else {
                let v = net
                    .forward(&ids, &x_t, &t, &xc, &pert, true, None)
                    .expect("forward");
                loss_of(v).backward();
            }
        };
        let mut times = Vec::new();
        for i in 0..if skip_train { 0 } else { iters + warmup } {
            let start = Instant::now();
            opt.zero_grad();
            forward_backward();
            opt.step();
            if i >= warmup {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        let train = if times.is_empty() {
            f64::NAN
        } else {
            median(&mut times)
        };
        let fwd = forward_flops(&config, 48, genes, tokens);
        let mut stimes = Vec::new();
        tch::no_grad(|| {
            for i in 0..if skip_sample { 0 } else { iters + warmup } {
                let x = Tensor::randn([n, g], (Kind::Float, Device::Cpu));
                let start = Instant::now();
                for t in [0.0f32, 1.0 / 3.0, 2.0 / 3.0, 1.0] {
                    let _ = net
                        .forward(&ids, &x, &Tensor::from(t), &xc, &pert, false, None)
                        .expect("forward");
                }
                if i >= warmup {
                    stimes.push(start.elapsed().as_secs_f64());
                }
            }
        });
        let sample = if stimes.is_empty() {
            f64::NAN
        } else {
            median(&mut stimes)
        };
        let params: usize = vs.trainable_variables().iter().map(|t| t.numel()).sum();
        println!(
            "{name:<6} d {} L {} params {:.2} M | train step {:.3} s ({:.1} GFLOP, {:.1} GFLOP/s) | RK4 step (4 evals) {:.3} s ({:.1} GFLOP/s) | full 19-step sample of 48 cells ≈ {:.1} s",
            config.d_model,
            config.nlayers,
            params as f64 / 1e6,
            train,
            3.0 * fwd / 1e9,
            3.0 * fwd / 1e9 / train,
            sample,
            4.0 * fwd / 1e9 / sample,
            19.0 * sample
        );
        if let Some(peak) = peak_resident_gib() {
            println!("peak resident memory of the process so far: {peak:.2} GiB");
        }
    }
}

/// The process's peak resident set (`VmHWM` of /proc/self/status) in GiB, where Linux reports it.
fn peak_resident_gib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / (1024.0 * 1024.0))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
