"""`python -m mnist_bot.bot` is `mnist-bot bot`: the same parser, options and exit codes."""

from __future__ import annotations

import pytest

from mnist_bot import cli
from mnist_bot.bot import __main__ as bot_main


def test_the_module_runs_the_cli_bot_command_with_global_flags_first() -> None:
    assert bot_main.cli_arguments([]) == ["bot"]
    assert bot_main.cli_arguments(["--port", "9000", "--verbose"]) == ["--verbose", "bot", "--port", "9000"]


def test_the_module_hands_its_arguments_to_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "main", lambda argv: seen.append(list(argv)) or 7)

    assert bot_main.main(["-v", "--webhook", "https://example.org/tg"]) == 7
    assert seen == [["-v", "bot", "--webhook", "https://example.org/tg"]]


def test_the_module_shows_the_cli_bot_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        bot_main.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mnist-bot bot") and "--webhook" in out
