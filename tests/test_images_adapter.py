"""The `images` adapter: released images of PIDM / CFLD / FPDM / GFLA (+ PoCoLD) scored through the normal run.

Each test writes a folder in one layout's naming and canvas (the facts cited in baselines/images.py) for the
pairs of a small embedded synthetic set, here the *target images themselves*, and runs it with
``fpdm_bench.runner.run`` (what ``fpdm-bench run`` calls). Tolerances:

- where the file is already at the run's frame (CFLD 256x176, any layout with ``size`` = its canvas) the
  scored image must equal the written one bit for bit, so SSIM is exactly 1 and MAE 0;
- where the canvas differs (PIDM/GFLA 256x256, FPDM 512x352, PoCoLD 512x384 read at 256x176), the scored
  image must equal the written file resized to the frame with PIL bicubic (the adapter's documented
  filter) bit for bit, and against the target it was made from, SSIM (window 51) >= 0.99 and MAE <= 0.005:
  squeezing 176 -> 256 (or 256 -> 512) columns and back with two bicubic filters softens edges and rounds
  to 8 bits twice (measured on this set: SSIM 0.9987-0.9992, MAE 0.0017-0.0025). GFLA's JPEG files add
  PIL's default quality-75 compression: SSIM >= 0.97, MAE <= 0.015 (measured 0.988, 0.0099). The wrong
  image (the target mirrored, or the source) measures SSIM 0.09-0.13, MAE 0.12-0.15 here, so these bounds
  catch a wrong crop, orientation or pair.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpdm_bench.data import open_dataset
from fpdm_bench.data.deepfashion import flat_name, nested_path
from fpdm_bench.errors import BenchError
from fpdm_bench.models import MODELS
from fpdm_bench.registry import UnknownName
from fpdm_bench.runner import RunConfig, run
from fpdm_bench_baselines.images import LAYOUTS, ReleasedImages, fpdm_image_name


@pytest.fixture(scope="module")
def df(tmp_path_factory):
    """2 test identities x 2 poses: 4 pairs at 256x176, in the DeepFashion CSV layout."""
    from fpdm_bench.data.synth import synthesize_deepfashion

    root = tmp_path_factory.mktemp("df")
    synthesize_deepfashion(root, seed=0, train_identities=1, test_identities=2, poses=2, train_poses=1)
    return root, open_dataset("synthetic", root)


def _target(ds, rec) -> Image.Image:
    return Image.open(ds.image_path(rec.target)).convert("RGB")


def _write(folder: Path, name: str, img: Image.Image) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def _run(root, folder, out, layout, logs=None, **kw):
    cfg = dict(model="images", checkpoint=str(folder), model_args={"layout": layout, **kw.pop("model_args", {})},
               dataset="synthetic", data_root=str(root), out=str(out), protocol="paired", progress=False, batch_size=3)
    cfg.update(kw)
    return run(RunConfig(**cfg), log=(logs.append if logs is not None else lambda m: None))


def _sample(out, pid) -> np.ndarray:
    return np.asarray(Image.open(Path(out) / "samples" / f"{pid}.png"))


def _pil_resize(path: Path, hw, box=None) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    if box is not None:
        im = im.crop(box)
    return np.asarray(im.resize((hw[1], hw[0]), Image.BICUBIC) if im.size != (hw[1], hw[0]) else im)


def test_registered_as_a_model():
    assert "images" in MODELS and MODELS.get("images") is ReleasedImages


def test_fpdm_names_follow_the_official_paths(df):
    # FPDM's sample pairs json names ./img/WOMEN/Blouses_Shirts/id_00003372/03_3_back.jpg; C1 names its output
    # after that path without '/', suffix kept
    assert fpdm_image_name(flat_name("img/WOMEN/Blouses_Shirts/id_00003372/03_3_back.jpg")) == \
        "WOMENBlouses_Shirtsid_0000337203_3_back.jpg"
    _, ds = df
    for key in ds._keypoints:
        assert flat_name("img/" + nested_path(key)) == key
    assert nested_path("im000.png") is None and fpdm_image_name("video1/0003.png") == "video10003.png"


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_pidm_and_gfla_squeezed_canvases(df, tmp_path, suffix):
    """PIDM writes <pair>_vis.png, GFLA <pair>_vis.jpg: 256x256 squeezes of the 256x176 frame."""
    root, ds = df
    layout = "pidm" if suffix == ".png" else "gfla"
    folder = tmp_path / "released"
    for rec in ds.pairs:
        _write(folder, f"{Path(rec.source).stem}_2_{Path(rec.target).stem}_vis{suffix}",
               _target(ds, rec).resize((256, 256), Image.BICUBIC))
    res = _run(root, folder, tmp_path / "run", layout)
    assert res["n"] == len(ds.pairs) == 4 and not res["skipped"]
    for rec in ds.pairs:
        file = folder / f"{rec.pair_id}_vis{suffix}"
        assert np.array_equal(_sample(tmp_path / "run", rec.pair_id), _pil_resize(file, (256, 176)))
    m = res["metrics"]
    ssim_min, mae_max = (0.99, 0.005) if suffix == ".png" else (0.97, 0.015)  # module docstring
    assert m["ssim"]["value"] >= ssim_min and m["mae"]["value"] <= mae_max
    info = res["model"]
    assert info["layout"] == layout and info["canvas"] == [256, 256] and info["nfe"] is None
    assert len(info["checkpoint_sha256"]) == 64 and info["pairs_matched"] == 4

    # at the canvas's own size (the pidm protocol's 256x256 frame) the files are scored untouched
    same = _run(root, folder, tmp_path / "run256", layout, size=[256, 256])
    for rec in ds.pairs:
        assert np.array_equal(_sample(tmp_path / "run256", rec.pair_id),
                              np.asarray(Image.open(folder / f"{rec.pair_id}_vis{suffix}").convert("RGB")))
    if suffix == ".png":
        assert same["metrics"]["ssim"]["value"] == pytest.approx(1.0, abs=1e-6)


def test_cfld_at_the_eval_size_is_exact(df, tmp_path):
    """CFLD's released images: 256x176 PNGs named <from>_2_<to>.png (naming assumed, see the layout)."""
    root, ds = df
    folder = tmp_path / "cfld"
    for rec in ds.pairs:
        _write(folder, f"{Path(rec.source).stem}_2_{Path(rec.target).stem}.png", _target(ds, rec))
    res = _run(root, folder, tmp_path / "run", "cfld")
    assert res["n"] == 4
    assert res["metrics"]["ssim"]["value"] == pytest.approx(1.0, abs=1e-6) and res["metrics"]["mae"]["value"] == 0.0
    for rec in ds.pairs:
        assert np.array_equal(_sample(tmp_path / "run", rec.pair_id), np.asarray(_target(ds, rec)))


