//! ODE solvers for sampling a flow: explicit Euler, classic RK4, Dormand–Prince 5(4) with a constant step
//! (the reference's diffrax call: `dt0 = 0.01`, no controller ⇒ 1 + 6·steps evaluations thanks to FSAL),
//! and adaptive Dormand–Prince with relative/absolute tolerances and a PI step-size controller
//! (Hairer–Wanner's DOPRI5 controller). Every solve returns the number of vector-field evaluations.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{ModelError, Result};

/// Choice of ODE solver (integration always runs from `t0` to `t1`).
#[allow(missing_docs)] // the fields are described in the variant docs
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OdeSolver {
    /// Explicit Euler with `steps` equal steps (`steps` evaluations).
    Euler { steps: usize },
    /// Classic 4th-order Runge–Kutta with `steps` equal steps (`4·steps` evaluations).
    Rk4 { steps: usize },
    /// Dormand–Prince 5(4) with constant step `dt` (last step shortened to land on `t1`); the reference's
    /// sampler with `dt = 0.01` (601 evaluations).
    Dopri5Fixed { dt: f64 },
    /// Adaptive Dormand–Prince 5(4): error-per-step control with `rtol`/`atol` (RMS norm), PI controller,
    /// first step `dt0`, at most `max_steps` attempted steps.
    Dopri5Adaptive {
        rtol: f64,
        atol: f64,
        dt0: f64,
        max_steps: usize,
    },
}

impl Default for OdeSolver {
    /// The reference sampler: fixed-step Dopri5 with `dt = 0.01`.
    fn default() -> Self {
        OdeSolver::Dopri5Fixed { dt: 0.01 }
    }
}

impl OdeSolver {
    /// The solver in words (`RK4, 2 steps`, `adaptive Dopri5, rtol 0.001, atol 0.001`, …).
    pub fn describe(&self) -> String {
        match *self {
            OdeSolver::Euler { steps } => format!("Euler, {steps} steps"),
            OdeSolver::Rk4 { steps } => format!("RK4, {steps} steps"),
            OdeSolver::Dopri5Fixed { dt } => format!("fixed-step Dopri5, dt {dt}"),
            OdeSolver::Dopri5Adaptive { rtol, atol, .. } => {
                format!("adaptive Dopri5, rtol {rtol}, atol {atol}")
            }
        }
    }

