//! Structural and statistical properties of the task sampler (MapPFN spec §1.2).

mod common;

use std::collections::{HashMap, HashSet};

use cellshift_data::{
    CellReplacement, DataError, PerturbationData, SamplerConfig, Split, SplitConfig, SplitRole,
    Task, TaskSampler,
};
use common::synthetic;

/// Condition code of each row of a cell set (column COND).
fn codes(rows: ndarray::ArrayView2<'_, f32>) -> HashSet<u32> {
    rows.column(1).iter().map(|&v| v as u32).collect()
}

fn ids(rows: ndarray::ArrayView2<'_, f32>) -> Vec<usize> {
    rows.column(0).iter().map(|&v| v as usize).collect()
}

fn setup() -> (PerturbationData, Split) {
    let data = synthetic(&[("a", 20), ("b", 30), ("c", 20)], 12, 15, None);
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    (data, split)
}

fn cfg(k: usize, n: usize, role: SplitRole) -> SamplerConfig {
    SamplerConfig {
        k,
        n_cells: n,
        query_role: role,
        ..SamplerConfig::default()
    }
}

fn code_of(data: &PerturbationData, cond: usize) -> u32 {
    let c = &data.conditions()[cond];
    data.x[[c.cells[0], 1]] as u32
}

#[test]
fn tasks_have_the_documented_shapes_and_contents() {
    let (data, split) = setup();
    let sampler = TaskSampler::new(&data, split.clone(), cfg(4, 10, SplitRole::Test)).unwrap();
    for i in 0..sampler.len() {
        let task: Task = sampler.task(0, i).unwrap();
        assert_eq!(task.k(), 4);
        assert_eq!(task.observational.dim(), (10, data.n_genes()));
        assert_eq!(task.context_cells.dim(), (4, 10, data.n_genes()));
        assert_eq!(task.experiments.len() + 1, 5);
        assert_eq!(task.treatment_labels().len(), 5);
        let target = task.target.as_ref().unwrap();
        // observational cells are the context's controls; the target is the query condition
        assert_eq!(codes(task.observational.view()), HashSet::from([0]));
        let ci = data.context_index(&task.context).unwrap();
        let q = data.treatment_index(task.query_label()).unwrap();
        let qc = data
            .conditions()
            .iter()
            .position(|c| c.context == ci && c.treatment == q)
            .unwrap();
        assert_eq!(split.role[qc], SplitRole::Test);
        assert_eq!(codes(target.view()), HashSet::from([code_of(&data, qc)]));
        // query encoding: one-hot of its gene, last row
        let gene = data.gene_index(task.query_label()).unwrap();
        assert_eq!(task.query_treatment()[gene], 1.0);
        assert_eq!(task.query_treatment().sum(), 1.0);
        // context experiments: distinct train conditions of the same context, never the query
        let mut seen = HashSet::new();
        for s in 0..task.k() {
            let slot = task.context_cells.index_axis(ndarray::Axis(0), s);
            let code = codes(slot);
            assert_eq!(code.len(), 1, "a context set holds one condition");
            let code = *code.iter().next().unwrap();
            assert!(
                seen.insert(code),
                "context treatments are drawn without replacement"
            );
            let cond = (0..data.conditions().len())
                .find(|&j| code_of(&data, j) == code)
                .unwrap();
            assert_eq!(data.conditions()[cond].context, ci);
            assert_eq!(split.role[cond], SplitRole::Train);
            assert_ne!(task.treatment_labels()[s], task.query_label());
            let g = data.gene_index(task.treatment_labels()[s]).unwrap();
            assert_eq!(task.one_hot(&task.experiments[s]).unwrap()[g], 1.0);
        }
    }
}

#[test]
fn cells_are_drawn_without_replacement_when_enough_and_with_replacement_otherwise() {
    // condition G0 of context a has 3 cells, the others 12
    let few = |_c: usize, t: usize| if t == 0 { 3 } else { 12 };
    let data = synthetic(&[("a", 10)], 12, 15, Some(&few));
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    let g0 = data
        .conditions()
        .iter()
        .position(|c| c.cells.len() == 3)
        .unwrap();
    let sampler = TaskSampler::new(
        &data,
        split.clone(),
        SamplerConfig {
            require_k_available: false,
            ..cfg(0, 10, SplitRole::Train)
        },
    )
    .unwrap();
    let task = sampler.task_for(g0, 0, 5).unwrap();
    let target = ids(task.target.as_ref().unwrap().view());
    let distinct: HashSet<usize> = target.iter().copied().collect();
    assert_eq!(target.len(), 10);
    assert!(
        distinct.len() <= 3
            && distinct
                .iter()
                .all(|c| data.conditions()[g0].cells.contains(c))
    );
    let obs = ids(task.observational.view());
    assert_eq!(
        obs.iter().collect::<HashSet<_>>().len(),
        10,
        "15 controls ≥ 10: no repeats"
    );
    // the Never policy refuses conditions with too few cells (here every perturbed condition has 3)
    let small = synthetic(&[("a", 10)], 3, 15, None);
    let small_split = Split::new(&small, &SplitConfig::default()).unwrap();
    let never = SamplerConfig {
        with_replacement_policy: CellReplacement::Never,
        require_k_available: false,
        ..cfg(0, 10, SplitRole::Train)
    };
    let err = TaskSampler::new(&small, small_split.clone(), never.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("fewer than the 10 per set"), "{err}");
    assert!(TaskSampler::new(
        &small,
        small_split,
        SamplerConfig {
            n_cells: 3,
            ..never
        }
    )
    .is_ok());
}

