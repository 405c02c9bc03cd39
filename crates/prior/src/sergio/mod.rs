//! SERGIO (steady-state mode, sergio-rs semantics): network compilation, the Euler–Maruyama simulator,
//! knock-outs and the random SERGIO prior.

pub mod knockout;
pub mod network;
pub mod prior;
pub mod simulate;