    /// Checks the parameters, naming the problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        match *self {
            OdeSolver::Euler { steps } | OdeSolver::Rk4 { steps } if steps == 0 => {
                bad("ODE solver needs steps ≥ 1".into())
            }
            OdeSolver::Dopri5Fixed { dt } if !(dt > 0.0 && dt.is_finite()) => bad(format!(
                "Dopri5 step dt = {dt} must be a positive number, e.g. 0.01"
            )),
            OdeSolver::Dopri5Adaptive {
                rtol,
                atol,
                dt0,
                max_steps,
            } => {
                if !(rtol > 0.0 && atol > 0.0 && rtol.is_finite() && atol.is_finite()) {
                    bad(format!("adaptive Dopri5 needs positive rtol and atol (got {rtol}, {atol}), e.g. 1e-3 and 1e-4"))
                } else if !(dt0 > 0.0 && dt0.is_finite()) {
                    bad(format!(
                        "adaptive Dopri5 first step dt0 = {dt0} must be positive, e.g. 0.05"
                    ))
                } else if max_steps == 0 {
                    bad("adaptive Dopri5 needs max_steps ≥ 1".into())
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

/// Result of an ODE solve.
#[derive(Debug)]
pub struct Solution {
    /// The state at `t1`.
    pub x: Tensor,
    /// Vector-field evaluations made.
    pub evaluations: usize,
    /// Accepted steps.
    pub steps: usize,
    /// Rejected steps (adaptive solver only).
    pub rejected: usize,
}

// Dormand–Prince 5(4) tableau (spec §4.1).
const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A2: [f64; 1] = [1.0 / 5.0];
const A3: [f64; 2] = [3.0 / 40.0, 9.0 / 40.0];
const A4: [f64; 3] = [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0];
const A5: [f64; 4] = [
    19372.0 / 6561.0,
    -25360.0 / 2187.0,
    64448.0 / 6561.0,
    -212.0 / 729.0,
];
const A6: [f64; 5] = [
    9017.0 / 3168.0,
    -355.0 / 33.0,
    46732.0 / 5247.0,
    49.0 / 176.0,
    -5103.0 / 18656.0,
];
/// 5th-order weights (= the 7th stage's coefficients: FSAL).
const B5: [f64; 7] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
    0.0,
];
/// Embedded 4th-order weights (Shampine's version, as in diffrax).
const B4: [f64; 7] = [
    1951.0 / 21600.0,
    0.0,
    22642.0 / 50085.0,
    451.0 / 720.0,
    -12231.0 / 42400.0,
    649.0 / 6300.0,
    1.0 / 60.0,
];

/// `x + h·Σ a_i k_i` (terms with a zero coefficient skipped).
fn combine(x: &Tensor, h: f64, a: &[f64], k: &[Tensor]) -> Tensor {
    let mut out = x.shallow_clone();
    for (ai, ki) in a.iter().zip(k) {
        if *ai != 0.0 {
            // Not `+=`: tch's AddAssign is in-place and `out` starts as a shallow clone of `x`.
            #[allow(clippy::assign_op_pattern)]
            {
                out = out + ki * (h * ai);
            }
        }
    }
    out
}

/// Counts evaluations of a vector field.
struct Counted<'f, F> {
    field: &'f mut F,
    evaluations: usize,
}

impl<F: FnMut(f64, &Tensor) -> Result<Tensor>> Counted<'_, F> {
    fn eval(&mut self, t: f64, x: &Tensor) -> Result<Tensor> {
        self.evaluations += 1;
        (self.field)(t, x)
    }
}

/// One Dormand–Prince step from `(t, x)` with first stage `k1 = f(t, x)`; returns the 5th-order solution,
/// the seven stages (the last is `f(t + h, x_new)`).
fn dopri5_step<F: FnMut(f64, &Tensor) -> Result<Tensor>>(
    f: &mut Counted<F>,
    t: f64,
    x: &Tensor,
    h: f64,
    k1: Tensor,
) -> Result<(Tensor, Vec<Tensor>)> {
    let mut k = vec![k1];
    for (i, a) in [&A2[..], &A3[..], &A4[..], &A5[..], &A6[..]]
        .into_iter()
        .enumerate()
    {
        let xi = combine(x, h, a, &k);
        k.push(f.eval(t + C[i + 1] * h, &xi)?);
    }
    let x_new = combine(x, h, &B5, &k);
    k.push(f.eval(t + h, &x_new)?);
    Ok((x_new, k))
}

