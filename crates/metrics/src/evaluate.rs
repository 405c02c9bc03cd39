//! Runs the selected metric groups on an [`EvalCase`] and assembles the [`EvalReport`] (oracle schema,
//! oracle key order). Sinkhorn problems and per-perturbation work run in parallel with rayon; the
//! control-vs-control OT term is solved once and shared.

use crate::ap::average_precision;
use crate::case::EvalCase;
use crate::celleval::mean_euclidean_of_sq_dists as mean_euclid;
use crate::celleval::{
    celleval_input_ok, de_metrics, de_spearman_sig, discrimination_scores, mean_pairwise_euclidean,
    pearson_delta_top_de, pseudobulk_metrics, DeMetrics, DiscriminationMetric, OVERLAP_KS,
};
use crate::de::mannwhitney::pdex_de_against;
use crate::de::SortedReference;
use crate::deg::{deg_labels_scores_against, pooled_auprc, wilcoxon_self_check, DegLabelsScores};
use crate::error::MetricsError;
use crate::kernels::SinkFloat;
use crate::mmd::{mmd_mappfn_f32, mmd_rbf_of_sq_dists, MAPPFN_GAMMAS};
use crate::moments::moment_metrics;
use crate::pairwise::sq_dists;
use crate::pds::pds_mappfn;
use crate::perturbench::perturbench_metrics;
use crate::report::{CellEvalBlock, EvalReport, MetricValue, Ordered, PerturbationReport};
use crate::sinkhorn::{
    combine, pot_sinkhorn_divergence, reg_ot_cost, PointCloud, Precision, RegOtCost,
    SinkhornOptions,
};
use crate::stats::{col_means, mean, nanmean};
use crate::systema::{
    centroid_accuracy, pearson_delta_pert, pearson_delta_pert_on, perturbed_mean, top_k_abs_shift,
};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;
use std::sync::OnceLock;
use std::time::Instant;

/// Which metric families to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricGroups {
    /// MapPFN: w2 (+ obs terms, mag_ratio), mmd, moments, pds, deg_auprc, target_only_auprc.
    pub mappfn: bool,
    /// cell-eval pseudobulk: mse, mae, deltas, pearson_delta(_top20_de), discrimination scores,
    /// pearson_edistance.
    pub celleval: bool,
    /// cell-eval DE metrics (pdex Mann–Whitney): de_*, pr_auc, roc_auc, overlap/precision_at_N,
    /// de_spearman_sig.
    pub de: bool,
    /// PerturBench: rmse_average, cosine_logfc and their ranks.
    pub perturbench: bool,
    /// Systema: centroid_accuracy, corr_all_allpert, corr_20de_allpert.
    pub systema: bool,
    /// Distribution distances: energy_distance.
    pub distribution: bool,
}

impl MetricGroups {
    /// Name of MapPFN's metric group in [`MetricGroups::parse`] lists.
    pub const MAPPFN_NAME: &'static str = "mappfn";

    /// Every group.
    pub fn all() -> Self {
        MetricGroups {
            mappfn: true,
            celleval: true,
            de: true,
            perturbench: true,
            systema: true,
            distribution: true,
        }
    }

    /// No group (start for building a selection).
    pub fn none() -> Self {
        MetricGroups {
            mappfn: false,
            celleval: false,
            de: false,
            perturbench: false,
            systema: false,
            distribution: false,
        }
    }

    /// Parses a comma-separated list: `mappfn`, `celleval` (alias `cell-eval`), `de`, `perturbench`,
    /// `systema`, `distribution` (alias `energy`), `all`. Case-insensitive; blanks ignored.
    pub fn parse(s: &str) -> Result<Self, MetricsError> {
        let mut g = MetricGroups::none();
        for part in s
            .split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
        {
            match part.as_str() {
                Self::MAPPFN_NAME => g.mappfn = true,
                "celleval" | "cell-eval" | "cell_eval" => g.celleval = true,
                "de" => g.de = true,
                "perturbench" => g.perturbench = true,
                "systema" => g.systema = true,
                "distribution" | "energy" => g.distribution = true,
                "all" => g = MetricGroups::all(),
                other => return Err(MetricsError::UnknownGroup(other.to_string())),
            }
        }
        if g == MetricGroups::none() {
            return Err(MetricsError::UnknownGroup(s.to_string()));
        }
        Ok(g)
    }
}

impl Default for MetricGroups {
    fn default() -> Self {
        MetricGroups::all()
    }
}

