use cellshift_models::flow::*;
use tch::Tensor;
fn field(_t: f64, y: &Tensor) -> cellshift_models::Result<Tensor> {
    let a = Tensor::from_slice(&[-0.5f64, 2.0, -2.0, -0.5]).reshape([2, 2]);
    Ok(y.matmul(&a.transpose(0, 1)))
}
fn main() {
    let y0 = Tensor::from_slice(&[1.0f64, 0.0]).reshape([1, 2]);
    let exact = Tensor::from_slice(&[(-0.5f64).exp() * 2f64.cos(), -(-0.5f64).exp() * 2f64.sin()]).reshape([1, 2]);
    for s in [OdeSolver::Euler{steps:100}, OdeSolver::Euler{steps:200}, OdeSolver::Rk4{steps:10}, OdeSolver::Rk4{steps:20}, OdeSolver::Dopri5Fixed{dt:0.1}, OdeSolver::Dopri5Fixed{dt:0.05}, OdeSolver::Dopri5Fixed{dt:0.01},
              OdeSolver::Dopri5Adaptive{rtol:1e-4, atol:1e-7, dt0:0.05, max_steps:1000}, OdeSolver::Dopri5Adaptive{rtol:1e-8, atol:1e-11, dt0:0.05, max_steps:1000}] {
        let sol = solve(&s, field, &y0, 0.0, 1.0).unwrap();
        println!("{s:?}: err {:.3e} evals {} steps {} rejected {}", (sol.x - &exact).abs().max().double_value(&[]), sol.evaluations, sol.steps, sol.rejected);
    }
}