/// Integrates `dx/dt = field(t, x)` from `t0` to `t1 > t0` starting at `x0`.
pub fn solve<F>(solver: &OdeSolver, mut field: F, x0: &Tensor, t0: f64, t1: f64) -> Result<Solution>
where
    F: FnMut(f64, &Tensor) -> Result<Tensor>,
{
    solver.validate()?;
    if t0.is_nan() || t1.is_nan() || t1 <= t0 {
        return Err(ModelError::Input(format!(
            "ODE interval must have t1 > t0 (got {t0} → {t1})"
        )));
    }
    let mut f = Counted {
        field: &mut field,
        evaluations: 0,
    };
    let span = t1 - t0;
    match *solver {
        OdeSolver::Euler { steps } => {
            let h = span / steps as f64;
            let mut x = x0.shallow_clone();
            for i in 0..steps {
                let t = t0 + i as f64 * h;
                x = &x + f.eval(t, &x)? * h;
            }
            Ok(Solution {
                x,
                evaluations: f.evaluations,
                steps,
                rejected: 0,
            })
        }
        OdeSolver::Rk4 { steps } => {
            let h = span / steps as f64;
            let mut x = x0.shallow_clone();
            for i in 0..steps {
                let t = t0 + i as f64 * h;
                let k1 = f.eval(t, &x)?;
                let k2 = f.eval(t + h / 2.0, &(&x + &k1 * (h / 2.0)))?;
                let k3 = f.eval(t + h / 2.0, &(&x + &k2 * (h / 2.0)))?;
                let k4 = f.eval(t + h, &(&x + &k3 * h))?;
                x = &x + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
            }
            Ok(Solution {
                x,
                evaluations: f.evaluations,
                steps,
                rejected: 0,
            })
        }
        OdeSolver::Dopri5Fixed { dt } => {
            // Number of steps: ⌈span/dt⌉, tolerant to round-off (1/0.01 = 100 steps, not 101).
            let steps = ((span / dt) - 1e-9).ceil().max(1.0) as usize;
            let mut x = x0.shallow_clone();
            let mut t = t0;
            let mut k1 = f.eval(t, &x)?;
            for i in 0..steps {
                let t_next = if i + 1 == steps {
                    t1
                } else {
                    t0 + (i + 1) as f64 * dt
                };
                let (x_new, mut k) = dopri5_step(&mut f, t, &x, t_next - t, k1)?;
                x = x_new;
                t = t_next;
                k1 = k.pop().expect("seven stages");
            }
            Ok(Solution {
                x,
                evaluations: f.evaluations,
                steps,
                rejected: 0,
            })
        }
        OdeSolver::Dopri5Adaptive {
            rtol,
            atol,
            dt0,
            max_steps,
        } => adaptive(&mut f, x0, t0, t1, rtol, atol, dt0, max_steps),
    }
}

