"""``synthetic``: generated interactions with planted structure, embedded as the default dataset.

Each kind of structure is a switch, so an experiment can show which model family recovers which:

- ``collaborative`` (weight, default 1): low-rank preferences ``p_u . q_i`` over ``n_factors``;
  factor and neighbourhood models recover it.
- ``content`` (weight, default 0): preferences ``w_u . a_i`` over the items' binary attributes
  ``a_i`` (the ``genre_*`` item features); content models recover it, also on cold-start items.
- ``sequential`` (probability, default 0): each next interaction follows, with this probability, a
  planted Markov transition from the previous item (every item has 4 successors, chosen with
  probabilities 0.4/0.3/0.2/0.1); sequential models recover it.
- ``popularity`` (Zipf exponent, default 1): item ``i`` of popularity rank ``r`` is proposed with
  probability proportional to ``r**-popularity``; ``most-popular`` recovers it.
- ``cold_item_fraction`` (default 0): that share of items is "released late": all their
  interactions fall after ``metadata["cold_cut_time"]``, the start of the last 20% of the time
  range.

Both preference terms are scaled to unit variance, so the weights compare. With the defaults a real
model must beat ``most-popular``, which must beat ``random``: a harness that scores them in another
order is broken.

How a user's items are drawn (O(interactions) time and memory, never a users x items matrix):
``count_u = 5 + Poisson((mean_per_user - 5) * LogNormal(-s^2/2, s))`` with ``s = activity_spread``,
capped at ``n_items // 2``. Candidates are proposed from the popularity distribution (alias method,
vectorised over all rows of a block of users) and accepted with probability
``sigmoid(3 * affinity - 3)``, ``affinity = collaborative * p_u.q_i + content * w_u.a~_i``.
The first ``count_u`` distinct accepted items, in proposal order, are the user's items in time
order: exactly successive sampling without replacement with weights ``pi_i * sigmoid(...)``.
Users who would need about as many proposals as there are items (the heaviest users; with
``popularity`` above 1 most users, whose proposals mostly repeat the head items) and users still
short after a few rounds get their remaining items by the Gumbel top-k trick over all items, which
samples the same distribution at O(n_items) per user (so popularity 2 costs far more than 1 at
scale; see bench/bench_synthetic.py). The Markov step then rewrites the sequence position by
position (vectorised over users); duplicates are dropped and the user's own drawn items fill any
gap, so every user keeps exactly ``count_u`` distinct items.

Ratings (1-5) rise with the affinity: ``round(3.5 + z + 0.5 * noise)`` with ``z`` the standardised
affinity. Timestamps are integer seconds in [2015-01-01, 2019-01-01), strictly increasing within a
user in generation order; a cold item's interactions are moved to the end of the user's sequence.

Item features: ``n_attributes`` binary ``genre_j`` columns (the content signal) and ``price`` (a
log-normal distractor that predicts nothing). The latent factors, attribute weights and transition
table are not in the dataset; :func:`planted_structure` recomputes them from the config for analyses
and tests. ``metadata["signals"]`` records the weight of every signal, ``metadata["cold_items"]``
(and ``item_info["cold"]``, which follows preprocessing) flags the cold items.

Deterministic from ``seed``: each part (items, users, counts, sampling, transitions, time, ratings)
draws from its own stream derived from the seed, so switching one signal on leaves the others'
draws unchanged where it can. No file or network access.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recbench.api import (
    check,
    Dataset,
    DatasetCard,
    DatasetSpec,
    derive_rng,
    FeatureTable,
    Interactions,
    to_dict,
)

_SHARPNESS, _OFFSET = 3.0, -3.0  # acceptance = sigmoid(_SHARPNESS * affinity + _OFFSET)
_SUCCESSOR_PROBS = np.array([0.4, 0.3, 0.2, 0.1])
_T0 = 1_420_070_400  # 2015-01-01T00:00:00Z
_SPAN = 4 * 365 * 86_400
_COLD_WINDOW = 0.2  # cold items appear only in the last 20% of the time range
_BLOCK_CANDIDATES = 1 << 21  # proposals per block of users (bounds the working memory)
_CHUNK = 1 << 16  # rows per gather-and-dot chunk (cache-sized)
_ROUNDS = 4  # proposal rounds before the exact fallback


@dataclass(frozen=True)
class SyntheticConfig:
    n_users: int = 500
    n_items: int = 300
    n_factors: int = 8
    mean_per_user: int = 30  # mean interactions per user (at least 5 each, at most n_items // 2)
    popularity: float = 1.0  # Zipf exponent of the proposal distribution (0 = uniform)
    seed: int = 0
    collaborative: float = 1.0  # weight of the low-rank preference term p_u . q_i
    content: float = 0.0  # weight of the attribute preference term w_u . a_i
    sequential: float = 0.0  # probability that an item follows the Markov transition of the last
    cold_item_fraction: float = 0.0  # share of items released late (last 20% of the time range)
    n_attributes: int = 8  # binary item attributes (genre_* features)
    activity_spread: float = 0.5  # log-normal sigma of user activity (0 = Poisson counts)

    def __post_init__(self) -> None:
        check(self.n_users >= 2, f"n_users must be >= 2, got {self.n_users}")
        check(self.n_items >= 10, f"n_items must be >= 10, got {self.n_items}")
        check(1 <= self.n_factors <= 1024, f"n_factors must lie in [1, 1024], got {self.n_factors}")
        check(5 <= self.mean_per_user <= self.n_items // 2,
              f"mean_per_user must lie in [5, n_items/2 = {self.n_items // 2}], "
              f"got {self.mean_per_user}")
        check(0 <= self.popularity <= 5, f"popularity must lie in [0, 5], got {self.popularity}")
        check(0 <= self.collaborative <= 10,
              f"collaborative must lie in [0, 10], got {self.collaborative}")
        check(0 <= self.content <= 10, f"content must lie in [0, 10], got {self.content}")
        check(0 <= self.sequential <= 1,
              f"sequential is a probability and must lie in [0, 1], got {self.sequential}")
        check(0 <= self.cold_item_fraction <= 0.5,
              f"cold_item_fraction must lie in [0, 0.5], got {self.cold_item_fraction}")
        check(1 <= self.n_attributes <= 1024,
              f"n_attributes must lie in [1, 1024], got {self.n_attributes}")
        check(0 <= self.activity_spread <= 3,
              f"activity_spread must lie in [0, 3], got {self.activity_spread}")


# ---------------------------------------------------------------- planted structure


def _rng(cfg: SyntheticConfig, part: str) -> np.random.Generator:
    return derive_rng(cfg.seed, "dataset", "synthetic", part)


def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of the distribution ``p``: O(1) draws (loop over items once)."""
    n = len(p)
    prob = p * (n / p.sum())
    alias = np.arange(n)
    small = np.flatnonzero(prob < 1.0).tolist()
    large = np.flatnonzero(prob >= 1.0).tolist()
    prob = prob.tolist()
    alias_l = alias.tolist()
    while small and large:
        s, g = small.pop(), large[-1]
        alias_l[s] = g
        prob[g] -= 1.0 - prob[s]
        if prob[g] < 1.0:
            large.pop()
            small.append(g)
    out = np.minimum(np.asarray(prob), 1.0)
    out[small + large] = 1.0  # leftovers are 1 up to rounding
    return out.astype(np.float32), np.asarray(alias_l, dtype=np.int32)


