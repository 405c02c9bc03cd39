use std::time::Instant;
use cellshift_models::mappfn::*;
use cellshift_models::train::*;
use cellshift_models::*;
use cellshift_models::flow::OdeSolver;
use cellshift_data::Predictor;
fn rel(model: &MapPfn, source: &GaussianShiftSource) -> f64 {
    let mut total = 0.0;
    for i in 1_000_000..1_000_012u64 {
        let (task, truth) = source.task_with_truth(i);
        let mean = model.predict(&task, std::env::var("NC").map(|s| s.parse().unwrap()).unwrap_or(64), i).unwrap().mean_profile();
        let err: f32 = (&mean - &truth.target_mean).mapv(|v| v * v).sum();
        let base: f32 = (&truth.control_mean - &truth.target_mean).mapv(|v| v * v).sum();
        total += f64::from(err / base);
        if i < 1_000_003 { let p = model.predict(&task, 256, i).unwrap(); if let cellshift_data::Prediction::Cells(c) = p { println!("pred {:.2}\nstd  {:.2}\ntgt  {:.2}\nctl  {:.2}", c.mean_axis(ndarray::Axis(0)).unwrap(), c.std_axis(ndarray::Axis(0), 0.0), truth.target_mean, truth.control_mean); } }
    }
    total / 12.0
}
fn main() {
    tch::set_num_threads(1);
    let a: Vec<String> = std::env::args().collect();
    let lr: f64 = a[1].parse().unwrap(); let steps: u64 = a[2].parse().unwrap(); let width: usize = a[3].parse().unwrap(); let batch: usize = a[4].parse().unwrap();
    let d = 6;
    let mut source = GaussianShiftSource::new(d, 16, 2, 5).unwrap();
    source.context_scale = std::env::var("CS").map(|s| s.parse().unwrap()).unwrap_or(2.0);
    let mc = MapPfnConfig { width, ..MapPfnConfig::tiny(d) };
    let net = MapPfnNet::new(mc, 0, tch::Device::Cpu).unwrap();
    let mut cfg = TrainConfig::quick(Preprocessing::identity(d), steps);
    cfg.batch_size = batch; cfg.schedule.peak = lr; cfg.schedule.end = lr / 10.0;
    let mut tr = Trainer::new(&net, cfg).unwrap();
    let t0 = Instant::now();
    let mut losses = vec![];
    for _ in 0..steps { losses.push(tr.step(&source).unwrap().loss); }
    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!("lr {lr} steps {steps} width {width} batch {batch}: {:?}; first20 {:.3} last20 {:.3}", t0.elapsed(), avg(&losses[..20]), avg(&losses[losses.len()-20..]));
    {
        let tasks: Vec<_> = (2_000_000..2_000_064u64).map(|i| source.task(i).unwrap()).collect();
        let tasks_train: Vec<_> = (0..64u64).map(|i| source.task(i).unwrap()).collect();
        for p in [0.0, 1.0] {
            let mut c = TrainConfig::quick(Preprocessing::identity(d), 1); c.condition_dropout = p;
            let l: f64 = (0..4).map(|s| tch::no_grad(|| net.loss(&tasks, &mut cellshift_models::rng::stream(9, "e", s), &c).unwrap().double_value(&[]))).sum::<f64>() / 4.0;
            let lt: f64 = (0..4).map(|s| tch::no_grad(|| net.loss(&tasks_train, &mut cellshift_models::rng::stream(9, "e", s), &c).unwrap().double_value(&[]))).sum::<f64>() / 4.0;
            println!("  held-out loss with dropout {p}: {l:.3}  (train tasks {lt:.3})");
        }
    }
    let m = MapPfn::from_net(net, Preprocessing::identity(d)).with_sampler(SamplerConfig{solver: OdeSolver::Dopri5Fixed{dt:0.05}, guidance:1.0}).unwrap();
    println!("  rel error (raw weights, w=1) {:.3}", rel(&m, &source));
    let m = m.with_sampler(SamplerConfig{solver: OdeSolver::Dopri5Fixed{dt:0.05}, guidance:2.0}).unwrap();
    println!("  rel error (w=2) {:.3}", rel(&m, &source));
}
