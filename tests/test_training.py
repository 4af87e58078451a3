"""Training determinism, early stopping, the network cache and its provenance, retraining with masks."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from analysis.data import write_idx
from analysis.data.config import DataConfig
from analysis.device import resolve_device
from analysis.errors import WorkbenchError
from analysis.models import build_model
from analysis.networks import TrainedModel, checkpoint_path, trained_network, training_record
from analysis.retraining import RetrainConfig, retrain
from analysis.training import TrainConfig, evaluate, fit
from pruning import make_permanent, prune_network
from pruning.layers import hidden_layers, prunable_layers, remaining_depth

CPU = torch.device("cpu")


def test_same_config_and_seed_give_the_same_network(tiny_config, digits_split):
    a, metrics_a = fit(tiny_config, digits_split, CPU, progress=False)
    b, metrics_b = fit(tiny_config, digits_split, CPU, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert metrics_a["test_accuracy"] == metrics_b["test_accuracy"] > 0.6


def test_early_stopping_keeps_the_best_epoch(tiny_config, digits_split):
    config = replace(tiny_config, epochs=60, patience=3, lr=1e-2)
    model, metrics = fit(config, digits_split, CPU, progress=False)
    assert metrics["epochs_trained"] < 60 and metrics["epochs_trained"] - metrics["best_epoch"] == 3
    assert metrics["val_accuracy"] == evaluate(model, digits_split.x_val, digits_split.y_val)["accuracy"] > 0.85


def test_a_run_to_the_epoch_cap_records_every_epoch(tiny_config, digits_split):
    """The record a report checks convergence on: a run that reached the cap did not stop early."""
    for patience in (None, 50):
        metrics = fit(replace(tiny_config, epochs=2, patience=patience), digits_split, CPU, progress=False)[1]
        assert metrics["epochs_trained"] == 2


def test_training_record_reads_a_run_to_the_cap_recorded_one_epoch_short_as_one_to_the_cap(tiny_config,
                                                                                          digits_split):
    """Checkpoints from before the epoch-count fix recorded a run to the cap one epoch short; a stop on
    patience leaves exactly ``patience`` epochs after the best one, so the record tells the two apart."""
    config = replace(tiny_config, epochs=60, patience=3, lr=1e-2)
    model, stopped = fit(config, digits_split, CPU, progress=False)
    record = training_record(TrainedModel(model, config, stopped, digits_split, "key"))
    assert record == {"epochs_trained": stopped["epochs_trained"], "best_epoch": stopped["best_epoch"],
                      "max_epochs": 60}
    capped = replace(config, epochs=4, patience=50)
    reached = fit(capped, digits_split, CPU, progress=False)[1]
    legacy = {**reached, "epochs_trained": reached["epochs_trained"] - 1}
    for metrics in (reached, legacy):
        assert training_record(TrainedModel(model, capped, metrics, digits_split, "key"))["epochs_trained"] == 4


def test_keras_decay_slows_learning(tiny_config, digits_split):
    steady = fit(replace(tiny_config, epochs=3), digits_split, CPU, progress=False)[1]
    decayed = fit(replace(tiny_config, epochs=3, lr_decay=1.0), digits_split, CPU, progress=False)[1]
    assert decayed["train_loss"] > steady["train_loss"] + 0.1


def test_conv_nets_train_channels_last_and_come_back_in_the_default_layout(tiny_config, digits_split):
    config = replace(tiny_config, model="cnn8-narrow", hidden=None, optimizer="sgd", lr=0.02, epochs=2)
    model, metrics = fit(config, digits_split, CPU, progress=False)
    assert all(p.is_contiguous() for p in model.parameters())
    assert metrics["test_accuracy"] == evaluate(model, digits_split.x_test, digits_split.y_test)["accuracy"]


def test_cache_hit_returns_the_stored_network(tiny_config, runtime):
    first = trained_network(tiny_config, runtime)
    [checkpoint] = list((runtime.cache / "models").glob("*.pt"))
    stamp = checkpoint.stat().st_mtime_ns
    from analysis import networks

    networks._LAST.clear()  # drop the in-memory copy, so the second call reads the checkpoint
    second = trained_network(tiny_config, runtime)
    assert checkpoint.stat().st_mtime_ns == stamp and len(list((runtime.cache / "models").glob("*.pt"))) == 1
    for pa, pb in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(pa, pb)
    assert second.metrics == first.metrics


def test_corrupt_cache_entry_is_reported(tiny_config, runtime):
    from analysis import networks

    trained_network(tiny_config, runtime)
    networks._LAST.clear()
    [checkpoint] = list((runtime.cache / "models").glob("*.pt"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(WorkbenchError, match="unreadable cache entry"):
        trained_network(tiny_config, runtime)


def _idx_folder(folder, flip: bool):
    """An MNIST-format dataset of the official sizes (mostly blank images, so it compresses);
    ``flip`` changes the images, not their sizes or labels."""
    labels = np.arange(70_000) % 10
    images = np.zeros((70_000, 28, 28), dtype=np.uint8)
    for digit in range(10):
        images[labels == digit, 2 * digit:2 * digit + 6, 4:10] = 200
    if flip:
        images = images[:, :, ::-1].copy()
    folder.mkdir(parents=True)
    for stem, array in (("train-images-idx3-ubyte", images[:60_000]), ("train-labels-idx1-ubyte", labels[:60_000]),
                        ("t10k-images-idx3-ubyte", images[60_000:]), ("t10k-labels-idx1-ubyte", labels[60_000:])):
        write_idx(folder / f"{stem}.gz", array.astype(np.uint8))


def test_checkpoint_key_follows_the_data_content(tmp_path, runtime):
    """Same options, other images: the network trained on folder A is never reused for folder B."""
    _idx_folder(tmp_path / "a" / "mnist", flip=False)
    _idx_folder(tmp_path / "b" / "mnist", flip=True)
    config = TrainConfig(data=DataConfig("mnist", train_size=300, val_size=50), hidden=(16,), epochs=1, batch_size=50)
    on_a = replace(runtime, data_dir=tmp_path / "a", download=False)
    on_b = replace(runtime, data_dir=tmp_path / "b", download=False)
    assert checkpoint_path(config, on_a) != checkpoint_path(config, on_b)
    assert checkpoint_path(config, on_a) == checkpoint_path(config, replace(on_a, device="auto"))
    trained_network(config, on_a)
    trained_network(config, on_b)
    assert len(list((runtime.cache / "models").glob("*.pt"))) == 2
    other = replace(config, data=replace(config.data, train_size=100))
    assert trained_network(config, on_a).metrics != trained_network(config, on_b).metrics
    assert checkpoint_path(other, on_a) != checkpoint_path(config, on_a)


def test_bad_training_options():
    with pytest.raises(WorkbenchError, match="optimizer must be"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(WorkbenchError, match="epochs must be positive"):
        TrainConfig(epochs=0)
    with pytest.raises(WorkbenchError, match="patience must be"):
        TrainConfig(patience=0)
    with pytest.raises(WorkbenchError, match="lr_decay must be >= 0"):
        TrainConfig(lr_decay=-1e-3)
    with pytest.raises(WorkbenchError, match="unknown dataset 'imagenet'"):
        DataConfig("imagenet")


def test_masks_stay_zero_through_retraining_and_accuracy_recovers(tiny_config, digits_split):
    model, metrics = fit(tiny_config, digits_split, CPU, progress=False)
    names = [name for name, _ in hidden_layers(model)]
    pruned = prune_network(model, names, "threshold", 0.7)
    pruned_accuracy = evaluate(pruned.model, digits_split.x_test, digits_split.y_test)["accuracy"]
    result = retrain(pruned.model, tiny_config, digits_split, metrics["test_accuracy"],
                     RetrainConfig(max_epochs=10, tolerance=0.03, eval_every=5))
    modules = dict(pruned.model.named_modules())
    for name, mask in pruned.masks.items():
        assert torch.all(modules[name].weight[~mask] == 0)
    assert result.final_accuracy > pruned_accuracy and result.reached
    assert result.history[0]["accuracy"] == pytest.approx(pruned_accuracy)
    make_permanent(pruned.model)
    for name, mask in pruned.masks.items():
        assert not hasattr(modules[name], "weight_mask") and torch.all(modules[name].weight[~mask] == 0)


def test_retraining_for_fixed_epochs(tiny_config, digits_split):
    model, _ = fit(tiny_config, digits_split, CPU, progress=False)
    pruned = prune_network(model, [prunable_layers(model)[0][0]], "threshold", 0.5)
    result = retrain(pruned.model, tiny_config, digits_split, 1.0,
                     RetrainConfig(max_epochs=1, tolerance=None, eval_every=1000))
    assert result.steps == -(-len(digits_split.x_train) // tiny_config.batch_size) and not result.reached
    assert [point["step"] for point in result.history] == [0, result.steps]


def test_models_expose_prunable_layers_in_order():
    model = build_model("cnn8", (3, 32, 32), 10)
    layers = prunable_layers(model)
    assert len(layers) == 9 and remaining_depth(model, 0) == 8 and remaining_depth(model, 8) == 0
    assert isinstance(layers[-1][1], torch.nn.Linear) and layers[-1][1].out_features == 10
    lenet = build_model("lenet5", (1, 28, 28), 10)
    assert [m.weight.shape[0] for _, m in prunable_layers(lenet)] == [20, 50, 500, 10]
    narrow = build_model("cnn8-narrow", (1, 28, 28), 10)
    assert [m.weight.shape[0] for _, m in prunable_layers(narrow)] == [16, 16, 32, 32, 64, 64, 512, 256, 10]
    with pytest.raises(ValueError, match="lenet5 needs images of at least 16x16 pixels, got 8x8"):
        build_model("lenet5", (1, 8, 8), 10)
    fc = build_model("fc", (1, 28, 28), 10, hidden=(60, 60))
    assert [tuple(m.weight.shape) for _, m in prunable_layers(fc)] == [(60, 784), (60, 60), (10, 60)]


def test_device_choice():
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    for bad in ("tpu", "cpu:junk", "auto:1"):
        with pytest.raises(WorkbenchError, match="unknown device"):
            resolve_device(bad)


def test_manifold_parameters_are_part_of_the_checkpoint_key(runtime):
    from analysis.data.config import MANIFOLD, ManifoldSpec

    def config(**spec):
        return TrainConfig(data=DataConfig(MANIFOLD, manifold=ManifoldSpec(4, **spec)), hidden=(8,))

    keys = {checkpoint_path(config(**spec), runtime) for spec in
            ({}, {"n_train": 500}, {"n_test": 100}, {"ambient_dimension": 100}, {"seed": 1})}
    assert len(keys) == 5
