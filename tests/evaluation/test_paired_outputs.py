"""An evaluation keeps its per-example outputs (in the dataset's class order) for paired tests, not in JSON."""

from __future__ import annotations

import json

import numpy as np

from steelyard.evaluation.evaluate import in_dataset_order
from steelyard.evaluation.labels import LabelMap
from steelyard.evaluation.predict import Outputs
from steelyard.evaluation.result import EvaluationResult
from steelyard.metrics import MetricValue


def test_outputs_are_put_in_the_dataset_class_order():
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])  # model order: (b, a)
    mapped = in_dataset_order(Outputs(proba=proba, labels=np.array([1, 0])), LabelMap([1, 0], ["b", "a"]))
    assert np.array_equal(mapped.proba, proba[:, [1, 0]])  # dataset class 0 ("a") is the model's column 1
    same = Outputs(proba=proba, labels=np.array([0, 1]))
    assert in_dataset_order(same, LabelMap([0, 1], ["a", "b"])) is same


def test_the_outputs_stay_out_of_the_json():
    result = EvaluationResult("m", "d", "d.csv", "test", "text-classification", 2,
                              {"accuracy": MetricValue("accuracy", 0.5, 0.0, 1.0, 2)}, 1.0, 2.0, 2,
                              outputs=Outputs(proba=np.eye(2), labels=np.array([0, 1])))
    data = result.to_dict()
    assert "outputs" not in data and json.loads(json.dumps(data))["n"] == 2
    assert EvaluationResult.from_dict(data).outputs is None