/// Options of [`evaluate`]. `Default` computes MapPFN's float32 W2 only; the extra Sinkhorn variants
/// and the DE self-check reproduce the rest of the oracle's keys (see [`EvalOptions::oracle_parity`]).
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Solver settings of the reported `w2` (MapPFN: ε = 0.1, float32, threshold 1e-3).
    pub sinkhorn: SinkhornOptions,
    /// Also compute `w2_f64` and `mag_ratio_f64` (same loop in float64).
    pub w2_f64: bool,
    /// Also compute `w2_tight` (float64, threshold 1e-6, 20000 iterations) and `w2_tight_converged`.
    pub w2_tight: bool,
    /// Also compute `w2_pot` (POT-style log-domain Sinkhorn, threshold 1e-7).
    pub w2_pot: bool,
    /// Also compute `w2_numpy_replica` (float64, direct squared distances).
    pub w2_replica: bool,
    /// Also compute `deg_impl_check_max_abs_diff` (rank-sum vs pairwise Wilcoxon z).
    pub deg_self_check: bool,
    /// Also compute `mmd_mappfn_f32` (MapPFN's float32 MMD code as written; `mmd` is the float64 value).
    pub mmd_f32: bool,
    /// Gene names (for the discrimination score's target-gene exclusion); default `g0, g1, …` like the
    /// oracle.
    pub gene_names: Option<Vec<String>>,
    /// Systema's perturbed reference μ_pert (mean of *training* perturbation centroids); default: mean of
    /// the evaluated true centroids.
    pub systema_reference: Option<Array1<f64>>,
    /// Number of top DE genes for `pearson_delta_top20_de` and `corr_20de_allpert`.
    pub top_de_k: usize,
    /// Case label written to the report.
    pub case_name: Option<String>,
    /// The rows of each set that the distribution metrics see — W2 (Sinkhorn), MMD, energy distance and
    /// cell-eval's E-distance, whose cost grows with the product of two sets' sizes; pseudo-bulk and DE
    /// metrics always use every cell. `None` (the default): every row. Callers cap large sets with a seeded
    /// subsample (`cellshift evaluate --max-set-cells`).
    pub distribution_rows: Option<SetRows>,
}

/// A subset of rows per set of an [`EvalCase`] (`None`: every row of that set).
#[derive(Clone, Debug, Default)]
pub struct SetRows {
    /// Rows of the control cells.
    pub obs: Option<Vec<usize>>,
    /// Rows of each perturbation's real cells.
    pub trues: Vec<Option<Vec<usize>>>,
    /// Rows of each perturbation's predicted cells.
    pub preds: Vec<Option<Vec<usize>>>,
}

/// The cap on the cells per set of the distribution metrics that `cellshift evaluate` (and the Python
/// `cellshift.evaluate`) apply unless told otherwise.
pub const DEFAULT_MAX_SET_CELLS: usize = 500;

impl SetRows {
    /// Every set of `case` above `cap` cells (at least 2) cut to `cap` rows chosen by `pick(n, cap,
    /// stream)` — stream 0 for the controls, 1 + i for perturbation i's real cells, 1 + P + i for its
    /// predicted cells — which returns `None` to keep a set whole (callers pass a seeded sampler, e.g.
    /// `cellshift_data::seed::subsample_rows` with their seed). `None` when no set is cut.
    pub fn capped(
        case: &EvalCase,
        cap: usize,
        pick: &dyn Fn(usize, usize, u64) -> Option<Vec<usize>>,
    ) -> Option<SetRows> {
        let cap = cap.max(2);
        let p = case.n_perts() as u64;
        let rows = SetRows {
            obs: pick(case.obs.nrows(), cap, 0),
            trues: (0..p)
                .map(|i| pick(case.trues[i as usize].nrows(), cap, 1 + i))
                .collect(),
            preds: (0..p)
                .map(|i| pick(case.preds[i as usize].nrows(), cap, 1 + p + i))
                .collect(),
        };
        (rows.cut() > 0).then_some(rows)
    }

    /// How many sets are cut.
    pub fn cut(&self) -> usize {
        std::iter::once(&self.obs)
            .chain(&self.trues)
            .chain(&self.preds)
            .filter(|s| s.is_some())
            .count()
    }
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            sinkhorn: SinkhornOptions::default(),
            w2_f64: false,
            w2_tight: false,
            w2_pot: false,
            w2_replica: false,
            deg_self_check: false,
            mmd_f32: false,
            gene_names: None,
            systema_reference: None,
            top_de_k: 20,
            case_name: None,
            distribution_rows: None,
        }
    }
}

impl EvalOptions {
    /// Everything the oracle's golden files hold (all Sinkhorn variants and the DE self-check).
    pub fn oracle_parity() -> Self {
        EvalOptions {
            w2_f64: true,
            w2_tight: true,
            w2_pot: true,
            w2_replica: true,
            deg_self_check: true,
            mmd_f32: true,
            ..Default::default()
        }
    }
}

/// One Sinkhorn sub-problem of the evaluation.
#[derive(Clone, Copy)]
enum Cloud {
    Obs,
    True(usize),
    Pred(usize),
}

/// W2 results of one precision variant: per perturbation (true-pred, obs-true, obs-pred) divergences,
/// iteration counts and flags of the true-pred divergence.
struct W2Set {
    tp: Vec<f64>,
    ot: Vec<f64>,
    op: Vec<f64>,
    n_iters: Vec<[usize; 3]>,
    converged: Vec<[bool; 3]>,
}

