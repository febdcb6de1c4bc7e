"""The ``limit`` most frequent words of a catalogue's text, chosen the same way on every machine.

scikit-learn's ``max_features`` keeps the most frequent terms with numpy's default (unstable)
sort, whose order among equally frequent terms depends on the numpy version and the CPU's sort
kernel: the same catalogue could get a different vocabulary, and different numbers, on another
machine. Here ties go to the alphabetically first term (a stable sort over the vectorizer's
sorted terms), and the chosen vocabulary is handed to the vectorizer as ``vocabulary=``.
"""

from __future__ import annotations

import numpy as np


def top_terms(docs: list[str], limit: int, **count_options) -> dict[str, int] | None:
    """``{term: column}`` of the ``limit`` terms with the highest total count over ``docs`` (the
    number of docs holding the term with ``binary=True``), among those ``count_options``
    (``CountVectorizer``'s: ``min_df``, ``stop_words``, ...) keep, columns in alphabetical
    order; None when no term is left."""
    from sklearn.feature_extraction.text import CountVectorizer  # slow to import

    vectorizer = CountVectorizer(**count_options)
    try:
        counts = vectorizer.fit_transform(docs)
    except ValueError:  # empty vocabulary: no text, or no term frequent enough
        return None
    terms = vectorizer.get_feature_names_out()  # sorted
    totals = np.asarray(counts.sum(axis=0)).ravel()
    kept = np.sort(np.argsort(-totals, kind="stable")[:limit])
    return {str(terms[i]): column for column, i in enumerate(kept)}
