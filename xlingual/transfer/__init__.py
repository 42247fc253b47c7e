"""Transfer: a head fitted on the teacher's vectors of English labelled texts, applied to Japanese through a student.

``labelled.py`` reads labelled texts, ``classifier.py`` fits, saves and applies the head, ``predict.py``
streams a file through it, ``evaluate.py`` scores it on test sets through several models.
"""

from xlingual.transfer.classifier import Classifier, Prediction, fit_classifier
from xlingual.transfer.evaluate import ClassifierReport, evaluate_classifier
from xlingual.transfer.labelled import LabelledSet, read_labelled
from xlingual.transfer.predict import predict_file

__all__ = [
    "Classifier",
    "ClassifierReport",
    "LabelledSet",
    "Prediction",
    "evaluate_classifier",
    "fit_classifier",
    "predict_file",
    "read_labelled",
]
