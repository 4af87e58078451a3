"""Training determinism, the checkpoint cache, retraining with masks."""
import pytest
import torch

from analysis.device import resolve_device
from analysis.errors import WorkbenchError
from analysis.models import build_model, prunable_layers, remaining_depth
from analysis.retraining import RetrainConfig, retrain
from analysis.store import config_hash
from analysis.training import TrainConfig, evaluate, fit, train_or_load
from pruning import magnitude_mask, make_permanent

CPU = torch.device("cpu")


def test_same_config_and_seed_give_the_same_network(tiny_config, digits_split):
    a, metrics_a = fit(tiny_config, digits_split, CPU, progress=False)
    b, metrics_b = fit(tiny_config, digits_split, CPU, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert metrics_a["test_accuracy"] == metrics_b["test_accuracy"] > 0.6


def test_checkpoint_cache_hit_returns_the_stored_network(tiny_config, digits_split, tmp_path):
    first = train_or_load(tiny_config, tmp_path, CPU, split=digits_split, progress=False)
    [checkpoint] = list((tmp_path / "models").iterdir())
    assert config_hash(tiny_config) in checkpoint.name
    stamp = checkpoint.stat().st_mtime_ns
    second = train_or_load(tiny_config, tmp_path, CPU, split=digits_split, progress=False)
    assert checkpoint.stat().st_mtime_ns == stamp and len(list((tmp_path / "models").iterdir())) == 1
    for pa, pb in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(pa, pb)
    assert second.metrics == first.metrics


def test_corrupt_cache_entry_is_reported(tiny_config, digits_split, tmp_path):
    train_or_load(tiny_config, tmp_path, CPU, split=digits_split, progress=False)
    [checkpoint] = list((tmp_path / "models").iterdir())
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(WorkbenchError, match="unreadable cache entry"):
        train_or_load(tiny_config, tmp_path, CPU, split=digits_split, progress=False)


def test_config_hash_tracks_every_field(tiny_config):
    assert config_hash(tiny_config) == config_hash(TrainConfig(**tiny_config.__dict__))
    assert config_hash(tiny_config) != config_hash(TrainConfig(**{**tiny_config.__dict__, "lr": 2e-3}))


def test_bad_training_options():
    with pytest.raises(WorkbenchError, match="optimizer must be"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(WorkbenchError, match="epochs must be positive"):
        TrainConfig(epochs=0)


def test_masks_stay_zero_through_retraining_and_accuracy_recovers(tiny_config, digits_split):
    model, metrics = fit(tiny_config, digits_split, CPU, progress=False)
    layers = [m for _, m in prunable_layers(model)[:-1]]
    masks = {m: magnitude_mask(m.weight, 0.7) for m in layers}
    with torch.no_grad():
        for m, mask in masks.items():
            m.weight.mul_(mask)
    pruned_accuracy = evaluate(model, digits_split.x_test, digits_split.y_test)["accuracy"]
    result = retrain(model, masks, tiny_config, digits_split, metrics["test_accuracy"],
                     RetrainConfig(max_epochs=10, tolerance=0.03, eval_every=5))
    for m, mask in masks.items():
        assert torch.all(m.weight[~mask] == 0)
    assert result.final_accuracy > pruned_accuracy and result.reached
    assert result.history[0]["accuracy"] == pytest.approx(pruned_accuracy)
    make_permanent(model)
    for m, mask in masks.items():
        assert not hasattr(m, "weight_mask") and torch.all(m.weight[~mask] == 0)


def test_retraining_for_fixed_epochs(tiny_config, digits_split):
    model, _ = fit(tiny_config, digits_split, CPU, progress=False)
    layer = prunable_layers(model)[0][1]
    mask = magnitude_mask(layer.weight, 0.5)
    result = retrain(model, {layer: mask}, tiny_config, digits_split, 1.0,
                     RetrainConfig(max_epochs=1, tolerance=None, eval_every=1000))
    assert result.steps == -(-len(digits_split.x_train) // tiny_config.batch_size) and not result.reached


def test_models_expose_prunable_layers_in_order():
    model = build_model("cnn8", (3, 32, 32), 10)
    layers = prunable_layers(model)
    assert len(layers) == 9 and remaining_depth(model, 0) == 8 and remaining_depth(model, 8) == 0
    assert isinstance(layers[-1][1], torch.nn.Linear) and layers[-1][1].out_features == 10
    lenet = build_model("lenet5", (1, 28, 28), 10)
    assert [m.weight.shape[0] for _, m in prunable_layers(lenet)] == [20, 50, 500, 10]
    fc = build_model("fc", (1, 28, 28), 10, hidden=(60, 60))
    assert [tuple(m.weight.shape) for _, m in prunable_layers(fc)] == [(60, 784), (60, 60), (10, 60)]


def test_device_choice():
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(WorkbenchError, match="unknown device 'tpu'"):
        resolve_device("tpu")
