"""``mould bench photos``: masks found beside photos by both conventions, the scores of a crop against them,
and the bench's table, files and contact sheet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mould.benchmarks.photos import is_mask_file, mask_beside, mask_scores, preview_stems, read_person_mask
from mould.cli import main
from mould.errors import InputError
from mould.framing import CropWindow, SquareBox, crop_image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _disc(height, width, centre, radius):
    rows, cols = np.mgrid[0:height, 0:width]
    return (cols - centre[0]) ** 2 + (rows - centre[1]) ** 2 <= radius**2


def test_masks_are_found_by_both_conventions(tmp_path):
    for name in ("a.jpg", "a_mask.png", "b.png", "b_segmentation.png", "c.png"):
        (tmp_path / name).write_bytes(b"")
    assert mask_beside(tmp_path / "a.jpg") == tmp_path / "a_mask.png"
    assert mask_beside(tmp_path / "b.png") == tmp_path / "b_segmentation.png"
    assert mask_beside(tmp_path / "c.png") is None
    assert is_mask_file(tmp_path / "a_mask.png") and is_mask_file(tmp_path / "b_segmentation.png")
    assert not is_mask_file(tmp_path / "c.png")


def test_a_tfjs_segmentation_is_read_by_palette_index(tmp_path):
    # TensorFlow.js writes the person as index 0 (blue) and the background as index 1 (red): both colours are
    # bright, so reading the file as "white = person" would make the whole photo the person.
    person = _disc(40, 60, (30, 20), 10)
    image = Image.fromarray(np.where(person, 0, 1).astype(np.uint8), "P")
    image.putpalette([0, 0, 255, 255, 0, 0])
    image.save(tmp_path / "p_segmentation.png")
    np.testing.assert_array_equal(read_person_mask(tmp_path / "p_segmentation.png", (40, 60)), person)
    with pytest.raises(InputError, match="p_segmentation.png: mask is 60x40, the photo 40x60"):
        read_person_mask(tmp_path / "p_segmentation.png", (60, 40))
    Image.fromarray((person * 255).astype(np.uint8)).save(tmp_path / "q_segmentation.png")
    with pytest.raises(InputError, match="q_segmentation.png: expected a palette image"):
        read_person_mask(tmp_path / "q_segmentation.png", (40, 60))
    Image.fromarray((person * 255).astype(np.uint8)).save(tmp_path / "p_mask.png")  # white = person
    np.testing.assert_array_equal(read_person_mask(tmp_path / "p_mask.png", (40, 60)), person)


def test_previews_keep_the_photos_names_apart():
    stems = preview_stems([Path("x/a.png"), Path("x/a.jpg"), Path("x/b c.png")])
    assert stems == {Path("x/a.png"): "a_png", Path("x/a.jpg"): "a_jpg", Path("x/b c.png"): "b_c"}


def test_scores_of_a_crop_against_the_mask():
    truth = _disc(300, 400, (200, 150), 60)
    window = CropWindow.square(SquareBox(200.0, 150.0, 160.0), 64)  # holds the disc with a margin
    iou, framed = mask_scores(truth, crop_image(truth, window), window)
    assert iou == 1.0 and framed == 1.0
    half = CropWindow.square(SquareBox(200.0 + 80.0, 150.0, 160.0), 64)  # its left edge on the disc's centre
    iou, framed = mask_scores(truth, crop_image(truth, half), half)
    assert iou == 1.0 and framed == pytest.approx(0.5, abs=0.02)
    empty = np.zeros((64, 64), bool)
    assert mask_scores(truth, empty, window)[0] == 0.0


def _tiny_checkpoint(folder: Path) -> Path:
    import torch
    from mould.models import build_model
    from mould.models.checkpoint import save_checkpoint
    from mould.models.configs import CONFIGS

    torch.manual_seed(0)
    path = folder / "tiny.safetensors"
    save_checkpoint(path, build_model("tiny"), CONFIGS["tiny"])
    return path


def test_bench_photos_writes_a_row_per_photo_and_never_reconstructs_a_mask(tmp_path, capsys):
    # An untrained network finds nobody or anybody: the bench's plumbing is what is tested here.
    photos = tmp_path / "photos"
    photos.mkdir()
    rgb = np.full((120, 90, 3), 80, np.uint8)
    rgb[_disc(120, 90, (45, 60), 30)] = 220
    Image.fromarray(rgb).save(photos / "figure.png")
    Image.fromarray((_disc(120, 90, (45, 60), 30) * 255).astype(np.uint8)).save(photos / "figure_mask.png")
    (photos / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    code = main(["bench", "photos", str(photos), "-o", str(out), "--checkpoint", str(_tiny_checkpoint(tmp_path))])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| photo | status | framing passes | IoU vs mask |" in printed
    record = json.loads((out / "photos.json").read_text())
    rows = {row["name"]: row for row in record["photos"]}
    assert set(rows) == {"figure.png", "broken.png"}  # the mask is no photo
    assert rows["broken.png"]["status"] == "error" and "broken.png" in rows["broken.png"]["error"]
    assert rows["figure.png"]["mask"] == "figure_mask.png"
    assert rows["figure.png"]["status"] in ("ok", "no person")
    assert (rows["figure.png"]["iou"] is None) == (rows["figure.png"]["status"] != "ok")
    assert (out / "photos.md").read_text().count("\n| ") == 3  # the header's rule line, then 2 photos
    with Image.open(out / "photos.png") as sheet:
        assert sheet.width == 768 and sheet.height >= 2 * 192


def test_bench_photos_refuses_a_missing_folder(tmp_path):
    assert main(["bench", "photos", str(tmp_path / "nowhere")]) == 2


@pytest.mark.slow
def test_bench_photos_on_the_bundled_example(tmp_path, capsys):
    # The example photo beside its true silhouette as a mask: the shipped model frames the whole person and its
    # silhouette overlaps the truth well (0.95 on synthetic people, the model card's figure).
    from mould.container import Mould

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "person.png").write_bytes((EXAMPLES / "person.png").read_bytes())
    truth = Mould.load(EXAMPLES / "person_truth.npz").mask
    Image.fromarray((truth * 255).astype(np.uint8)).save(folder / "person_mask.png")
    assert main(["bench", "photos", str(folder), "-o", str(tmp_path / "out")]) == 0
    row = json.loads((tmp_path / "out" / "photos.json").read_text())["photos"][0]
    assert row["status"] == "ok" and row["framed"] > 0.99
    assert row["iou"] > 0.85
    assert (tmp_path / "out" / "person_preview.png").is_file()


def test_bench_photos_refuses_an_output_folder_that_is_a_file(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "taken").write_text("a file")
    assert main(["bench", "photos", str(tmp_path / "photos"), "-o", str(tmp_path / "taken")]) == 2
    assert "taken" in capsys.readouterr().err


def test_a_rows_reason_keeps_its_own_colons_and_drops_the_path():
    from mould.benchmarks.photos import PhotoRow

    def row(error: str) -> str:
        return PhotoRow("p.png", "no person", error, None, None, None, None, 0.0, None).row()

    refusal = "no person found (the silhouette is unsure: contrast 0.36 < 0.5)"
    assert f"| no person: {refusal} |" in row(refusal)
    assert "| no person: not a PNG |" in row("/photos/p.png: not a PNG")
