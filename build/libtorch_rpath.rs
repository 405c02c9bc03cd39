//! Build script shared by the crates whose binaries link libtorch: embeds libtorch's library folder as
//! an rpath so `cellshift` and the test binaries run without `LD_LIBRARY_PATH`.
//! `LIBTORCH` is set (as an absolute path) by `.cargo/config.toml`; scripts/setup.sh unpacks libtorch there.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        let lib = std::path::Path::new(&dir).join("lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
