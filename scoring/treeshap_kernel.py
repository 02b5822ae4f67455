"""The compiled execution of `leadscore.scoring.treeshap.TreeShap`'s lookups (Numba, rows over cores).

For each row: every node's decision (LightGBM's, as `TreeShap._numeric` and
`_categorical` take it), then for each leaf the pattern of path features the row follows
and, per path feature, one lookup into the leaf's table, added to that feature's
contribution. The same tables and the same sums as the NumPy path (up to the order of
float additions). Compiled on first use and cached on disk (`cache=True`).
"""

from __future__ import annotations

import numba
import numpy as np


def contributions(shap, x: np.ndarray, zero: float) -> np.ndarray:
    """(rows, features + 1) contributions of a `leadscore.scoring.treeshap.TreeShap`'s tables (`zero`:
    its threshold of a missing zero); the last column is left for the caller."""
    out = np.zeros((len(x), shap.n_features + 1))
    _rows(
        np.ascontiguousarray(x, dtype=np.float64),
        zero,
        shap.node_feature,
        shap.node_is_cat,
        shap.node_threshold,
        shap.node_default_left,
        shap.node_missing_nan,
        shap.node_missing_zero,
        shap.node_cat_row,
        shap.cat_table,
        shap.entry_node,
        shap.entry_left,
        shap.entry_bit.astype(np.int64),
        shap.leaf_entries,
        shap.leaf_full.astype(np.int64),
        shap.leaf_width.astype(np.int64),
        shap.slot_start,
        shap.slot_offset.astype(np.int64),
        shap.slot_feature,
        shap.table,
        out,
    )
    return out


# Rows per block: a leaf's table is read for a whole block while it is in the cache.
BLOCK = 128


@numba.njit(parallel=True, cache=True, nogil=True)
def _rows(x, zero, node_feature, node_is_cat, threshold, default_left, missing_nan, missing_zero,
          cat_row, cat_table, entry_node, entry_left, entry_bit, leaf_entries, leaf_full,
          leaf_width, slot_start, slot_offset, slot_feature, table, out):  # fmt: skip
    n_rows = x.shape[0]
    n_nodes = node_feature.shape[0]
    n_entries = entry_node.shape[0]
    n_leaves = leaf_entries.shape[0]
    depth = leaf_entries.shape[1]
    width = cat_table.shape[1]
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for b in numba.prange(n_blocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n_rows)
        left = np.empty((n_nodes, hi - lo), dtype=np.bool_)
        for j in range(n_nodes):
            f = node_feature[j]
            for r in range(lo, hi):
                v = x[r, f]
                if node_is_cat[j]:
                    if not (v >= 0):  # NaN and negative codes go right
                        left[j, r - lo] = False
                    else:
                        left[j, r - lo] = cat_table[cat_row[j], min(int(v), width - 1)]
                else:
                    nan = np.isnan(v)
                    if nan and not missing_nan[j]:
                        v = 0.0
                    missing = (missing_zero[j] and abs(v) <= zero) or (missing_nan[j] and nan)
                    left[j, r - lo] = default_left[j] if missing else v <= threshold[j]
        for leaf in range(n_leaves):
            full = leaf_full[leaf]
            w = leaf_width[leaf]
            first, last = slot_start[leaf], slot_start[leaf + 1]
            for r in range(lo, hi):
                pattern = full
                for k in range(depth):
                    e = leaf_entries[leaf, k]
                    if e >= n_entries:
                        break
                    if left[entry_node[e], r - lo] != entry_left[e]:
                        pattern &= ~entry_bit[e]
                base = pattern * w
                for s in range(first, last):
                    out[r, slot_feature[s]] += table[base + slot_offset[s]]