fn w2_set<T: SinkFloat>(case: &EvalCase, opts: &SinkhornOptions, with_obs: bool) -> W2Set {
    let p = case.n_perts();
    let obs = PointCloud::<T>::new(case.obs.view());
    let (trues, preds): (Vec<_>, Vec<_>) = rayon::join(
        || {
            case.trues
                .par_iter()
                .map(|m| PointCloud::<T>::new(m.view()))
                .collect()
        },
        || {
            case.preds
                .par_iter()
                .map(|m| PointCloud::<T>::new(m.view()))
                .collect()
        },
    );
    let cloud = |c: Cloud| -> &PointCloud<T> {
        match c {
            Cloud::Obs => &obs,
            Cloud::True(i) => &trues[i],
            Cloud::Pred(i) => &preds[i],
        }
    };
    // task list: symmetric terms first (cheap), then cross terms
    let mut tasks: Vec<(Cloud, Cloud, bool)> = Vec::new();
    if with_obs {
        tasks.push((Cloud::Obs, Cloud::Obs, true));
    }
    for i in 0..p {
        tasks.push((Cloud::True(i), Cloud::True(i), true));
        tasks.push((Cloud::Pred(i), Cloud::Pred(i), true));
        tasks.push((Cloud::True(i), Cloud::Pred(i), false));
        if with_obs {
            tasks.push((Cloud::Obs, Cloud::True(i), false));
            tasks.push((Cloud::Obs, Cloud::Pred(i), false));
        }
    }
    // heaviest first for better load balance
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&k| tasks[k].2);
    let results: Vec<(usize, RegOtCost)> = order
        .par_iter()
        .map(|&k| {
            let (a, b, sym) = tasks[k];
            (k, reg_ot_cost(cloud(a), cloud(b), sym, opts))
        })
        .collect();
    let mut res = vec![
        RegOtCost {
            cost: f64::NAN,
            n_iters: 0,
            converged: false
        };
        tasks.len()
    ];
    for (k, r) in results {
        res[k] = r;
    }
    let (obs_k, per) = if with_obs { (Some(0), 5) } else { (None, 3) };
    let base = |i: usize| obs_k.map_or(0, |_| 1) + i * per;
    let n_obs = case.obs.nrows();
    let mut set = W2Set {
        tp: vec![],
        ot: vec![],
        op: vec![],
        n_iters: vec![],
        converged: vec![],
    };
    for i in 0..p {
        let b = base(i);
        let (tt, pp, tp) = (res[b], res[b + 1], res[b + 2]);
        let (nt, np) = (case.trues[i].nrows(), case.preds[i].nrows());
        set.tp.push(combine::<T>(
            tp.cost,
            tt.cost,
            pp.cost,
            nt,
            np,
            opts.epsilon,
        ));
        set.n_iters.push([tp.n_iters, tt.n_iters, pp.n_iters]);
        set.converged
            .push([tp.converged, tt.converged, pp.converged]);
        if let Some(ok) = obs_k {
            let oo = res[ok];
            let (ot, op) = (res[b + 3], res[b + 4]);
            set.ot.push(combine::<T>(
                ot.cost,
                oo.cost,
                tt.cost,
                n_obs,
                nt,
                opts.epsilon,
            ));
            set.op.push(combine::<T>(
                op.cost,
                oo.cost,
                pp.cost,
                n_obs,
                np,
                opts.epsilon,
            ));
        }
    }
    set
}

fn w2_for(case: &EvalCase, opts: &SinkhornOptions, with_obs: bool) -> W2Set {
    match opts.precision {
        Precision::F32 => w2_set::<f32>(case, opts, with_obs),
        Precision::F64 => w2_set::<f64>(case, opts, with_obs),
    }
}

/// Discrimination scores with ties resolved in sorted-name order, and the tie-free variant.
type ScoresWithTieFree = (Vec<f64>, Vec<f64>);

/// Per-perturbation results of the non-Sinkhorn metrics.
#[derive(Default)]
struct PertWork {
    mmd: f64,
    mmd_f32: Option<f64>,
    moments: Option<crate::moments::MomentMetrics>,
    deg: Option<DegLabelsScores>,
    deg_check: f64,
    top: Vec<usize>,
    pearson_top: f64,
    pseudo: Option<crate::celleval::PseudobulkMetrics>,
    de: Option<DeMetrics>,
    ed_real: f64,
    ed_pred: f64,
    energy: f64,
}

/// The Sinkhorn "W2" sets of MapPFN's metrics: the main float32 run and the optional reference variants.
#[derive(Default)]
struct W2Sets {
    main: Option<W2Set>,
    f64: Option<W2Set>,
    tight: Option<W2Set>,
    replica: Option<W2Set>,
    pot: Option<Vec<f64>>,
}

/// Metrics computed over all perturbations at once.
struct JointMetrics {
    pds: Option<(f64, Vec<f64>)>,
    disc: Vec<(DiscriminationMetric, ScoresWithTieFree)>,
    perturbench: Option<crate::perturbench::PerturbenchMetrics>,
    systema: Option<(Vec<f64>, Vec<f64>, Vec<f64>)>,
}

