"""Item feature encoding shared by the content and hybrid models.

:func:`encode_items` turns what the harness hands a model factory (``ModelContext.item_features``
and ``ModelContext.item_text``) into one sparse item x feature matrix, in three blocks:

- **categories**: columns whose values are all 0 or 1 (MovieLens genres, a flag such as
  ``year_missing``), kept as they are (multi-hot);
- **numeric**: every other dense column (price, discount, sales, year). Skew: a column with no
  negative value and a sample skewness above 1 (a heavy right tail: prices, counts) is read as
  ``log1p(x)`` first. Then robust scaling, ``(x - median) / IQR`` (the standard deviation when
  the IQR is 0, as for a column that is mostly one value), clipped to [-5, 5] so one outlier
  cannot dominate a cosine;
- **text**: TF-IDF of the item text (scikit-learn's ``TfidfVectorizer``, sublinear tf, English
  stop words, the ``text_features`` most frequent terms seen in at least ``text_min_df`` items,
  ties to the alphabetically first: ``_vocabulary.py``), sparse.
  The vocabulary and IDF are fitted on the whole catalogue's text, which is side information
  known for every item, cold ones included; no interaction is used.

A sparse ``item_features`` table is taken as it is (one category-like block). The category and
text blocks' rows are L2-normalised, the numeric block is scaled by one constant to a
root-mean-square row norm of 1; each block is then multiplied by its ``*_weight``, so a block's
share of a cosine does not depend on its number of columns, and the joined rows are
L2-normalised again.

Rules for bad input: a column with the same value for every item carries nothing and is dropped
(and listed in ``EncodedItems.dropped``); a NaN or infinite value is a :class:`DataError` naming
the column (fill it and add a ``<column>_missing`` 0/1 column, as the MovieLens loader does for
an unknown year); an item with no attribute and empty text gets an all-zero row (its cosine with
anything is 0, never NaN); a dataset with neither item features nor item text is refused before
fitting, naming both tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from recbench.api import DataError, FeatureTable, Interactions, ModelContext, check

from .._vocabulary import top_terms

_CLIP = 5.0  # robust z-scores beyond this carry no more weight
_SKEW = 1.0  # sample skewness above which a non-negative column is log1p-transformed
_BINS = 8  # quantile bins per numeric column, for category_indicators


@dataclass(frozen=True)
class FeatureOptions:
    """How a content or hybrid model encodes items (see the module docstring)."""

    text_features: int = field(default=1000, metadata={
        "range": (0, None), "help": "most TF-IDF terms of the item text (0: no text)"})
    text_min_df: int = field(default=2, metadata={
        "range": (1, None), "help": "a term must occur in at least this many items"})
    category_weight: float = field(default=1.0, metadata={"range": (0.0, None)})
    numeric_weight: float = field(default=1.0, metadata={"range": (0.0, None)})
    text_weight: float = field(default=1.0, metadata={"range": (0.0, None)})
    drop_columns: tuple[str, ...] = field(default=(), metadata={
        "help": "item feature columns to ignore (e.g. ones computed from future "
                "interactions); names the dataset lacks are ignored"})

    def __post_init__(self) -> None:
        check(self.text_features >= 0, f"text_features must be >= 0, got {self.text_features}")
        check(self.text_min_df >= 1, f"text_min_df must be >= 1, got {self.text_min_df}")
        for name in ("category_weight", "numeric_weight", "text_weight"):
            value = getattr(self, name)
            check(value >= 0, f"{name} must be >= 0, got {value}")


@dataclass(frozen=True)
class EncodedItems:
    matrix: sp.csr_matrix  # float32 [n_items, n_features], rows L2-normalised (or all zero)
    columns: tuple[str, ...]  # a name per column: "genre_Drama", "log1p(price)", "text:heart"
    dropped: tuple[str, ...]  # constant columns left out
    numeric: np.ndarray  # float64 [n_items, n_numeric] scaled numeric block (for binning)
    numeric_columns: tuple[str, ...]

    @property
    def empty(self) -> np.ndarray:
        """bool [n_items]: items with no feature at all (all-zero rows)."""
        return np.diff(self.matrix.indptr) == 0


def require_side_information(ctx: ModelContext, model: str) -> None:
    if ctx.item_features is None and ctx.item_text is None:
        raise DataError(f"model {model!r} scores items from their content, but the dataset has "
                        "no item features (ModelContext.item_features) and no item text "
                        "(ModelContext.item_text, from item_info['text'] or ['title']); use a "
                        "dataset with item attributes or descriptions")


def _check_finite(values: np.ndarray | sp.csr_matrix, columns: tuple[str, ...]) -> None:
    if sp.issparse(values):
        bad_cols = np.unique(values.indices[~np.isfinite(values.data)])
    else:
        bad_cols = np.flatnonzero(~np.isfinite(values).all(axis=0))
    if len(bad_cols):
        col = int(bad_cols[0])
        n_bad = (int((~np.isfinite(values[:, col].toarray())).sum()) if sp.issparse(values)
                 else int((~np.isfinite(values[:, col])).sum()))
        raise DataError(f"item feature column {columns[col]!r} has {n_bad} NaN or infinite "
                        "values; fill them (e.g. with the median) and add a "
                        f"'{columns[col]}_missing' 0/1 column, as the MovieLens loader does")


def _scale(x: np.ndarray, name: str) -> tuple[np.ndarray, str]:
    """Robust z-score of one numeric column, log1p first for a heavy right tail."""
    from scipy.stats import skew  # imported here: scipy.stats is slow to import

    if x.min() >= 0 and skew(x) > _SKEW:
        x, name = np.log1p(x), f"log1p({name})"
    q25, median, q75 = np.percentile(x, [25, 50, 75])
    spread = q75 - q25
    if spread <= 0:
        spread = x.std()
    return np.clip((x - median) / spread, -_CLIP, _CLIP), name


def _rms_scaled(block: np.ndarray, weight: float) -> sp.csr_matrix:
    """The numeric block scaled so its root-mean-square row norm is ``weight``: one constant for
    the block, so a price above the median stays distinct from one far above it (per-row
    normalisation of one column would leave only its sign)."""
    rms = np.sqrt((block ** 2).sum(axis=1).mean())
    return sp.csr_matrix(block * (weight / rms if rms > 0 else 0.0))


def _normalised(block: sp.csr_matrix, weight: float) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(block.multiply(block).sum(axis=1)).ravel())
    inv = np.divide(weight, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv) @ block)


def _text_block(text: np.ndarray | None, opts: FeatureOptions
                ) -> tuple[sp.csr_matrix | None, tuple[str, ...]]:
    if text is None or opts.text_features == 0:
        return None, ()
    from sklearn.feature_extraction.text import TfidfVectorizer  # slow to import
    docs = [str(t) for t in text]
    vocabulary = top_terms(docs, opts.text_features, min_df=opts.text_min_df,
                           stop_words="english")
    if vocabulary is None:  # no text, or no term frequent enough
        return None, ()
    vectorizer = TfidfVectorizer(vocabulary=vocabulary, sublinear_tf=True, stop_words="english",
                                 dtype=np.float32)
    tfidf = vectorizer.fit_transform(docs)
    return sp.csr_matrix(tfidf), tuple(f"text:{t}" for t in vectorizer.get_feature_names_out())


def encode_items(ctx: ModelContext, opts: FeatureOptions, model: str) -> EncodedItems:
    """The item x feature matrix of the module docstring; raises :class:`DataError` on bad input."""
    require_side_information(ctx, model)
    return encode_table(ctx.item_features, ctx.item_text, ctx.n_items, opts, f"model {model!r}")


def encode_users(ctx: ModelContext, opts: FeatureOptions, model: str) -> EncodedItems | None:
    """The user features (e.g. country, age, occupation) by the same rules; None without any."""
    if ctx.user_features is None:
        return None
    try:
        return encode_table(ctx.user_features, None, ctx.n_users, opts, f"model {model!r}")
    except DataError as e:
        raise DataError(f"user features: {e}") from None


def encode_table(table: FeatureTable | None, text: np.ndarray | None, n_rows: int,
                 opts: FeatureOptions, where: str) -> EncodedItems:
    """Rows of ``table`` (and TF-IDF of ``text``) encoded as the module docstring describes."""
    blocks: list[sp.csr_matrix] = []
    names: list[str] = []
    dropped: list[str] = []
    numeric = np.zeros((n_rows, 0))
    numeric_names: list[str] = []
    if table is not None:
        keep = [j for j, c in enumerate(table.columns) if c not in opts.drop_columns]
        values = table.values[:, keep]
        columns = tuple(table.columns[j] for j in keep)
        _check_finite(values, columns)
        if sp.issparse(values):
            values = sp.csr_matrix(values)
            constant = np.flatnonzero(values.max(axis=0).toarray().ravel()
                                      == values.min(axis=0).toarray().ravel())
            dropped += [columns[j] for j in constant]
            live = [j for j in range(len(columns)) if j not in set(constant)]
            blocks.append(_normalised(values[:, live], opts.category_weight))
            names += [columns[j] for j in live]
        else:
            values = np.asarray(values, np.float64)
            constant = values.max(axis=0) == values.min(axis=0) if len(values) else []
            binary = ((values == 0) | (values == 1)).all(axis=0)
            cat = [j for j in range(len(columns)) if binary[j] and not constant[j]]
            num = [j for j in range(len(columns)) if not binary[j] and not constant[j]]
            dropped += [columns[j] for j in range(len(columns)) if constant[j]]
            if cat:
                blocks.append(_normalised(sp.csr_matrix(values[:, cat]), opts.category_weight))
                names += [columns[j] for j in cat]
            if num:
                scaled = [_scale(values[:, j], columns[j]) for j in num]
                numeric = np.column_stack([s for s, _ in scaled])
                numeric_names = [n for _, n in scaled]
                blocks.append(_rms_scaled(numeric, opts.numeric_weight))
                names += numeric_names
    text_matrix, text_names = _text_block(text, opts)
    if text_matrix is not None:
        blocks.append(_normalised(text_matrix, opts.text_weight))
        names += text_names
    if not names:
        raise DataError(f"{where}: no usable feature (every column constant"
                        f"{' or dropped' if opts.drop_columns else ''}: "
                        f"{', '.join(dropped) or 'none'}; no text term); give the items "
                        "attributes or descriptions")
    matrix = _normalised(sp.hstack(blocks, format="csr"), 1.0).astype(np.float32)
    matrix.eliminate_zeros()
    return EncodedItems(matrix, tuple(names), tuple(dropped), numeric, tuple(numeric_names))


def category_indicators(encoded: EncodedItems) -> sp.csr_matrix:
    """0/1 item x category matrix: every nonzero category or text column of ``encoded``, and
    each numeric column cut into up to 8 quantile bins over the catalogue (a price band is a
    category), for popularity by category."""
    numeric_cols = set(encoded.numeric_columns)
    other = [j for j, c in enumerate(encoded.columns) if c not in numeric_cols]
    parts = [(encoded.matrix[:, other] != 0).astype(np.float32)]
    for j in range(encoded.numeric.shape[1]):
        x = encoded.numeric[:, j]
        edges = np.unique(np.quantile(x, np.linspace(0, 1, _BINS + 1)[1:-1]))
        band = np.searchsorted(edges, x, side="right")
        parts.append(sp.csr_matrix((np.ones(len(x), np.float32), (np.arange(len(x)), band)),
                                   shape=(len(x), len(edges) + 1)))
    return sp.csr_matrix(sp.hstack(parts, format="csr"))


def without_cold_identities(params: dict, train: Interactions, names: tuple[str, ...]) -> dict:
    """``params`` with the rows of the item-indexed tables ``names`` zeroed for every item that has
    no training interaction. Such rows are still trained as sampled negatives (pushed down), so
    without this a cold item would carry learned identity weights and not be scored from its
    features alone."""
    cold = jnp.asarray(train.item_counts == 0)
    out = dict(params)
    for name in names:
        table = params[name]
        mask = cold.reshape((-1,) + (1,) * (table.ndim - 1))
        out[name] = jnp.where(mask, 0.0, table).astype(table.dtype)
    return out
