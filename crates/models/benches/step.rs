//! Speed of MapPFN on the CPU: one training micro-step (forward + backward + AdamW + EMA) and one guided
//! velocity evaluation (conditional and unconditional branch in one batched forward), at `small`-like
//! shapes (width 128, 4 blocks, 4 heads, d = 20, n = 64 cells per set, K = 8, 8 tasks per micro-batch) and
//! at `paper` shapes (width 256, 8 blocks, 4 heads, d = 50, n = 200, K = 8, 1 task). For comparison, a bare
//! libtorch transformer of the same width, depth, heads, MLP ratio and token count (nn::Linear + LayerNorm +
//! SDPA, single stream, tch's AdamW) is timed on the same shapes.
//!
//! Run: `cargo bench -p cellshift-models --bench step` (optional arguments: `small`, `paper`, `--threads N`,
//! `--iters N`). Torch uses 2 intra-op threads unless told otherwise. GFLOP/s counts 2·MACs including
//! attention; a training step is counted as 3× the forward FLOPs, a guided evaluation as 2×.

use std::time::Instant;

use cellshift_models::flow::guided_velocity;
use cellshift_models::mappfn::{
    forward_flops, ConditionedNet, MapPfnConfig, MapPfnNet, TaskLayout,
};
use cellshift_models::train::{TrainConfig, Trainer};
use cellshift_models::{GaussianShiftSource, Preprocessing, TaskSource};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

struct Shape {
    name: &'static str,
    config: MapPfnConfig,
    n: usize,
    k: usize,
    batch: usize,
}

/// Mean seconds per call of `f` over `iters` calls after `warmup` calls.
fn time<F: FnMut()>(warmup: usize, iters: usize, mut f: F) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() / iters as f64
}

/// A plain pre-LN transformer of the same size: Linear(d→W), depth × [LN, QKV, SDPA, O, LN, MLP], Linear(W→d).
struct Bare {
    input: nn::Linear,
    blocks: Vec<(
        nn::LayerNorm,
        nn::Linear,
        nn::Linear,
        nn::LayerNorm,
        nn::Linear,
        nn::Linear,
    )>,
    output: nn::Linear,
    heads: i64,
}

