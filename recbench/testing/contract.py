"""The model contract: what the harness relies on, checked on tiny data in a few seconds.

1. the config round-trips through canonical JSON; 2. fit works on tiny data and leaves its inputs
unmodified; 3. ``score`` returns ``[B, n_items]`` float32 without NaN; 4. the same key gives the same
scores; 5. a user's scores do not depend on the batch they are in; 6. a second call with the same
shapes does not recompile; 7. rating/binary models' ``predict`` returns finite ``[N]`` values
(probabilities for binary); 8. a refit on another split of the same shape class (same users and
items, same number of training interactions per user, other items) compiles nothing, for every
task the model serves; 9. a model that can be saved (``state()`` / ``restore``) scores identically
after save -> bytes -> load; 10. a model declaring ``cold_items`` scores items that have no
training interaction from their features: finite, and not all equal.

Compilations are counted with :class:`recbench.timing.CompileClock` (JAX's backend-compile
monitoring event), the clock the harness times every fit with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import modelstate
from ..config import canonical_json, from_mapping, to_dict
from ..data import Dataset, FeatureTable, Interactions, UserBatch
from ..errors import RecbenchError
from ..evaluate import padded_lists
from ..plugins import load_plugins
from ..random import derive_key, derive_rng
from ..registry import Registry
from ..specs import (ModelContext, ModelSpec, RatingModel, RestoresState, SavesState,
                     item_text_of)
from ..timing import CompileClock


class ContractError(RecbenchError, AssertionError):
    """A model broke the contract; the message names the model and the rule."""


def tiny_dataset(seed: int = 0, n_users: int = 24, n_items: int = 40) -> Dataset:
    """A small dataset with ratings, timestamps and item features; every user has >= 4 items."""
    rng = derive_rng(seed, "contract-data")
    per_user = rng.integers(4, 12, n_users)
    user = np.repeat(np.arange(n_users), per_user)
    item = np.concatenate([rng.choice(n_items, k, replace=False) for k in per_user])
    rating = rng.integers(1, 6, len(user)).astype(np.float32)
    timestamp = rng.integers(0, 10_000, len(user))
    features = FeatureTable(rng.random((n_items, 3)).astype(np.float32), ("a", "b", "c"))
    words = np.array(["red", "blue", "mug", "lamp", "heart", "tin", "box", "star"])
    # Short descriptions of 0-3 words (some items have none), for text features.
    text = np.array([" ".join(rng.choice(words, rng.integers(0, 4))) for _ in range(n_items)])
    x = Interactions(user, item, n_users, n_items, rating, timestamp)
    return Dataset("contract-tiny", x, np.arange(n_users), np.arange(n_items),
                   item_features=features, item_info={"text": text})


def _splits(x: Interactions) -> tuple[tuple[Interactions, Interactions], ...]:
    """Two train/validation splits of one shape class: per user, every 5th interaction counted
    from the first (split 1) or from the last (split 2) is validation, so each user keeps the
    same number of training items in both, but not the same items."""
    order = np.argsort(x.user, kind="stable")
    starts = np.searchsorted(x.user[order], x.user[order])
    pos = np.empty(len(x), np.int64)
    pos[order] = np.arange(len(x)) - starts  # position within the user's rows
    n = np.bincount(x.user, minlength=x.n_users)[x.user]
    out = []
    for held in (pos % 5 == 0, (n - 1 - pos) % 5 == 0):
        out.append((x.subset(~held), x.subset(held)))
    return tuple(out)


def _batch(train: Interactions, users: np.ndarray) -> UserBatch:
    """A batch as the evaluator hands it over: the history is built when ``score`` reads it."""
    def load() -> tuple[jax.Array, jax.Array]:
        ptr, items = train.sequences()
        history, lengths = padded_lists(ptr, items, users, pad=train.n_items,
                                        width=int(train.user_counts.max()))
        return jnp.asarray(history), jnp.asarray(lengths)

    return UserBatch.on_demand(jnp.asarray(users, jnp.int32), jnp.ones(len(users), bool),
                               train.n_items, load)


def _fail(spec: ModelSpec, rule: str) -> ContractError:
    return ContractError(f"model {spec.name!r} breaks the contract: {rule}")


def check_model(name: str, *, plugin_paths: Sequence[str] = (), config: dict | None = None,
                registry: Registry | None = None, require_saving: bool = False) -> None:
    """Run the whole contract for model ``name``; raises :class:`ContractError` on the first breach.
    ``require_saving``: a model that cannot be saved (rule 9) breaks the contract too."""
    registry = registry or Registry.build(load_plugins(paths=tuple(plugin_paths)))
    spec = registry.model(name)
    cfg = from_mapping(spec.config, config or {}, where=f"model {name!r} config")
    again = from_mapping(spec.config, to_dict(cfg), where=f"model {name!r} config")
    if again != cfg or canonical_json(again) != canonical_json(cfg):
        raise _fail(spec, "its config does not round-trip through canonical JSON")

    ds = tiny_dataset()
    x = ds.interactions
    (train, valid), (train2, valid2) = _splits(x)
    before = (train.fingerprint, valid.fingerprint, ds.item_features.values.copy())
    ctx = ModelContext(x.n_users, x.n_items, ds.item_features, ds.user_features,
                       item_text=item_text_of(ds))
    key = derive_key(0, "contract", name)

    fitted = spec.factory(cfg, ctx).fit(train, valid=valid, key=key)
    fresh = lambda t: Interactions(t.user, t.item, t.n_users, t.n_items, t.rating, t.timestamp)  # noqa: E731
    if (fresh(train).fingerprint, fresh(valid).fingerprint) != before[:2] or \
            not np.array_equal(ds.item_features.values, before[2]):
        raise _fail(spec, "fit() modified its inputs")

    users = np.arange(8, dtype=np.int32)
    scores = np.asarray(fitted.score(_batch(train, users)))
    if scores.shape != (8, x.n_items):
        raise _fail(spec, f"score() returned shape {scores.shape}, expected (8, {x.n_items})")
    if scores.dtype != np.float32:
        raise _fail(spec, f"score() returned {scores.dtype}, expected float32")
    if np.isnan(scores).any():
        raise _fail(spec, "score() returned NaN")

    refit = spec.factory(cfg, ctx).fit(train, valid=valid, key=key)
    if not np.allclose(np.asarray(refit.score(_batch(train, users))), scores, rtol=1e-5, atol=1e-6):
        raise _fail(spec, "the same key gave different scores (hidden randomness or global state)")

    shifted = np.asarray(fitted.score(_batch(train, users + 4)))
    if not np.allclose(shifted[:4], scores[4:], rtol=1e-5, atol=1e-6):
        raise _fail(spec, "a user's scores depend on the other users in the batch")

    with CompileClock() as clock:
        jax.block_until_ready(fitted.score(_batch(train, users[::-1].copy())))
    if clock.compiles:
        raise _fail(spec, f"score() recompiled on a second call with the same shapes "
                          f"({clock.compiles} backend compilations)")

    _check_saving(spec, spec.factory(cfg, ctx), fitted, _batch(train, users), scores,
                  require_saving)
    _check_refit(spec, cfg, ctx, train2, valid2, derive_key(1, "contract", name))
    if spec.cold_items:
        _check_cold_items(spec, cfg, ctx, train, valid, key)

    for task in sorted(spec.tasks & {"rating", "binary"}):
        point_ctx = dataclasses.replace(ctx, task=task)
        point_model = spec.factory(cfg, point_ctx).fit(train, valid=valid, key=key)
        if not isinstance(point_model, RatingModel):
            raise _fail(spec, f"it serves task {task!r} but has no predict(users, items)")
        pred = np.asarray(point_model.predict(jnp.asarray(valid.user), jnp.asarray(valid.item)))
        if pred.shape != (len(valid),) or not np.isfinite(pred).all():
            raise _fail(spec, f"predict() must return {len(valid)} finite values, got shape "
                              f"{pred.shape}")
        if task == "binary" and not ((pred >= 0) & (pred <= 1)).all():
            raise _fail(spec, "predict() for the binary task must return probabilities in [0, 1]")
        _check_refit(spec, cfg, point_ctx, train2, valid2, derive_key(1, "contract", name))


def _check_saving(spec: ModelSpec, model: object, fitted: object, batch: UserBatch,
                  scores: np.ndarray, required: bool) -> None:
    """Rule 9: a model that can be saved (``fitted.state()`` and ``model.restore(state)``) gives
    identical scores after save -> bytes -> load; a model with only one half of that is broken."""
    has_state, has_restore = modelstate.saves_state(fitted), modelstate.restores_state(model)
    if not (has_state or has_restore):
        if required:
            raise _fail(spec, "it cannot be saved: its fitted model has no state() and its "
                              "model no restore(state)")
        return  # not savable: allowed, `recbench run --save-models` says so
    if has_state != has_restore:
        half = "state() but its model has no restore(state)" if has_state else \
            "no state() but its model has restore(state)"
        raise _fail(spec, f"its fitted model has {half}; saving needs both")
    assert isinstance(fitted, SavesState) and isinstance(model, RestoresState)  # both checked
    restored = model.restore(modelstate.decode(modelstate.encode(fitted.state())))
    again = np.asarray(restored.score(batch))
    if not np.array_equal(again, scores):
        raise _fail(spec, "a saved and restored model scores differently from the fitted one "
                          f"(max difference {np.abs(again - scores).max():.3g})")


def _check_cold_items(spec: ModelSpec, cfg: object, ctx: ModelContext, train: Interactions,
                      valid: Interactions, key: jax.Array) -> None:
    """Rule 10: with every interaction of the first 8 items moved to other items (the same
    shapes, so nothing compiles again), those items get finite scores that vary between items
    (from their features), as a cold-start split needs."""
    cold = np.arange(8)
    moved = lambda t: Interactions(t.user, np.where(t.item < 8, t.item + 8, t.item),  # noqa: E731
                                   t.n_users, t.n_items, t.rating, t.timestamp)
    train, valid = moved(train), moved(valid)
    # Cold items 0 and 1 get identical features and text: scored from features alone, they must
    # score alike (a learned per-item weight, e.g. from being sampled as a negative, would not).
    values = np.array(ctx.item_features.values, copy=True)
    values[1] = values[0]
    text = None
    if ctx.item_text is not None:
        text = np.array(ctx.item_text, copy=True)
        text[1] = text[0]
    ctx = dataclasses.replace(ctx, item_features=FeatureTable(values, ctx.item_features.columns),
                              item_text=text)
    fitted = spec.factory(cfg, ctx).fit(train, valid=valid, key=key)
    users = np.flatnonzero(train.user_counts > 0)[:8].astype(np.int32)
    scores = np.asarray(fitted.score(_batch(train, users)))[:, cold]
    if not np.isfinite(scores).all():
        raise _fail(spec, "it declares cold_items but scores an item without interactions NaN "
                          "or infinite")
    # A baseline (random) serves cold items without reading features; every other model must.
    if spec.family != "baseline" and not np.allclose(scores[:, 0], scores[:, 1], rtol=1e-5,
                                                     atol=1e-6):
        raise _fail(spec, "it declares cold_items but two items without interactions and with "
                          "identical features score differently: cold items must be scored "
                          "from their features alone (zero their learned per-item weights)")
    if np.ptp(scores, axis=1).max() <= 0:
        raise _fail(spec, "it declares cold_items but gives every item without interactions "
                          "the same score; score them from their features")


def _check_refit(spec: ModelSpec, cfg: object, ctx: ModelContext, train: Interactions,
                 valid: Interactions, key: jax.Array) -> None:
    """Rule 8: a fit on another split of the same shape class (and another key) compiles
    nothing, after a fit on the first split."""
    model = spec.factory(cfg, ctx)
    with CompileClock() as clock:  # compilation happens at dispatch: no need to wait for results
        model.fit(train, valid=valid, key=key)
    if clock.compiles:
        raise _fail(spec, f"a refit (task {ctx.task!r}) on another split of the same size "
                          f"recompiled ({clock.compiles} backend compilations); make "
                          "data-dependent sizes and scalars traced arguments or pad them to "
                          "bucket sizes (recbench.shapes.bucket_size), and jit module-level "
                          "functions, not closures built per fit")
