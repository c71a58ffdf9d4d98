"""Official checkpoint releases: what each model package declares so that `fpdm-bench weights fetch
NAME --out DIR` can download, verify and convert it in one step (``release_fetch.py`` does the work).

A model package describes its release with a :class:`Release` record and registers it in the
``fpdm_bench.releases`` entry-point group (pyproject.toml), as models, datasets and metrics are
registered: fpdm_bench never imports a model package, it reads the records through :data:`RELEASES`.

A record names the files of the release (a direct URL, a Google Drive file id, or a Drive folder id
holding the file, and the sha256 and size when the release states them: none of the four official
releases does), the Hugging Face parts the model needs beside it (Stable Diffusion, CLIP, DINOv2:
repo id and the files in it), the converter (``convert(files, parts, out)``, which reuses the model
package's existing converter and must refuse a wrong or truncated file: with no published hash, its
strict load *is* the verification) and the `fpdm-bench run` line that uses the result.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fpdm_bench.registry import Registry


@dataclass(frozen=True)
class ReleaseFile:
    name: str  # its name in the download folder and under a mirror (URL/<release>/<name>)
    url: str | None = None  # a direct HTTP(S) source
    drive_id: str | None = None  # a Google Drive file id
    drive_folder: str | None = None  # a Google Drive folder id the file is in (found by name)
    sha256: str | None = None  # only when the release states it; never guessed
    size: int | None = None  # bytes, likewise
    required: bool = True  # False: taken when the source has it, skipped when it does not
    note: str = ""

    def source(self) -> str:
        """The canonical source, as a user could open it in a browser."""
        if self.url:
            return self.url
        if self.drive_id:
            return f"https://drive.google.com/file/d/{self.drive_id}"
        if self.drive_folder:
            return f"https://drive.google.com/drive/folders/{self.drive_folder} ({self.name})"
        return "no public source"


@dataclass(frozen=True)
class HFPart:
    name: str  # the part's folder under the download folder and under a mirror (URL/<release>/<name>/<path>)
    repo: str  # the Hugging Face repo it is fetched from
    files: tuple[str, ...]  # paths inside the repo
    official_repo: str | None = None  # the repo the official code names, when that one is gone
    note: str = ""


@dataclass(frozen=True)
class Release:
    name: str
    model: str  # the `--model` that runs the result
    summary: str  # one line for `fpdm-bench weights`
    where: str  # where the locations were read (repository + path)
    files: tuple[ReleaseFile, ...]
    parts: tuple[HFPart, ...]
    #: (downloaded files by name, part folders by name, an empty output folder) -> facts for the
    #: provenance file; raises BenchError when a file does not load (the verification)
    convert: Callable[[dict[str, Path], dict[str, Path], Path], dict]
    converter: str  # what converts, for the provenance file
    run: str  # the next step, with {out} for the output folder
    notes: tuple[str, ...] = field(default=())

    def needs_gdown(self) -> bool:
        return any((f.drive_id or f.drive_folder) and not f.url for f in self.files)


RELEASES = Registry("release", "fpdm_bench.releases")


def get(name: str) -> Release:
    """The record registered as ``name`` (UnknownName, with did-you-mean, for another name)."""
    rel = RELEASES.get(name)
    if not isinstance(rel, Release):
        raise TypeError(f"release {name!r}: the entry point gives {rel!r}; register a fpdm_bench.releases.Release")
    if rel.name != name:
        raise ValueError(f"release registered as {name!r} calls itself {rel.name!r}")
    return rel


def place(src: Path, dst: Path) -> None:
    """Put the file ``src`` at ``dst``: a hard link when both are on one file system (a checkpoint of
    several GB is not copied twice), else a copy. ``src`` may be a link into the Hugging Face cache."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    real = os.path.realpath(src)
    try:
        os.link(real, dst)
    except OSError:
        shutil.copyfile(real, dst)


def place_part(part_dir: Path, part: HFPart, dst: Path, strip: str = "") -> None:
    """Every file of ``part`` (found under ``part_dir``) at ``dst``/<its path>, less the prefix
    ``strip`` (e.g. ``vae/``)."""
    for rel in part.files:
        place(part_dir / rel, dst / rel.removeprefix(strip))