def test_fpdm_512x352_in_its_run_folder(df, tmp_path):
    """FPDM: <source path below img/ without '/'>_2_<target likewise>.png at 512x352, in its
    <save_dir_prefix>_<steps>_<i>/ subfolder."""
    root, ds = df
    folder = tmp_path / "fpdm"
    for rec in ds.pairs:
        name = f"{fpdm_image_name(rec.source)}_2_{fpdm_image_name(rec.target)}.png"
        assert name.startswith(("MENSynthid_", "WOMENSynthid_")) and ".jpg_2_" in name
        _write(folder / "generate_ab6_20_0", name, _target(ds, rec).resize((352, 512), Image.BICUBIC))
    res = _run(root, folder, tmp_path / "run", "fpdm")
    assert res["n"] == 4 and res["model"]["canvas"] == [512, 352]
    m = res["metrics"]
    assert m["ssim"]["value"] >= 0.99 and m["mae"]["value"] <= 0.005
    for rec in ds.pairs:
        file = folder / "generate_ab6_20_0" / f"{fpdm_image_name(rec.source)}_2_{fpdm_image_name(rec.target)}.png"
        assert np.array_equal(_sample(tmp_path / "run", rec.pair_id), _pil_resize(file, (256, 176)))


def test_pocold_512x384_under_gfla(df, tmp_path):
    """PoCoLD writes GFLA's <from>_2_<to>_vis.png, at 512x384."""
    root, ds = df
    folder = tmp_path / "pocold"
    for rec in ds.pairs:
        _write(folder, f"{Path(rec.source).stem}_2_{Path(rec.target).stem}_vis.png",
               _target(ds, rec).resize((384, 512), Image.BICUBIC))
    res = _run(root, folder, tmp_path / "run", "gfla")
    assert res["metrics"]["ssim"]["value"] >= 0.99 and res["metrics"]["mae"]["value"] <= 0.005


