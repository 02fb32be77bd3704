"""Backbone registry, offline weights, output sizes and exact padded batching."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from occseg.backbones import (
    Backbone,
    WeightsError,
    backbone_spec,
    efficientnet_lite0_classifier,
    get_backbone,
    list_backbones,
    normalize,
)
from occseg.backbones.efficientnet import LAST_STRIDE16_BLOCK, LITE_MEAN, LITE_STD, packaged_weights_file
from occseg.backbones.weights import load_state_dict_file

ESPRESSO = 967  # ImageNet class index of "espresso"


def _weights(name: str) -> str | None:
    """Real weights for the default backbone (shipped offline); random init for the torchvision ones."""
    return None if name == "efficientnet_lite0" else "random"


@pytest.fixture(scope="module")
def lite0() -> Backbone:
    return get_backbone()


def test_registry_lists_the_three_backbones_with_their_specs():
    specs = {s.name: s for s in list_backbones()}
    assert list(specs)[0] == "efficientnet_lite0"  # the default comes first
    assert {n: (s.channels, s.stride, s.kappa) for n, s in specs.items()} == {
        "efficientnet_lite0": (112, 16, 20.0),
        "vgg16": (512, 16, 30.0),
        "resnext50": (1024, 16, 65.0),
    }
    assert specs["vgg16"].mean == (0.485, 0.456, 0.406) and specs["resnext50"].std == (0.229, 0.224, 0.225)
    assert specs["efficientnet_lite0"].mean == LITE_MEAN
    with pytest.raises(AttributeError):
        specs["vgg16"].kappa = 1.0  # frozen
    with pytest.raises(ValueError, match="unknown backbone 'alexnet'.*efficientnet_lite0"):
        backbone_spec("alexnet")


@pytest.mark.parametrize("name", ["efficientnet_lite0", "vgg16", "resnext50"])
def test_output_is_ceil_h16_by_ceil_w16_and_frozen(name):
    bb = get_backbone(name, weights=_weights(name))
    assert bb.spec == backbone_spec(name)
    assert not bb.training and not any(p.requires_grad for p in bb.parameters())
    bb.train()
    assert not bb.training  # stays in eval mode
    with torch.inference_mode():
        exact = bb(torch.randn(2, 3, 64, 96))
        odd = bb(torch.randn(1, 3, 37, 53))
    assert exact.shape == (2, bb.spec.channels, 4, 6)  # divisible by 16: exactly H/16 x W/16
    assert odd.shape == (1, bb.spec.channels, 3, 4)  # otherwise ceil
    with pytest.raises(ValueError, match="expected a \\(B, 3, H, W\\) batch"):
        bb(torch.randn(3, 32, 32))


def test_default_weights_are_imagenet_weights_coffee_is_espresso():
    from skimage.data import coffee

    model = efficientnet_lite0_classifier()
    x = torch.from_numpy(coffee()).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, 400, 600)
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    x = (x - torch.tensor(LITE_MEAN).view(1, 3, 1, 1)) / torch.tensor(LITE_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        prob = model(x).softmax(1)[0]
    assert int(prob.argmax()) == ESPRESSO
    assert float(prob[ESPRESSO]) > 0.5  # measured 0.88
    random_model = efficientnet_lite0_classifier("random")
    with torch.inference_mode():
        assert float(random_model(x).softmax(1)[0, ESPRESSO]) < 0.05


def test_trunk_is_the_classifier_up_to_its_last_stride16_block(lite0):
    full = efficientnet_lite0_classifier()
    blocks = list(full._blocks)
    assert blocks[LAST_STRIDE16_BLOCK]._block_args.output_filters == 112
    assert blocks[LAST_STRIDE16_BLOCK + 1]._block_args.stride == [2]  # the next block starts stride 32
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        y = full._swish(full._bn0(full._conv_stem(x)))
        for b in blocks[: LAST_STRIDE16_BLOCK + 1]:
            y = b(y)
        torch.testing.assert_close(lite0(x), y)
    assert lite0.weights_source == str(packaged_weights_file())


def test_normalize_exact_values():
    img = np.array([[[0, 255, 51]]], dtype=np.uint8)  # one pixel
    x = normalize(img, (0.5, 0.5, 0.2), (0.5, 0.25, 0.1))
    assert x.shape == (1, 3, 1, 1) and x.dtype == torch.float32
    torch.testing.assert_close(x.flatten(), torch.tensor([-1.0, 2.0, 0.0]))
    assert normalize(np.zeros((2, 5, 7, 3), np.uint8), (0, 0, 0), (1, 1, 1)).shape == (2, 3, 5, 7)
    with pytest.raises(ValueError, match="uint8"):
        normalize(np.zeros((5, 7, 3), np.float32), (0, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match="shape \\(5, 7, 4\\)"):
        normalize(np.zeros((5, 7, 4), np.uint8), (0, 0, 0), (1, 1, 1))


@pytest.mark.parametrize("name", ["efficientnet_lite0", "vgg16", "resnext50"])
def test_forward_padded_gives_each_input_its_own_features(name):
    bb = get_backbone(name, weights=_weights(name))
    a, b = torch.randn(3, 48, 32), torch.randn(3, 32, 64)
    batch = torch.zeros(2, 3, 48, 64)
    batch[0, :, :48, :32] = a
    batch[1, :, :32, :64] = b
    with torch.inference_mode():
        out = bb.forward_padded(batch, [(48, 32), (32, 64)])
        alone_a, alone_b = bb(a[None])[0], bb(b[None])[0]
        plain = bb(batch)
    torch.testing.assert_close(out[0, :, :3, :2], alone_a, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out[1, :, :2, :4], alone_b, atol=1e-4, rtol=1e-4)
    # without the masking, the padding leaks into the border cells through the receptive field
    assert float((plain[0, :, :3, :2] - alone_a).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="within the batch size"):
        bb.forward_padded(batch, [(48, 32), (64, 64)])


# --- weights: offline errors, hub cache, local files -------------------------------------------------


def _no_download(*args, **kwargs):  # replaces torch.hub.download_url_to_file: the tests never use the network
    raise AssertionError("a download was attempted")


def test_offline_without_file_says_which_file_where_and_how_to_pass_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    with pytest.raises(WeightsError) as err:
        get_backbone("vgg16")
    msg = str(err.value)
    assert "vgg16-397923af.pth" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg
    assert "cannot be downloaded" in msg
    assert "weights='path/to/vgg16-397923af.pth'" in msg
    assert isinstance(err.value, FileNotFoundError)  # the CLI reports it as a one-line error


def test_failed_download_says_it_cannot_be_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst, hash_prefix=None, progress=True):
        Path(dst).write_bytes(b"partial")
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as err:
        get_backbone("resnext50", allow_download=True)
    msg = str(err.value)
    assert "resnext50_32x4d-7cdf4587.pth" in msg and str(tmp_path / "hub" / "checkpoints") in msg
    assert "cannot be downloaded from https://download.pytorch.org/models/resnext50_32x4d-7cdf4587.pth" in msg
    assert "no network" in msg and "weights='path/to/resnext50_32x4d-7cdf4587.pth'" in msg
    assert list((tmp_path / "hub" / "checkpoints").iterdir()) == []  # no partial file left behind


def test_weights_come_from_download_then_cache_then_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    reference = get_backbone("vgg16", weights="random")
    # torchvision's file holds the whole vgg16; only features.* is used
    full_state = {f"features.{k}": v for k, v in reference.body.state_dict().items()}
    full_state["classifier.0.weight"] = torch.zeros(2, 2)
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        torch.save(full_state, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    downloaded = get_backbone("vgg16", allow_download=True)
    assert calls == [("https://download.pytorch.org/models/vgg16-397923af.pth", "397923af")]
    cached = tmp_path / "home" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert downloaded.weights_source == str(cached)

    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    from_cache = get_backbone("vgg16")  # found in the cache, no download
    local = tmp_path / "my_vgg.pth"
    torch.save(reference.body.state_dict(), local)  # a trunk-only state dict works too
    from_file = get_backbone("vgg16", weights=local)
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        for bb in (downloaded, from_cache, from_file):
            torch.testing.assert_close(bb(x), reference(x))


class _NotATensor:
    pass


def test_weight_files_are_loaded_without_unpickling_objects(tmp_path):
    bad = tmp_path / "evil.pth"
    torch.save({"w": _NotATensor()}, bad)
    with pytest.raises(WeightsError, match=f"cannot read weights file {bad}.*which occseg never unpickles") as info:
        load_state_dict_file(bad)
    assert "weights_only=False" not in str(info.value)  # torch's advice to unpickle is not passed on
    with pytest.raises(WeightsError, match=f"{tmp_path} is a folder; give the weights file itself"):
        load_state_dict_file(tmp_path)
    with pytest.raises(WeightsError, match="weights file not found: .*missing.pth"):
        get_backbone("resnext50", weights=tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    state = get_backbone("vgg16", weights="random").body.state_dict()
    state["0.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save(state, wrong)
    with pytest.raises(WeightsError, match="tensor 0.weight has shape \\(1, 1, 1, 1\\).*\\(64, 3, 3, 3\\)"):
        get_backbone("vgg16", weights=wrong)
    with pytest.raises(WeightsError, match="lack .* tensors"):
        get_backbone("efficientnet_lite0", weights=wrong)


def test_safetensors_and_wrapped_state_dicts(tmp_path):
    from safetensors.torch import save_file

    ref = get_backbone("resnext50", weights="random")
    st = tmp_path / "r.safetensors"
    save_file({k: v.contiguous() for k, v in ref.body.state_dict().items()}, str(st))
    wrapped = tmp_path / "r.pth"
    torch.save({"state_dict": ref.body.state_dict(), "epoch": 3}, wrapped)
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        for path in (st, wrapped):
            torch.testing.assert_close(get_backbone("resnext50", weights=path)(x), ref(x))


def test_random_weights_come_from_their_seed_and_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = get_backbone("vgg16", weights="random")
    assert torch.equal(torch.random.get_rng_state(), before)
    b = get_backbone("vgg16", weights="random")
    c = get_backbone("vgg16", weights="random", seed=1)
    for (ka, ta), (kb, tb) in zip(a.body.state_dict().items(), b.body.state_dict().items()):
        assert ka == kb and torch.equal(ta, tb)
    assert not torch.equal(a.body.state_dict()["0.weight"], c.body.state_dict()["0.weight"])


def test_fingerprint_follows_the_weights_not_their_file(tmp_path):
    from safetensors.torch import save_file

    ref = get_backbone("resnext50", weights="random")
    st = tmp_path / "r.safetensors"
    save_file({k: v.contiguous() for k, v in ref.body.state_dict().items()}, str(st))
    fp = ref.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0  # SHA-256 hex
    assert get_backbone("resnext50", weights=st).fingerprint() == fp  # same weights from another file format
    assert get_backbone("resnext50", weights="random", seed=1).fingerprint() != fp
    changed = get_backbone("resnext50", weights="random")
    with torch.no_grad():
        next(changed.body.parameters()).view(-1)[0] += 1e-3
    assert changed.fingerprint() != fp


def test_specs_name_the_layer_the_features_come_from():
    assert [(s.name, s.layer) for s in list_backbones()] == [
        ("efficientnet_lite0", f"blocks.{LAST_STRIDE16_BLOCK}"),
        ("vgg16", "pool4"),
        ("resnext50", "layer3"),
    ]


@pytest.mark.parametrize("content", [b"junk\n", b"", b"PK\x03\x04broken zip"])
def test_unreadable_weight_files_are_named(tmp_path, content):
    bad = tmp_path / "junk.pth"
    bad.write_bytes(content)
    with pytest.raises(WeightsError, match=f"resnext50: cannot read weights file {bad} as a plain state dict"):
        get_backbone("resnext50", weights=bad)


def test_cudnn_is_left_out_only_where_measured_slower_and_only_on_cuda():
    from occseg.backbones.registry import uses_cudnn

    specs = {s.name: s for s in list_backbones()}
    assert not specs["efficientnet_lite0"].cudnn and specs["vgg16"].cudnn and specs["resnext50"].cudnn
    assert not uses_cudnn(specs["efficientnet_lite0"], torch.device("cuda:0"))
    assert uses_cudnn(specs["efficientnet_lite0"], torch.device("cpu"))  # nothing to switch off there
    assert uses_cudnn(specs["vgg16"], torch.device("cuda"))


def test_cudnn_is_switched_back_as_it_was_even_after_an_error():
    from occseg.backbones.registry import cudnn_disabled

    for before in (True, False):
        torch.backends.cudnn.enabled = before
        try:
            with pytest.raises(RuntimeError, match="boom"), cudnn_disabled():
                assert torch.backends.cudnn.enabled is False
                raise RuntimeError("boom")
            assert torch.backends.cudnn.enabled is before
        finally:
            torch.backends.cudnn.enabled = True


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_lite0_runs_without_cudnn_on_cuda_and_leaves_it_on():
    seen = []
    bb = get_backbone(device="cuda")
    bb.body.register_forward_pre_hook(lambda *_: seen.append(torch.backends.cudnn.enabled))
    assert torch.backends.cudnn.enabled
    bb(torch.zeros(1, 3, 64, 96, device="cuda"))
    assert seen == [False] and torch.backends.cudnn.enabled
