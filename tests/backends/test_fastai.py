"""The fastai backend with a real Learner: pipeline stages named and in fastai's order, model, pred, loss."""

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("fastai")
import torch  # noqa: E402
from fastai.callback.core import Callback  # noqa: E402
from fastai.data.core import Datasets  # noqa: E402
from fastai.learner import Learner, defaults  # noqa: E402
from fasttransform.transform import Pipeline, Transform  # noqa: E402
from torch import nn  # noqa: E402
from torch_models import global_hooks, module_hooks  # noqa: E402

import numtrace  # noqa: E402
from numtrace.backends import fastai as fastai_backend  # noqa: E402
from numtrace.backends.fastai import NumtraceCallback  # noqa: E402
from numtrace.errors import NumtraceWarning  # noqa: E402


class Synth(Transform):
    def encodes(self, i: int):
        return torch.randn(2, 6, generator=torch.Generator().manual_seed(int(i)))


class Shift(Transform):
    order = 1

    def __init__(self, by=1.0):
        super().__init__()
        self.by = by

    def encodes(self, x: torch.Tensor):
        return x + self.by


class Scale(Transform):
    order = 5

    def encodes(self, x: torch.Tensor):
        return x * 2


class Jitter(Transform):
    """A training-only augmentation: fastai skips it on the validation split."""

    split_idx, order = 0, 2

    def encodes(self, x: torch.Tensor):
        return x + 100.0


class Standardize(Transform):
    """A batch transform (after_batch), applied to the input only."""

    def encodes(self, x: torch.Tensor):
        return (x - x.mean()) / (x.std() + 1e-6) if x.dtype.is_floating_point else x


def label(i):
    return torch.tensor(int(i) % 2)


def make_learner(num_workers=0):
    torch.manual_seed(0)
    items = list(range(8))
    # listed out of order on purpose: fastai runs them sorted by `order`
    x_tfms = [Scale(), Shift(0.5), Jitter(), Synth(), Shift(1.0)]
    dsets = Datasets(items, tfms=[x_tfms, [label]], splits=[items[:4], items[4:]])
    dls = dsets.dataloaders(bs=2, num_workers=num_workers, after_batch=[Standardize()])
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 2))
    return Learner(dls, model, loss_func=nn.CrossEntropyLoss())


def expected_item(i):
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(i))
    return {
        "data.x.Synth": x,
        "data.x.Shift": x + 0.5,
        "data.x.Shift_2": (x + 0.5) + 1.0,
        "data.x.Scale": ((x + 0.5) + 1.0) * 2,
    }


ITEM = ["data.x.Synth", "data.x.Shift", "data.x.Shift_2", "data.x.Scale", "data.y.label"]
MODEL = ["0", "1", "2", "3", "output", "pred", "loss"]


def indexed(names, call):
    return [n if call == 0 else f"{n}@{call}" for n in names]


def test_get_preds_records_every_transform_in_fastai_order_then_the_model_pred_and_loss():
    learn = make_learner()
    before = global_hooks()
    with numtrace.record() as rec:
        preds, targets = learn.get_preds(cbs=[NumtraceCallback()])
    trace = rec.trace
    names = [n for n in trace.order]
    assert names[: len(ITEM) * 2] == indexed(ITEM, 0) + indexed(ITEM, 1)
    assert names[10:12] == ["data.after_batch.Standardize.0", "data.after_batch.Standardize.1"]
    assert names[12:19] == MODEL
    assert len(names) == 2 * 19 and names[-1] == "loss@1"
    assert not any("Jitter" in n for n in names)  # train-only: fastai did not run it here
    for k, item in enumerate(range(4, 8)):  # the validation items, in order
        for name, value in expected_item(item).items():
            np.testing.assert_allclose(trace.read(name if k == 0 else f"{name}@{k}"), value.numpy(), rtol=0, atol=0)
    np.testing.assert_array_equal(trace.read("data.y.label@3"), np.array(7 % 2))
    np.testing.assert_array_equal(np.concatenate([trace.read("pred"), trace.read("pred@1")]), preds.numpy())
    np.testing.assert_array_equal(trace.read("output@1"), trace.read("pred@1"))
    assert trace.read("loss").shape == ()
    # everything is put back
    assert module_hooks(learn.model) == [] and global_hooks() == before
    assert type(learn.dls.valid.after_batch) is Pipeline
    assert all(type(tl.tfms) is Pipeline for tl in learn.dls.valid.dataset.tls)
    assert not any(isinstance(cb, NumtraceCallback) for cb in learn.cbs)


