"""Matrix-factorisation models trained by gradient descent: ``bpr``, ``biased-mf`` and ``svdpp``.

All three train with :func:`recbench.train.fit_loop` (whole epochs under ``lax.scan``, one compiled
function per fit, negatives drawn on the device, optax Adam, NaN loss -> ``ModelError`` naming the
epoch) and score with one jitted ``U[users] @ V.T`` per batch shape.

- ``bpr``: BPR-MF (Rendle et al. 2009). Per training interaction (u, i) one negative j drawn
  uniformly among the items u has not interacted with (up to ``negative_rounds`` redraws on the
  device; RecBole's setting). Loss ``-log sigmoid(p_u.q_i - p_u.q_j) + reg (|p_u|^2 + |q_i|^2 +
  |q_j|^2)``, batch mean. Early stopping on validation NDCG@``valid_k`` (full ranking, training
  items masked) when a validation split is given.
- ``biased-mf``: the "SVD" of Surprise (Koren 2009): ``mu + b_u + b_i + p_u.q_i``, squared error +
  ``reg`` times the squared norms of the row's parameters (the per-rating regularisation of
  Surprise's SGD). ``mu`` is the training mean, fixed. Early stopping on validation RMSE. Predictions
  are clipped to the training rating range (as Surprise does); ranking scores are the unclipped
  predicted ratings.
- ``svdpp``: SVD++ (Koren 2008): ``mu + b_u + b_i + q_i.(p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)``
  with ``N(u)`` the user's training items. The implicit term is recomputed for all users every step
  with one ``segment_sum`` over the training interactions (exact gradients, no Python loop, no
  padded histories); its regulariser is ``reg`` times the mean of ``|y_j|^2`` over ``N(u)`` per
  rating.

Defined scores outside the training data (never NaN):

- ``bpr``: a user with no training interaction gets the mean of the trained users' factors (the
  model's average user: a popularity-like ranking). Items without training interactions are still
  sampled as negatives, so they are learned as "never chosen" and score low.
- ``biased-mf`` / ``svdpp``: an unknown user has ``b_u = 0`` and ``p_u = 0`` (and an empty ``N(u)``),
  an unknown item ``b_i = 0`` and ``q_i = 0``: predictions fall back to ``mu + b_i``, ``mu + b_u`` or
  ``mu`` (Surprise's rule).

Compile once per shape: the losses are module-level functions whose data-dependent scalars (the
mean rating ``mu``, ``reg``) travel in ``aux`` as arrays, the optimizer comes from
:func:`recbench.train.cached_optimizer`, and per-row arrays (SVD++'s histories, the validation
pairs) are padded to :func:`recbench.shapes.bucket_size`, so a refit on another seed or fold of the
same size class compiles nothing. Each fitted model exposes ``fit_info`` (``epochs_run``,
``best_epoch``, ``epoch_s``, ``valid_s``; see :func:`recbench.train.fit_loop`), which the runner
stores with the trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from recbench.api import (
    DataclassState,
    DataError,
    Interactions,
    ModelContext,
    ModelSpec,
    UserBatch,
    bucket_size,
    cached_optimizer,
    check,
    csr_positives,
    fit_loop,
    masked_mean,
    ranking_validator,
    sample_negatives,
    restores,
)

from ..metrics import NDCG


# ---------------------------------------------------------------- shared config checks


def _check_common(cfg: Any) -> None:
    check(cfg.factors >= 1, f"factors must be >= 1 (valid range: [1, inf)), got {cfg.factors}")
    check(cfg.epochs >= 1, f"epochs must be >= 1 (valid range: [1, inf)), got {cfg.epochs}")
    check(cfg.batch_size >= 1,
          f"batch_size must be >= 1 (valid range: [1, inf)), got {cfg.batch_size}")
    check(cfg.learning_rate > 0,
          f"learning_rate must be > 0 (valid range: (0, inf)), got {cfg.learning_rate}")
    check(cfg.reg >= 0, f"reg must be >= 0 (valid range: [0, inf)), got {cfg.reg}")
    check(cfg.init_std >= 0, f"init_std must be >= 0 (valid range: [0, inf)), got {cfg.init_std}")
    check(cfg.eval_every >= 1,
          f"eval_every must be >= 1 (valid range: [1, inf)), got {cfg.eval_every}")
    check(cfg.patience >= 1, f"patience must be >= 1 (valid range: [1, inf)), got {cfg.patience}")


@jax.jit
def _dot_scores(user_emb: jax.Array, item_emb: jax.Array, users: jax.Array) -> jax.Array:
    return user_emb[users] @ item_emb.T


# ---------------------------------------------------------------- BPR-MF


@dataclass(frozen=True)
class BPRConfig:
    """BPR-MF. ``reg`` weighs the L2 norms of the batch's embeddings; ``negative_rounds`` redraws a
    sampled negative that is a known positive (0: plain uniform sampling); early stopping checks
    validation NDCG@``valid_k`` every ``eval_every`` epochs and stops after ``patience`` checks
    without improvement.

    Defaults: RecBole's BPR setting (64 factors, batch 2048, Adam 0.001, no L2, up to 300 epochs,
    patience 10) with a smaller initial scale (N(0, 0.01) instead of Xavier's ~0.04), chosen on the
    ML-100K validation splits of 5 seeds (learning rates 0.001 / 0.0015 / 0.002 compared)."""

    factors: int = 64
    epochs: int = 300
    batch_size: int = 2048
    learning_rate: float = 0.001
    reg: float = 0.0
    init_std: float = 0.01
    negative_rounds: int = 3
    eval_every: int = 1
    patience: int = 10
    valid_k: int = 10

    def __post_init__(self) -> None:
        _check_common(self)
        check(self.negative_rounds >= 0,
              f"negative_rounds must be >= 0 (valid range: [0, inf)), got {self.negative_rounds}")
        check(self.valid_k >= 1, f"valid_k must be >= 1 (valid range: [1, inf)), got {self.valid_k}")


@dataclass(frozen=True)
class EmbeddingFitted(DataclassState):
    """Scores ``user_emb[u] @ item_emb.T``."""

    user_emb: jax.Array
    item_emb: jax.Array
    fit_info: dict[str, int | float] = field(default_factory=dict)

    def score(self, batch: UserBatch) -> jax.Array:
        return _dot_scores(self.user_emb, self.item_emb, batch.users)


def _bpr_loss(params, batch, key, aux, *, rounds: int):
    u, i = batch["user"], batch["item"]
    reg = aux["reg"]
    j = sample_negatives(key, u, params["item"].shape[0], aux["positives"], rounds=rounds)
    pu, qi, qj = params["user"][u], params["item"][i], params["item"][j]
    diff = (pu * (qi - qj)).sum(-1)
    norms = (pu * pu).sum(-1) + (qi * qi).sum(-1) + (qj * qj).sum(-1)
    return masked_mean(jax.nn.softplus(-diff) + reg * norms, batch["mask"])


@lru_cache(maxsize=None)
def _bpr_loss_for(rounds: int):
    """One loss object per ``negative_rounds`` (a static argument of the compiled epoch)."""
    return partial(_bpr_loss, rounds=rounds)


@partial(jax.jit, static_argnums=(2, 3, 4))
def _bpr_init(key: jax.Array, std: jax.Array, n_users: int, n_items: int, factors: int
              ) -> tuple[dict[str, jax.Array], jax.Array]:
    """N(0, std) user and item tables and the fit's key, as one compiled program (as eager ops
    they compile one by one, a tenth of a second each). The barriers keep the scaling out of the
    normal draw's fused loop, which would round differently from the eager ops."""
    k_user, k_item, k_fit = jax.random.split(key, 3)
    user, item = jax.lax.optimization_barrier(
        (jax.random.normal(k_user, (n_users, factors), jnp.float32),
         jax.random.normal(k_item, (n_items, factors), jnp.float32)))
    return {"user": std * user, "item": std * item}, k_fit


