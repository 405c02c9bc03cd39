//! The random SERGIO prior (MapPFN spec §6): one random GRN per data set, its SERGIO parameters, the
//! control and every knock-out, technical noise drawn per GRN.

use std::collections::{BTreeMap, HashMap};

use rand::Rng;

use cellshift_data::PerturbationData;

use crate::error::{check_positive, check_range, PriorError};
use crate::grn::{MasterRegulatorForcing, RandomGrn};
use crate::noise::{TechnicalNoiseParams, TechnicalNoiseRanges};
use crate::rng::{derive_seed, rng_from_seed, uniform_f64};
use crate::sergio::knockout::{assemble, simulate_conditions};
use crate::spec_json::{GrnSpec, KnockoutMode, RandomProfileRecipe, SpecParts};

/// How the Hill coefficient of the edges into a target is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HillCoefficients {
    /// Reference code: `n = ⌊U(1.5, 2.5)⌋ ∈ {1, 2}` per target gene.
    #[default]
    Truncated,
    /// Paper wording: continuous `n ~ U(1.5, 2.5)` per target gene.
    Continuous,
}

/// Parameters of the random SERGIO prior; `Default` is the reference configuration (50 genes, 200
/// cells, one cell type, paired, technical noise on).
#[derive(Clone, Debug, PartialEq)]
pub struct SergioPriorConfig {
    /// Genes per GRN.
    pub n_genes: usize,
    /// Cells per condition (and cell type).
    pub n_cells: usize,
    /// Cell types (each gets its own MR production profile and becomes its own context `grn/ct<k>`).
    pub n_cell_types: usize,
    /// Paired ("counterfactual") seeds across conditions.
    pub paired: bool,
    /// Apply technical noise (raw counts) or return clean expression.
    pub technical_noise: bool,
    /// Ranges of the per-GRN technical-noise parameters.
    pub noise_ranges: TechnicalNoiseRanges,
    /// Hill-coefficient semantics.
    pub hill: HillCoefficients,
    /// Pass the sign of the cycle-breaking weight to the simulator (repression); the reference makes
    /// every interaction activating (`false`).
    pub signed_interactions: bool,
    /// Master-regulator forcing semantics.
    pub mr_forcing: MasterRegulatorForcing,
    /// Knock-out semantics.
    pub knockout_mode: KnockoutMode,
    /// Decay range, reference (0.5, 1.0).
    pub decay_range: (f64, f64),
    /// Interaction-strength range, reference (1, 5).
    pub k_range: (f64, f64),
    /// Low MR production-rate range, reference (0.5, 2).
    pub mr_low_range: (f64, f64),
    /// High MR production-rate range, reference (3, 5).
    pub mr_high_range: (f64, f64),
    /// Process-noise scale range `ζ ~ U(…)`, reference (0.5, 1.5).
    pub noise_s_range: (f64, f64),
    /// Burn-in steps (150).
    pub safety_iter: usize,
    /// Steps per cell (10).
    pub scale_iter: usize,
    /// Step size (0.01).
    pub dt: f64,
    /// Simulate conditions in parallel on the rayon pool.
    pub parallel: bool,
}

impl Default for SergioPriorConfig {
    fn default() -> Self {
        SergioPriorConfig {
            n_genes: 50,
            n_cells: 200,
            n_cell_types: 1,
            paired: true,
            technical_noise: true,
            noise_ranges: TechnicalNoiseRanges::default(),
            hill: HillCoefficients::Truncated,
            signed_interactions: false,
            mr_forcing: MasterRegulatorForcing::Code,
            knockout_mode: KnockoutMode::RemoveGene,
            decay_range: (0.5, 1.0),
            k_range: (1.0, 5.0),
            mr_low_range: (0.5, 2.0),
            mr_high_range: (3.0, 5.0),
            noise_s_range: (0.5, 1.5),
            safety_iter: 150,
            scale_iter: 10,
            dt: 0.01,
            parallel: true,
        }
    }
}

