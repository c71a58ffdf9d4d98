"""Loading PIDM weights: the official ``last.pt`` (restricted unpickler + key map) and our own folders.

Official ``last.pt`` (``train.py:166-199``): a ``torch.save`` dict ``{model, ema, scheduler,
optimizer, conf}``; inference uses ``ema`` (``utils/gen.py``, ``predict.py``); ``conf`` is a pickled
tensorfn/pydantic ``DiffusionConfig`` (schedule and training settings, not the architecture, which
``config/diffconfig.py:get_model_conf`` builds in code). It is read with
``fpdm_bench.safe_load`` - the config classes become inert stand-ins, nothing is imported or called.

Attention heads are the one architecture setting the weights cannot show (``to_q``/``to_kv`` have the
same shapes for any head count). ``attention_heads`` takes them from the checkpoint's own config when
it holds model settings (``num_heads`` / ``num_head_channels`` / ``num_heads_upsample``, on the config
or one of its fields); a plain official ``DiffusionConfig`` holds none, and the official code builds
every such checkpoint's model with ``get_model_conf()`` (``train.py:258``, ``predict.py:27``,
``utils/gen.py:124``: ``num_heads=1, num_head_channels=-1``), so that is what it gets. Anything else
(no config, or an unknown one without the settings) is refused unless the caller names the count.

Key map: our parameter names are the official ones, minus the weights the official forward never
uses (``UNUSED``, each reason below; the list equals the one measured by back-propagating through the
official model, tests/fixtures/pidm/manifest.json ``unused_in_forward``). Loading drops exactly those
and then loads strictly.

Our folders (the tiny PIDM, or a converted official checkpoint): ``config.json`` (``PIDMConfig`` +
``sampling`` defaults + anything else) and ``model.safetensors`` (our names).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from fpdm_bench.errors import BenchError
from fpdm_bench.modeling.pretrained import CONFIG_NAME, WEIGHTS_NAME, read_weights, save_folder
from fpdm_bench.models.state import load_strict
from fpdm_bench_baselines.pidm.network import PIDMConfig, PIDMUNet

# Official weights that no official forward touches, with the reason (models/*.py of PIDM):
UNUSED = {
    r"\.cond_emb_layers\.": "res-block style modulation: TimestepEmbedSequential passes cond=None to res blocks "
                            "(blocks.py:38)",
    r"\.qkv\.": "attention's self-attention projection: the self-attention is commented out (blocks.py:476-483)",
    r"\.proj_out1\.": "self-attention output projection, same reason",
    r"^encoder\.time_embed\.": "the source encoder builds a time MLP but never calls it (unet.py:681)",
    r"^encoder\.input_blocks\.\d+\.\d+\.emb_layers\.": "encoder res blocks get emb=None, so no time modulation "
                                                      "(unet.py:690)",
}
_UNUSED_RE = re.compile("|".join(f"(?:{p})" for p in UNUSED))
STAND_INS = ("config", "tensorfn", "pydantic", "diffusion", "model", "models", "data")


def official_key_map(keys) -> tuple[dict[str, str], list[str]]:
    """Official state-dict keys -> (official -> ours for the used ones, the unused ones)."""
    used, unused = {}, []
    for k in keys:
        (unused.append(k) if _UNUSED_RE.search(k) else used.__setitem__(k, k))
    return used, unused


def _levels(sd: dict, prefix: str) -> list[int]:
    return sorted({int(m.group(1)) for k in sd if (m := re.match(rf"{prefix}\.(\d+)\.", k))})


def infer_config(sd: dict, image_size: int = 256, dropout: float = 0.1, num_heads: int = 1) -> PIDMConfig:
    """The architecture from an official (or our) state dict's shapes. ``image_size`` only names where
    attention sits (attention_resolutions are sizes at that input size). ``num_heads`` is not in the
    shapes: the caller says it (``load_official`` reads it with ``attention_heads``)."""
    try:
        conv_in = sd["input_blocks.0.0.weight"]
        mc = conv_in.shape[0]
        n_out = len(_levels(sd, "output_blocks"))
        # the output block that ends a level (except level 0) carries an up-sampling res block as its
        # second or third module; the first of them is block num_res_blocks
        ups = [k for k in range(n_out) if any(f"output_blocks.{k}.{j}.in_layers.0.weight" in sd for j in (1, 2))]
        nrb = ups[0] if ups else n_out - 1
        levels = n_out // (nrb + 1)
        if nrb < 1 or levels * (nrb + 1) != n_out or len(ups) != levels - 1:
            raise KeyError("output block structure")
        mult, attn, k = [], [], 1
        for level in range(levels):
            out = sd[f"input_blocks.{k}.0.out_layers.3.weight"].shape[0]
            mult.append(out // mc)
            k += nrb - 1
            if f"input_blocks.{k}.1.to_q.weight" in sd:
                attn.append(image_size >> level)
            k += 2  # the down block of the next level
        return PIDMConfig(image_size=image_size, in_channels=conv_in.shape[1], model_channels=mc,
                          out_channels=sd["out.2.weight"].shape[0], num_res_blocks=nrb,
                          embed_channels=sd["time_embed.time_embed.0.weight"].shape[0],
                          attention_resolutions=tuple(attn), channel_mult=tuple(mult), dropout=dropout,
                          num_heads=int(num_heads), source_channels=sd["encoder.input_blocks.0.0.weight"].shape[1])
    except (KeyError, AttributeError, IndexError) as e:
        raise BenchError(f"not a PIDM state dict: cannot read the architecture ({e})") from None


# the official code's model settings for heads (config/diffconfig.py get_model_conf; models/unet.py defaults)
OFFICIAL_HEADS = {"num_heads": 1, "num_head_channels": -1, "num_heads_upsample": -1}
_HEAD_KEYS = tuple(OFFICIAL_HEADS)
_ATTN_Q = re.compile(r"^(input_blocks\.\d+|middle_block|output_blocks\.\d+)\.\d+\.to_q\.weight$")


def _fields(obj) -> dict:
    """The fields of a pickled config: a dict, or a stand-in's state (a pydantic model's ``__dict__``,
    a dataclass's / plain object's state, a dict subclass's items)."""
    from fpdm_bench.safe_load import StandIn

    if isinstance(obj, dict):
        return obj
    if not isinstance(obj, StandIn):
        return {}
    state = obj.state
    if isinstance(state, tuple):  # (dict, slots)
        state = {k: v for part in state if isinstance(part, dict) for k, v in part.items()}
    if isinstance(state, dict):
        return state["__dict__"] if isinstance(state.get("__dict__"), dict) else state
    items = obj.__dict__.get("items")
    return items if isinstance(items, dict) else {}