@jax.jit
def _fill_unknown_users(user_emb: jax.Array, known: jax.Array) -> jax.Array:
    mean = jnp.where(known[:, None], user_emb, 0.0).sum(0) / known.sum().astype(jnp.float32)
    return jnp.where(known[:, None], user_emb, mean[None, :])


def _mean_fill_unknown_users(user_emb: jax.Array, counts: np.ndarray) -> jax.Array:
    """Users without training rows get the mean of the known users' embeddings."""
    known = np.asarray(counts) > 0
    if known.all() or not known.any():
        return user_emb
    return _fill_unknown_users(user_emb, known)


@dataclass(frozen=True)
class BPRModel:
    cfg: BPRConfig
    ctx: ModelContext

    restore = restores(EmbeddingFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> EmbeddingFitted:
        cfg = self.cfg
        params, k_fit = _bpr_init(key, np.float32(cfg.init_std), train.n_users, train.n_items,
                                  cfg.factors)
        validate = None
        if valid is not None and len(valid):
            validate = ranking_validator(lambda p: EmbeddingFitted(p["user"], p["item"]),
                                         train, valid, metric=NDCG, k=cfg.valid_k)
        aux = {"positives": csr_positives(train), "reg": jnp.float32(cfg.reg)}
        result = fit_loop(params, _bpr_loss_for(cfg.negative_rounds),
                          cached_optimizer(optax.adam, learning_rate=cfg.learning_rate),
                          data={"user": train.user, "item": train.item}, aux=aux,
                          key=k_fit, epochs=cfg.epochs, batch_size=cfg.batch_size,
                          validate=validate, eval_every=cfg.eval_every, patience=cfg.patience)
        users = _mean_fill_unknown_users(result.params["user"], train.user_counts)
        return EmbeddingFitted(users, result.params["item"], result.info)


# ---------------------------------------------------------------- biased MF and SVD++


@dataclass(frozen=True)
class BiasedMFConfig:
    """Biased MF / SVD++. ``reg`` weighs each rating's parameter norms; without a validation split
    training runs ``epochs`` epochs, with one it stops after ``patience`` checks of validation RMSE
    (every ``eval_every`` epochs) without improvement and keeps the best epoch.

    Defaults (learning rate 0.005, reg 0.12, batch 1024, 64 factors, N(0, 0.1) init as Surprise)
    were chosen on validation RMSE: a 10% share of ML-100K training folds (bench/quality_ml100k.py).
    """

    factors: int = 64
    epochs: int = 100
    batch_size: int = 1024
    learning_rate: float = 0.005
    reg: float = 0.12
    init_std: float = 0.1
    eval_every: int = 1
    patience: int = 5

    def __post_init__(self) -> None:
        _check_common(self)


@dataclass(frozen=True)
class SVDPPConfig(BiasedMFConfig):
    """SVD++: the biased-MF options; ``reg`` also weighs the implicit factors y_j. Default reg 0.2,
    chosen on validation RMSE as for biased-mf."""

    reg: float = 0.2


@dataclass(frozen=True)
class RatingFitted(DataclassState):
    """``mu + b_u + b_i + p_u.q_i``; ``user_emb`` already holds SVD++'s implicit term."""

    mu: jax.Array
    user_bias: jax.Array
    item_bias: jax.Array
    user_emb: jax.Array
    item_emb: jax.Array
    lo: float
    hi: float
    fit_info: dict[str, int | float] = field(default_factory=dict)

    def score(self, batch: UserBatch) -> jax.Array:
        """The predicted rating of every item (not clipped, so the top keeps its order)."""
        return _rating_scores(self.mu, self.user_bias, self.item_bias, self.user_emb,
                              self.item_emb, batch.users)

    def predict(self, users: jax.Array, items: jax.Array) -> jax.Array:
        """Predicted ratings, clipped to the training rating range."""
        return _rating_predict(self.mu, self.user_bias, self.item_bias, self.user_emb,
                               self.item_emb, users, items, self.lo, self.hi)


@jax.jit
def _rating_scores(mu, bu, bi, p, q, users):
    return mu + bu[users][:, None] + bi[None, :] + p[users] @ q.T


@jax.jit
def _rating_predict(mu, bu, bi, p, q, users, items, lo, hi):
    raw = mu + bu[users] + bi[items] + (p[users] * q[items]).sum(-1)
    return jnp.clip(raw, lo, hi)


def _implicit(y: jax.Array, aux: dict[str, jax.Array], n_users: int) -> tuple[jax.Array, jax.Array]:
    """SVD++'s ``|N(u)|^-1/2 sum_{j in N(u)} y_j`` and the mean ``|y_j|^2`` over ``N(u)``, per user.

    ``aux["hist_user"]`` is padded with ``n_users`` (an id ``segment_sum`` drops)."""
    rows = y[aux["hist_item"]]
    z = jax.ops.segment_sum(rows, aux["hist_user"], n_users) * aux["norm"][:, None]
    sq = jax.ops.segment_sum((rows * rows).sum(-1), aux["hist_user"], n_users)
    return z, sq * aux["norm"] ** 2


@jax.jit
def _with_implicit(user: jax.Array, y: jax.Array, aux: dict[str, jax.Array]) -> jax.Array:
    return user + _implicit(y, aux, user.shape[0])[0]


@jax.jit
def _masked_rmse(mu, bu, bi, p, q, lo, hi, users, items, target, mask):
    err = _rating_predict(mu, bu, bi, p, q, users, items, lo, hi) - target
    return jnp.sqrt(jnp.sum(mask * err * err) / jnp.sum(mask))


def _rating_loss(params, batch, key, aux, *, plus: bool):
    u, i, r = batch["user"], batch["item"], batch["rating"]
    mu, reg, n_users = aux["mu"], aux["reg"], params["user"].shape[0]
    pu, qi = params["user"][u], params["item"][i]
    bu, bi = params["user_bias"][u], params["item_bias"][i]
    norms = bu * bu + bi * bi + (pu * pu).sum(-1) + (qi * qi).sum(-1)
    if plus:
        z, y_sq = _implicit(params["implicit"], aux, n_users)
        pu = pu + z[u]
        norms = norms + y_sq[u]
    err = mu + bu + bi + (pu * qi).sum(-1) - r
    return masked_mean(err * err + reg * norms, batch["mask"])


_RATING_LOSS = {plus: partial(_rating_loss, plus=plus) for plus in (False, True)}


@dataclass(frozen=True)
class RatingMFModel:
    cfg: BiasedMFConfig  # or SVDPPConfig
    ctx: ModelContext
    plus: bool  # SVD++

    restore = restores(RatingFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> RatingFitted:
        cfg = self.cfg
        name = "svdpp" if self.plus else "biased-mf"
        if train.rating is None:
            raise DataError(f"model {name!r} learns from ratings but the training interactions "
                            "have none; use bpr or neumf for implicit feedback")
        if len(train) == 0:
            raise DataError(f"model {name!r}: the training split is empty")
        n_users, n_items = train.n_users, train.n_items
        mu = float(train.rating.mean())
        ks = jax.random.split(key, 4)
        params = {
            "user": cfg.init_std * jax.random.normal(ks[0], (n_users, cfg.factors)),
            "item": cfg.init_std * jax.random.normal(ks[1], (n_items, cfg.factors)),
            "user_bias": jnp.zeros(n_users),
            "item_bias": jnp.zeros(n_items),
        }
        aux = {"mu": jnp.float32(mu), "reg": jnp.float32(cfg.reg)}
        implicit = None
        if self.plus:
            # Surprise initialises y_j like the other factors.
            params["implicit"] = cfg.init_std * jax.random.normal(ks[2], (n_items, cfg.factors))
            counts = train.user_counts.astype(np.float32)
            size = bucket_size(len(train))
            pad = (0, size - len(train))
            implicit = {"hist_user": jnp.asarray(np.pad(train.user.astype(np.int32), pad,
                                                        constant_values=n_users)),
                        "hist_item": jnp.asarray(np.pad(train.item.astype(np.int32), pad)),
                        "norm": jnp.asarray(np.where(counts > 0,
                                                     1.0 / np.sqrt(np.maximum(counts, 1)),
                                                     0.0).astype(np.float32))}
            aux.update(implicit)
        lo, hi = float(train.rating.min()), float(train.rating.max())

        def make_fitted(p: dict[str, jax.Array]) -> RatingFitted:
            user = p["user"]
            if implicit is not None:
                user = _with_implicit(user, p["implicit"], implicit)
            return RatingFitted(jnp.float32(mu), p["user_bias"], p["item_bias"], user, p["item"],
                                lo, hi)

        validate = None
        if valid is not None and len(valid) and valid.rating is not None:
            size = bucket_size(len(valid))  # padded pairs, masked: one program per size class
            pairs = [jnp.asarray(np.pad(a, (0, size - len(valid)))) for a in
                     (valid.user.astype(np.int32), valid.item.astype(np.int32),
                      valid.rating.astype(np.float32))]
            mask = jnp.asarray(np.arange(size) < len(valid), jnp.float32)

            def valid_rmse(p: dict[str, jax.Array]) -> float:
                f = make_fitted(p)
                return float(_masked_rmse(f.mu, f.user_bias, f.item_bias, f.user_emb, f.item_emb,
                                          f.lo, f.hi, *pairs, mask))

            validate = valid_rmse

        result = fit_loop(params, _RATING_LOSS[self.plus],
                          cached_optimizer(optax.adam, learning_rate=cfg.learning_rate),
                          data={"user": train.user, "item": train.item, "rating": train.rating},
                          aux=aux, key=ks[3], epochs=cfg.epochs, batch_size=cfg.batch_size,
                          validate=validate, eval_every=cfg.eval_every, patience=cfg.patience,
                          higher_is_better=False)
        # Unknown users / items: zero bias and factors, so predictions fall back to the baseline.
        p = dict(result.params)
        known_u = jnp.asarray(train.user_counts > 0)
        known_i = jnp.asarray(train.item_counts > 0)
        p["user"] = jnp.where(known_u[:, None], p["user"], 0.0)
        p["user_bias"] = jnp.where(known_u, p["user_bias"], 0.0)
        p["item"] = jnp.where(known_i[:, None], p["item"], 0.0)
        p["item_bias"] = jnp.where(known_i, p["item_bias"], 0.0)
        if self.plus:
            p["implicit"] = jnp.where(known_i[:, None], p["implicit"], 0.0)
        fitted = make_fitted(p)
        return RatingFitted(fitted.mu, fitted.user_bias, fitted.item_bias, fitted.user_emb,
                            fitted.item_emb, lo, hi, result.info)


SPECS: list[ModelSpec] = [
    ModelSpec("bpr", "latent-factor", frozenset({"ranking"}),
              lambda cfg, ctx: BPRModel(cfg, ctx), BPRConfig,
              "BPR-MF: pairwise ranking loss, uniform negatives excluding known items, Adam, "
              "early stopping on validation NDCG@10"),
    ModelSpec("biased-mf", "latent-factor", frozenset({"rating", "ranking"}),
              lambda cfg, ctx: RatingMFModel(cfg, ctx, plus=False), BiasedMFConfig,
              "biased matrix factorisation (Surprise's SVD): mu + b_u + b_i + p_u.q_i, MSE + L2, "
              "Adam; ranks by predicted rating", requires=frozenset({"ratings"})),
    ModelSpec("svdpp", "latent-factor", frozenset({"rating", "ranking"}),
              lambda cfg, ctx: RatingMFModel(cfg, ctx, plus=True), SVDPPConfig,
              "SVD++: biased MF plus implicit feedback |N(u)|^-1/2 sum y_j over the user's "
              "training items", requires=frozenset({"ratings"})),
]
