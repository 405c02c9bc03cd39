//! Cell / gene selections and the plan of slab reads that serves them: selected indices are sorted,
//! grouped into runs of consecutive indices, and nearby runs are merged into bounded blocks so that a
//! selection costs few HDF5 calls and never loads far more than it needs.

use std::ops::Range;

use crate::error::DataError;

/// Merge two runs when the elements between them number at most this (reading them is cheaper than
/// another library call and a second decompression of the shared chunk).
const MAX_GAP_ELEMENTS: usize = 1 << 16;
/// Largest block read at once, in elements (bounds the temporary buffers at a few tens of MB).
const MAX_BLOCK_ELEMENTS: usize = 1 << 23;

/// A validated selection along one axis of length `len`.
#[derive(Clone, Debug)]
pub(crate) enum Pick {
    /// Every index, in order.
    All(usize),
    /// Some indices in a caller-given order.
    Some {
        /// Axis length.
        len: usize,
        /// The requested indices in output order.
        requested: Vec<usize>,
        /// The requested indices sorted ascending.
        sorted: Vec<usize>,
        /// For each position in `sorted`, its position in the output.
        dest: Vec<usize>,
    },
}

impl Pick {
    /// Validates a selection: every index `< len`, no index twice. `what` names the axis (`cell`).
    pub(crate) fn new(
        selection: Option<&[usize]>,
        len: usize,
        what: &str,
    ) -> Result<Pick, DataError> {
        let Some(requested) = selection else {
            return Ok(Pick::All(len));
        };
        if let Some(&bad) = requested.iter().find(|&&i| i >= len) {
            return Err(DataError::Invalid(format!(
                "{what} index {bad} is out of range: the file has {len} {what}s (indices 0..{len})"
            )));
        }
        let mut order: Vec<usize> = (0..requested.len()).collect();
        order.sort_by_key(|&k| requested[k]);
        let sorted: Vec<usize> = order.iter().map(|&k| requested[k]).collect();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(DataError::Invalid(format!(
                "{what} index {} is selected twice; select each {what} at most once",
                w[0]
            )));
        }
        Ok(Pick::Some {
            len,
            requested: requested.to_vec(),
            sorted,
            dest: order,
        })
    }

    /// Number of selected indices.
    pub(crate) fn n_out(&self) -> usize {
        match self {
            Pick::All(len) => *len,
            Pick::Some { requested, .. } => requested.len(),
        }
    }

    /// Length of the axis selected from.
    pub(crate) fn axis_len(&self) -> usize {
        match self {
            Pick::All(len) | Pick::Some { len, .. } => *len,
        }
    }

    /// True when every index is selected in file order.
    pub(crate) fn is_identity(&self) -> bool {
        match self {
            Pick::All(_) => true,
            Pick::Some { len, requested, .. } => {
                requested.len() == *len && requested.iter().enumerate().all(|(i, &r)| i == r)
            }
        }
    }

    /// True when the output order is ascending file order (possibly with gaps).
    pub(crate) fn is_ascending(&self) -> bool {
        match self {
            Pick::All(_) => true,
            Pick::Some { dest, .. } => dest.iter().enumerate().all(|(i, &d)| i == d),
        }
    }

    /// The selected indices sorted ascending.
    pub(crate) fn sorted(&self) -> Vec<usize> {
        match self {
            Pick::All(len) => (0..*len).collect(),
            Pick::Some { sorted, .. } => sorted.clone(),
        }
    }

    /// The selected indices in output order.
    pub(crate) fn requested(&self) -> Vec<usize> {
        match self {
            Pick::All(len) => (0..*len).collect(),
            Pick::Some { requested, .. } => requested.clone(),
        }
    }

    /// For each sorted position, the output position.
    pub(crate) fn dest(&self) -> Vec<usize> {
        match self {
            Pick::All(len) => (0..*len).collect(),
            Pick::Some { dest, .. } => dest.clone(),
        }
    }

    /// Maps every file index to its output position, `u32::MAX` when not selected.
    pub(crate) fn file_to_output(&self) -> Vec<u32> {
        match self {
            Pick::All(len) => (0..*len as u32).collect(),
            Pick::Some { len, requested, .. } => {
                let mut map = vec![u32::MAX; *len];
                for (out, &i) in requested.iter().enumerate() {
                    map[i] = out as u32;
                }
                map
            }
        }
    }

    /// Maximal runs of consecutive selected indices, ascending.
    pub(crate) fn runs(&self) -> Vec<Range<usize>> {
        match self {
            Pick::All(len) => {
                if *len == 0 {
                    Vec::new()
                } else {
                    std::iter::once(0..*len).collect()
                }
            }
            Pick::Some { sorted, .. } => {
                let mut runs: Vec<Range<usize>> = Vec::new();
                for &i in sorted {
                    match runs.last_mut() {
                        Some(run) if run.end == i => run.end = i + 1,
                        _ => runs.push(i..i + 1),
                    }
                }
                runs
            }
        }
    }
}