/// The per-gene means a case's metrics share: control `c`, true `mt` and predicted `mp` pseudo-bulks.
struct Means {
    c: ndarray::Array1<f64>,
    mt: Array2<f64>,
    mp: Array2<f64>,
}

/// Evaluates `case` with the selected `groups`. Validates the case first (gene counts, ≥ 2 cells per
/// matrix, finite values, control cells present) and returns a [`MetricsError`] naming the problem.
pub fn evaluate(
    case: &EvalCase,
    groups: &MetricGroups,
    opts: &EvalOptions,
) -> Result<EvalReport, MetricsError> {
    let t_total = Instant::now();
    case.validate()?;
    let gene_names = checked_gene_names(case, opts)?;
    let mut timing = Ordered::default();
    let capped = capped_sets(case, opts)?;
    let dist = capped.as_ref().unwrap_or(case);
    let t = Instant::now();
    let w2 = sinkhorn_sets(dist, groups, opts)?;
    timing.push("sinkhorn_s", t.elapsed().as_secs_f64());
    let means = Means {
        c: col_means(case.obs.view()),
        mt: stack_means(&case.trues),
        mp: stack_means(&case.preds),
    };
    let t = Instant::now();
    let work = per_perturbation_work(case, dist, groups, opts, &means);
    timing.push("per_perturbation_s", t.elapsed().as_secs_f64());
    let joint = joint_metrics(case, groups, opts, &means, &gene_names);
    let per: Vec<PerturbationReport> = (0..case.n_perts())
        .map(|i| PerturbationReport {
            name: case.names[i].clone(),
            values: perturbation_values(i, groups, &w2, &work[i], &joint),
        })
        .collect();
    let (mean_o, nanmean_o) = means_over_perturbations(&per);
    let (global, de_sig, ped) = global_metrics(case, groups, opts, &work, &joint);
    let cell_eval =
        (groups.celleval && groups.de).then(|| cell_eval_block(case, &work, &joint, de_sig, ped));
    timing.push("total_s", t_total.elapsed().as_secs_f64());
    Ok(EvalReport {
        case: opts.case_name.clone(),
        n_obs: case.obs.nrows(),
        n_genes: case.n_genes(),
        n_perts: case.n_perts(),
        per_perturbation: per,
        mean: mean_o,
        nanmean: nanmean_o,
        global,
        cell_eval,
        timing,
    })
}

/// The gene names of the report (given, or `g0`, `g1`, …), after checking the options' lengths.
fn checked_gene_names(case: &EvalCase, opts: &EvalOptions) -> Result<Vec<String>, MetricsError> {
    let d = case.n_genes();
    if let Some(g) = &opts.gene_names {
        if g.len() != d {
            return Err(MetricsError::LengthMismatch {
                what: "gene_names".into(),
                got: g.len(),
                expected: d,
            });
        }
    }
    if let Some(r) = &opts.systema_reference {
        if r.len() != d {
            return Err(MetricsError::GeneMismatch {
                what: "systema_reference".into(),
                got: r.len(),
                expected: d,
            });
        }
    }
    Ok(opts
        .gene_names
        .clone()
        .unwrap_or_else(|| (0..d).map(|j| format!("g{j}")).collect()))
}

/// The Sinkhorn divergences of every perturbation (MapPFN group), with the optional reference variants.
fn sinkhorn_sets(
    case: &EvalCase,
    groups: &MetricGroups,
    opts: &EvalOptions,
) -> Result<W2Sets, MetricsError> {
    let p = case.n_perts();
    let mut w2_main = None;
    let mut w2_64 = None;
    let mut w2_tight = None;
    let mut w2_rep = None;
    let mut w2_pot: Option<Vec<f64>> = None;
    if groups.mappfn {
        w2_main = Some(w2_for(case, &opts.sinkhorn, true));
        if opts.w2_f64 {
            w2_64 = Some(w2_for(
                case,
                &SinkhornOptions {
                    precision: Precision::F64,
                    ..opts.sinkhorn
                },
                true,
            ));
        }
        if opts.w2_tight {
            let o = SinkhornOptions {
                threshold: 1e-6,
                max_iterations: 20000,
                precision: Precision::F64,
                ..opts.sinkhorn
            };
            w2_tight = Some(w2_for(case, &o, false));
        }
        if opts.w2_replica {
            let o = SinkhornOptions {
                precision: Precision::F64,
                direct_cost: true,
                ..opts.sinkhorn
            };
            w2_rep = Some(w2_for(case, &o, false));
        }
        if opts.w2_pot {
            let v: Result<Vec<f64>, MetricsError> = (0..p)
                .into_par_iter()
                .map(|i| {
                    pot_sinkhorn_divergence(
                        case.trues[i].view(),
                        case.preds[i].view(),
                        opts.sinkhorn.epsilon,
                    )
                })
                .collect();
            w2_pot = Some(v?);
        }
    }
    Ok(W2Sets {
        main: w2_main,
        f64: w2_64,
        tight: w2_tight,
        replica: w2_rep,
        pot: w2_pot,
    })
}

