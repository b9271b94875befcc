"""Task models, one file per RNN shape."""

from recur.models.classifier import ClassifierConfig, SequenceClassifier

__all__ = ["ClassifierConfig", "SequenceClassifier"]