/// Adaptive Dormand–Prince with Hairer's PI controller (β = 0.04, safety 0.9, factor in [0.2, 10]).
#[allow(clippy::too_many_arguments)]
fn adaptive<F: FnMut(f64, &Tensor) -> Result<Tensor>>(
    f: &mut Counted<F>,
    x0: &Tensor,
    t0: f64,
    t1: f64,
    rtol: f64,
    atol: f64,
    dt0: f64,
    max_steps: usize,
) -> Result<Solution> {
    const SAFETY: f64 = 0.9;
    const BETA: f64 = 0.04;
    const EXPO: f64 = 0.2 - 0.75 * BETA;
    const FAC_MIN: f64 = 0.2;
    const FAC_MAX: f64 = 10.0;
    let err_weights: Vec<f64> = B5.iter().zip(&B4).map(|(a, b)| a - b).collect();
    let mut x = x0.shallow_clone();
    let mut t = t0;
    let mut h = dt0.min(t1 - t0);
    let mut err_old: f64 = 1e-4;
    let mut k1 = f.eval(t, &x)?;
    let (mut steps, mut rejected) = (0usize, 0usize);
    let mut last_rejected = false;
    for _ in 0..max_steps {
        if t >= t1 {
            break;
        }
        let reaches_end = t + h >= t1 - 1e-12 * (t1 - t0);
        if reaches_end {
            h = t1 - t;
        }
        let (x_new, k) = dopri5_step(f, t, &x, h, k1.shallow_clone())?;
        let err_est = combine(&x.zeros_like(), h, &err_weights, &k);
        let scale = x.abs().maximum(&x_new.abs()) * rtol + atol;
        let err = (err_est / scale)
            .square()
            .mean(None)
            .sqrt()
            .double_value(&[]);
        if !err.is_finite() {
            return Err(ModelError::Input(format!(
                "adaptive Dopri5: non-finite error estimate at t = {t}; the vector field returned NaN/Inf"
            )));
        }
        if err <= 1.0 {
            let mut factor = if err == 0.0 {
                FAC_MAX
            } else {
                SAFETY * err.powf(-EXPO) * err_old.powf(BETA)
            }
            .clamp(FAC_MIN, FAC_MAX);
            if last_rejected {
                factor = factor.min(1.0);
            }
            err_old = err.max(1e-4);
            t = if reaches_end { t1 } else { t + h };
            x = x_new;
            k1 = k.into_iter().last().expect("seven stages");
            steps += 1;
            last_rejected = false;
            h *= factor;
        } else {
            rejected += 1;
            last_rejected = true;
            h *= (SAFETY * err.powf(-EXPO)).clamp(FAC_MIN, 1.0);
        }
    }
    if t < t1 {
        return Err(ModelError::Input(format!(
            "adaptive Dopri5 reached max_steps = {max_steps} at t = {t:.4} before t1 = {t1}; raise max_steps or loosen rtol/atol"
        )));
    }
    Ok(Solution {
        x,
        evaluations: f.evaluations,
        steps,
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// `y' = A y` with `A = −0.5·I + 2·[[0, 1], [−1, 0]]`: a damped rotation with a closed-form solution.
    fn field(_t: f64, y: &Tensor) -> Result<Tensor> {
        let a = Tensor::from_slice(&[-0.5f64, 2.0, -2.0, -0.5]).reshape([2, 2]);
        Ok(y.matmul(&a.transpose(0, 1)))
    }

    fn y0() -> Tensor {
        Tensor::from_slice(&[1.0f64, 0.0])
            .reshape([1, 2])
            .to_kind(Kind::Double)
            .to_device(Device::Cpu)
    }

    fn error_of(solver: OdeSolver) -> (f64, usize) {
        let sol = solve(&solver, field, &y0(), 0.0, 1.0).expect("solve");
        let exact =
            Tensor::from_slice(&[(-0.5f64).exp() * 2f64.cos(), -(-0.5f64).exp() * 2f64.sin()])
                .reshape([1, 2]);
        (
            (sol.x - exact).abs().max().double_value(&[]),
            sol.evaluations,
        )
    }

    #[test]
    fn euler_is_first_order() {
        let (e1, n1) = error_of(OdeSolver::Euler { steps: 100 });
        let (e2, n2) = error_of(OdeSolver::Euler { steps: 200 });
        assert_eq!((n1, n2), (100, 200));
        let ratio = e1 / e2;
        assert!(
            (1.8..2.2).contains(&ratio),
            "Euler error ratio {ratio} (errors {e1}, {e2})"
        );
    }

    #[test]
    fn rk4_is_fourth_order() {
        let (e1, n1) = error_of(OdeSolver::Rk4 { steps: 10 });
        let (e2, _) = error_of(OdeSolver::Rk4 { steps: 20 });
        assert_eq!(n1, 40);
        let ratio = e1 / e2;
        assert!(
            (13.0..19.0).contains(&ratio),
            "RK4 error ratio {ratio} (errors {e1}, {e2})"
        );
    }

    #[test]
    fn fixed_dopri5_is_fifth_order_and_uses_fsal() {
        let (e1, n1) = error_of(OdeSolver::Dopri5Fixed { dt: 0.1 });
        let (e2, n2) = error_of(OdeSolver::Dopri5Fixed { dt: 0.05 });
        assert_eq!((n1, n2), (61, 121));
        let ratio = e1 / e2;
        assert!(
            (25.0..40.0).contains(&ratio),
            "Dopri5 error ratio {ratio} (errors {e1}, {e2})"
        );
        // The reference sampler: dt = 0.01 ⇒ 100 steps, 601 evaluations.
        let sol = solve(&OdeSolver::default(), field, &y0(), 0.0, 1.0).expect("solve");
        assert_eq!((sol.steps, sol.evaluations), (100, 601));
    }

    #[test]
    fn adaptive_dopri5_meets_tolerance_with_fewer_evaluations() {
        let (fixed_err, fixed_evals) = error_of(OdeSolver::default());
        let (loose, loose_evals) = error_of(OdeSolver::Dopri5Adaptive {
            rtol: 1e-4,
            atol: 1e-7,
            dt0: 0.05,
            max_steps: 1000,
        });
        let (tight, tight_evals) = error_of(OdeSolver::Dopri5Adaptive {
            rtol: 1e-8,
            atol: 1e-11,
            dt0: 0.05,
            max_steps: 1000,
        });
        assert!(
            loose < 1e-4,
            "adaptive error {loose} above the requested tolerance scale"
        );
        assert!(
            tight < 1e-8,
            "adaptive error {tight} above the requested tolerance scale"
        );
        assert!(
            tight < loose,
            "tighter tolerance must reduce the error ({tight} vs {loose})"
        );
        assert!(
            loose_evals < tight_evals,
            "tighter tolerance must cost more evaluations"
        );
        assert!(
            tight_evals < fixed_evals,
            "adaptive ({tight_evals}) must need fewer than fixed-step ({fixed_evals}) evaluations"
        );
        assert!(fixed_err < 1e-9);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        assert!(solve(&OdeSolver::Euler { steps: 0 }, field, &y0(), 0.0, 1.0).is_err());
        assert!(solve(&OdeSolver::Dopri5Fixed { dt: -0.1 }, field, &y0(), 0.0, 1.0).is_err());
        assert!(solve(&OdeSolver::default(), field, &y0(), 1.0, 0.0).is_err());
        let err = solve(
            &OdeSolver::Dopri5Adaptive {
                rtol: 1e-12,
                atol: 1e-14,
                dt0: 0.5,
                max_steps: 3,
            },
            field,
            &y0(),
            0.0,
            1.0,
        )
        .expect_err("must run out of steps");
        assert!(err.to_string().contains("max_steps"));
    }
}

/// torchdiffeq's fixed-grid `method="rk4"` (its 3/8-rule variant, `rk4_alt_step_func`) over the time
/// `grid`, with times and step arithmetic in float32 as torchdiffeq does on a float32 grid: per step
/// `k1 = f(t0, y)`, `k2 = f(t0 + dt/3, y + dt·k1/3)`, `k3 = f(t0 + 2dt/3, y + dt·(k2 − k1/3))`,
/// `k4 = f(t1, y + dt·(k1 − k2 + k3))`, `y ← y + (k1 + 3(k2 + k3) + k4)·dt/8`. Returns the state at every
/// grid point (the first is `x0`); `4·(grid.len() − 1)` evaluations.
pub fn odeint_rk4_38<F>(mut field: F, x0: &Tensor, grid: &[f32]) -> Result<Vec<Tensor>>
where
    F: FnMut(f32, &Tensor) -> Result<Tensor>,
{
    if grid.len() < 2 || grid.windows(2).any(|w| !(w[1] > w[0])) {
        return Err(ModelError::Input(format!(
            "the RK4 time grid needs ≥ 2 increasing points (got {grid:?})"
        )));
    }
    const THIRD: f32 = (1.0f64 / 3.0) as f32;
    const TWO_THIRDS: f32 = (2.0f64 / 3.0) as f32;
    let mut y = x0.shallow_clone();
    let mut out = vec![y.shallow_clone()];
    for w in grid.windows(2) {
        let (t0, t1) = (w[0], w[1]);
        let dt = t1 - t0;
        let k1 = field(t0, &y)?;
        let k2 = field(t0 + dt * THIRD, &(&y + (&k1 * dt as f64) * THIRD as f64))?;
        let k3 = field(
            t0 + dt * TWO_THIRDS,
            &(&y + (&k2 - &k1 * THIRD as f64) * dt as f64),
        )?;
        let k4 = field(t1, &(&y + (&k1 - &k2 + &k3) * dt as f64))?;
        let dy = ((&k1 + (&k2 + &k3) * 3.0 + &k4) * dt as f64) * 0.125;
        y = &y + dy;
        out.push(y.shallow_clone());
    }
    Ok(out)
}

/// `torch.linspace(0, 1, n)` in float32 (the scDFM sampler's grid, `n = 20`).
pub fn linspace_f32(n: usize) -> Vec<f32> {
    Tensor::linspace(0.0, 1.0, n as i64, (tch::Kind::Float, tch::Device::Cpu))
        .try_into()
        .unwrap_or_default()
}
