"""`fpdm-bench score`: folders named the repos' ways, two plain folders, the reference-statistics cache,
and one clear message for each kind of bad input."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_fixture, open_manifest
from PIL import Image
from skimage.metrics import structural_similarity

from fpdm_bench.cli import main

SIZE = (96, 64)  # large enough for the window-51 SSIM


@pytest.fixture
def ds(tmp_path):
    return open_manifest(make_fixture(tmp_path / "fx", n_images=6, size=SIZE))


def score(*args, ok=True):
    res = CliRunner().invoke(main, ["score", *map(str, args)])
    if ok:
        assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def write(folder, name, arr):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(folder / name)


def load(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_oracle_folder_scores_the_ceiling(tmp_path, ds):
    gen = tmp_path / "gen"
    for r in ds.pairs:
        write(gen, f"{r.pair_id}.png", load(ds.image_path(r.target)))
    score("--dataset", "fixture", "--data-root", ds.root, "--generated", gen, "--protocol", "paired",
          "--out", tmp_path / "r.json")
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["n"] == len(ds.pairs) and res["protocol"]["name"] == "paired"
    assert res["metrics"]["ssim"]["value"] == pytest.approx(1.0) and res["metrics"]["mae"]["value"] == 0.0


@pytest.mark.parametrize("naming", ["vis", "fpdm"])
def test_repo_namings_are_matched_and_values_match_skimage(tmp_path, ds, naming):
    gen = tmp_path / "gen"
    for r in ds.pairs:  # copy-source outputs, named as GFLA/PIDM/PoCoLD or FPDM name them
        name = f"{r.pair_id}_vis.png" if naming == "vis" else f"{r.source}_2_{r.target}"
        write(gen, name, load(ds.image_path(r.source)))
    score("--dataset", "fixture", "--data-root", ds.root, "--generated", gen, "--protocol", "paired",
          "--out", tmp_path / "r.json")
    res = json.loads((tmp_path / "r.json").read_text())
    want = np.mean([structural_similarity(load(ds.image_path(r.target)) / 255.0, load(ds.image_path(r.source)) / 255.0,
                                          win_size=51, channel_axis=2, data_range=1.0) for r in ds.pairs])
    assert res["metrics"]["ssim"]["value"] == pytest.approx(want, abs=1e-4)


def test_two_plain_folders(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        a = rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
        write(tmp_path / "real", f"x{i}.png", a)
        write(tmp_path / "gen", f"x{i}.png", a if i else 255 - a)
    res = score("--real", tmp_path / "real", "--generated", tmp_path / "gen", "--protocol", "paired",
                "--out", tmp_path / "r.json")
    per = json.loads((tmp_path / "r.json").read_text())["per_sample"]
    assert [p["metrics"]["mae"] == 0 for p in per] == [False, True, True, True]
    assert "gen" in res.output


def test_reference_statistics_are_cached_and_invalidated(tmp_path, ds):
    from helpers import TinyFeatures

    from fpdm_bench.commands.score import score_dataset

    gen = tmp_path / "gen"
    for r in ds.pairs:
        write(gen, f"{r.pair_id}.png", load(ds.image_path(r.source)))

    def ref():  # a small stand-in feature network: the cache logic is what is tested here
        out = score_dataset(ds, gen, "standard", networks={"fid-inception": TinyFeatures()}, cache=tmp_path / "cache")
        return out["protocol"]["reference_used"], out["metrics"]["fid"]["value"]

    (first, fid1), (second, fid2) = ref(), ref()
    assert first["from_cache"] is False and second["from_cache"] is True and fid1 == fid2
    img = ds.image_path(ds.pairs[0].target)  # rewrite one reference image
    arr = load(img).copy()
    arr[:8] = 0
    Image.fromarray(arr).save(img)
    third, fid3 = ref()
    assert third["from_cache"] is False and third["cache_key"] != first["cache_key"] and fid3 != fid1


def test_missing_weight_file_makes_fid_unavailable_with_its_name(tmp_path, ds):
    gen = tmp_path / "gen"
    for r in ds.pairs:
        write(gen, f"{r.pair_id}.png", load(ds.image_path(r.source)))
    score("--dataset", "fixture", "--data-root", ds.root, "--generated", gen, "--protocol", "standard",
          "--weights", "fid-inception=/nowhere/pt_inception.pth", "--out", tmp_path / "r.json")
    m = json.loads((tmp_path / "r.json").read_text())["metrics"]
    assert m["fid"]["value"] is None and "/nowhere/pt_inception.pth" in m["fid"]["unavailable"]
    assert m["kid"]["value"] is None and m["ssim"]["value"] is not None


def one_line_error(res, *needles):
    assert res.exit_code != 0
    msg = str(res.exception)
    for n in needles:
        assert n in msg, msg
    return msg


def test_bad_inputs_give_one_clear_message(tmp_path, ds):
    base = ["--dataset", "fixture", "--data-root", ds.root, "--protocol", "paired"]
    (tmp_path / "empty").mkdir()
    one_line_error(score(*base, "--generated", tmp_path / "empty", ok=False), "empty", "no images")

    few = tmp_path / "few"
    for r in ds.pairs[:3]:
        write(few, f"{r.pair_id}.png", load(ds.image_path(r.source)))
    one_line_error(score(*base, "--generated", few, ok=False), "few", f"{len(ds.pairs) - 3} of the {len(ds.pairs)}",
                   ds.pairs[3].pair_id)
    score(*base, "--generated", few, "--limit", "3")  # a subset is fine when asked for

    mixed = tmp_path / "mixed"
    for i, r in enumerate(ds.pairs):
        arr = load(ds.image_path(r.source))
        write(mixed, f"{r.pair_id}.png", arr if i else np.ascontiguousarray(arr[:80]))
    one_line_error(score(*base, "--generated", mixed, ok=False), "mixed sizes", "80x64")
    score(*base, "--generated", mixed, "--size", "96x64")

    for mode, kind in (("L", "grayscale"), ("RGBA", "RGBA")):
        odd = tmp_path / mode
        for i, r in enumerate(ds.pairs):
            im = Image.open(ds.image_path(r.source)).convert("RGB")
            odd.mkdir(exist_ok=True)
            (im.convert(mode) if i == 2 else im).save(odd / f"{r.pair_id}.png")
        one_line_error(score(*base, "--generated", odd, ok=False), kind, ds.pairs[2].pair_id)
        score(*base, "--generated", odd, "--convert")


def test_existing_out_is_not_overwritten(tmp_path, ds):
    gen = tmp_path / "gen"
    for r in ds.pairs:
        write(gen, f"{r.pair_id}.png", load(ds.image_path(r.target)))
    out = tmp_path / "r.json"
    out.write_text("precious")
    res = score("--dataset", "fixture", "--data-root", ds.root, "--generated", gen, "--protocol", "paired",
                "--out", out, ok=False)
    one_line_error(res, "exists", "--force")
    assert out.read_text() == "precious"
    score("--dataset", "fixture", "--data-root", ds.root, "--generated", gen, "--protocol", "paired",
          "--out", out, "--force")
    assert json.loads(out.read_text())["n"] == len(ds.pairs)