/// The per-perturbation metrics other than Sinkhorn, computed in parallel over perturbations.
/// The case restricted to [`EvalOptions::distribution_rows`], or `None` when no set is restricted; an error
/// names a row out of range or a row list of the wrong length.
fn capped_sets(case: &EvalCase, opts: &EvalOptions) -> Result<Option<EvalCase>, MetricsError> {
    let Some(rows) = &opts.distribution_rows else {
        return Ok(None);
    };
    let p = case.n_perts();
    if rows.trues.len() != p || rows.preds.len() != p {
        return Err(MetricsError::LengthMismatch {
            what: "distribution_rows (one row list per perturbation)".into(),
            expected: p,
            got: rows.trues.len().min(rows.preds.len()),
        });
    }
    let take = |m: &Array2<f64>, r: &Option<Vec<usize>>| -> Result<Array2<f64>, MetricsError> {
        match r {
            None => Ok(m.clone()),
            Some(r) if r.len() >= 2 && r.iter().all(|&i| i < m.nrows()) => Ok(m.select(Axis(0), r)),
            Some(_) => Err(MetricsError::LengthMismatch {
                what: "distribution_rows (at least 2 rows, each within its set)".into(),
                expected: m.nrows(),
                got: r.as_ref().map_or(0, Vec::len),
            }),
        }
    };
    Ok(Some(EvalCase {
        obs: take(&case.obs, &rows.obs)?,
        trues: (0..p)
            .map(|i| take(&case.trues[i], &rows.trues[i]))
            .collect::<Result<_, _>>()?,
        preds: (0..p)
            .map(|i| take(&case.preds[i], &rows.preds[i]))
            .collect::<Result<_, _>>()?,
        names: case.names.clone(),
        targets: case.targets.clone(),
    }))
}

/// The squared distances between one perturbation's true (t), predicted (p) and control (o) sets that
/// MMD, the energy distance and cell-eval's E-distance share, each computed once, on first use, in the
/// orientation those metrics define (so values equal the separate computations exactly).
struct SetDistances<'a> {
    t: ArrayView2<'a, f64>,
    p: ArrayView2<'a, f64>,
    o: ArrayView2<'a, f64>,
    cache: [OnceLock<Vec<f64>>; 5],
}

impl<'a> SetDistances<'a> {
    fn new(t: ArrayView2<'a, f64>, p: ArrayView2<'a, f64>, o: ArrayView2<'a, f64>) -> Self {
        SetDistances {
            t,
            p,
            o,
            cache: Default::default(),
        }
    }