impl Bare {
    fn new(vs: &nn::Path, d: i64, w: i64, depth: usize, heads: i64, ratio: i64) -> Bare {
        let lin = |p: nn::Path, i, o| nn::linear(p, i, o, Default::default());
        Bare {
            input: lin(vs / "in", d, w),
            blocks: (0..depth)
                .map(|b| {
                    let p = vs / format!("b{b}");
                    (
                        nn::layer_norm(&p / "ln1", vec![w], Default::default()),
                        nn::linear(
                            &p / "qkv",
                            w,
                            3 * w,
                            nn::LinearConfig {
                                bias: false,
                                ..Default::default()
                            },
                        ),
                        lin(&p / "o", w, w),
                        nn::layer_norm(&p / "ln2", vec![w], Default::default()),
                        lin(&p / "fc1", w, ratio * w),
                        lin(&p / "fc2", ratio * w, w),
                    )
                })
                .collect(),
            output: lin(vs / "out", w, d),
            heads,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.input.forward(x);
        let (b, l, w) = (h.size()[0], h.size()[1], h.size()[2]);
        let hd = w / self.heads;
        for (ln1, qkv, o, ln2, fc1, fc2) in &self.blocks {
            let p = qkv.forward(&ln1.forward(&h)).split(w, -1);
            let heads = |t: &Tensor| t.reshape([b, l, self.heads, hd]).transpose(1, 2);
            let a = Tensor::scaled_dot_product_attention(
                &heads(&p[0]),
                &heads(&p[1]),
                &heads(&p[2]),
                None::<&Tensor>,
                0.0,
                false,
                None,
                false,
            );
            h = &h + o.forward(&a.transpose(1, 2).reshape([b, l, w]));
            h = &h + fc2.forward(&fc1.forward(&ln2.forward(&h)).gelu("tanh"));
        }
        self.output.forward(&h)
    }
}

/// The machine's float32 matrix-multiply throughput through libtorch (GFLOP/s, 2·n³ per n×n product), best
/// of two sizes: the denominator of "share of peak".
fn matmul_peak() -> f64 {
    [1024i64, 2048]
        .iter()
        .map(|&n| {
            let a = Tensor::randn([n, n], (Kind::Float, Device::Cpu));
            let b = Tensor::randn([n, n], (Kind::Float, Device::Cpu));
            let iters = if n == 1024 { 20 } else { 4 };
            let secs = time(2, iters, || {
                let _ = a.mm(&b);
            });
            2.0 * (n * n * n) as f64 / secs / 1e9
        })
        .fold(0.0, f64::max)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let threads = value_of("--threads").unwrap_or(2);
    let iters_override = value_of("--iters");
    tch::set_num_threads(threads as i32);
    tch::set_num_interop_threads(1);
    let want = |name: &str| {
        !args.iter().any(|a| a == "small" || a == "paper") || args.iter().any(|a| a == name)
    };
    println!("torch threads: {}; FLOPs = 2·MACs incl. attention; train step = 3× forward, guided eval = 2× forward", tch::get_num_threads());
    let peak = matmul_peak();
    println!(
        "fp32 matmul throughput of this machine (best of 1024³ and 2048³ mm): {peak:.1} GFLOP/s"
    );
    println!(
        "{:<44} {:>11} {:>12} {:>10} {:>9} {:>7}",
        "case", "ms/call", "ms/task", "GFLOP", "GFLOP/s", "% peak"
    );

    let shapes = [
        Shape {
            name: "small (W128 L4 H4 d20 n64 K8, 8 tasks)",
            config: MapPfnConfig::small(20),
            n: 64,
            k: 8,
            batch: 8,
        },
        Shape {
            name: "paper (W256 L8 H4 d50 n200 K8, 1 task)",
            config: MapPfnConfig::paper(50),
            n: 200,
            k: 8,
            batch: 1,
        },
    ];
    for s in shapes
        .iter()
        .filter(|s| want(s.name.split(' ').next().unwrap_or("")))
    {
        let d = s.config.n_genes;
        let iters = iters_override.unwrap_or(if s.batch == 1 { 3 } else { 5 });
        let layout = TaskLayout {
            n_obs: s.n,
            n_context: vec![s.n; s.k],
            n_query: s.n,
        };
        let fwd = forward_flops(&s.config, &layout);
        let report = |case: &str, secs: f64, tasks: usize, flops: f64| {
            println!(
                "{:<44} {:>11.1} {:>12.1} {:>10.2} {:>9.1} {:>6.0}%",
                case,
                secs * 1e3,
                secs * 1e3 / tasks as f64,
                flops / 1e9,
                flops / secs / 1e9,
                100.0 * flops / secs / 1e9 / peak
            );
        };
        println!(
            "-- {} : {} parameters, L = {} tokens per task",
            s.name,
            MapPfnNet::new(s.config.clone(), 0, Device::Cpu)
                .map(|n| n.parameter_count())
                .unwrap_or(0),
            layout.joint_tokens(s.config.register_tokens)
        );

        // MapPFN training micro-step.
        let source = GaussianShiftSource::new(d, s.n, s.k, 0).expect("source");
        let net = MapPfnNet::new(s.config.clone(), 0, Device::Cpu).expect("net");
        let mut cfg = TrainConfig::quick(Preprocessing::identity(d), 1_000_000);
        cfg.batch_size = s.batch;
        let mut trainer = Trainer::new(&net, cfg).expect("trainer");
        let secs = time(1, iters, || {
            trainer.step(&source).expect("step");
        });
        report(
            "mappfn train micro-step",
            secs,
            s.batch,
            3.0 * fwd * s.batch as f64,
        );

        // MapPFN guided velocity evaluation (one task): cond + uncond as one batched forward, and with
        // the compact exact unconditional pass.
        let task = source.task(0).expect("task");
        for (case, compact) in [
            ("mappfn guided eval, batched cond+uncond", false),
            ("mappfn guided eval, compact uncond", true),
        ] {
            let secs = tch::no_grad(|| {
                let cond = net.encode_tasks(&[&task], &layout).expect("encode");
                let field = ConditionedNet {
                    net: &net,
                    cond: &cond,
                    compact_unconditional: compact,
                };
                let x = Tensor::randn([1, s.n as i64, d as i64], (Kind::Float, Device::Cpu));
                time(2, iters * 2, || {
                    let _ = guided_velocity(&field, &x, 0.5, 2.0).expect("velocity");
                })
            });
            report(case, secs, 1, 2.0 * fwd);
        }

        // Bare transformer on the same token count.
        let tokens = layout.joint_tokens(s.config.register_tokens) as i64;
        let w = s.config.width as i64;
        let vs = nn::VarStore::new(Device::Cpu);
        let bare = Bare::new(
            &vs.root(),
            d as i64,
            w,
            s.config.depth,
            s.config.heads as i64,
            s.config.mlp_ratio as i64,
        );
        let mut opt = nn::AdamW::default().build(&vs, 1e-4).expect("adamw");
        let x = Tensor::randn(
            [s.batch as i64, tokens, d as i64],
            (Kind::Float, Device::Cpu),
        );
        let y = Tensor::randn(
            [s.batch as i64, tokens, d as i64],
            (Kind::Float, Device::Cpu),
        );
        let bare_fwd = s.batch as f64
            * (s.config.depth as f64
                * (2.0 * (w * w) as f64 * (4.0 + 2.0 * s.config.mlp_ratio as f64) * tokens as f64
                    + 4.0 * (tokens * tokens * w) as f64)
                + 4.0 * (d as i64 * w * tokens) as f64);
        let secs = time(1, iters, || {
            let loss = (bare.forward(&x) - &y).square().mean(None);
            opt.backward_step(&loss);
        });
        report(
            "bare libtorch transformer train step",
            secs,
            s.batch,
            3.0 * bare_fwd,
        );
        let xb = Tensor::randn([2, tokens, d as i64], (Kind::Float, Device::Cpu));
        let secs = tch::no_grad(|| {
            time(2, iters * 2, || {
                let _ = bare.forward(&xb);
            })
        });
        report(
            "bare libtorch forward (batch 2 = 1 guided eval)",
            secs,
            1,
            2.0 * bare_fwd / s.batch as f64,
        );
    }
}