def _head_settings(conf) -> tuple[dict | None, str]:
    """(the head settings the pickled ``conf`` carries, where they are), on the config itself or on one
    of its fields; an official ``DiffusionConfig`` without any: the official get_model_conf's."""
    fields = _fields(conf)
    found = {name: f for name, f in [("conf", fields)] + [(f"conf.{k}", _fields(v)) for k, v in fields.items()]
             if any(h in f for h in _HEAD_KEYS)}
    try:
        settings = {name: {h: int(OFFICIAL_HEADS[h] if f.get(h) is None else f[h]) for h in _HEAD_KEYS}
                    for name, f in found.items()}
    except (TypeError, ValueError):
        return None, f"unreadable head settings in {', '.join(found)}"
    if len({tuple(v.values()) for v in settings.values()}) > 1:
        return None, f"conflicting head settings in {', '.join(settings)}"
    if settings:
        where, value = next(iter(settings.items()))
        return value, where
    if getattr(conf, "official", None) == "config.diffconfig.DiffusionConfig":
        return dict(OFFICIAL_HEADS), "official get_model_conf (the pickled DiffusionConfig holds no model settings)"
    return None, "no config" if conf is None else f"{getattr(conf, 'official', type(conf).__name__)} without num_heads"


def attention_heads(sd: dict, conf, source: str, num_heads: int | None = None) -> tuple[int, str]:
    """(heads of every attention block, where that came from). Official rule (models/blocks.py
    AttentionBlock, models/unet.py): channels // num_head_channels when that is not -1, else
    num_heads_upsample (-1 = num_heads) in the output blocks and num_heads elsewhere."""
    attn = {m.group(1): v.shape[0] for k, v in sd.items() if (m := _ATTN_Q.match(k))}
    settings, where = _head_settings(conf)
    if settings is None:
        if num_heads is not None:
            settings, where = {**OFFICIAL_HEADS, "num_heads": int(num_heads)}, "given num_heads"
        elif not attn:
            return 1, "no attention blocks"
        else:
            raise BenchError(f"{source}: the number of attention heads is not in the weights and the checkpoint "
                             f"has no config that says it ({where}); give it with --model-arg num_heads=N")
    elif num_heads is not None and any(h != num_heads for h in _heads(attn, settings).values()):
        raise BenchError(f"{source}: num_heads={num_heads} given, but the checkpoint's config ({where}) says "
                         f"{sorted(set(_heads(attn, settings).values()))}")
    heads = _heads(attn, settings)
    if any(h < 1 or attn[b] % h for b, h in heads.items()) or len(set(heads.values())) > 1:
        raise BenchError(f"{source}: head settings {settings} ({where}) give heads {heads} for attention blocks "
                         f"of {attn} channels; the port needs one head count that divides every block's channels")
    return next(iter(heads.values()), 1), where


