"""Training options shared by the hybrid models (FM/DeepFM, LightFM, two-tower).

One definition of the epoch loop's settings (Adam steps over shuffled batches, validated every
``eval_every`` epochs on NDCG@``valid_k``, stopped after ``patience`` validations without
improvement, best parameters restored) on top of the item encoding options, so the three models
cannot drift apart in names, defaults or checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recbench.api import check

from ..content.features import FeatureOptions


@dataclass(frozen=True)
class HybridTrainingOptions(FeatureOptions):
    # Fewer text terms than content-knn: every training step multiplies the item feature table
    # by the feature embeddings.
    text_features: int = field(default=300, metadata={
        "range": (0, None), "help": "most TF-IDF terms of the item text (0: no text)"})
    epochs: int = field(default=40, metadata={"range": (1, None)})
    batch_size: int = field(default=2048, metadata={"range": (1, None)})
    # 0.002 over 0.005: better LightFM NDCG@10 on the ML-100K split of seed 100 (not a reported
    # seed).
    learning_rate: float = field(default=0.002, metadata={"range": (0.0, None)})
    eval_every: int = field(default=1, metadata={"range": (1, None)})
    patience: int = field(default=4, metadata={"range": (1, None)})
    valid_k: int = field(default=10, metadata={"range": (1, None)})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("epochs", "batch_size", "eval_every", "patience", "valid_k"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