def _draw(rng: np.random.Generator, table: tuple[np.ndarray, np.ndarray] | None, n: int,
          size: int) -> np.ndarray:
    """``size`` draws from an alias table (``None``: uniform over ``n``), int32.

    One uniform per draw: its integer part picks the column, its fraction the coin."""
    r = rng.random(size) * n
    j = np.minimum(r.astype(np.int32), n - 1)
    if table is None:
        return j
    prob, alias = table
    return np.where(r - j < prob[j], j, alias[j])


def planted_structure(cfg: SyntheticConfig) -> dict[str, Any]:
    """The hidden truth behind :func:`generate` (never part of the dataset), in generator item ids.

    The dataset's ``item_ids`` are generator ids, so ``truth["attributes"][ds.item_ids]`` lines up
    with internal items. Keys: ``popularity`` (proposal probability per item), ``item_factors``
    ``[n_items, n_factors]``, ``user_factors`` ``[n_users, n_factors]``, ``attributes``
    ``[n_items, n_attributes]`` (0/1), ``attribute_weights`` ``[n_users, n_attributes]``,
    ``successors`` ``[n_items, 4]`` with ``successor_probs``, ``cold`` (bool per item), and
    ``user_matrix``/``item_matrix`` whose row products are the affinity.
    """
    n, k, a = cfg.n_items, cfg.n_factors, cfg.n_attributes
    rng = _rng(cfg, "items")
    q = rng.normal(size=(n, k)).astype(np.float32)
    rank = rng.permutation(n) + 1.0
    pop = rank ** -cfg.popularity
    pop /= pop.sum()
    prevalence = rng.uniform(0.05, 0.35, a)
    attributes = (rng.random((n, a)) < prevalence).astype(np.float32)
    centred = (attributes - prevalence) / np.sqrt(np.sum(prevalence * (1 - prevalence)))
    cold = np.zeros(n, bool)
    cold[rng.permutation(n)[:int(round(cfg.cold_item_fraction * n))]] = True
    succ_rng = _rng(cfg, "transitions")
    successors = _draw(succ_rng, _alias_table(np.sqrt(pop)), n, n * 4).reshape(n, 4)
    own = successors == np.arange(n)[:, None]
    successors[own] = (successors[own] + 1) % n  # no self-loops
    urng = _rng(cfg, "users")
    p = (urng.normal(size=(cfg.n_users, k)) / np.sqrt(k)).astype(np.float32)
    w = urng.normal(size=(cfg.n_users, a)).astype(np.float32)
    user_parts, item_parts = [], []
    if cfg.collaborative > 0:
        user_parts.append(p)
        item_parts.append(cfg.collaborative * q)
    if cfg.content > 0:
        user_parts.append(w)
        item_parts.append((cfg.content * centred).astype(np.float32))
    if user_parts:
        user_matrix = np.ascontiguousarray(np.concatenate(user_parts, 1), dtype=np.float32)
        item_matrix = np.ascontiguousarray(np.concatenate(item_parts, 1), dtype=np.float32)
    else:
        user_matrix = item_matrix = None
    return {"popularity": pop, "item_factors": q, "user_factors": p, "attributes": attributes,
            "attribute_weights": w, "successors": successors, "successor_probs": _SUCCESSOR_PROBS,
            "cold": cold, "user_matrix": user_matrix, "item_matrix": item_matrix}


