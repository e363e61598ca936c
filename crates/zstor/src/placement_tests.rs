//! Placement: examples, error cases, and optimality against exhaustive search.

use super::*;
use proptest::prelude::*;

fn rules(k: usize, n: usize, g: usize, r: usize) -> Rules {
    Rules {
        k,
        n,
        redundant_groups: g,
        redundant_nodes: r,
    }
}

#[test]
fn single_group_without_redundancy() {
    assert_eq!(plan(&[6], &rules(4, 6, 0, 0)).unwrap(), vec![6]);
    assert_eq!(
        plan(&[5], &rules(4, 6, 0, 0)),
        Err(PlacementError::TooFewBackends { n: 6, available: 5 })
    );
}

#[test]
fn group_redundancy_spreads_evenly() {
    let counts = plan(&[4, 4, 4], &rules(4, 6, 1, 0)).unwrap();
    assert_eq!(counts, vec![2, 2, 2]);
    assert!(plan(&[3, 3], &rules(4, 6, 1, 0)).is_err());
}

#[test]
fn node_redundancy_may_prefer_fewer_groups() {
    // Spreading 6 over three groups of 6 with r = 2 leaves 0; one group leaves 4.
    let counts = plan(&[6, 6, 6], &rules(4, 6, 0, 2)).unwrap();
    assert_eq!(surviving(&counts, &rules(4, 6, 0, 2)), 4);
}

#[test]
fn no_underflow_on_extreme_rules() {
    assert!(matches!(
        plan(&[2], &rules(1, 2, 3, 0)),
        Err(PlacementError::TooFewGroups { .. })
    ));
    assert!(matches!(
        plan(&[3, 3], &rules(1, 2, 0, 100)),
        Err(PlacementError::Unsatisfiable { best: 0, .. })
    ));
    assert!(matches!(
        plan(&[], &rules(1, 2, 0, 0)),
        Err(PlacementError::TooFewBackends { .. })
    ));
    assert!(matches!(
        plan(&[3], &rules(0, 2, 0, 0)),
        Err(PlacementError::InvalidCode { .. })
    ));
    let msg = plan(&[3, 3], &rules(4, 6, 1, 0)).unwrap_err().to_string();
    assert!(
        msg.contains("at best 3 shard(s) survive, 4 needed"),
        "{msg}"
    );
}

#[test]
fn choose_gives_distinct_slots() {
    let slots = choose(&[3, 2, 4], &rules(3, 7, 0, 0), 12345).unwrap();
    assert_eq!(slots.len(), 7);
    let set: std::collections::HashSet<_> = slots.iter().collect();
    assert_eq!(set.len(), 7);
}

/// Best survivors over every distribution, by brute force.
fn exhaustive(sizes: &[usize], r: &Rules) -> usize {
    fn go(
        sizes: &[usize],
        i: usize,
        left: usize,
        counts: &mut Vec<usize>,
        r: &Rules,
        best: &mut usize,
    ) {
        if i == sizes.len() {
            if left == 0 {
                *best = (*best).max(surviving(counts, r));
            }
            return;
        }
        for c in 0..=sizes[i].min(left) {
            counts.push(c);
            go(sizes, i + 1, left - c, counts, r, best);
            counts.pop();
        }
    }
    let mut best = 0;
    go(sizes, 0, r.n, &mut Vec::new(), r, &mut best);
    best
}

proptest! {
    #[test]
    fn plan_is_optimal(
        sizes in prop::collection::vec(0usize..6, 1..5),
        n in 1usize..12,
        k in 1usize..12,
        g in 0usize..3,
        r in 0usize..3,
    ) {
        let rl = rules(k.min(n), n, g, r);
        let total: usize = sizes.iter().sum();
        let groups = sizes.iter().filter(|&&s| s > 0).count();
        match plan(&sizes, &rl) {
            Ok(counts) => {
                prop_assert_eq!(counts.iter().sum::<usize>(), n);
                prop_assert!(counts.iter().zip(&sizes).all(|(c, s)| c <= s));
                let s = surviving(&counts, &rl);
                prop_assert!(s >= rl.k);
                prop_assert_eq!(s, exhaustive(&sizes, &rl));
            }
            Err(PlacementError::TooFewBackends { .. }) => prop_assert!(total < n),
            Err(PlacementError::TooFewGroups { .. }) => prop_assert!(g >= groups),
            Err(PlacementError::Unsatisfiable { best, .. }) => {
                prop_assert!(total >= n && g < groups);
                prop_assert_eq!(best, exhaustive(&sizes, &rl));
                prop_assert!(best < rl.k);
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}
