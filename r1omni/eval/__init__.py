"""Scoring: metrics (UAR, WAR, per-class recall, cue faithfulness), predictions files, reports and
plots, and evaluating a model on a manifest."""

from r1omni.eval.metrics import Scores, class_order, per_class_recall, score, uar, war
from r1omni.eval.predictions import read_predictions, score_predictions_file

__all__ = ["Scores", "class_order", "per_class_recall", "read_predictions", "score", "score_predictions_file",
           "uar", "war"]
