"""Tests of `mnist-bot explain`: one picture per stage and the numbers each stage chose."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_bot import cli, explain
from mnist_bot.recognizer import Recognizer
from tests.conftest import draw_digit, encode

STAGES = ["decoded", "ink", "mask", "candidates", "chosen", "28x28"]


def test_every_stage_is_shown_with_the_numbers_it_chose(fake_recognizer: Recognizer) -> None:
    image = encode(draw_digit(7, size=300, width=14))
    result = explain.explain(fake_recognizer, image)
    assert [s.name for s in result.stages] == STAGES
    numbers = result.numbers()
    assert numbers["ink"]["polarity"] == "dark"  # black ink on white paper
    assert 8 <= numbers["ink"]["pen width px"] <= 22  # a 14 px pen, estimated from the ink alone
    assert 0 < numbers["mask"]["threshold"] < numbers["mask"]["ink peak"]
    assert numbers["candidates"]["blobs"] == 1 and numbers["chosen"]["digits"] == 1
    x, y, _, h = numbers["chosen"]["boxes"][0]
    assert 50 <= x <= 90 and 30 <= y <= 60 and 150 <= h <= 240  # the 7's box in the input's pixels
    assert result.stages[-1].picture.shape == (30, 30)  # the 28x28 with a one-pixel frame
    assert numbers["text"] == result.reading.text and numbers["error"] is None


def test_light_ink_on_black_is_named_as_such(fake_recognizer: Recognizer) -> None:
    image = encode(draw_digit(1, size=300, width=14, ink=255, paper=0))
    assert explain.explain(fake_recognizer, image).numbers()["ink"]["polarity"] == "light"


def test_a_blank_image_shows_the_stages_it_reached_and_why_it_stopped(
    fake_recognizer: Recognizer, tmp_path: Path
) -> None:
    result = explain.explain(fake_recognizer, encode(Image.new("L", (300, 300), 255)))
    assert result.reading is None and "can't see a digit" in (result.error or "")
    assert [s.name for s in result.stages] == ["decoded", "ink"]  # no ink above the noise floor
    png, numbers = explain.write(result, tmp_path)
    assert Image.open(png).height == explain.PANEL + explain.CAPTION
    assert json.loads(numbers.read_text())["text"] is None


def test_the_strip_holds_each_stage_side_by_side(fake_recognizer: Recognizer, tmp_path: Path) -> None:
    result = explain.explain(fake_recognizer, encode(draw_digit(4, size=200, width=10)))
    png, numbers = explain.write(result, tmp_path, "four")
    sheet = np.asarray(Image.open(png).convert("RGB"))
    assert png.name == "four.png" and numbers.name == "four.json"
    assert sheet.shape[0] == explain.PANEL + explain.CAPTION and sheet.shape[1] >= 6 * 150
    chosen = sheet[: explain.PANEL]
    green = (chosen[..., 1] > 150) & (chosen[..., 0] < 80) & (chosen[..., 2] < 80)
    orange = (chosen[..., 0] > 200) & (chosen[..., 1] > 90) & (chosen[..., 1] < 150) & (chosen[..., 2] < 40)
    assert green.any() or orange.any()  # the chosen digit is boxed in the colour of its certainty


@pytest.mark.slow
def test_cli_explain_writes_a_strip_per_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seven = tmp_path / "seven.png"
    draw_digit(7, size=300, width=16).save(seven)
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    code = cli.main(["explain", str(seven), str(blank), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 1  # the blank page could not be read
    assert f"{seven}: 7 (stages in" in out and f"{blank}: I can't see a digit" in out
    assert (tmp_path / "out" / "seven.png").is_file() and (tmp_path / "out" / "blank.json").is_file()
    assert json.loads((tmp_path / "out" / "seven.json").read_text())["text"] == "7"