impl SergioPriorConfig {
    /// Checks every parameter; errors name the parameter and the fix.
    pub fn validate(&self) -> Result<(), PriorError> {
        if self.n_genes < 3 {
            return Err(PriorError::invalid(
                "n_genes",
                self.n_genes,
                "the graph generator starts from a 3-cycle",
                "use n_genes ≥ 3 (reference 50)",
            ));
        }
        if self.n_cells == 0 || self.n_cell_types == 0 || self.scale_iter == 0 {
            return Err(PriorError::invalid(
                "n_cells / n_cell_types / scale_iter",
                format!(
                    "{} / {} / {}",
                    self.n_cells, self.n_cell_types, self.scale_iter
                ),
                "must all be ≥ 1",
                "use the reference 200 / 1 / 10",
            ));
        }
        check_range("decay_range", self.decay_range, "reference [0.5, 1.0]")?;
        check_positive(
            "decay_range.low",
            self.decay_range.0,
            "decay rates must be > 0 (reference [0.5, 1.0])",
        )?;
        for (name, r) in [
            ("k_range", self.k_range),
            ("mr_low_range", self.mr_low_range),
            ("mr_high_range", self.mr_high_range),
            ("noise_s_range", self.noise_s_range),
        ] {
            check_range(name, r, "give [low, high] with low ≤ high")?;
            if r.0 < 0.0 {
                return Err(PriorError::invalid(
                    name,
                    r.0,
                    "must not be negative",
                    "use non-negative rates / scales",
                ));
            }
        }
        check_positive("dt", self.dt, "use a positive step (reference 0.01)")?;
        Ok(())
    }
}

/// Sub-streams of a GRN seed.
const STREAM_GRAPH: u64 = 0;
const STREAM_PARAMS: u64 = 1;
const STREAM_TECH: u64 = 2;
const STREAM_ZETA: u64 = 3;
/// Attempts with derived seeds when a GRN's control condition is unusable.
const MAX_ATTEMPTS: u64 = 16;

/// The random SERGIO prior.
#[derive(Clone, Debug, Default)]
pub struct SergioPrior {
    /// The configuration used by [`crate::stream::DatasetSource::sample`].
    pub config: SergioPriorConfig,
}

/// One random GRN with its SERGIO parameters and simulation seed, before simulation.
#[derive(Clone, Debug)]
pub struct SampledGrn {
    /// The graph.
    pub grn: RandomGrn,
    /// The resolved spec (genes `GENE0000`…, rates realised from the MR-profile seed).
    pub spec: GrnSpec,
    /// Simulation seed (control; knock-outs derive theirs when unpaired).
    pub sim_seed: u64,
}

