//! Shard placement: how many of the `n` shards each group receives, and on which backends,
//! so that losing `redundant_groups` whole groups plus `redundant_nodes` nodes in each of the
//! other groups still leaves at least `k` shards.
//!
//! Owns only arithmetic on group sizes (all of it checked: 0-stor v2 underflowed here). Must
//! not touch: backends, health checks or the network; callers pass the backends usable now.
//!
//! # How a plan is found
//! With `c_i` shards in group `i`, the worst loss removes the `g` groups holding the most
//! shards and `r` shards from every other group, so `Σ max(c_i − r, 0)` over all groups but the
//! `g` largest survives. Every group holding shards "wastes" `r` of them, so for each number
//! `u` of groups used we take the `u` largest groups, give each `r` shards, and water-fill the
//! rest as evenly as their capacity allows (an even spread minimises what the `g` largest hold);
//! any remainder that cannot exceed `r` anywhere is parked on the other groups. The best `u`
//! wins. `tests::plan_is_optimal` checks this against exhaustive search.

/// Code and redundancy rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Shards needed to rebuild.
    pub k: usize,
    /// Shards written.
    pub n: usize,
    /// Whole groups that may be lost.
    pub redundant_groups: usize,
    /// Nodes that may be lost in each remaining group.
    pub redundant_nodes: usize,
}

/// Why no placement exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Fewer backends than shards.
    #[error("{n} shards need {n} distinct backends, only {available} available")]
    TooFewBackends {
        /// Shards to place.
        n: usize,
        /// Backends available.
        available: usize,
    },
    /// `redundant_groups` leaves no group standing.
    #[error("redundant_groups is {redundant_groups} but only {groups} group(s) are available; at least one must survive")]
    TooFewGroups {
        /// Groups available.
        groups: usize,
        /// Configured group redundancy.
        redundant_groups: usize,
    },
    /// Every spread of the shards loses too many.
    #[error("no placement of {n} shards survives losing {redundant_groups} group(s) and {redundant_nodes} node(s) per group: at best {best} shard(s) survive, {k} needed")]
    Unsatisfiable {
        /// Shards to place.
        n: usize,
        /// Shards needed.
        k: usize,
        /// Most shards that can be guaranteed to survive.
        best: usize,
        /// Configured group redundancy.
        redundant_groups: usize,
        /// Configured node redundancy.
        redundant_nodes: usize,
    },
    /// `k` is zero or not below `n`.
    #[error("invalid code: k = {k}, n = {n} (need 1 <= k <= n)")]
    InvalidCode {
        /// Shards needed.
        k: usize,
        /// Shards written.
        n: usize,
    },
}

/// Shards guaranteed to survive the worst loss allowed by `rules`, for `counts[i]` shards in
/// group `i`.
pub fn surviving(counts: &[usize], rules: &Rules) -> usize {
    let mut effective: Vec<usize> = counts
        .iter()
        .map(|&c| c.saturating_sub(rules.redundant_nodes))
        .collect();
    // The adversary removes the groups with the most shards: that is also the most effective
    // shards, since effective = max(c - r, 0) is monotone in c.
    effective.sort_unstable_by(|a, b| b.cmp(a));
    effective.iter().skip(rules.redundant_groups).sum()
}

/// How many shards each group gets (indexed like `group_sizes`), or why none works.
pub fn plan(group_sizes: &[usize], rules: &Rules) -> Result<Vec<usize>, PlacementError> {
    let &Rules {
        k,
        n,
        redundant_groups: g,
        redundant_nodes: r,
    } = rules;
    if k == 0 || k > n {
        return Err(PlacementError::InvalidCode { k, n });
    }
    let available: usize = group_sizes.iter().sum();
    if available < n {
        return Err(PlacementError::TooFewBackends { n, available });
    }
    let groups = group_sizes.iter().filter(|&&s| s > 0).count();
    if g >= groups {
        return Err(PlacementError::TooFewGroups {
            groups,
            redundant_groups: g,
        });
    }
    // Groups by decreasing size (stable, so equal sizes keep config order).
    let mut order: Vec<usize> = (0..group_sizes.len()).collect();
    order.sort_by(|&a, &b| group_sizes[b].cmp(&group_sizes[a]));

    let mut best: Option<(usize, Vec<usize>)> = None;
    for used in (g + 1)..=groups {
        let Some(counts) = spread(group_sizes, &order, used, n, r) else {
            continue;
        };
        let s = surviving(&counts, rules);
        if best.as_ref().is_none_or(|(b, _)| s > *b) {
            best = Some((s, counts));
        }
    }
    match best {
        Some((s, counts)) if s >= k => Ok(counts),
        other => Err(PlacementError::Unsatisfiable {
            n,
            k,
            best: other.map(|(s, _)| s).unwrap_or(0),
            redundant_groups: g,
            redundant_nodes: r,
        }),
    }
}

/// Spread `n` shards with `used` groups (the largest) carrying more than `r` each where
/// possible; `None` when they do not fit.
fn spread(sizes: &[usize], order: &[usize], used: usize, n: usize, r: usize) -> Option<Vec<usize>> {
    let mut counts = vec![0usize; sizes.len()];
    let mut left = n;
    // Base: r (or as many as fit) in each used group.
    for &i in &order[..used] {
        let c = r.min(sizes[i]).min(left);
        counts[i] = c;
        left -= c;
    }
    // Water-fill the used groups one shard at a time, always the least loaded with room.
    while left > 0 {
        let pick = order[..used]
            .iter()
            .copied()
            .filter(|&i| counts[i] < sizes[i])
            .min_by_key(|&i| counts[i]);
        match pick {
            Some(i) => {
                counts[i] += 1;
                left -= 1;
            }
            None => break,
        }
    }
    // Park what remains on the other groups, at most r each (beyond r they would count as
    // used groups, which another value of `used` covers).
    for &i in &order[used..] {
        if left == 0 {
            break;
        }
        let c = r.min(sizes[i]).min(left);
        counts[i] = c;
        left -= c;
    }
    (left == 0).then_some(counts)
}

/// One shard's slot: group index and backend index inside that group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    /// Index into the groups passed to [`choose`].
    pub group: usize,
    /// Index into that group's backends.
    pub backend: usize,
}

/// Pick concrete backends for a plan: `n` distinct slots, shard `i` on slot `i`. `seed`
/// rotates the choice inside each group so that load spreads over objects.
pub fn choose(
    group_sizes: &[usize],
    rules: &Rules,
    seed: u64,
) -> Result<Vec<Slot>, PlacementError> {
    let counts = plan(group_sizes, rules)?;
    let mut slots = Vec::with_capacity(rules.n);
    for (group, (&count, &size)) in counts.iter().zip(group_sizes).enumerate() {
        if size == 0 {
            continue;
        }
        let start = (seed % size as u64) as usize;
        slots.extend((0..count).map(|j| Slot {
            group,
            backend: (start + j) % size,
        }));
    }
    Ok(slots)
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
