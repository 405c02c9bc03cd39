//! `cellshift.preprocess`: the command line's `preprocess` on an AnnData in memory (normalise, log1p, gene
//! panel or highly variable genes, pseudo-bulk), with the Python call's spellings and messages.

use cellshift_data::preprocess::{LogBase, NormalizeTarget};

/// The normalisation and log base of the Python call (`normalize`: "median", a positive number or
/// "none"; `log1p`: "e", "2", "10" or "none"), or an error naming the valid spellings.
pub fn transforms(
    normalize: &str,
    log1p: &str,
) -> anyhow::Result<(Option<NormalizeTarget>, Option<LogBase>)> {
    let normalize = NormalizeTarget::parse_choice(normalize).ok_or_else(|| {
        anyhow::anyhow!(
            "normalize `{normalize}` is not valid; use \"median\", a positive number such as 10000, or None"
        )
    })?;
    let log1p = LogBase::parse_choice(log1p).ok_or_else(|| {
        anyhow::anyhow!("log1p `{log1p}` is not valid; use True (natural), 2, 10 or False")
    })?;
    Ok((normalize, log1p))
}
