"""RunConfig: the settings of one run, each declared once as a field with its help text, whether it
belongs to the run's identity, and how the command line reads it. The `run` command's options are
generated from it (:func:`fpdm_bench.commands.options.config_options`), a ``--config`` YAML file
uses the same names, and config.json / results.json store it as it is."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from fpdm_bench.errors import BenchError


def option(help: str, *, identity: bool = False, **cli) -> dict:
    """A RunConfig field's metadata: its ``--help`` text, whether it is part of the run's identity
    (what a run directory holds: a rerun must agree on every identity field to resume), and how the
    command line reads it (``cli``: see :func:`fpdm_bench.commands.options.config_options`). The
    `run` command's options are generated from these fields, so a setting is declared once."""
    return {"help": help, "identity": identity, "cli": cli}


@dataclass
class RunConfig:
    model: str = field(metadata=option("Model name (see `fpdm-bench models`).", identity=True, required=True))
    dataset: str = field(metadata=option("Dataset name (see `fpdm-bench datasets`).", identity=True,
                                         default="synthetic"))
    out: str = field(metadata=option("Run directory. Rerunning the same command resumes there.", required=True,
                                     kind="folder"))
    data_root: str | None = field(default=None, metadata=option(
        "Dataset folder, which must exist (default: data/<dataset>, made on first use for the synthetic sets).",
        identity=True, kind="data_root"))
    split: str = field(default="test", metadata=option("Dataset split.", identity=True))
    size: list[int] | None = field(default=None, metadata=option(  # (H, W); None = the protocol's / native
        "Load images at HxW (default: the protocol's evaluation size, else the dataset's native size).",
        identity=True, kind="size"))
    checkpoint: str | None = field(default=None, metadata=option(
        "Model checkpoint (folder or file); model default if omitted.", identity=True))
    model_args: dict = field(default_factory=dict, metadata=option(
        "Any other argument of the model's from_pretrained (repeatable; VALUE read as YAML), e.g. temperature=1 or "
        "residual_threshold=0 for fpdm, weights=model or canvas=[256,256] for pidm, layout=pidm for images.",
        identity=True, kind="key_values", flag="--model-arg"))
    limit: int | None = field(default=None, metadata=option("Only the first N pairs (before sharding).",
                                                            identity=True, min=1))
    batch_size: int = field(default=8, metadata=option("Pairs per model call.", min=1))
    seed: int = field(default=0, metadata=option(
        "Run seed; each pair's generator is seeded from sha256(seed, pair id).", identity=True))
    device: str = field(default="cpu", metadata=option("cpu or cuda[:i] (default: cuda when available).",
                                                       kind="device", default=None))
    dtype: str = field(default="float32", metadata=option("Model dtype.",
                                                          choices=("float32", "float16", "bfloat16")))
    shard: str = field(default="0/1", metadata=option(
        "i/n: this process takes pairs i, i+n, ...; the last shard to finish writes results.json."))
    protocol: str = field(default="standard", metadata=option(
        "Evaluation protocol (see `fpdm-bench protocols`).", identity=True))
    skip_bad: bool = field(default=False, metadata=option(
        "Skip (and count) pairs with bad images instead of stopping.", identity=True))
    convert: bool = field(default=False, metadata=option(
        "Read grayscale/RGBA/palette dataset images as RGB instead of refusing them.", identity=True))
    reference_folder: str | None = field(default=None, metadata=option(
        "Reference images of FID/KID (default: the protocol's rule, e.g. the train split).", identity=True,
        kind="existing_folder"))
    allow_upsampled: bool = field(default=False, metadata=option(
        "Score even if real images are smaller than the protocol's evaluation size (recorded).", identity=True))
    weights: dict = field(default_factory=dict, metadata=option(
        "A metric weight file (see `fpdm-bench weights`); repeatable.", kind="name_paths"))
    perturb: str | None = field(default=None, metadata=option(
        "Perturb every pair's inputs, e.g. pose.jitter:3 (severity 0-5; see `fpdm-bench perturbations`). "
        "Deterministic per (seed, pair); part of the run's identity.", identity=True, metavar="NAME:SEVERITY"))
    workers: int = field(default=2, metadata=option(
        "DataLoader workers decoding the next batches while the model runs (0: in the main process).", min=0))
    progress: bool = field(default=True, metadata=option(
        "No progress bars: neither the generation's nor a metric weight's first-use fetch.", kind="negated_flag"))

    @classmethod
    def identity_fields(cls) -> list[str]:
        """The fields that define what a run directory holds (declared with ``identity=True``)."""
        return [f.name for f in fields(cls) if f.metadata.get("identity")]

    def shard_index(self) -> tuple[int, int]:
        try:
            i, n = (int(x) for x in self.shard.split("/"))
        except ValueError:
            raise BenchError(f"--shard must look like i/n (e.g. 0/2), got {self.shard!r}") from None
        if not (n >= 1 and 0 <= i < n):
            raise BenchError(f"--shard {self.shard}: need 0 <= i < n")
        return i, n

    def validate(self) -> None:
        """Refuse settings that would silently run something else (--limit 0 meant all pairs, -1 all
        but one, a negative batch size generated nothing): one line naming the option, before any
        data, model or run folder is touched. The CLI checks the same ranges where it parses them."""
        from fpdm_bench.errors import require_device

        ranges = [("--" + f.name.replace("_", "-"), getattr(self, f.name), f.metadata["cli"]["min"])
                  for f in fields(self) if "min" in f.metadata.get("cli", {})]
        for option, value, low in ranges + [("--steps", self.model_args.get("steps"), 1)]:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise BenchError(f"{option} must be an integer >= {low}, got {value!r}")
        self.shard_index()
        require_device(self.device)

    def identity(self) -> dict:
        d = asdict(self)
        pert = self.perturbation()
        d["perturb"] = f"{pert[0]}:{pert[1]}" if pert else None  # severity 0 is the clean run
        return {k: d[k] for k in self.identity_fields()}

    @property
    def random_weights(self) -> bool:
        """--model-arg init=random: the run generates (shapes, memory, time) and scores nothing."""
        return str(self.model_args.get("init", "pretrained")) == "random"

    def perturbation(self) -> tuple[str, int] | None:
        """(name, severity) of --perturb, checked; None when there is none or its severity is 0."""
        if not self.perturb:
            return None
        from fpdm_bench.perturb import parse_perturbation

        name, severity = parse_perturbation(self.perturb)
        return (name, severity) if severity else None