#[test]
fn k_zero_gives_no_context_sets() {
    let (data, split) = setup();
    let sampler = TaskSampler::new(&data, split, cfg(0, 5, SplitRole::Val)).unwrap();
    let task = sampler.task(3, 0).unwrap();
    assert_eq!(task.k(), 0);
    assert_eq!(task.context_cells.dim(), (0, 5, data.n_genes()));
    assert_eq!(task.experiments.len() + 1, 1);
}

#[test]
fn tasks_are_reproducible_independently_of_the_draw_history() {
    let (data, split) = setup();
    let a = TaskSampler::new(&data, split.clone(), cfg(3, 6, SplitRole::Train)).unwrap();
    let b = TaskSampler::new(&data, split.clone(), cfg(3, 6, SplitRole::Train)).unwrap();
    // draw many tasks from `a` first, then compare selected tasks with a fresh sampler in another order
    for e in 0..3 {
        for i in 0..a.len() {
            a.task(e, i).unwrap();
        }
    }
    for &(e, i) in &[(2u64, 5usize), (0, 0), (1, 17), (2, 5)] {
        let x = a.task(e, i).unwrap();
        let y = b.task(e, i).unwrap();
        assert_eq!(x.observational, y.observational);
        assert_eq!(x.context_cells, y.context_cells);
        assert_eq!(x.experiments, y.experiments);
        assert_eq!(x.query, y.query);
        assert_eq!(x.target, y.target);
    }
    // another seed gives other tasks
    let c = TaskSampler::new(
        &data,
        split,
        SamplerConfig {
            seed: 43,
            ..cfg(3, 6, SplitRole::Train)
        },
    )
    .unwrap();
    assert_ne!(
        a.task(0, 0).unwrap().observational,
        c.task(0, 0).unwrap().observational
    );
    // task_for depends only on (query, k, seed)
    let q = a.queries()[4];
    assert_eq!(
        a.task_for(q, 2, 9).unwrap().context_cells,
        b.task_for(q, 2, 9).unwrap().context_cells
    );
}

#[test]
fn an_epoch_is_a_shuffled_pass_over_the_queries() {
    let (data, split) = setup();
    let s = TaskSampler::new(&data, split, cfg(2, 4, SplitRole::Train)).unwrap();
    let o0 = s.epoch_order(0);
    let o1 = s.epoch_order(1);
    let mut sorted = o0.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, s.queries());
    assert_ne!(o0, o1);
    assert_ne!(o0, s.queries().to_vec());
    assert!(s.task(0, s.len()).is_err());
}

#[test]
fn context_treatments_are_uniform_over_the_pool() {
    // one query condition, a pool of 9 other train treatments, K = 3: each appears with probability 1/3
    let (data, split) = setup();
    let s = TaskSampler::new(&data, split.clone(), cfg(3, 2, SplitRole::Test)).unwrap();
    let q = s.queries()[0];
    let ctx = data.conditions()[q].context;
    let pool = s.pool_of(ctx).len();
    let mut freq: HashMap<String, usize> = HashMap::new();
    let trials = 3000u64;
    for seed in 0..trials {
        let t = s.task_for(q, 3, seed).unwrap();
        for l in &t.treatment_labels()[..3] {
            *freq.entry(l.to_string()).or_default() += 1;
        }
    }
    assert_eq!(freq.len(), pool);
    let p = 3.0 / pool as f64;
    let expect = trials as f64 * p;
    let sd = (trials as f64 * p * (1.0 - p)).sqrt();
    for (l, &n) in &freq {
        assert!(
            (n as f64 - expect).abs() < 5.0 * sd,
            "{l}: {n} vs {expect:.0} ± {sd:.1}"
        );
    }
}

#[test]
fn too_few_pool_treatments_is_an_error_unless_allowed() {
    let (data, split) = setup();
    let err = TaskSampler::new(&data, split.clone(), cfg(40, 4, SplitRole::Train))
        .unwrap_err()
        .to_string();
    assert!(err.contains("K = 40"), "{err}");
    let s = TaskSampler::new(
        &data,
        split,
        SamplerConfig {
            require_k_available: false,
            ..cfg(40, 4, SplitRole::Train)
        },
    )
    .unwrap();
    let task = s.task(0, 0).unwrap();
    let ctx = data.context_index(&task.context).unwrap();
    assert_eq!(
        task.k(),
        s.pool_of(ctx).len() - 1,
        "all other pool treatments are used"
    );
}

#[test]
fn absent_conditions_and_inference_queries() {
    let data = synthetic(&[("a", 12), ("b", 6)], 4, 6, None);
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    let s = TaskSampler::new(
        &data,
        split,
        SamplerConfig {
            require_k_available: false,
            ..cfg(2, 3, SplitRole::Test)
        },
    )
    .unwrap();
    // G10 exists in context a but not in b
    let err = s.task_for_label("b", "G10", 2, 1).unwrap_err();
    assert!(matches!(err, DataError::EmptyCondition { .. }), "{err}");
    assert!(err.to_string().contains("(b, G10)"));
    // a prediction for that unmeasured pair: no target, one-hot query
    let t = s.inference_task("b", "G10", 2, 1).unwrap();
    assert!(t.target.is_none());
    assert_eq!(t.query_treatment()[data.gene_index("G10").unwrap()], 1.0);
    assert_eq!(t.context, "b");
    // an unmeasured gene cannot be encoded
    let err = s.inference_task("b", "NOT_A_GENE", 2, 1).unwrap_err();
    assert!(matches!(err, DataError::GeneNotMeasured { .. }));
}
