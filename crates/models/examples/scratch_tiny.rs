use cellshift_data::Predictor;
use cellshift_models::flow::OdeSolver;
use cellshift_models::mappfn::*;
use cellshift_models::train::*;
use cellshift_models::*;
use std::time::Instant;
fn main() {
    let d = 6;
    let source = GaussianShiftSource::new(d, 16, 2, 5).unwrap();
    let net = MapPfnNet::new(MapPfnConfig::tiny(d), 0, tch::Device::Cpu).unwrap();
    let mut cfg = TrainConfig::quick(Preprocessing::identity(d), 300);
    cfg.batch_size = 8;
    let mut tr = Trainer::new(&net, cfg).unwrap();
    let t0 = Instant::now();
    let mut losses = vec![];
    for i in 0..300 {
        let r = tr.step(&source).unwrap();
        losses.push(r.loss);
        if i % 50 == 0 {
            println!("step {i} loss {:.3} t {:?}", r.loss, t0.elapsed());
        }
    }
    println!("300 steps {:?}", t0.elapsed());
    let m = MapPfn::from_net(net, Preprocessing::identity(d))
        .with_sampler(SamplerConfig {
            solver: OdeSolver::Dopri5Fixed { dt: 0.05 },
            guidance: 1.0,
        })
        .unwrap();
    let t0 = Instant::now();
    let (task, truth) = source.task_with_truth(1_000_000);
    let p = m.predict(&task, 64, 0).unwrap();
    println!("sample {:?}", t0.elapsed());
    println!(
        "{:?}\n{:?}\n{:?}",
        p.mean_profile(),
        truth.target_mean,
        truth.control_mean
    );
}