    fn get(&self, k: usize, x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> &[f64] {
        self.cache[k].get_or_init(|| sq_dists(x, y))
    }

    /// true–true.
    fn tt(&self) -> &[f64] {
        self.get(0, self.t, self.t)
    }

    /// predicted–predicted.
    fn pp(&self) -> &[f64] {
        self.get(1, self.p, self.p)
    }

    /// true–predicted.
    fn tp(&self) -> &[f64] {
        self.get(2, self.t, self.p)
    }

    /// true–control.
    fn to(&self) -> &[f64] {
        self.get(3, self.t, self.o)
    }

    /// predicted–control.
    fn po(&self) -> &[f64] {
        self.get(4, self.p, self.o)
    }
}

/// Per-perturbation metrics: means and DE on every cell of `case`; the distribution metrics (MMD, energy,
/// E-distance) on `dist`, the same case with its sets capped ([`capped_sets`]).
fn per_perturbation_work(
    case: &EvalCase,
    dist: &EvalCase,
    groups: &MetricGroups,
    opts: &EvalOptions,
    means: &Means,
) -> Vec<PertWork> {
    let p = case.n_perts();
    let (c, mt, mp) = (&means.c, &means.mt, &means.mp);
    let need_ed = groups.celleval;
    // Every perturbation is tested against the same controls: sort their columns once.
    let sorted_obs = (groups.mappfn || groups.de).then(|| SortedReference::new(case.obs.view()));
    let sigma_ctrl = if need_ed {
        mean_pairwise_euclidean(dist.obs.view(), dist.obs.view())
    } else {
        f64::NAN
    };
    (0..p)
        .into_par_iter()
        .map(|i| {
            let (tr, pr, ob) = (case.trues[i].view(), case.preds[i].view(), case.obs.view());
            let (dtr, dpr, dob) = (dist.trues[i].view(), dist.preds[i].view(), dist.obs.view());
            let mut w = PertWork::default();
            let d2 = SetDistances::new(dtr, dpr, dob);
            if groups.mappfn {
                w.mmd = mmd_rbf_of_sq_dists(d2.tt(), d2.pp(), d2.tp(), &MAPPFN_GAMMAS);
                w.mmd_f32 = opts.mmd_f32.then(|| mmd_mappfn_f32(dtr, dpr));
                w.moments = Some(moment_metrics(tr, pr));
                if let Some(sorted) = &sorted_obs {
                    w.deg = Some(deg_labels_scores_against(ob, sorted, tr, pr));
                }
                if opts.deg_self_check {
                    w.deg_check = wilcoxon_self_check(ob, tr, pr);
                }
            }
            if groups.celleval {
                let (s, top) =
                    pearson_delta_top_de(tr, ob, mt.row(i), mp.row(i), c.view(), opts.top_de_k);
                w.pearson_top = s;
                w.top = top;
                w.pseudo = Some(pseudobulk_metrics(mt.row(i), mp.row(i), c.view()));
                let (to, tt) = (mean_euclid(d2.to()), mean_euclid(d2.tt()));
                w.ed_real = 2.0 * to - tt - sigma_ctrl;
                let (po, pp) = (mean_euclid(d2.po()), mean_euclid(d2.pp()));
                w.ed_pred = 2.0 * po - pp - sigma_ctrl;
            }
            if groups.de {
                if let Some(sorted) = &sorted_obs {
                    w.de = Some(de_metrics(
                        &pdex_de_against(tr, ob, sorted),
                        &pdex_de_against(pr, ob, sorted),
                    ));
                }
            }
            if groups.distribution {
                w.energy = 2.0 * mean_euclid(d2.tp()) - mean_euclid(d2.tt()) - mean_euclid(d2.pp());
            }
            w
        })
        .collect()
}

/// The metrics computed over all perturbations at once: MapPFN's PDS, cell-eval's discrimination scores,
/// PerturBench's and Systema's.
fn joint_metrics(
    case: &EvalCase,
    groups: &MetricGroups,
    opts: &EvalOptions,
    means: &Means,
    gene_names: &[String],
) -> JointMetrics {
    let p = case.n_perts();
    let (c, mt, mp) = (&means.c, &means.mt, &means.mp);
    let pds = if groups.mappfn {
        pds_mappfn(mt, mp)
    } else {
        None
    };
    let disc: Vec<(DiscriminationMetric, ScoresWithTieFree)> = if groups.celleval {
        let re = mt - &c.view().insert_axis(ndarray::Axis(0));
        let pe = mp - &c.view().insert_axis(ndarray::Axis(0));
        [
            DiscriminationMetric::L1,
            DiscriminationMetric::L2,
            DiscriminationMetric::Cosine,
        ]
        .into_iter()
        .map(|m| {
            (
                m,
                discrimination_scores(&re, &pe, &case.names, gene_names, m),
            )
        })
        .collect()
    } else {
        vec![]
    };
    let pb = groups
        .perturbench
        .then(|| perturbench_metrics(mt, mp, c.view()));
    let sys = groups.systema.then(|| {
        let mu = opts
            .systema_reference
            .clone()
            .unwrap_or_else(|| perturbed_mean(mt));
        let acc = centroid_accuracy(mt, mp);
        let all: Vec<f64> = (0..p)
            .map(|i| pearson_delta_pert(mt.row(i), mp.row(i), mu.view()))
            .collect();
        let top: Vec<f64> = (0..p)
            .map(|i| {
                let genes = top_k_abs_shift(mt.row(i), c.view(), opts.top_de_k);
                pearson_delta_pert_on(mt.row(i), mp.row(i), mu.view(), &genes)
            })
            .collect();
        (acc, all, top)
    });

    JointMetrics {
        pds,
        disc,
        perturbench: pb,
        systema: sys,
    }
}

/// The metric values of perturbation `i`, in the golden files' key order.
fn perturbation_values(
    i: usize,
    groups: &MetricGroups,
    w2: &W2Sets,
    w: &PertWork,
    joint: &JointMetrics,
) -> Ordered<MetricValue> {
    let mut v: Ordered<MetricValue> = Ordered::default();
    let fl = |x: f64| MetricValue::Float(x);
    if let Some(s) = &w2.main {
        v.push("w2", fl(s.tp[i]));
        v.push(
            "w2_n_iters",
            MetricValue::IntList(s.n_iters[i].iter().map(|&k| k as i64).collect()),
        );
        v.push(
            "w2_converged",
            MetricValue::BoolList(s.converged[i].to_vec()),
        );
        v.push("w2_obs_true", fl(s.ot[i]));
        v.push("w2_obs_pred", fl(s.op[i]));
        v.push("mag_ratio", fl(s.op[i] / (s.ot[i] + 1e-8)));
    }
    if let Some(s) = &w2.f64 {
        v.push("w2_f64", fl(s.tp[i]));
        v.push("mag_ratio_f64", fl(s.op[i] / (s.ot[i] + 1e-8)));
    }
    if let Some(s) = &w2.tight {
        v.push("w2_tight", fl(s.tp[i]));
        v.push(
            "w2_tight_converged",
            MetricValue::BoolList(s.converged[i].to_vec()),
        );
    }
    if let Some(s) = &w2.pot {
        v.push("w2_pot", fl(s[i]));
    }
    if let Some(s) = &w2.replica {
        v.push("w2_numpy_replica", fl(s.tp[i]));
    }
    if groups.mappfn {
        v.push("mmd", fl(w.mmd));
        if let Some(m) = w.mmd_f32 {
            v.push("mmd_mappfn_f32", fl(m));
        }
        if let Some(m) = w.moments {
            v.push("mean_rmse", fl(m.mean_rmse));
            v.push("var_rmse", fl(m.var_rmse));
            v.push("mean_r2", fl(m.mean_r2));
            v.push("var_r2", fl(m.var_r2));
        }
        if let Some((_, ranks)) = &joint.pds {
            v.push("pds_rank", fl(ranks[i]));
        }
        if let Some(dg) = &w.deg {
            v.push(
                "deg_n_true",
                MetricValue::Int(dg.labels.iter().filter(|&&b| b).count() as i64),
            );
            v.push(
                "deg_n_pred_sig",
                MetricValue::Int(dg.scores.iter().filter(|&&s| s > 0.0).count() as i64),
            );
            v.push("deg_auprc", fl(average_precision(&dg.labels, &dg.scores)));
        }
    }
    if groups.celleval {
        v.push(
            "top20_de_genes",
            MetricValue::IntList(w.top.iter().map(|&g| g as i64).collect()),
        );
        v.push("pearson_delta_top20_de", fl(w.pearson_top));
        if let Some(m) = w.pseudo {
            v.push("mse", fl(m.mse));
            v.push("mae", fl(m.mae));
            v.push("mse_delta", fl(m.mse_delta));
            v.push("mae_delta", fl(m.mae_delta));
            v.push("pearson_delta", fl(m.pearson_delta));
        }
        for (m, (s, tf)) in &joint.disc {
            v.push(format!("discrimination_score_{}", m.name()), fl(s[i]));
            v.push(
                format!("discrimination_score_{}_tie_free", m.name()),
                fl(tf[i]),
            );
        }
    }
    if let Some(m) = &w.de {
        v.push("de_nsig_real", MetricValue::Int(m.nsig_real as i64));
        v.push("de_nsig_pred", MetricValue::Int(m.nsig_pred as i64));
        v.push("de_spearman_lfc_sig", fl(m.spearman_lfc_sig));
        v.push("de_direction_match", fl(m.direction_match));
        v.push("de_sig_genes_recall", fl(m.sig_genes_recall));
        v.push("pr_auc", fl(m.pr_auc));
        v.push("roc_auc", fl(m.roc_auc));
        v.push("overlap_at_N", fl(m.overlap_at[0]));
        v.push("precision_at_N", fl(m.precision_at[0]));
    }
    if groups.distribution {
        v.push("energy_distance", fl(w.energy));
    }
    if let Some(m) = &joint.perturbench {
        v.push("rmse_average", fl(m.rmse_average[i]));
        v.push("rmse_rank_average", fl(m.rmse_rank_average[i]));
        v.push("cosine_logfc", fl(m.cosine_logfc[i]));
        v.push("cosine_rank_logfc", fl(m.cosine_rank_logfc[i]));
    }
    if let Some((acc, all, top)) = &joint.systema {
        v.push("centroid_accuracy", fl(acc[i]));
        v.push("corr_all_allpert", fl(all[i]));
        v.push("corr_20de_allpert", fl(top[i]));
    }
    v
}

/// The plain and NaN-ignoring means over perturbations of every numeric per-perturbation key.
fn means_over_perturbations(per: &[PerturbationReport]) -> (Ordered<f64>, Ordered<f64>) {
    let mut mean_o = Ordered::default();
    let mut nanmean_o = Ordered::default();
    if let Some(first) = per.first() {
        for k in first.values.keys() {
            let vals: Option<Vec<f64>> = per
                .iter()
                .map(|r| r.values.get(k).and_then(|v| v.as_f64()))
                .collect();
            if let Some(vals) = vals {
                mean_o.push(k, mean(&vals));
                nanmean_o.push(k, nanmean(&vals));
            }
        }
    }

    (mean_o, nanmean_o)
}

/// The global (joint) metrics, with the cell-eval `de_spearman_sig` and `pearson_edistance` values the
/// cell-eval block repeats.
fn global_metrics(
    case: &EvalCase,
    groups: &MetricGroups,
    opts: &EvalOptions,
    work: &[PertWork],
    joint: &JointMetrics,
) -> (Ordered<MetricValue>, Option<f64>, Option<f64>) {
    let d = case.n_genes();
    let pds = &joint.pds;
    let mut global: Ordered<MetricValue> = Ordered::default();
    if groups.mappfn {
        global.push(
            "pds",
            MetricValue::Float(pds.as_ref().map_or(f64::NAN, |x| x.0)),
        );
        let items: Vec<DegLabelsScores> = work.iter().filter_map(|w| w.deg.clone()).collect();
        let n_degs: usize = items
            .iter()
            .map(|d| d.labels.iter().filter(|&&b| b).count())
            .sum();
        let n_total: usize = items.iter().map(|d| d.labels.len()).sum();
        global.push("deg_auprc", MetricValue::Float(pooled_auprc(&items)));
        global.push(
            "deg_auprc_baseline",
            MetricValue::Float(if n_degs > 0 {
                n_degs as f64 / n_total as f64
            } else {
                f64::NAN
            }),
        );
        global.push("deg_n_degs", MetricValue::Int(n_degs as i64));
        global.push("deg_n_total", MetricValue::Int(n_total as i64));
        if let Some(tg) = &case.targets {
            let labels: Vec<bool> = items
                .iter()
                .flat_map(|d| d.labels.iter().copied())
                .collect();
            let scores: Vec<f64> = tg
                .iter()
                .flat_map(|&t| (0..d).map(move |g| if t >= 0 && g as i64 == t { 1.0 } else { 0.0 }))
                .collect();
            global.push(
                "target_only_auprc",
                MetricValue::Float(average_precision(&labels, &scores)),
            );
        }
        if opts.deg_self_check {
            global.push(
                "deg_impl_check_max_abs_diff",
                MetricValue::Float(work.iter().map(|w| w.deg_check).fold(0.0, f64::max)),
            );
        }
    }
    let de_items: Vec<DeMetrics> = work.iter().filter_map(|w| w.de.clone()).collect();
    let de_sig = (!de_items.is_empty()).then(|| de_spearman_sig(&de_items));
    if let Some(s) = de_sig {
        global.push("de_spearman_sig", MetricValue::Float(s));
    }
    let ped = groups.celleval.then(|| {
        let r: Vec<f64> = work.iter().map(|w| w.ed_real).collect();
        let q: Vec<f64> = work.iter().map(|w| w.ed_pred).collect();
        crate::celleval::pearson_edistance(&r, &q)
    });
    if let Some(x) = ped {
        global.push("pearson_edistance", MetricValue::Float(x));
    }

    (global, de_sig, ped)
}

/// The block named as cell-eval's own output (per perturbation and `agg_mean`), or why it was skipped.
fn cell_eval_block(
    case: &EvalCase,
    work: &[PertWork],
    joint: &JointMetrics,
    de_sig: Option<f64>,
    ped: Option<f64>,
) -> CellEvalBlock {
    let p = case.n_perts();
    let disc = &joint.disc;
    let mut blocks = vec![case.obs.view()];
    blocks.extend(case.trues.iter().map(|m| m.view()));
    let mut blocks_p = vec![case.obs.view()];
    blocks_p.extend(case.preds.iter().map(|m| m.view()));
    if !(celleval_input_ok(&blocks) && celleval_input_ok(&blocks_p)) {
        return CellEvalBlock {
            status: "skipped".into(),
            reason: Some(
                "cell-eval requires non-negative log1p data in [0,15) or integer counts".into(),
            ),
            per_perturbation: vec![],
            agg_mean: Ordered::default(),
        };
    }
    let mut rows = Vec::with_capacity(p);
    for i in 0..p {
        let (Some(m), Some(ps)) = (work[i].de.as_ref(), work[i].pseudo) else {
            continue;
        };
        let mut o: Ordered<f64> = Ordered::default();
        o.push("overlap_at_N", m.overlap_at[0]);
        for (k, kk) in OVERLAP_KS.iter().enumerate() {
            o.push(format!("overlap_at_{kk}"), m.overlap_at[k + 1]);
        }
        o.push("precision_at_N", m.precision_at[0]);
        for (k, kk) in OVERLAP_KS.iter().enumerate() {
            o.push(format!("precision_at_{kk}"), m.precision_at[k + 1]);
        }
        o.push("de_spearman_sig", de_sig.unwrap_or(f64::NAN));
        o.push("de_direction_match", m.direction_match);
        o.push("de_spearman_lfc_sig", m.spearman_lfc_sig);
        o.push("de_sig_genes_recall", m.sig_genes_recall);
        o.push("de_nsig_counts_real", m.nsig_real as f64);
        o.push("de_nsig_counts_pred", m.nsig_pred as f64);
        o.push("pr_auc", m.pr_auc);
        o.push("roc_auc", m.roc_auc);
        o.push("pearson_delta", ps.pearson_delta);
        o.push("mse", ps.mse);
        o.push("mae", ps.mae);
        o.push("mse_delta", ps.mse_delta);
        o.push("mae_delta", ps.mae_delta);
        for (mm, (s, _)) in disc {
            o.push(format!("discrimination_score_{}", mm.name()), s[i]);
        }
        o.push("pearson_edistance", ped.unwrap_or(f64::NAN));
        rows.push((case.names[i].clone(), o));
    }
    let mut agg = Ordered::default();
    if let Some((_, first)) = rows.first() {
        for k in first.keys() {
            let vals: Vec<f64> = rows.iter().filter_map(|(_, o)| o.get(k).copied()).collect();
            agg.push(k, nanmean(&vals));
        }
    }
    CellEvalBlock {
        status: "ok".into(),
        reason: None,
        per_perturbation: rows,
        agg_mean: agg,
    }
}

fn stack_means(ms: &[Array2<f64>]) -> Array2<f64> {
    let d = ms.first().map_or(0, |m| m.ncols());
    let mut out = Array2::<f64>::zeros((ms.len(), d));
    for (i, m) in ms.iter().enumerate() {
        out.row_mut(i).assign(&col_means(m.view()));
    }
    out
}
