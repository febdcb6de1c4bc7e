"""Item text as fixed-length token id rows, for a text CNN.

Words are split by scikit-learn's ``CountVectorizer`` analyser (lower case, words of two or more
letters or digits); the vocabulary is the ``vocab_size`` words seen in the most items among
those seen in at least ``min_df`` items (ties to the alphabetically first: ``_vocabulary.py``),
fitted on the whole catalogue's text (side information, known for cold items too). Ids: 0 is
padding, 1 an out-of-vocabulary word, 2.. the vocabulary in alphabetical order. Each text keeps
its first ``max_tokens`` words, in order (the CNN reads word order), and the rows are as wide as
the longest text; the table of word embeddings has ``rows`` rows, ``words + 2`` rounded up to a
size class, so catalogues with about the same vocabulary share compiled code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recbench.api import bucket_size

from .._vocabulary import top_terms

PAD, OOV = 0, 1


@dataclass(frozen=True)
class TokenTable:
    ids: np.ndarray  # int32 [n_items, width], PAD-padded (width <= max_tokens)
    words: int  # vocabulary size (without PAD and OOV)
    rows: int  # rows of the word-embedding table: >= words + 2

    @property
    def empty(self) -> int:
        """Items whose text has no word at all (padding only)."""
        return int((self.ids == PAD).all(axis=1).sum())


def tokenize(texts: np.ndarray, vocab_size: int, min_df: int, max_tokens: int
             ) -> TokenTable | None:
    """The token table of ``texts`` (one str per item); None when no word is frequent enough
    (or every text is empty)."""
    from sklearn.feature_extraction.text import CountVectorizer  # slow to import

    docs = [str(t) for t in texts]
    vocabulary = top_terms(docs, vocab_size, min_df=min_df, binary=True)
    if vocabulary is None:
        return None
    vectorizer = CountVectorizer(vocabulary=vocabulary)
    analyse = vectorizer.build_analyzer()
    tokens = [analyse(doc)[:max_tokens] for doc in docs]  # once per fit, on the host
    # As wide as the longest text (rounded up to 4, at most max_tokens): the CNN runs over every
    # item at every step, and padding positions cost as much as words.
    width = min(max_tokens, -(-max(max(map(len, tokens)), 1) // 4) * 4)
    ids = np.full((len(docs), width), PAD, np.int32)
    for row, words in enumerate(tokens):
        ids[row, :len(words)] = [vocabulary.get(w, OOV - 2) + 2 for w in words]
    return TokenTable(ids, len(vocabulary), bucket_size(len(vocabulary) + 2))