def _heads(attn: dict, s: dict) -> dict:
    up = s["num_heads"] if s["num_heads_upsample"] == -1 else s["num_heads_upsample"]
    return {b: c // s["num_head_channels"] if s["num_head_channels"] > 0 else
            (up if b.startswith("output_blocks") else s["num_heads"]) for b, c in attn.items()}


def load_state(model: PIDMUNet, sd: dict, source: str) -> None:
    """Strict load of an official-named state dict: drop UNUSED, then every key must match."""
    used, _ = official_key_map(sd.keys())
    load_strict(model, {used[k]: v for k, v in sd.items() if k in used}, source, "PIDM")


def load_official(path: str | Path, weights: str = "ema", image_size: int = 256,
                  config: PIDMConfig | None = None, num_heads: int | None = None) -> tuple[PIDMUNet, dict]:
    """An official ``last.pt`` -> (model in eval mode, info). ``weights``: ``ema`` (what the official
    inference uses) or ``model``. The architecture is read from the weights and the heads from the
    checkpoint's config (``attention_heads``; ``num_heads`` for a file without one) unless ``config``
    is given."""
    from fpdm_bench.safe_load import load_torch_pickle

    ckpt = load_torch_pickle(path, STAND_INS)
    if not isinstance(ckpt, dict) or weights not in ckpt:
        have = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise BenchError(f"{path}: not a PIDM checkpoint (expected a dict with {weights!r}, as train.py saves; "
                         f"found {have})")
    sd = ckpt[weights]
    if not isinstance(sd, dict) or "input_blocks.0.0.weight" not in sd or "encoder.input_blocks.0.0.weight" not in sd:
        raise BenchError(f"{path}: {weights!r} is not a PIDM state dict (no input_blocks.0.0.weight / "
                         f"encoder.input_blocks.0.0.weight)")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    cfg, heads_from = config, "given config"
    if cfg is None:
        heads, heads_from = attention_heads(sd, ckpt.get("conf"), str(path), num_heads)
        cfg = infer_config(sd, image_size=image_size, num_heads=heads)
    model = PIDMUNet(cfg)
    load_state(model, sd, f"{path} [{weights}]")
    _, unused = official_key_map(sd.keys())
    return model.eval(), {"format": "official last.pt", "weights": weights, "unused_official_keys": len(unused),
                          "config": cfg.to_dict(), "num_heads_from": heads_from}


def save_pretrained(model: PIDMUNet, folder: str | Path, extra: dict | None = None, dtype=None) -> None:
    """Our folder format: ``config.json`` (``{"pidm": PIDMConfig, **extra}``, indent 1 as shipped) and
    ``model.safetensors`` (floating tensors as ``dtype`` when given)."""
    save_folder(folder, model.state_dict(), {"pidm": model.config.to_dict(), **(extra or {})}, dtype=dtype,
                indent=1, newline=False)


def load_pretrained(folder: str | Path) -> tuple[PIDMUNet, dict]:
    """Our folder format -> (model in eval mode, the whole config.json)."""
    folder = Path(folder)
    cfg_file, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for f in (cfg_file, weights):
        if not f.is_file():
            raise BenchError(f"{f} missing: a PIDM folder holds config.json and model.safetensors "
                             f"(or pass an official last.pt file)")
    try:
        meta = json.loads(cfg_file.read_text())
        cfg = PIDMConfig(**meta["pidm"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise BenchError(f"{cfg_file}: not a PIDM config ({type(e).__name__}: {e})") from None
    sd = read_weights(weights, "PIDM", float32=True, error="{path}: unreadable safetensors file ({error})")
    model = PIDMUNet(cfg)
    load_state(model, sd, str(weights))
    return model.eval(), meta


def load_any(path: str | Path, **kwargs) -> tuple[PIDMUNet, dict]:
    """A folder (ours) or a file (official ``last.pt``)."""
    path = Path(path)
    if path.is_dir():
        model, meta = load_pretrained(path)
        if kwargs.get("num_heads") not in (None, model.config.num_heads):
            raise BenchError(f"{path}: num_heads={kwargs['num_heads']} given, but its config.json says "
                             f"{model.config.num_heads}")
        return model, meta
    if path.is_file():
        return load_official(path, **kwargs)
    raise BenchError(f"{path}: no such file or folder (a PIDM checkpoint is an official last.pt or a folder "
                     f"with config.json + model.safetensors)")