def test_gfla_all_panel_is_cropped(df, tmp_path):
    """GFLA's _all files: source | generated | target side by side; the middle one is scored."""
    root, ds = df
    folder = tmp_path / "gfla-all"
    for rec in ds.pairs:
        src = Image.open(ds.image_path(rec.source)).convert("RGB").resize((256, 256), Image.BICUBIC)
        panel = Image.new("RGB", (768, 256))
        panel.paste(src, (0, 0))
        panel.paste(_target(ds, rec).resize((256, 256), Image.BICUBIC), (256, 0))
        panel.paste(Image.new("RGB", (256, 256), (255, 0, 0)), (512, 0))
        _write(folder, f"{rec.pair_id}_all.png", panel)
    res = _run(root, folder, tmp_path / "run", "gfla-all", size=[256, 256])
    assert res["metrics"]["ssim"]["value"] == pytest.approx(1.0, abs=1e-6)
    rec = ds.pairs[0]
    assert np.array_equal(_sample(tmp_path / "run", rec.pair_id),
                          _pil_resize(folder / f"{rec.pair_id}_all.png", (256, 256), box=(256, 0, 512, 256)))
    # read with a wrong panel count they are refused by their width, not scored squeezed
    with pytest.raises(BenchError, match="5 equal panels"):
        _run(root, folder, tmp_path / "bad", "gfla-all", model_args={"panels": 5})
    for rec in ds.pairs:  # the same panels named as _vis files: 256x768 is flagged as a panel under gfla...
        (folder / f"{rec.pair_id}_all.png").rename(folder / f"{rec.pair_id}_vis.png")
    with pytest.raises(BenchError, match="more than twice as wide as tall.*panels=N"):
        _run(root, folder, tmp_path / "bad2", "gfla")
    # ... and read with --model-arg panels=3 panel=1 (any layout takes another panel convention)
    res = _run(root, folder, tmp_path / "vis3", "gfla", size=[256, 256], model_args={"panels": 3, "panel": -2})
    assert res["metrics"]["ssim"]["value"] == pytest.approx(1.0, abs=1e-6) and res["model"]["panel"] == 1


def test_missing_and_unmatched_are_reported_then_skipped_on_request(df, tmp_path):
    root, ds = df
    folder = tmp_path / "pidm"
    for rec in ds.pairs:
        _write(folder, f"{rec.pair_id}_vis.png", _target(ds, rec).resize((256, 256), Image.BICUBIC))
    gone = ds.pairs[2]
    (folder / f"{gone.pair_id}_vis.png").unlink()
    _write(folder, "notes/stray.png", Image.new("RGB", (256, 256)))
    _write(folder, f"{ds.pairs[0].pair_id}_gt.png", Image.new("RGB", (256, 256)))

    with pytest.raises(BenchError) as e:
        _run(root, folder, tmp_path / "strict", "pidm")
    msg = str(e.value)
    assert "1 of the 4 pairs have no image" in msg and f"{gone.pair_id}_vis.png" in msg
    assert "2 of its 5 images match no pair" in msg and "notes/stray.png" in msg and "missing=skip" in msg
    assert not (tmp_path / "strict").exists()  # refused before anything was written

    logs = []
    res = _run(root, folder, tmp_path / "skip", "pidm", logs=logs, model_args={"missing": "skip"})
    assert res["n"] == 3 and [s["pair_id"] for s in res["skipped"]] == [gone.pair_id]
    assert "no image" in res["skipped"][0]["reason"]
    assert res["model"]["pairs_missing"] == 1 and res["model"]["images_unmatched"] == 2
    assert any(m.startswith("warning:") and "match no pair" in m for m in logs)
    assert json.loads((tmp_path / "skip" / "results.json").read_text())["n"] == 3
    # a rerun resumes: nothing is regenerated and the skipped pair stays skipped
    again = _run(root, folder, tmp_path / "skip", "pidm", model_args={"missing": "skip"})
    assert again["metrics"] == res["metrics"] and len(again["skipped"]) == 1


def test_wrong_layout_folder_and_arguments(df, tmp_path):
    root, ds = df
    folder = tmp_path / "pidm"
    for rec in ds.pairs:
        _write(folder, f"{rec.pair_id}_vis.png", _target(ds, rec).resize((256, 256), Image.BICUBIC))
    with pytest.raises(UnknownName, match="unknown layout 'pidn'. Did you mean 'pidm'"):
        _run(root, folder, tmp_path / "a", "pidn")
    # the right names under another layout: none found, and the message names the layout that finds them
    with pytest.raises(BenchError, match="none of the 4 pairs.*Layout cfld or gfla or pidm would find 4"):
        _run(root, folder, tmp_path / "b", "fpdm")
    with pytest.raises(BenchError, match="unknown model argument.*steps"):
        _run(root, folder, tmp_path / "c", "pidm", model_args={"steps": 20})
    with pytest.raises(BenchError, match="--checkpoint DIR"):
        run(RunConfig(model="images", dataset="synthetic", data_root=str(root), out=str(tmp_path / "d"),
                      protocol="paired", progress=False), log=lambda m: None)
    assert set(LAYOUTS.names()) >= {"pidm", "cfld", "fpdm", "gfla"}


def test_cli_prints_the_did_you_mean(df, tmp_path):
    from click.testing import CliRunner

    from fpdm_bench.cli import main

    root, ds = df
    res = CliRunner().invoke(main, ["run", "--model", "images", "--checkpoint", str(tmp_path), "--model-arg",
                                    "layout=gfal", "--dataset", "synthetic", "--data-root", str(root), "--out",
                                    str(tmp_path / "r"), "--protocol", "paired", "--no-progress"])
    assert res.exit_code != 0 and "Did you mean 'gfla'" in str(res.exception)