impl SergioPrior {
    /// Draws a GRN and its parameters from `seed` (spec §6.1–6.4): graph stream, parameter stream
    /// (decay per gene, Hill value per gene, `K` per edge in row-major order, MR-profile seed, simulation
    /// seed) and an independent technical-noise stream.
    pub fn sample_grn(
        cfg: &SergioPriorConfig,
        seed: u64,
        context: &str,
    ) -> Result<SampledGrn, PriorError> {
        cfg.validate()?;
        let n = cfg.n_genes;
        let grn = RandomGrn::sample(
            n,
            cfg.mr_forcing,
            &mut rng_from_seed(derive_seed(seed, STREAM_GRAPH)),
        );
        let mut prm = rng_from_seed(derive_seed(seed, STREAM_PARAMS));
        let decay: Vec<f64> = (0..n)
            .map(|_| uniform_f64(&mut prm, cfg.decay_range.0, cfg.decay_range.1))
            .collect();
        let hill_value: Vec<f64> = (0..n).map(|_| uniform_f64(&mut prm, 1.5, 2.5)).collect();
        let genes: Vec<String> = (0..n).map(|g| format!("GENE{g:04}")).collect();
        let edges: Vec<(String, String, f64, f64)> = grn
            .edges
            .iter()
            .zip(&grn.beta)
            .map(|(&(r, t), &b)| {
                let k = uniform_f64(&mut prm, cfg.k_range.0, cfg.k_range.1);
                let k = if cfg.signed_interactions && b < 0.0 {
                    -k
                } else {
                    k
                };
                let hn = match cfg.hill {
                    HillCoefficients::Truncated => hill_value[t].floor(),
                    HillCoefficients::Continuous => hill_value[t],
                };
                (genes[r].clone(), genes[t].clone(), k, hn)
            })
            .collect();
        let profile_seed = prm.gen::<u64>();
        let sim_seed = prm.gen::<u64>();
        let technical_noise = if cfg.technical_noise {
            Some(TechnicalNoiseParams::sample(
                &cfg.noise_ranges,
                &mut rng_from_seed(derive_seed(seed, STREAM_TECH)),
            ))
        } else {
            None
        };
        let parts = SpecParts {
            name: context.to_string(),
            decay: genes.iter().cloned().zip(decay).collect::<HashMap<_, _>>(),
            genes,
            edges,
            default_decay: f64::NAN,
            mr_rates: BTreeMap::new(),
            recipe: Some(RandomProfileRecipe {
                low_range: cfg.mr_low_range,
                high_range: cfg.mr_high_range,
                seed: profile_seed,
                num_cell_types: cfg.n_cell_types,
            }),
            orphan_rates: BTreeMap::new(),
            noise_s: noise_scale(cfg, sim_seed),
            num_cells: cfg.n_cells,
            safety_iter: cfg.safety_iter,
            scale_iter: cfg.scale_iter,
            dt: cfg.dt,
            seed: sim_seed,
            knockout: None,
            technical_noise,
            paired: cfg.paired,
            knockout_mode: cfg.knockout_mode,
        };
        let spec = GrnSpec::build(parts, None)?;
        Ok(SampledGrn {
            grn,
            spec,
            sim_seed,
        })
    }

    /// One random GRN from `seed`: control + all knock-outs, `n_cells` cells each, raw counts (technical
    /// noise on) or clean expression. Context `grn_<seed>`. If the control condition is unusable (an
    /// all-zero cell; the reference discards such GRNs) a new GRN is drawn from a derived seed, at most
    /// 16 times. Knock-outs with an all-zero cell are omitted, as in the reference.
    pub fn sample_dataset(
        cfg: &SergioPriorConfig,
        seed: u64,
    ) -> Result<PerturbationData, PriorError> {
        Self::sample_named(cfg, seed, &format!("grn_{seed}"))
    }

    /// As [`SergioPrior::sample_dataset`] with an explicit context name.
    pub fn sample_named(
        cfg: &SergioPriorConfig,
        seed: u64,
        context: &str,
    ) -> Result<PerturbationData, PriorError> {
        let mut last_err = None;
        for attempt in 0..MAX_ATTEMPTS {
            let grn_seed = if attempt == 0 {
                seed
            } else {
                derive_seed(seed, 1000 + attempt)
            };
            let sampled = Self::sample_grn(cfg, grn_seed, context)?;
            let spec = &sampled.spec;
            let knockouts: Vec<usize> = (0..cfg.n_genes).collect();
            let paired = cfg.paired;
            let base_noise = spec.noise_s;
            let noise_of = move |_ko: Option<usize>, s: u64| {
                if paired {
                    base_noise
                } else {
                    noise_scale(cfg, s)
                }
            };
            let conditions =
                simulate_conditions(spec, &knockouts, sampled.sim_seed, cfg.parallel, &noise_of)?;
            match assemble(spec, context, conditions) {
                Ok(report) => return Ok(report.data),
                Err(e @ PriorError::SimulationFailed { .. }) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("at least one attempt"))
    }
}

/// Process-noise scale `ζ ~ U(noise_s_range)` from the stream of a simulation seed.
fn noise_scale(cfg: &SergioPriorConfig, sim_seed: u64) -> f64 {
    uniform_f64(
        &mut rng_from_seed(derive_seed(sim_seed, STREAM_ZETA)),
        cfg.noise_s_range.0,
        cfg.noise_s_range.1,
    )
}
