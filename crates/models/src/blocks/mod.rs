//! Reusable layers shared by the neural methods: seeded initialisation, linear layers, LayerNorm with
//! FiLM modulation, RMSNorm (QK-norm), MLPs, the sinusoidal time embedding, multi-stream joint attention
//! and the MMDiT block.

pub mod attention;
pub mod init;
pub mod linear;
pub mod mlp;
pub mod mmdit;
pub mod norm;
pub mod time;

pub use attention::{attend, AttentionMask, JointAttention, KvCache};
pub use init::{Init, ParamBuilder};
pub use linear::{Linear, LinearInit};
pub use mlp::Mlp;
pub use mmdit::{MmditBlock, MmditShape};
pub use norm::{FilmLayerNorm, LayerNorm, Modulation, RmsNorm};
pub use time::TimeEmbedding;

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind, Tensor};

    fn close(a: &Tensor, b: &Tensor, tol: f64) -> bool {
        (a - b).abs().max().double_value(&[]) <= tol
    }

    #[test]
    fn time_embedding_is_seeded_and_follows_the_formula() {
        let build = |seed| {
            let vs = nn::VarStore::new(Device::Cpu);
            let te = TimeEmbedding::new(&ParamBuilder::new(vs.root(), seed), "time", 16, 64, true);
            (vs, te)
        };
        let (_a, ta) = build(7);
        let (_b, tb) = build(7);
        let (_c, tc) = build(8);
        let t = Tensor::from_slice(&[0.0f32, 0.25, 1.0]);
        let (ea, eb, ec) = (ta.forward(&t), tb.forward(&t), tc.forward(&t));
        assert_eq!(ea.size(), vec![3, 16]);
        assert!(
            ea.equal(&eb),
            "same seed and time must give bit-identical embeddings"
        );
        assert!(
            !close(&ea, &ec, 1e-6),
            "a different seed must give different weights"
        );
        // Frequencies ω_i = exp(−i·ln(10⁴)/(h−1)) with h = 8: ω_0 = 1, ω_7 = 1e-4.
        assert!((ta.frequencies.double_value(&[0]) - 1.0).abs() < 1e-7);
        assert!((ta.frequencies.double_value(&[7]) - 1e-4).abs() < 1e-9);
        assert!(
            ta.frequencies.requires_grad(),
            "the reference trains the frequencies"
        );
        let f = ta.features(&Tensor::from_slice(&[0.5f32]));
        assert!((f.double_value(&[0, 0]) - 0.5f64.sin()).abs() < 1e-6);
        assert!((f.double_value(&[0, 8]) - 0.5f64.cos()).abs() < 1e-6);
    }

    #[test]
    fn film_layernorm_starts_as_plain_layernorm_and_modulates_scale_and_shift() {
        let vs = nn::VarStore::new(Device::Cpu);
        let pb = ParamBuilder::new(vs.root(), 1);
        let film = FilmLayerNorm::new(&pb, "ln", "film", 4, 3, 1e-5);
        let x = Tensor::from_slice(&[1.0f32, 2.0, 4.0, 8.0, -1.0, 0.0, 1.0, 2.0]).view([1, 2, 4]);
        let e = Tensor::from_slice(&[0.3f32, -0.2, 0.9]).view([1, 3]);
        let plain = x.layer_norm([4], None::<&Tensor>, None::<&Tensor>, 1e-5, false);
        let m = film.modulation(&e);
        assert!(
            close(&film.forward(&x, &m), &plain, 1e-6),
            "zero-initialised FiLM must be the identity modulation"
        );
        tch::no_grad(|| {
            let mut bias = film.film.bias.as_ref().expect("bias").shallow_clone();
            bias.copy_(&Tensor::from_slice(&[
                1.0f32, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5,
            ]));
        });
        let m = film.modulation(&e);
        assert!(
            close(&film.forward(&x, &m), &(&plain * 2.0 + 0.5), 1e-6),
            "LN(x)·(1 + γ) + β with γ = 1, β = 0.5"
        );
    }

    #[test]
    fn rms_norm_with_bias_matches_the_formula() {
        let vs = nn::VarStore::new(Device::Cpu);
        let norm = RmsNorm::new(&ParamBuilder::new(vs.root(), 0), "rms", 2, 1e-8);
        tch::no_grad(|| {
            norm.weight
                .shallow_clone()
                .copy_(&Tensor::from_slice(&[2.0f32, 0.5]));
            norm.bias
                .shallow_clone()
                .copy_(&Tensor::from_slice(&[0.1f32, -0.1]));
        });
        let y = norm.forward(&Tensor::from_slice(&[3.0f32, 4.0]));
        let rms = (12.5f64).sqrt();
        assert!((y.double_value(&[0]) - (3.0 / rms * 2.0 + 0.1)).abs() < 1e-6);
        assert!((y.double_value(&[1]) - (4.0 / rms * 0.5 - 0.1)).abs() < 1e-6);
    }

    /// Reference joint attention computed with explicit softmax, with `sinks` zero keys/values appended.
    fn manual_attention(att: &JointAttention, qkv: &[Tensor], heads: i64, sinks: i64) -> Tensor {
        let joint = Tensor::cat(qkv, 1);
        let (b, l, w3) = (joint.size()[0], joint.size()[1], joint.size()[2]);
        let w = w3 / 3;
        let hd = w / heads;
        let p = joint.split(w, -1);
        let q = att
            .q_norm
            .forward(&p[0].reshape([b, l, heads, hd]))
            .transpose(1, 2);
        let mut k = att
            .k_norm
            .forward(&p[1].reshape([b, l, heads, hd]))
            .transpose(1, 2);
        let mut v = p[2].reshape([b, l, heads, hd]).transpose(1, 2);
        if sinks > 0 {
            let z = Tensor::zeros([b, heads, sinks, hd], (Kind::Float, Device::Cpu));
            k = Tensor::cat(&[&k, &z], 2);
            v = Tensor::cat(&[&v, &z], 2);
        }
        let logits = q.matmul(&k.transpose(2, 3)) / (hd as f64).sqrt();
        logits
            .softmax(-1, Kind::Float)
            .matmul(&v)
            .transpose(1, 2)
            .reshape([b, l, w])
    }

    #[test]
    fn joint_attention_matches_explicit_softmax_with_and_without_sinks() {
        for pad in [None, Some(8)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let att = JointAttention::new(&ParamBuilder::new(vs.root(), 3), 2, 4, 1e-8, pad);
            let s1 = Tensor::randn([2, 3, 24], (Kind::Float, Device::Cpu));
            let s2 = Tensor::randn([2, 2, 24], (Kind::Float, Device::Cpu));
            let out = att.forward(&[s1.shallow_clone(), s2.shallow_clone()]);
            assert_eq!(out[0].size(), vec![2, 3, 8]);
            assert_eq!(out[1].size(), vec![2, 2, 8]);
            let sinks = if pad.is_some() { 3 } else { 0 }; // 5 tokens padded to 8
            let manual = manual_attention(&att, &[s1, s2], 2, sinks);
            assert!(close(&Tensor::cat(&out, 1), &manual, 1e-5), "pad = {pad:?}");
        }
    }
}
