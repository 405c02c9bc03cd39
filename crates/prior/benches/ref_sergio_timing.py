#!/usr/bin/env python
"""Times the reference engine (sergio-rs 0.2.3, as driven by the oracle / MapPFN) on a GRN in the JSON
network format: control + knock-out of every gene, 200 cells each, technical noise with MapPFN's
discard rule. Run with the oracle venv:

    python3 crates/prior/benches/ref_sergio_timing.py target/bench_grn.json [--reps 3]

The GRN is the one `cargo bench -p cellshift-prior --bench sergio` writes (same network as our timing).
sergio-rs only offers random MR profiles, so the rates come from MrProfile.from_random (the timing does
not depend on the rate values). Prints the median and minimum wall time and process CPU time per complete GRN.
"""
import argparse
import json
import time

import numpy as np
import sergio_rs


def build(spec):
    grn = sergio_rs.GRN()
    for e in spec["edges"]:
        s, t = e["source"], e["target"]
        grn.add_interaction(reg=sergio_rs.Gene(name=s, decay=spec["decay"][s]),
                            tar=sergio_rs.Gene(name=t, decay=spec["decay"][t]), k=float(e["K"]), h=None, n=int(e["n"]))
    grn.set_mrs()
    return grn


def noise(x, seed, tn):
    """MapPFN _simulate_sergio: drop all-zero genes, discard on an all-zero cell, noise, re-embed."""
    nzr, nzc = x.sum(1) > 0, x.sum(0) > 0
    if not np.any(nzr) or not np.all(nzc):
        return None
    y = np.zeros_like(x)
    y[np.ix_(nzr, nzc)] = sergio_rs.add_technical_noise_custom(np.ascontiguousarray(x[nzr][:, nzc]), seed=seed, **tn)
    return y


def one_grn(spec, seed):
    tn = {k: float(spec["technical_noise"][k]) for k in ("outlier_mu", "library_mu", "library_sigma", "dropout_k", "dropout_q")}
    in_net = {e["source"] for e in spec["edges"]} | {e["target"] for e in spec["edges"]}
    out = []
    for ko in [None] + list(spec["genes"]):
        grn = build(spec)  # rebuilt per condition: ko_perturbation mutates shared genes
        prof = sergio_rs.MrProfile.from_random(grn, num_cell_types=1, low_range=(0.5, 2.0), high_range=(3.0, 5.0), seed=seed)
        if ko is not None and ko in in_net:
            grn, prof = grn.ko_perturbation(gene_name=ko, mr_profile=prof)
        sim = sergio_rs.Sim(grn, num_cells=int(spec["num_cells"]), noise_s=float(spec["noise_s"]),
                            safety_iter=int(spec["safety_iter"]), scale_iter=int(spec["scale_iter"]), dt=float(spec["dt"]), seed=seed)
        df = sim.simulate(prof)
        x = df.drop("Genes").to_numpy()
        out.append(noise(x, seed, tn))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("grn_json")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    spec = json.load(open(a.grn_json))
    one_grn(spec, 0)  # warm-up
    times, cpu = [], []
    for r in range(a.reps):
        t, c = time.perf_counter(), time.process_time()
        res = one_grn(spec, 1 + r)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    times.sort()
    cpu.sort()
    print(json.dumps(dict(engine="sergio_rs 0.2.3", genes=len(spec["genes"]), edges=len(spec["edges"]),
                          conditions=len(res), wall_median_s=times[len(times) // 2], wall_min_s=times[0],
                          cpu_median_s=cpu[len(cpu) // 2], cpu_min_s=cpu[0], reps=a.reps)))


if __name__ == "__main__":
    main()
