//! Disjoint sets, which join verified near-duplicate pairs into clusters (connected
//! components).

/// Disjoint sets with path halving and union by size.
pub(super) struct UnionFind {
    parent: Vec<usize>,
    /// The number of elements in each root's set (stale for elements that are not roots).
    pub(super) size: Vec<usize>,
}

impl UnionFind {
    /// `n` elements, each in a set of its own.
    pub(super) fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    /// The root of `x`'s set, halving the path on the way.
    pub(super) fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    /// Joins the sets of `a` and `b`, the smaller under the larger.
    pub(super) fn union(&mut self, a: usize, b: usize) {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        if self.size[ra] < self.size[rb] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb] = ra;
        self.size[ra] += self.size[rb];
    }
}
