"""Experiment tracking: report_to and run_name in the training config, TensorBoard logs read back."""

import json

import pytest

from irdistill.errors import InputError
from irdistill.training import TrainConfig, train
from irdistill.training.train import tracking
from test_training import cached, config  # noqa: F401  (fixture)


def test_tensorboard_logs_hold_the_loss_and_the_dev_ndcg(cached, tiny_model_dir, tmp_path):  # noqa: F811
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder, ds, cache, tid = cached
    out = tmp_path / "out"
    train(config(folder, cache, tid, out, "bi-encoder", tiny_model_dir, dev_fraction=0.25, eval_steps=3,
                 loss="infonce", report_to="tensorboard", run_name="toy-run"), progress=False)
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    board = EventAccumulator(str(out / "tensorboard"))
    board.Reload()
    logged = [json.loads(line) for line in open(out / "loss.jsonl")]
    loss = board.Scalars("train/loss")
    assert [e.step for e in loss] == [h["step"] for h in logged if "loss" in h] == [1, 2, 3, 4, 5, 6]
    assert [e.value for e in loss] == pytest.approx([h["loss"] for h in logged if "loss" in h])
    ndcg = board.Scalars("eval/dev_cosine_ndcg@10")
    evals = [h for h in logged if "eval_runtime" in h]
    assert [e.step for e in ndcg] == [h["step"] for h in evals] == [3, 6]
    assert [e.value for e in ndcg] == pytest.approx([h["eval_dev_cosine_ndcg@10"] for h in evals])
    args = json.loads(board.Tensors("args/text_summary")[0].tensor_proto.string_val[0])
    assert args["run_name"] == "toy-run" and args["report_to"] == []


def base(**kw):
    return {"output": "models/x", "dataset": "d", "cache": "c", "examples": {"teacher": "t"}, **kw}


@pytest.mark.parametrize("report_to, message", [
    ("tensorbored", "unknown tracker 'tensorbored'"),
    (["none", "tensorboard"], "none cannot be listed with trackers"),
    (3, "report_to must be a tracker name or a list"),
    ([["tensorboard"]], "report_to must be a tracker name or a list"),
])
def test_bad_report_to(report_to, message):
    with pytest.raises(InputError, match=message):
        TrainConfig.from_dict(base(report_to=report_to))


def test_a_tracker_that_is_not_installed_fails_before_training(monkeypatch, tmp_path):
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else find(name, *a))
    path = tmp_path / "train.yaml"
    path.write_text("output: x\ndataset: y\ncache: z\nexamples: {teacher: t}\nreport_to: [tensorboard, wandb]\n")
    with pytest.raises(InputError, match=r"train.yaml:5: option report_to: wandb is not installed \(pip install wandb"):
        TrainConfig.from_file(path)


def test_trackers_reach_the_trainer(monkeypatch, tmp_path):
    """wandb and mlflow go to the trainer's report_to; TensorBoard is a callback that logs under the output folder."""
    import importlib.util

    from transformers.integrations import TensorBoardCallback

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())  # as if all were installed
    cfg = TrainConfig.from_dict(base(output=str(tmp_path / "run-7"), report_to=["wandb", "tensorboard", "mlflow"]))
    arguments, callbacks = tracking(cfg)
    assert arguments == {"report_to": ["wandb", "mlflow"], "run_name": "run-7"}
    assert len(callbacks) == 1 and isinstance(callbacks[0], TensorBoardCallback)
    assert callbacks[0].logging_dir == str(tmp_path / "run-7" / "tensorboard")
    assert tracking(TrainConfig.from_dict(base(run_name="mine"))) == ({"report_to": [], "run_name": "mine"}, [])
