use cellshift_metrics::kernels::lse_rows;
use std::time::Instant;
fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    println!("avx2 {} fma {}", std::is_x86_feature_detected!("avx2"), std::is_x86_feature_detected!("fma"));
    let n = 200;
    let m: Vec<f32> = (0..n * n).map(|k| ((k * 7919) % 1000) as f32 * 0.5).collect();
    let s: Vec<f32> = (0..n).map(|k| (k as f32 * 0.1).sin() * 30.0).collect();
    let mut out = vec![0.0f32; n];
    let reps = 20000;
    let t = Instant::now();
    let mut acc = 0.0f32;
    for _ in 0..reps {
        if mode == "sum" {
            for (o, row) in out.iter_mut().zip(m.chunks_exact(n)) {
                *o = row.iter().zip(&s).map(|(a, b)| b - a).fold(0.0, |x, y| x + y);
            }
        } else {
            lse_rows(&m, n, &s, &mut out);
        }
        acc += out[3];
    }
    println!("{mode}: {:.3} ns/element wall ({acc})", t.elapsed().as_secs_f64() / (reps * n * n) as f64 * 1e9);
}
