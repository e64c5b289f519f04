"""tools/background_photos.py on packages written here in the registries' formats (a wheel is a zip archive,
a ``.deb`` an ar archive holding ``data.tar.xz``): the listed images come out in RGB, shrunk, named by their
source; a wallpaper size that is a symbolic link gives the file it names; what is missing is skipped."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tool_modules import load_tool


def png(width: int, height: int, mode: str = "RGB", value: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), value if mode == "L" else (value, 20, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_deb(path: Path, files: dict[str, bytes], links: dict[str, str]) -> None:
    """A Debian package: ``debian-binary``, ``control.tar.xz`` and ``data.tar.xz`` in an ar archive."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as archive:
        for name, blob in files.items():
            entry = tarfile.TarInfo("./" + name)
            entry.size = len(blob)
            archive.addfile(entry, io.BytesIO(blob))
        for name, target in links.items():
            entry = tarfile.TarInfo("./" + name)
            entry.type, entry.linkname = tarfile.SYMTYPE, target
            archive.addfile(entry)
    control = io.BytesIO()
    with tarfile.open(fileobj=control, mode="w:xz"):
        pass
    out = b"!<arch>\n"
    for name, body in (("debian-binary", b"2.0\n"), ("control.tar.xz", control.getvalue()),
                       ("data.tar.xz", data.getvalue())):  # fmt: skip
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode()
        out += header + body + (b"\n" if len(body) % 2 else b"")
    path.write_bytes(out)


def test_the_listed_images_are_gathered_from_a_wheel_and_a_deb(tmp_path, caplog):
    tool = load_tool("background_photos")
    packages = tmp_path / "packages"
    packages.mkdir()
    with zipfile.ZipFile(packages / "scikit_image-0.26.0-cp311-none-any.whl", "w") as wheel:
        wheel.writestr("skimage/data/brick.png", png(512, 512, mode="L"))  # grey, kept at its size
        wheel.writestr("skimage/data/coffee.png", png(3000, 1000))  # shrunk to 1280 x 427
        wheel.writestr("skimage/data/astronaut.png", png(64, 64))  # not listed: a person
    images = "usr/share/wallpapers/Path/contents/images/"
    write_deb(
        packages / "plasma-workspace-wallpapers_5.27.5-2_all.deb",
        {images + "2560x1600.jpg": png(2560, 1600, value=150), "usr/share/doc/readme.txt": b"text"},
        {images + "800x600.jpg": "2560x1600.jpg"},
    )
    out = tmp_path / "out"
    written = tool.gather(packages, out, longest=1280)

    assert sorted(p.name for p in out.iterdir()) == ["brick.png", "coffee.png", "deb-Path.jpg"] and written == 3
    sizes = {p.name: Image.open(p).size for p in out.iterdir()}
    assert sizes == {"brick.png": (512, 512), "coffee.png": (1280, 427), "deb-Path.jpg": (1280, 800)}
    assert all(Image.open(p).mode == "RGB" for p in out.iterdir())
    path = np.asarray(Image.open(out / "deb-Path.jpg"), dtype=int)
    assert np.abs(path - [150, 20, 200]).max() <= 4  # the linked file's pixels (JPEG: a few levels off)
    missing = [r.getMessage() for r in caplog.records if "not in this version" in r.getMessage()]
    assert len(missing) == len(tool.SKIMAGE) - 2 + len(tool.DEBIAN["plasma-workspace-wallpapers"]) - 1


def test_a_folder_without_the_packages_or_with_a_broken_one_is_one_line_and_exit_2(tmp_path, capsys):
    tool = load_tool("background_photos")
    assert tool.main([str(tmp_path / "out"), "--packages", str(tmp_path)]) == 2
    assert "none of the listed images" in capsys.readouterr().err
    (tmp_path / "mate-backgrounds_1.26.0-1_all.deb").write_bytes(b"<html>not a package</html>")
    assert tool.main([str(tmp_path / "out"), "--packages", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a Debian package" in err
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize("longest", ["10", "100000"])
def test_an_unreasonable_size_is_refused(tmp_path, capsys, longest):
    tool = load_tool("background_photos")
    assert tool.main([str(tmp_path / "out"), "--packages", str(tmp_path), "--longest", longest]) == 2
    assert "--longest 64 to 8192" in capsys.readouterr().err


def test_the_held_out_set_is_gathered_alone_and_shares_nothing_with_the_training_set(tmp_path):
    tool = load_tool("background_photos")
    packages = tmp_path / "packages"
    packages.mkdir()
    with zipfile.ZipFile(packages / "scikit_image-0.26.0-cp311-none-any.whl", "w") as wheel:
        wheel.writestr("skimage/data/brick.png", png(64, 64))  # a training image: not gathered with --held-out
    write_deb(
        packages / "lomiri-wallpapers-16.04_20.04.0-2_all.deb",
        {"usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg": png(2000, 1000)},
        {},
    )
    write_deb(
        packages / "lomiri-wallpapers_20.04.0-2_all.deb",
        {"usr/share/backgrounds/warty-final-ubuntu.png": png(80, 60)},
        {},
    )
    out = tmp_path / "held-out"
    assert tool.main([str(out), "--held-out", "--packages", str(packages), "--longest", "1000"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "deb-Bridge_by_Sander_Klootwijk.jpg",
        "deb-warty-final-ubuntu.jpg",
    ]
    assert Image.open(out / "deb-Bridge_by_Sander_Klootwijk.jpg").size == (1000, 500)
    held_out = {Path(m).name for members in tool.HELD_OUT.values() for m in members}
    training = {Path(m).name for members in [tool.SKIMAGE, *tool.DEBIAN.values()] for m in members}
    assert not held_out & training
    assert sum(len(members) for members in tool.HELD_OUT.values()) == 19