def _affinity(users: np.ndarray, items: np.ndarray, truth: dict[str, Any]) -> np.ndarray:
    """``affinity(u, i)`` per row (float32), in cache-sized chunks; zeros without a preference."""
    um, im = truth["user_matrix"], truth["item_matrix"]
    out = np.zeros(len(users), np.float32)
    if um is None:
        return out
    for s in range(0, len(users), _CHUNK):
        e = s + _CHUNK
        out[s:e] = np.einsum("ij,ij->i", um.take(users[s:e], 0), im.take(items[s:e], 0))
    return out


def _accept(rng: np.random.Generator, aff: np.ndarray) -> np.ndarray:
    """A coin per row with probability ``sigmoid(_SHARPNESS * aff + _OFFSET)``."""
    u = rng.random(len(aff), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: probability ~0, reject
        return u * (1.0 + np.exp(-(_SHARPNESS * aff + _OFFSET))) < 1.0


# ---------------------------------------------------------------- grouped-row helpers


def _starts(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts), np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


def _within(counts: np.ndarray) -> np.ndarray:
    """Position of each row within its group, for rows grouped by ``counts``."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(_starts(counts), counts)


def _stable_order(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, key[order])`` with ``order = np.argsort(key, kind="stable")``, for non-negative
    int64 keys: sorts ``key << b | row`` (one plain SIMD sort, ~10x faster) when that fits."""
    n = len(key)
    bits = max(1, int(n - 1).bit_length())
    if n == 0 or int(key.max()) >= 1 << (63 - bits):
        order = np.argsort(key, kind="stable")
        return order, key[order]
    comp = (key << bits) | np.arange(n, dtype=np.int64)
    comp.sort()
    return comp & ((1 << bits) - 1), comp >> bits


def _first_distinct(user: np.ndarray, item: np.ndarray, limit: np.ndarray, lo: int,
                    n_items: int) -> np.ndarray:
    """Rows (grouped by user, in order) that are the first occurrence of their (user, item) pair
    and among the first ``limit[user - lo]`` such rows of their user; sorted."""
    if len(user) == 0:
        return np.zeros(0, np.int64)
    order, ks = _stable_order((user.astype(np.int64) - lo) * n_items + item)
    first = np.ones(len(ks), bool)
    first[1:] = ks[1:] != ks[:-1]
    rows = np.sort(order[first])
    u = user[rows]
    change = np.ones(len(u), bool)
    change[1:] = u[1:] != u[:-1]
    starts = np.flatnonzero(change)
    rank = np.arange(len(u)) - np.repeat(starts, np.diff(np.append(starts, len(u))))
    return rows[rank < limit[u - lo]]


def _interleave(users: np.ndarray, a_counts: np.ndarray,
                b_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Destinations merging rows A and B (both grouped by ``users``) into A_u then B_u per user."""
    cstart = _starts(a_counts + b_counts)
    dest_a = np.repeat(cstart, a_counts) + _within(a_counts)
    dest_b = np.repeat(cstart + a_counts, b_counts) + _within(b_counts)
    return dest_a, dest_b


def _merge(users, a_counts, a_user, a_item, b_counts, b_user, b_item):
    dest_a, dest_b = _interleave(users, a_counts, b_counts)
    n = len(a_user) + len(b_user)
    mu, mi = np.empty(n, np.int32), np.empty(n, np.int32)
    mu[dest_a], mi[dest_a] = a_user, a_item
    mu[dest_b], mi[dest_b] = b_user, b_item
    return mu, mi


# ---------------------------------------------------------------- sampling


def _exact_fill(rng, users, need, have_user, have_item, truth, n_items):
    """The next ``need`` items of each of ``users`` (sorted), given the rows they already have
    (``have_user`` sorted): Gumbel top-k over all items, the same successive sampling as the
    proposals. Dense over items, so O(len(users) x n_items): for the few users who need it."""
    logp = np.log(truth["popularity"]).astype(np.float32)
    um, im = truth["user_matrix"], truth["item_matrix"]
    rows_per = max(1, (1 << 21) // n_items)
    out_u, out_i = [], []
    for s in range(0, len(users), rows_per):
        us, nd = users[s:s + rows_per], need[s:s + rows_per]
        logits = np.repeat(logp[None, :], len(us), 0)
        if um is not None:
            x = _SHARPNESS * (um[us] @ im.T) + _OFFSET
            logits -= np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))  # + log sigmoid(x)
        # + Gumbel noise, as -log of a standard exponential
        e = rng.standard_exponential(logits.shape, dtype=np.float32)
        logits -= np.log(np.maximum(e, np.finfo(np.float32).tiny, out=e), out=e)
        a = np.searchsorted(have_user, us[0], side="left")
        b = np.searchsorted(have_user, us[-1], side="right")
        logits[np.searchsorted(us, have_user[a:b]), have_item[a:b]] = -np.inf
        k = int(nd.max())
        top = np.argpartition(-logits, k - 1, axis=1)[:, :k] if k < n_items else \
            np.broadcast_to(np.arange(n_items), logits.shape)
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(logits, top, 1), axis=1,
                                                 kind="stable"), 1)
        out_u.append(np.repeat(us, nd).astype(np.int32))
        out_i.append(top[np.arange(k)[None, :] < nd[:, None]].astype(np.int32))
    return np.concatenate(out_u), np.concatenate(out_i)


def _sample_block(rng, lo, hi, counts, truth, table, n_items, over):
    """Items of users ``lo..hi-1`` in generation order, grouped by user."""
    counts = counts[lo:hi]  # indexed by user - lo from here on
    users = np.arange(lo, hi, dtype=np.int32)
    have = np.zeros(hi - lo, np.int64)
    exact = np.zeros(hi - lo, bool)
    done_u, done_i, exact_u, exact_i = [], [], [], []
    cur_u = np.zeros(0, np.int32)  # rows of the users still drawing proposals, grouped by user
    cur_i = np.zeros(0, np.int32)
    active = users
    m = np.ceil(counts * over).astype(np.int64) + 2  # proposals per active user this round
    projected = m  # proposals the user's deficit needs at its last yield of new items
    for r in range(_ROUNDS + 1):
        # Users who would need about as many proposals as there are items (heavy users, strong
        # popularity skew: mostly repeats), and those still short after the last round, go exact.
        slow = (np.maximum(m, projected) >= n_items // 2) | (r == _ROUNDS)
        if slow.any():
            exact[active[slow] - lo] = True
            moving = exact[cur_u - lo]
            exact_u.append(cur_u[moving])
            exact_i.append(cur_i[moving])
            cur_u, cur_i = cur_u[~moving], cur_i[~moving]
            active, m = active[~slow], m[~slow]
        if len(active) == 0:
            break
        cu = np.repeat(active, m)
        ci = _draw(rng, table, n_items, len(cu))
        if truth["user_matrix"] is not None:
            ok = _accept(rng, _affinity(cu, ci, truth))
            cu, ci = cu[ok], ci[ok]
        a_counts = have[active - lo]
        b_counts = np.bincount(cu - lo, minlength=hi - lo)[active - lo]
        mu, mi = _merge(active, a_counts, cur_u, cur_i, b_counts, cu, ci)
        keep = _first_distinct(mu, mi, counts, lo, n_items)
        mu, mi = mu[keep], mi[keep]
        have[active - lo] = np.bincount(mu - lo, minlength=hi - lo)[active - lo]
        full = have[mu - lo] == counts[mu - lo]
        done_u.append(mu[full])
        done_i.append(mi[full])
        cur_u, cur_i = mu[~full], mi[~full]
        # Next round: twice the proposals per missing item; the yield of new items only falls as
        # a user's set fills (repeats), so a user whose yield says that the deficit needs about
        # as many proposals as there are items goes exact instead.
        gained = have[active - lo] - a_counts
        short = have[active - lo] < counts[active - lo]
        deficit = (counts[active - lo] - have[active - lo])[short]
        yield_ = np.maximum(gained[short] / m[short], 1e-9)
        projected = np.minimum(deficit / yield_, 1 << 40)
        m = np.ceil(deficit * over * 2.0 ** (r + 1)).astype(np.int64) + 2
        active = active[short]
    slow_users = users[exact]
    if len(slow_users):
        eu, ei = np.concatenate(exact_u), np.concatenate(exact_i)
        order = _stable_order(eu.astype(np.int64) - lo)[0]
        eu, ei = eu[order], ei[order]
        need = counts[slow_users - lo] - have[slow_users - lo]
        fu, fi = _exact_fill(rng, slow_users, need, eu, ei, truth, n_items)
        mu, mi = _merge(slow_users, have[slow_users - lo], eu, ei, need, fu, fi)
        done_u.append(mu)
        done_i.append(mi)
    u = np.concatenate(done_u)
    i = np.concatenate(done_i)
    return i[_stable_order(u.astype(np.int64) - lo)[0]]


def _sample(cfg: SyntheticConfig, counts: np.ndarray, truth: dict[str, Any]) -> np.ndarray:
    """Every user's items, concatenated in user order, each user's in generation order."""
    n_items = cfg.n_items
    table = _alias_table(truth["popularity"]) if cfg.popularity > 0 else None
    if truth["user_matrix"] is not None:  # acceptance rate, from a pilot of random pairs
        prng = _rng(cfg, "pilot")
        pu = prng.integers(0, cfg.n_users, 20_000, dtype=np.int32)
        pi = _draw(prng, table, n_items, 20_000)
        x = _SHARPNESS * _affinity(pu, pi, truth) + _OFFSET
        rate = float(np.mean(np.exp(-np.logaddexp(0.0, -x))))  # mean sigmoid(x)
        over = 1.15 / max(rate, 1e-3)
    else:
        over = 1.15
    rng = _rng(cfg, "sample")
    per_block = max(16, int(_BLOCK_CANDIDATES / (cfg.mean_per_user * over)))
    parts = []
    for lo in range(0, cfg.n_users, per_block):
        hi = min(lo + per_block, cfg.n_users)
        parts.append(_sample_block(rng, lo, hi, counts, truth, table, n_items, over))
    return np.concatenate(parts)


def _markov(cfg: SyntheticConfig, counts: np.ndarray, items: np.ndarray,
            truth: dict[str, Any]) -> np.ndarray:
    """Rewrite each sequence position by position: with probability ``sequential`` the item is a
    planted successor of the one before. Then drop repeats, fill from the user's drawn items."""
    rng = _rng(cfg, "markov")
    seq = items.copy()
    starts = _starts(counts)
    switched = np.flatnonzero(rng.random(len(items), dtype=np.float32) < cfg.sequential)
    pos = switched - starts[np.searchsorted(starts, switched, side="right") - 1]
    switched, pos = switched[pos > 0], pos[pos > 0]  # a user's first item has no predecessor
    u = rng.random(len(switched), dtype=np.float32)
    thresholds = np.cumsum(_SUCCESSOR_PROBS)[:-1].astype(np.float32)
    pick = np.searchsorted(thresholds, u, side="right").astype(np.intp)
    order, pos = _stable_order(pos.astype(np.int64))
    switched, pick = switched[order], pick[order]
    successors = truth["successors"]
    bounds = np.flatnonzero(np.diff(pos, prepend=-1, append=pos[-1] + 1 if len(pos) else 0))
    # positions in increasing order, vectorised over users: a chain of switches follows itself
    for b, e in zip(bounds[:-1], bounds[1:]):
        idx = switched[b:e]
        seq[idx] = successors[seq[idx - 1], pick[b:e]]
    # first `count_u` distinct of (rewritten sequence, then the drawn items) per user
    users = np.arange(cfg.n_users, dtype=np.int32)
    mu, mi = _merge(users, counts, np.repeat(users, counts), seq, counts, np.repeat(users, counts),
                    items)
    out, block = [], max(1, (1 << 22) // max(1, 2 * cfg.mean_per_user))
    mstarts = 2 * starts
    for lo in range(0, cfg.n_users, block):
        hi = min(lo + block, cfg.n_users)
        s, e = int(mstarts[lo]), int(mstarts[hi - 1] + 2 * counts[hi - 1])
        keep = _first_distinct(mu[s:e], mi[s:e], counts[lo:hi], lo, cfg.n_items)
        out.append(mi[s:e][keep])
    return np.concatenate(out)


# ---------------------------------------------------------------- time and ratings


def _cold_last(counts: np.ndarray, cold_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Permutation moving each user's cold rows to the end of their sequence (stable), and the
    number of warm rows per user."""
    user = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    perm = _stable_order(2 * user + cold_row)[0]
    warm = counts - np.bincount(user[cold_row], minlength=len(counts))
    return perm, warm


def _segment_times(rng, counts, begin, end) -> np.ndarray:
    """Strictly increasing integer times per group, spread over ``[begin, end)`` on average."""
    n = int(counts.sum())
    scale = np.maximum(end - begin - counts, 0) / (counts + 1.0)
    gaps = 1 + np.floor(rng.exponential(size=n) * np.repeat(scale, counts)).astype(np.int64)
    csum = np.cumsum(gaps)
    before = np.repeat(np.concatenate([[0], csum])[_starts(counts)], counts)
    return np.repeat(begin, counts) + csum - before


def _timestamps(cfg, counts, warm) -> tuple[np.ndarray, int]:
    rng = _rng(cfg, "time")
    n_users = cfg.n_users
    cut = _T0 + int((1 - _COLD_WINDOW) * _SPAN)
    ends = np.sort(rng.integers(_T0, _T0 + _SPAN, (n_users, 2)), axis=1)
    warm_t = _segment_times(rng, warm, ends[:, 0], ends[:, 1])
    n_cold = counts - warm
    last_warm = np.where(warm > 0, ends[:, 0], cut)
    has = warm > 0
    last_warm[has] = warm_t[_starts(warm)[has] + warm[has] - 1]
    cold_begin = np.maximum(cut, last_warm + 1)
    cold_t = _segment_times(rng, n_cold, cold_begin, np.maximum(cold_begin + n_cold,
                                                                _T0 + _SPAN))
    out = np.empty(int(counts.sum()), np.int64)
    starts = _starts(counts)
    out[np.repeat(starts, warm) + _within(warm)] = warm_t
    out[np.repeat(starts + warm, n_cold) + _within(n_cold)] = cold_t
    return out, cut


def generate(cfg: SyntheticConfig) -> Dataset:
    truth = planted_structure(cfg)
    crng = _rng(cfg, "counts")
    spread = cfg.activity_spread
    scale = crng.lognormal(-spread ** 2 / 2, spread, cfg.n_users) if spread > 0 else 1.0
    counts = 5 + crng.poisson((cfg.mean_per_user - 5) * scale, cfg.n_users)
    counts = np.minimum(counts, cfg.n_items // 2).astype(np.int64)

    items = _sample(cfg, counts, truth)
    if cfg.sequential > 0:
        items = _markov(cfg, counts, items, truth)
    cold = truth["cold"]
    warm = counts
    if cold.any():
        perm, warm = _cold_last(counts, cold[items])
        items = items[perm]
    timestamp, cut = _timestamps(cfg, counts, warm)
    user = np.repeat(np.arange(cfg.n_users, dtype=np.int32), counts)

    affinity = _affinity(user, items, truth)
    rrng = _rng(cfg, "ratings")
    sd = float(affinity.std())
    z = (affinity - affinity.mean()) / sd if sd > 0 else np.zeros(len(affinity), np.float32)
    noise = rrng.normal(size=len(z)).astype(np.float32)
    rating = np.clip(np.round(3.5 + z + (0.5 if sd > 0 else 1.1) * noise), 1, 5)

    # Internal item ids: the generator ids that were drawn, in order (as Dataset.from_arrays would).
    used = np.bincount(items, minlength=cfg.n_items) > 0
    item_ids = np.flatnonzero(used)
    internal = (np.cumsum(used) - 1).astype(np.int32)
    x = Interactions(user, internal[items], cfg.n_users, len(item_ids), rating, timestamp)
    frng = _rng(cfg, "features")
    price = np.exp(frng.normal(2.5, 0.6, cfg.n_items)).astype(np.float32)
    features = np.concatenate([truth["attributes"], price[:, None]], 1)[item_ids]
    columns = tuple(f"genre_{j}" for j in range(cfg.n_attributes)) + ("price",)
    signals = {"collaborative": cfg.collaborative, "content": cfg.content,
               "sequential": cfg.sequential, "popularity": cfg.popularity,
               "cold_items": cfg.cold_item_fraction}
    metadata = {"generator": "recbench_builtin.datasets.synthetic.generate",
                "config": to_dict(cfg), "signals": signals,
                "signals_on": sorted(k for k, v in signals.items() if v > 0),
                "cold_items": cold[item_ids], "cold_cut_time": cut}
    return Dataset("synthetic", x, np.arange(cfg.n_users, dtype=np.int64),
                   item_ids.astype(np.int64),
                   item_features=FeatureTable(features, columns), metadata=metadata,
                   item_info={"cold": cold[item_ids]})


SPECS: list[DatasetSpec] = [DatasetSpec(
    "synthetic",
    lambda cfg, ctx: generate(cfg),
    DatasetCard("Generated with planted structure that can be switched on or off: low-rank "
                "preferences (collaborative), attribute preferences (content), Markov transitions "
                "(sequential), Zipf popularity and late-released cold items; ratings 1-5, "
                "timestamps, binary genre_* attributes and a price. Deterministic from `seed`; "
                "scales to ML-20M size and beyond (O(interactions) memory).",
                source="generated by recbench", license="public domain (generated)"),
    SyntheticConfig)]
