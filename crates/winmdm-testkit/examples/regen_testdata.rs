//! Writes the Rust-minted fixtures (tokens, JWKS, metadata) under `testdata/`.
//! Run through `regen-testdata.sh`, which first regenerates the PKI with Python.

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for (path, contents) in winmdm_testkit::fixtures::files() {
        let path = root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, contents)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