/// One slab read: the axis range `span` covering the runs `runs`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Block {
    /// Range of axis indices read in one call.
    pub span: Range<usize>,
    /// The selected runs inside `span`.
    pub runs: Vec<Range<usize>>,
}

/// Groups runs into blocks. `offset(i)` is the element offset of axis index `i` in the dataset (for a
/// dense matrix `i * row_width`, for a sparse one `indptr[i]`); it must be non-decreasing. Runs longer
/// than the block limit are split; neighbouring runs are merged when the gap between them is small.
pub(crate) fn plan_blocks(runs: &[Range<usize>], offset: impl Fn(usize) -> usize) -> Vec<Block> {
    let mut pieces: Vec<Range<usize>> = Vec::new();
    for run in runs {
        let mut start = run.start;
        while start < run.end {
            let mut end = start + 1;
            // Grow the piece while it stays within the block limit (binary search on the offsets).
            let (mut lo, mut hi) = (end, run.end);
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if offset(mid) - offset(start) <= MAX_BLOCK_ELEMENTS {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            end = end.max(lo);
            pieces.push(start..end);
            start = end;
        }
    }
    let mut blocks: Vec<Block> = Vec::new();
    for piece in pieces {
        if let Some(block) = blocks.last_mut() {
            let gap = offset(piece.start) - offset(block.span.end);
            let merged = offset(piece.end) - offset(block.span.start);
            if gap <= MAX_GAP_ELEMENTS && merged <= MAX_BLOCK_ELEMENTS {
                block.span.end = piece.end;
                match block.runs.last_mut() {
                    Some(last) if last.end == piece.start => last.end = piece.end,
                    _ => block.runs.push(piece),
                }
                continue;
            }
        }
        blocks.push(Block {
            span: piece.clone(),
            runs: vec![piece],
        });
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_rejects_out_of_range_and_repeats() {
        assert!(Pick::new(Some(&[0, 3]), 3, "cell").is_err());
        let err = Pick::new(Some(&[1, 2, 1]), 3, "gene")
            .unwrap_err()
            .to_string();
        assert!(err.contains("selected twice"), "{err}");
    }

    #[test]
    fn pick_orders_and_runs() {
        let p = Pick::new(Some(&[5, 1, 2, 9]), 10, "cell").unwrap();
        assert_eq!(p.sorted(), vec![1, 2, 5, 9]);
        assert_eq!(p.dest(), vec![1, 2, 0, 3]);
        assert_eq!(p.runs(), vec![1..3, 5..6, 9..10]);
        assert!(!p.is_ascending());
        let map = p.file_to_output();
        assert_eq!((map[5], map[1], map[9], map[0]), (0, 1, 3, u32::MAX));
    }

    #[test]
    fn blocks_merge_small_gaps_and_split_large_runs() {
        // Rows of 10 elements: runs far apart (gap > limit) stay separate, close ones merge.
        let far = MAX_GAP_ELEMENTS / 10 + 10;
        let runs = vec![0..2, 4..5, far..far + 1];
        let blocks = plan_blocks(&runs, |i| i * 10);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].span, 0..5);
        assert_eq!(blocks[0].runs, vec![0..2, 4..5]);
        assert_eq!(blocks[1].span, far..far + 1);
        // One huge run is split into pieces of at most the block limit.
        let n = 3 * MAX_BLOCK_ELEMENTS / 100;
        let whole: Vec<Range<usize>> = std::iter::once(0..n).collect();
        let blocks = plan_blocks(&whole, |i| i * 100);
        assert!(blocks.len() >= 3);
        assert!(blocks
            .iter()
            .all(|b| (b.span.end - b.span.start) * 100 <= MAX_BLOCK_ELEMENTS));
        let covered: usize = blocks.iter().map(|b| b.span.len()).sum();
        assert_eq!(covered, n);
    }
}
