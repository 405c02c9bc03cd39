//! Classifier-free guidance (spec §4.1): `v = ω·v_cond − (ω − 1)·v_uncond`, with the conditional and the
//! unconditional pass evaluated in one batched forward.

use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// A velocity field that can be evaluated conditionally and unconditionally per batch row.
pub trait ConditionalVelocity {
    /// Velocity at states `x: [R, …]` and times `t: [R]` for a field conditioned on `B` examples, with `R` a
    /// multiple of `B`: row `r` uses the condition of example `r mod B`, dropped where `uncond[r]` is true.
    fn velocity(&self, x: &Tensor, t: &Tensor, uncond: &Tensor) -> Result<Tensor>;

    /// The unconditional velocity alone, when the field has a cheaper exact way to compute it than a
    /// masked row of [`ConditionalVelocity::velocity`] (`None`: it has not).
    fn unconditional_velocity(&self, _x: &Tensor, _t: &Tensor) -> Option<Result<Tensor>> {
        None
    }
}

/// Combines the two branches: `ω·v_cond − (ω − 1)·v_uncond`.
pub fn combine(v_cond: &Tensor, v_uncond: &Tensor, omega: f64) -> Tensor {
    v_cond * omega - v_uncond * (omega - 1.0)
}

/// Guided velocity at states `x: [B, …]` (one row per conditioning example) and time `t`: one forward over
/// the doubled batch, rows `0..B` conditional and rows `B..2B` unconditional. With `ω = 1` only the
/// conditional branch is run (the guided field equals it).
pub fn guided_velocity(
    field: &dyn ConditionalVelocity,
    x: &Tensor,
    t: f64,
    omega: f64,
) -> Result<Tensor> {
    let b = x.size()[0];
    let device = x.device();
    if omega == 1.0 {
        let tt = Tensor::full([b], t, (Kind::Float, device));
        let uncond = Tensor::zeros([b], (Kind::Bool, device));
        return field.velocity(x, &tt, &uncond);
    }
    let tb = Tensor::full([b], t, (Kind::Float, device));
    if let Some(v_uncond) = field.unconditional_velocity(x, &tb) {
        let uncond = Tensor::zeros([b], (Kind::Bool, device));
        let v_cond = field.velocity(x, &tb, &uncond)?;
        return Ok(combine(&v_cond, &v_uncond?, omega));
    }
    let x2 = Tensor::cat(&[x, x], 0);
    let tt = Tensor::full([2 * b], t, (Kind::Float, device));
    let uncond = branch_mask(b, device);
    let v = field.velocity(&x2, &tt, &uncond)?;
    let halves = v.split(b, 0);
    Ok(combine(&halves[0], &halves[1], omega))
}

/// The mask `[false; B] ++ [true; B]` selecting the unconditional half of a doubled batch.
pub fn branch_mask(b: i64, device: Device) -> Tensor {
    Tensor::cat(
        &[
            Tensor::zeros([b], (Kind::Bool, device)),
            Tensor::ones([b], (Kind::Bool, device)),
        ],
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field whose conditional velocity is `x + 1` and unconditional velocity `−x`, and which records
    /// how many rows it was called with.
    struct Toy(std::cell::RefCell<Vec<i64>>);

    impl ConditionalVelocity for Toy {
        fn velocity(&self, x: &Tensor, _t: &Tensor, uncond: &Tensor) -> Result<Tensor> {
            self.0.borrow_mut().push(x.size()[0]);
            let m = uncond.to_kind(Kind::Float).view([-1, 1]);
            Ok((x + 1.0) * (m.ones_like() - &m) + (-x) * m)
        }
    }

    #[test]
    fn guidance_formula_and_single_batched_forward() {
        let x = Tensor::from_slice(&[0.5f32, -2.0, 3.0]).view([3, 1]);
        let toy = Toy(Default::default());
        let v = guided_velocity(&toy, &x, 0.3, 2.0).expect("guided");
        // ω·(x + 1) − (ω − 1)·(−x) at ω = 2: 3x + 2.
        let expected = &x * 3.0 + 2.0;
        assert!(v.allclose(&expected, 1e-6, 1e-6, false));
        assert_eq!(
            *toy.0.borrow(),
            vec![6],
            "conditional and unconditional passes must share one forward of 2B rows"
        );
        let v1 = guided_velocity(&toy, &x, 0.3, 1.0).expect("unguided");
        assert!(v1.allclose(&(&x + 1.0), 1e-6, 1e-6, false));
        assert_eq!(
            toy.0.borrow().last(),
            Some(&3),
            "ω = 1 runs only the conditional branch"
        );
        let c = combine(
            &Tensor::from_slice(&[1.0f32]),
            &Tensor::from_slice(&[4.0f32]),
            2.5,
        );
        assert!((c.double_value(&[0]) - (2.5 - 1.5 * 4.0)).abs() < 1e-6);
    }
}