def test_training_batches_are_not_recorded_and_each_validation_is():
    learn = make_learner()
    with numtrace.record() as rec:
        learn.add_cb(NumtraceCallback(weights=True))
        learn.fit(1, lr=1e-3)
        learn.validate()
    order = rec.trace.order
    assert order[:4] == ["1.weight", "1.bias", "3.weight", "3.bias"]  # once per recording
    assert "1.weight@1" not in order
    assert order.count("data.x.Synth") == 1 and "data.x.Synth@7" in order and "data.x.Synth@8" not in order
    assert "loss@3" in order and "loss@4" not in order  # 2 batches in fit's validation + 2 in validate()


def test_an_error_inside_get_preds_still_puts_everything_back():
    class Breaks(Transform):
        order = 9

        def encodes(self, x: torch.Tensor):
            raise ValueError("broken transform")

    learn = make_learner()
    learn.dls.valid.after_batch.add(Breaks())
    before = global_hooks()
    with numtrace.record(), pytest.raises(ValueError, match="broken transform"):
        learn.get_preds(cbs=[NumtraceCallback()])
    assert type(learn.dls.valid.after_batch) is Pipeline and module_hooks(learn.model) == []
    assert global_hooks() == before


def test_with_workers_it_says_what_it_cannot_see_and_records_the_rest():
    learn = make_learner(num_workers=1)
    numtrace.errors.forget_warnings()
    with warnings.catch_warnings(record=True) as caught, numtrace.record() as rec:
        warnings.simplefilter("always")
        preds, _ = learn.get_preds(cbs=[NumtraceCallback()])
    ours = [str(w.message) for w in caught if issubclass(w.category, NumtraceWarning)]
    assert len(ours) == 1 and "num_workers=1" in ours[0] and "not recorded" in ours[0]
    assert rec.trace.order[:2] == ["data.after_batch.Standardize.0", "data.after_batch.Standardize.1"]
    assert not any(n.startswith("data.x") for n in rec.trace.order)
    np.testing.assert_array_equal(np.concatenate([rec.trace.read("pred"), rec.trace.read("pred@1")]), preds.numpy())


def test_single_process_sees_every_transform_even_with_workers():
    learn = make_learner(num_workers=2)
    with numtrace.record() as rec:
        learn.get_preds(cbs=[NumtraceCallback(single_process=True)])
    assert rec.trace.order[: len(ITEM)] == ITEM
    assert learn.dls.valid.fake_l.num_workers == 2


def test_zero_edit_capture_adds_the_callback_to_every_learner_and_takes_it_away():
    callbacks = list(defaults.callbacks)
    with numtrace.record(backend="fastai") as rec:
        undo = fastai_backend.capture()
        try:
            nn.Tanh()(torch.zeros(1))  # a model called before the Learner exists: named by its class
            learn = make_learner()
            learn.model(torch.zeros(1, 2, 6))  # the Learner's model takes the unprefixed names
            learn.fit(1, lr=1e-3)  # training batches: not recorded; its validation: recorded
        finally:
            undo()
    assert defaults.callbacks == callbacks
    order = rec.trace.order
    assert order[:6] == ["Tanh", "0", "1", "2", "3", "output"]
    assert order[6 : 6 + len(ITEM)] == ITEM and "loss" in order
    assert "CrossEntropyLoss" in order  # the loss module is a model of its own, named by its class
    assert "output@2" in order and "output@3" not in order  # the call above + 2 validation batches
    capture_cb = next(cb for cb in learn.cbs if type(cb).__name__ == "NumtraceCaptureCallback")
    assert type(pickle.loads(pickle.dumps(capture_cb))) is Callback  # an exported Learner needs no numtrace


def test_transform_names_are_readable_and_deduplicated():
    def pad_frames(x):
        return x

    pipeline = Pipeline([Shift(), pad_frames, Shift(2.0)])
    assert fastai_backend.transform_names(pipeline.fs) == ["pad_frames", "Shift", "Shift_2"]


def test_a_tapped_pipeline_pickles_and_copies_as_a_plain_pipeline():
    pipeline = Pipeline([Shift(), Scale()])
    fastai_backend.tap_pipeline(pipeline, "data.x")
    try:
        assert type(pipeline) is not Pipeline and isinstance(pipeline, Pipeline)
        copy = pickle.loads(pickle.dumps(pipeline))
        assert type(copy) is Pipeline and torch.equal(copy(torch.ones(1)), torch.full((1,), 4.0))
    finally:
        fastai_backend.untap_pipeline(pipeline)
    assert type(pipeline) is Pipeline
