//! Parallel map that stays on the calling thread for a handful of items. A rayon call from
//! outside the pool hands the work to a worker and sleeps until it is done: two thread
//! wake-ups, which on a loaded machine cost more (milliseconds of scheduling delay) than
//! re-rendering a few nodes. In-place re-parses touch a few nodes, full builds thousands.

use rayon::prelude::*;

/// Fewer items than this run sequentially on the calling thread.
pub const SEQUENTIAL_BELOW: usize = 32;

/// `items.map(f)` in order: in parallel for many items, on this thread for a few.
pub fn map<T, R, F>(items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    if items.len() < SEQUENTIAL_BELOW {
        items.into_iter().map(f).collect()
    } else {
        items.into_par_iter().map(f).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_either_way() {
        let few: Vec<usize> = (0..3).collect();
        let many: Vec<usize> = (0..1000).collect();
        assert_eq!(map(few, |x| x * 2), vec![0, 2, 4]);
        assert_eq!(
            map(many.clone(), |x| x + 1),
            many.iter().map(|x| x + 1).collect::<Vec<_>>()
        );
    }
}
